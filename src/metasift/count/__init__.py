"""Count chromosomes and check the three rejection criteria from the picture, without training.

``count_chromosomes(image)`` gives a picture's `Findings` (objects, counts, verdicts and the
reason in words); ``count_read`` takes what ``metasift.io.read_image`` returns, and
``write_overlay`` draws the findings on the picture. The settings are a `CountConfig`.
"""

from __future__ import annotations

import os

from ..objects import Findings
from ._config import CountConfig
from ._counter import count_chromosomes
from ._overlay import write_overlay

__all__ = [
    "CountConfig",
    "Findings",
    "count_chromosomes",
    "count_file",
    "count_read",
    "write_overlay",
]


def count_file(path: str | os.PathLike, **kw) -> Findings:
    """Count the chromosomes of a picture file (read with metasift.io)."""
    from ..io import read_image

    return count_read(*read_image(path), **kw)


def count_read(image, info, **kw) -> Findings:
    """Count a picture as metasift.io read it: fluorescent when it was bright on dark."""
    return count_chromosomes(image, fluorescent=info.polarity == "bright", **kw)

"""The picture with what the counter found drawn on it, for a person to check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..objects import Findings


def write_overlay(image: np.ndarray, found: Findings, target: Path) -> Path:
    """The picture with chromosome boxes numbered (green), nuclei (blue), debris (red) and
    stray objects left uncounted (orange)."""
    from PIL import Image, ImageDraw

    base = Image.fromarray((image * 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(base)
    n = 0
    for chrom in found.chromosomes:
        r0, c0, r1, c1 = chrom.box
        draw.rectangle((c0, r0, c1 - 1, r1 - 1), outline=(0, 200, 0))
        n += chrom.pieces
        draw.text((c1 + 1, r0), str(n), fill=(0, 160, 0))
    for chrom in found.strays:  # not counted
        r0, c0, r1, c1 = chrom.box
        draw.rectangle((c0, r0, c1 - 1, r1 - 1), outline=(240, 150, 0))
    for obj, colour in [(o, (40, 90, 255)) for o in found.nuclei] + [
        (o, (230, 30, 30)) for o in found.debris_objects
    ]:
        r0, c0, r1, c1 = obj.box
        draw.ellipse((c0, r0, c1 - 1, r1 - 1), outline=colour, width=3)
    draw.rectangle((0, 0, base.width, 16), fill=(0, 0, 0))
    draw.text(
        (4, 2),
        f"{found.chromosome_count} chromosomes, {found.spread_count} spread(s): {found.reason}",
        fill=(255, 255, 255),
    )
    with atomic_path(target, ".png") as tmp:
        base.save(tmp)
    return target

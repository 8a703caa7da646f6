"""The detector as the pipeline's counter: settings that identify a run, one model per process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from .. import __version__
from ..criteria import MIN_CHROMOSOMES
from ..objects import Findings


@dataclass(frozen=True)
class DetectorSettings:
    """What the pipeline counts with when the detector counts (small and picklable, sent to
    every worker, as ``CountConfig`` is for the training-free counter)."""

    counter: ClassVar[str] = "detector"  # what the pipeline counts with (CountConfig: classic)
    model: str = ""  # a detector model folder; "" or "default": the bundled one
    min_chromosomes: int = MIN_CHROMOSOMES  # fewer: too_few (criterion (c))
    threads: int = 1  # ONNX Runtime threads per worker process (the workers use the cores)

    def __post_init__(self):
        if self.min_chromosomes < 0:
            raise ValueError(f"min_chromosomes must be 0 or more, not {self.min_chromosomes}")

    @property
    def folder(self) -> Path:
        from ._infer import default_detector_dir

        return default_detector_dir() if self.model in ("", "default") else Path(self.model)

    @cached_property  # every picture's row names it: the network is read and hashed once
    def identity(self) -> str:
        """What made a row (resume reuses a row only when this is the same): the version, the
        model's name and the hash of its network and of what its config.json says about
        seeing and decoding a picture (width, apart_scale, decode), and any setting changed."""
        import json

        from ._targets import TARGET_WIDTH

        onnx, config = self.folder / "model.onnx", self.folder / "config.json"
        digest = hashlib.sha256(onnx.read_bytes()) if onnx.is_file() else None
        if digest is not None and config.is_file():
            meta = json.loads(config.read_text(encoding="utf-8"))
            how = {k: meta.get(k) for k in ("width", "apart_scale", "decode")}
            wide = float(meta.get("target_width", TARGET_WIDTH))
            if wide != TARGET_WIDTH:  # (rows made before it was a setting keep their identity)
                how["target_width"] = wide
            # and the measuring rule's revision (2: a fluorescent picture keeps its plain width)
            digest.update(json.dumps({**how, "rules": 2}, sort_keys=True).encode())
        digest = digest.hexdigest()[:8] if digest is not None else "none"
        name = "default" if self.model in ("", "default") else self.folder.name
        changed = (
            f", min_chromosomes {self.min_chromosomes}"
            if self.min_chromosomes != MIN_CHROMOSOMES
            else ""
        )
        return f"metasift {__version__} detector {name}@{digest}{changed}"


_LOADED: dict = {}


def detect_read(image, info, *, config: DetectorSettings) -> Findings:
    """The findings of a picture as metasift.io read it, by the detector of ``config`` (loaded
    once per process)."""
    from ._infer import Detector

    key = (str(config.folder), config.threads)
    if key not in _LOADED:
        _LOADED[key] = Detector(config.folder, threads=config.threads)
    found = _LOADED[key].detect(
        image, polarity=getattr(info, "polarity", "dark"), min_chromosomes=config.min_chromosomes
    )
    return found.findings

"""The picture files a run is given: files, folders searched recursively, globs."""

from __future__ import annotations

import os
from pathlib import Path


def list_inputs(inputs) -> tuple[list[Path], list[str]]:
    """Picture files named by ``inputs`` (files, folders searched recursively, globs), sorted,
    each once; and notes about inputs that matched nothing or were given twice."""
    import glob

    from ..io import IMAGE_SUFFIXES

    found: dict[str, Path] = {}
    notes = []
    for item in map(str, inputs):
        path = Path(item)
        if path.is_dir():
            files = [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not _ground_truth(p)
            ]
            if not files:
                notes.append(f"{item}: folder holds no TIFF, PNG, JPEG or BMP pictures")
        elif any(ch in item for ch in "*?[") and not path.exists():
            files = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not files:
                notes.append(f"{item}: matches no file")
        else:
            files = [path]  # named directly: kept even when missing, so its row says why
        for p in files:
            key = os.path.realpath(p)
            if key in found:
                notes.append(f"{p}: given more than once; taken once")
            found.setdefault(key, p)
    return sorted(found.values(), key=lambda p: str(p)), notes


def _ground_truth(path: Path) -> bool:
    """A synthetic set's instance masks (``masks/`` beside its ``synth.json``): not pictures."""
    return path.parent.name == "masks" and (path.parent.parent / "synth.json").is_file()

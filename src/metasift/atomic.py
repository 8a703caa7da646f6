"""Atomic writes: a file is either its old self or its complete new self, never half written.

Every file metasift writes goes through here: the content goes to a hidden temporary file in
the same folder (so the rename stays on one file system), is flushed to disk, then renamed
over the target in one step. A crash or a kill leaves at most a stray ``.NAME.tmp``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _temporary(path: Path, suffix: str = "") -> Path:
    return path.with_name(f".{path.name}.tmp{suffix}")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike,
    mode: str = "w",
    *,
    encoding: str = "utf-8",
    newline: str = "",
    fsync: bool = True,
) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit, put it in place of ``path``.

    Text is UTF-8, and a file name that is not (possible on Linux) is written as its own bytes
    (``surrogateescape``). ``newline=""`` writes the text's line endings as they are.
    ``fsync=False`` leaves flushing to disk to the caller: for bulk data sets that make many
    small files and flush them all at once at the end (``os.sync``), as ``metasift synth``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    binary = "b" in mode
    kwargs = (
        {} if binary else {"encoding": encoding, "errors": "surrogateescape", "newline": newline}
    )
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (``fsync``: as ``atomic_write``)."""
    with atomic_write(path, fsync=fsync) as fh:
        fh.write(text)


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (``fsync``: as ``atomic_write``)."""
    with atomic_write(path, "wb", fsync=fsync) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary path for a library that writes files itself (``fig.savefig``, Pillow,
    ONNX export); put in place of ``path`` on a clean exit. ``suffix`` keeps the extension a
    library reads the format from (``.png``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

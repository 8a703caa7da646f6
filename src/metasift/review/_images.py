"""The pictures the page shows, made once and cached in a folder of the review's own (beside
the results, never beside the pictures): thumbnails, the large view, the count's overlay and
the classifier's heat map. Each is decoded and drawn anew from the picture, so what is served
is always an image made here, never the bytes of a file named by a request."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ._run import Picture

THUMB = 200  # pixels, the longer side of a grid thumbnail
LARGE = 1600  # pixels, the longer side of the large view (a 1280x1024 picture stays whole)
KINDS = ("thumb", "large", "overlay", "heat")


class NotAvailable(LookupError):
    """A view that cannot be made for this picture; the message says why."""


@dataclass
class Views:
    """Where views are cached and what they can be made from."""

    cache: Path  # the review's folder for made pictures
    overlays: Path | None = None  # `metasift count --overlay DIR` of this run
    explanations: Path | None = None  # `metasift classify --explain DIR` of this run
    model: str | None = None  # a model folder or released name, for heat maps made here

    def __post_init__(self):
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()
        self._classifier = None

    def path(self, picture: Picture, kind: str) -> Path:
        """The view ``kind`` of ``picture``, made now if not cached."""
        if kind not in KINDS:
            raise NotAvailable(f"no view {kind!r}; views: {', '.join(KINDS)}")
        folder = {"overlay": self.overlays, "heat": self.explanations}.get(kind)
        if folder:  # the run's own, named as classify and count name them
            from ..pipeline import overlay_name

            stem = Path(str(picture.row.get("path", ""))).stem
            names = [overlay_name(str(picture.row.get("path", ""))), overlay_name(picture.file)]
            if kind == "heat":
                from ..pipeline import heatmap_name

                names = [heatmap_name(str(picture.row.get("path", ""))), *names]
                names.append(f"{picture.id + 1:06d}_{stem}.png")  # metasift before 0.2
            for name in names:
                if (folder / name).is_file():
                    return folder / name
        target = self.cache / kind / f"{_key(picture)}.{'jpg' if kind != 'heat' else 'png'}"
        if target.is_file():
            return target
        with self._guard:
            lock = self._locks.setdefault(target, threading.Lock())
        with lock:  # one maker per view; a second request waits and finds it made
            if not target.is_file():
                getattr(self, f"_make_{kind}")(picture, target)
        return target

    # -- makers ----------------------------------------------------------------------------
    def _make_thumb(self, picture: Picture, target: Path) -> None:
        _save(_read(picture), target, THUMB, quality=80)

    def _make_large(self, picture: Picture, target: Path) -> None:
        _save(_read(picture), target, LARGE, quality=90)

    def _make_overlay(self, picture: Picture, target: Path) -> None:
        from ..count import count_read, write_overlay
        from ..io import ImageReadError, read_image

        try:
            image, info = read_image(picture.file)
        except ImageReadError as err:
            raise NotAvailable(str(err)) from None
        png = target.with_suffix(".png")
        write_overlay(image, count_read(image, info), png)
        try:
            from PIL import Image

            with Image.open(png) as drawn:
                _save(drawn, target, LARGE, quality=90)
        finally:
            png.unlink(missing_ok=True)

    def _make_heat(self, picture: Picture, target: Path) -> None:
        from ..explain import write_explanation

        made_by = str(picture.row.get("model") or "")
        if not made_by:
            raise NotAvailable("no heat map: this run did not classify (a count run)")
        clf = self._load_classifier()
        if clf is None or clf.name != made_by:
            have = f"; {clf.name} is at hand" if clf is not None else ""
            raise NotAvailable(
                f"no heat map: the picture was classified by {made_by}{have}. Pass that model "
                "with --model, or the run's --explain DIR with --explain"
            )
        written = write_explanation(picture.file, clf, picture.row, target.parent, target.stem)
        if written != target:
            os.replace(written, target)

    def _load_classifier(self):
        with self._guard:
            if self._classifier is None:
                from ..classify import Classifier

                try:
                    self._classifier = Classifier(self.model or "default", threads=1)
                except (OSError, ValueError):
                    self._classifier = False
            return self._classifier or None


def _key(picture: Picture) -> str:
    """A cached view's name: the picture's full path and its file's size and time, so a
    changed file never shows an old view."""
    try:
        st = picture.file.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    return hashlib.sha1(os.fsencode(f"{picture.file}\0{stamp}")).hexdigest()[:20]


def _read(picture: Picture):
    """The picture as metasift sees it (grey, chromosomes dark: DAPI shows as Giemsa does)."""
    from PIL import Image

    from ..io import ImageReadError, read_image

    try:
        image, _ = read_image(picture.file)
    except ImageReadError as err:
        raise NotAvailable(str(err)) from None
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))


def _save(image, target: Path, side: int, *, quality: int) -> None:
    from PIL import Image

    image = image.convert("RGB") if image.mode not in ("L", "RGB") else image
    image.thumbnail((side, side), Image.BILINEAR, reducing_gap=2.0)
    suffix = target.suffix
    with atomic_path(target, suffix) as tmp:
        if suffix == ".png":
            image.save(tmp, "PNG")
        else:
            image.save(tmp, "JPEG", quality=quality)

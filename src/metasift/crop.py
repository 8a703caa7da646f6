"""What the classifier looks at: the square of a picture that holds the chromosomes.

A 1280x1024 picture squeezed to 224x224 leaves a chromosome 1-3 pixels wide, too small to see
a particle lying on it or to tell 39 chromosomes from 40. A spread usually covers a third to a
half of the frame, so models trained with ``crop="spread"`` look at a square around it instead
(on held-out synthetic pictures, chromosomes are seen a median 1.85x larger).

The square is found on a thumbnail 256 pixels long in 10-14 ms:

1. a black top-hat 9 thumbnail pixels wide keeps what is dark and thin (chromosomes; at most
   about 4 pixels wide there in 1440x1024 Giemsa and 645x517 DAPI frames) and drops haze;
2. what stays dark, against a background wider than any nucleus, after an opening wider than
   any chromosome (nuclei, clumps) is left out;
3. each remaining object counts once, wherever it lies; a blurred map of these counts finds
   where the objects crowd (spreads) rather than where one large dark particle sits;
4. every crowd holding at least a fifth as many objects as the largest is kept (two spreads
   apart stay in view: that is a reason to reject), and the box around their objects gets a
   margin of 4% of the frame and is made square, at least 35% of the short side.

A picture without such objects (blank, only nuclei) is shown whole.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

THUMB = 256  # long side of the thumbnail the square is found on, in pixels
CLOSING = 9  # top-hat width in thumbnail pixels: wider than any chromosome
BACKGROUND = 61  # thumbnail pixels: wider than any nucleus
OPENING = 4  # half-width in thumbnail pixels; what survives this opening is a nucleus or clump
FLOOR = 0.03  # darkness below this (on the 0-1 scale) is never a chromosome
SHARE = 0.45  # chromosomes are darker than this share of the darkest thin objects
SPREAD_BLUR = 10.0  # sigma in thumbnail pixels of the map of where objects crowd
CROWD = 0.1  # a crowd: where that map reaches this share of its peak
KEEP_CROWD = 0.2  # crowds with at least this share of the largest crowd's objects are kept
MARGIN = 0.04  # of the frame's long side, around the kept objects
MIN_SIDE = 0.35  # of the frame's short side: the square is never smaller


def spread_box(picture) -> tuple[float, float, float, float] | None:
    """(left, top, right, bottom) in pixels of the square around the chromosomes of a canonical
    picture (dark on light, [0, 1]; array or Pillow "F" image), or None for the whole picture."""
    from scipy import ndimage as ndi

    if not isinstance(picture, Image.Image):
        picture = Image.fromarray(np.asarray(picture, np.float32))
    w, h = picture.size
    scale = min(1.0, THUMB / max(h, w))
    thumb_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    thumb = np.asarray(picture.resize(thumb_size, Image.BOX), np.float32)
    tophat = ndi.grey_closing(thumb, size=(CLOSING, CLOSING)) - thumb
    top = float(np.percentile(tophat, 99.5))
    if top < FLOOR:
        return None
    # darkness against the local background (uneven light), wider than any nucleus
    dark = ndi.uniform_filter(ndi.grey_closing(thumb, size=(BACKGROUND,) * 2), BACKGROUND) - thumb
    wide = (dark > max(FLOOR, 0.3 * np.percentile(dark, 99.5))).view(np.uint8)
    k = 2 * OPENING + 1  # an opening by a square: separable, so fast; then a 2-pixel rim
    wide = ndi.maximum_filter(ndi.minimum_filter(wide, k), k + 4).view(bool)
    labels, n = ndi.label((tophat > max(FLOOR, SHARE * top)) & ~wide)
    area = np.bincount(labels.ravel(), minlength=n + 1)
    objects = np.flatnonzero(area[1:] >= 2) + 1  # single pixels are specks
    if len(objects) == 0:
        return None
    centres = np.round(ndi.center_of_mass(np.ones_like(thumb), labels, objects)).astype(int)
    crowding = np.zeros_like(thumb)
    np.add.at(crowding, tuple(centres.T), 1.0)
    crowding = ndi.gaussian_filter(crowding, SPREAD_BLUR, truncate=2.0)
    crowds, _ = ndi.label(crowding > CROWD * crowding.max())
    crowd_of = crowds[tuple(centres.T)]
    size = np.bincount(crowd_of)
    size[0] = 0
    kept = objects[size[crowd_of] >= KEEP_CROWD * size.max()]
    rows, cols = np.nonzero(np.isin(labels, kept))
    r0, r1 = rows.min() / scale, (rows.max() + 1) / scale
    c0, c1 = cols.min() / scale, (cols.max() + 1) / scale
    margin = MARGIN * max(h, w)
    side = max(r1 - r0 + 2 * margin, c1 - c0 + 2 * margin, MIN_SIDE * min(h, w))
    height, width = min(side, h), min(side, w)
    top_ = float(np.clip((r0 + r1 - height) / 2, 0, h - height))
    left = float(np.clip((c0 + c1 - width) / 2, 0, w - width))
    return left, top_, left + width, top_ + height


def view(picture, size: int, crop: bool = False, *, box=None) -> np.ndarray:
    """The network's size x size float32 view of a canonical picture (array or Pillow "F"
    image): the whole picture, or with ``crop`` the square around its chromosomes (``box``
    when already found), resized (bilinear, antialiased; the paper resizes to 299x299)."""
    if not isinstance(picture, Image.Image):
        picture = Image.fromarray(np.asarray(picture, np.float32))
    if crop and box is None:
        box = spread_box(picture)
    if box is None and picture.size == (size, size):
        return np.asarray(picture, np.float32)
    return np.asarray(picture.resize((size, size), Image.BILINEAR, box=box))

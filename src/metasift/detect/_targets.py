"""The detector's view of a picture and what it learns to output.

Every picture is resized so that a chromosome is the model's ``target_width`` pixels wide
(``TARGET_WIDTH`` unless its config.json says otherwise), its width
measured on the picture itself as the training-free counter measures it (so a 645 x 517 DAPI
picture and a 1440 x 1024 Giemsa picture look alike to the network, and training and
inference measure the same way). Targets come from instance masks (``metasift.annotations``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..annotations import CENTROMERE, CHROMOSOME, DEBRIS, NUCLEUS, UNKNOWN

TARGET_WIDTH = 7.0  # pixels a chromosome is wide at the network's input: a few, for a CPU
# (a model folder's config "target_width"; this is the default and that of folders without it)
TARGET_WIDTHS = (3.0, 14.0)  # the target widths a detector may be trained at
FALLBACK_SIDE = 640  # a picture with nothing measurable: its long side at the input (at 7)
SIGMA = TARGET_WIDTH / 4  # the centre heat map's Gaussian, in input pixels (CenterNet-style)
# target channels: the six outputs, then where the chromosome outputs (centre, foreground,
# boundary) are known, where the centromere output is, where the nucleus and debris outputs are
TARGETS = (
    "centre", "foreground", "boundary", "centromere", "nucleus", "debris", "known", "known2",
    "known3",
)  # fmt: skip
# known: where chromosomes are annotated; known2: where centromeres are (synthetic pictures);
# known3: where nuclei and debris are (synthetic pictures, and a clean real set's chromosomes)


WIDTHS = ("plain", "bodies")  # how a detector measures the chromosome width (config "width")
APART = 1.35  # bodies: closed width over plain width from which sister chromatids lie apart


def measure_width(image: np.ndarray, how: str = "plain", *, polarity: str = "dark") -> float | None:
    """The chromosome width (see `chromosome_width`)."""
    return chromosome_width(image, how, polarity=polarity)[0]


def chromosome_width(
    image: np.ndarray, how: str = "plain", *, polarity: str = "dark"
) -> tuple[float | None, bool]:
    """(width, apart): the chromosome width in pixels of a canonical picture (dark on light,
    [0, 1]), as the counter measures it (``plain``); None when nothing chromosome-sized is
    there. ``bodies``: where sister chromatids lie apart (colcemid-arrested, X-shaped
    chromosomes), the plain width is one chromatid's; closing the gaps narrower than a chromatid
    then widens the objects markedly (by ``APART`` or more), and that closed width, the whole
    chromosome's, is the one returned, with ``apart`` True. Not in fluorescence (``polarity``
    "bright", as metasift.io read it): there the glow between neighbouring chromosomes closes
    first, so the closing merges neighbours, not chromatids (it widened 5 of mfish-dev's 86
    DAPI pictures and 3 of 16 synthetic DAPI validation pictures, each time to a width at which
    the detector counted worse)."""
    from ..count._counter import _darkness, _foreground, _half_width

    if how not in WIDTHS:
        raise ValueError(f"width must be one of {WIDTHS}, not {how!r}")
    mask = _foreground(_darkness(image))
    half = _half_width(mask)
    if half is None:
        return None, False
    if how == "bodies" and polarity != "bright":
        cross = ndi.generate_binary_structure(2, 1)
        closed = _half_width(ndi.binary_closing(mask, cross, iterations=max(1, round(half))))
        if closed is not None and closed >= APART * half:
            return 2.0 * closed, True
    return 2.0 * half, False


def scale_for(shape: tuple[int, int], width: float | None, target: float = TARGET_WIDTH) -> float:
    """How much to resize a picture of ``shape`` whose chromosomes are ``width`` wide, so that
    they become ``target`` wide."""
    if not width:
        return FALLBACK_SIDE * target / TARGET_WIDTH / max(shape)
    return target / width


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """The picture at ``scale`` (antialiased), stretched so its darkest 0.5% is 0 and its
    brightest 0.5% is 1 (stains and exposures differ from lab to lab)."""
    from PIL import Image

    h, w = image.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(image.astype(np.float32), "F").resize(size, Image.BILINEAR))
    lo, hi = np.percentile(small[::2, ::2], (0.5, 99.5))
    if hi - lo < 0.02:  # a flat picture (blank, black): nothing to stretch, nothing on it
        return np.ones_like(small)
    return np.clip((small - lo) / max(hi - lo, 1e-3), 0, 1).astype(np.float32)


def centres_of(instances: np.ndarray) -> np.ndarray:
    """(row, column) of each instance 1..max: its pixel nearest to its centre of mass (a bent
    chromosome's centre of mass can lie outside it). Rows of NaN for absent ids."""
    n = int(instances.max()) if instances.size else 0
    out = np.full((n, 2), np.nan)
    for k, sl in enumerate(ndi.find_objects(instances), 1):
        if sl is None:
            continue
        rows, cols = np.nonzero(instances[sl] == k)
        i = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
        out[k - 1] = rows[i] + sl[0].start, cols[i] + sl[1].start
    return out


def encode(
    instances: np.ndarray,
    classes: np.ndarray,
    scale: float,
    shape: tuple[int, int],
    *,
    full: bool,
    clean: bool = False,
    width: float = TARGET_WIDTH,
) -> np.ndarray:
    """Targets (``TARGETS``, float16) at the input's ``shape`` for a picture's instance mask and
    class map; ``full``: the class map also marks centromeres, nuclei and debris (synthetic
    pictures; the real sets mark only chromosomes); ``clean``: a real picture whose chromosome
    pixels are known to be neither nucleus nor debris (a karyotyped spread: its piles of
    overlapping chromosomes are chromosomes); ``width``: the chromosome width at the input (the
    centre peaks' Gaussian is a quarter of it)."""
    h, w = shape
    rows = np.minimum(((np.arange(h) + 0.5) / scale).astype(int), instances.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) / scale).astype(int), instances.shape[1] - 1)
    inst = instances[np.ix_(rows, cols)].astype(np.int32)
    cls = classes[np.ix_(rows, cols)]
    out = np.zeros((len(TARGETS), h, w), np.float32)
    out[0] = heat_map(centres_of(instances) * scale, shape, width / 4)
    out[1] = (inst > 0) | (cls == CHROMOSOME) | (cls == CENTROMERE)
    # (the boundary band is 3 pixels wide whatever the width: tuned at 7, wide at 4)
    highest = ndi.maximum_filter(inst, 3)
    lowest = ndi.minimum_filter(np.where(inst > 0, inst, np.iinfo(np.int32).max), 3)
    out[2] = (inst > 0) & ((highest != inst) | (lowest != inst))  # touches another chromosome
    out[3] = cls == CENTROMERE
    out[4] = cls == NUCLEUS
    out[5] = cls == DEBRIS
    out[6] = cls != UNKNOWN
    out[7] = out[6] if full else 0
    out[8] = out[7] if full else (out[1] if clean else 0)
    return out.astype(np.float16)


def heat_map(centres: np.ndarray, shape: tuple[int, int], sigma: float = SIGMA) -> np.ndarray:
    """A Gaussian peak of height exactly 1 at each (row, column), rounded to a pixel."""
    heat = np.zeros(shape, np.float32)
    r = int(np.ceil(3 * sigma))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    blob = np.exp(-(yy**2 + xx**2) / (2 * sigma**2)).astype(np.float32)
    for cr, cc in centres[~np.isnan(centres).any(1)]:
        cr, cc = round(float(cr)), round(float(cc))
        if not (0 <= cr < shape[0] and 0 <= cc < shape[1]):
            continue
        r0, c0 = max(cr - r, 0), max(cc - r, 0)
        r1, c1 = min(cr + r + 1, shape[0]), min(cc + r + 1, shape[1])
        part = blob[r0 - cr + r : r1 - cr + r, c0 - cc + r : c1 - cc + r]
        np.maximum(heat[r0:r1, c0:c1], part, out=heat[r0:r1, c0:c1])
    return heat

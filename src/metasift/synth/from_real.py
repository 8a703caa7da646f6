"""Keep/reject pictures made from real annotated pictures: rejects whose look is real.

A real set that says which pixels are chromosomes (karyotype masks, boxes: read by
:mod:`metasift.annotations`) gives, besides its own pictures:

- ``too_few``: chromosomes erased until 12-36 are left, their pixels and glow painted over with
  the picture's background as it is there (a spread's glow, uneven light) plus noise drawn from
  its own background;
- ``mixed``: the canvas widened to the right or downwards and a second real spread (its
  chromosomes and their glow, above its own plain background) pasted there, on the first
  picture's background.

``derive`` writes them (PNG, the stored values: stain, colour and polarity kept) with a
labels.csv as ``metasift synth`` does; the pictures it is given are never changed. Used by the
bundled classifier's recipe (examples/make_default_model.py) for training, and by
benchmarks/real_rejects.py to make real-looking rejects from held-out pictures.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..annotations import InstanceTarget
from ..atomic import atomic_write
from ..io import decode
from ._dataset import save_image

GLOW = 6  # pixels around a chromosome that belong to it (DAPI glow, Giemsa halo)


def local_background(picture, objects):
    """The picture's background, smooth, as it is near each pixel (a spread's glow, uneven
    light): the pixels off ``objects`` averaged over about 1% of the picture's width."""
    sigma = max(6.0, 0.012 * picture.shape[1])
    weight = (~ndi.binary_dilation(objects, iterations=2)).astype(np.float32)
    values = picture.astype(np.float32)
    if values.ndim == 3:
        weight, spatial = weight[..., None], (sigma, sigma, 0)
    else:
        spatial = (sigma, sigma)
    total = ndi.gaussian_filter(values * weight, spatial)
    return total / np.maximum(ndi.gaussian_filter(weight, spatial), 1e-3)


def _plain(objects):
    """Pixels well away from every object; where a spread fills the picture, all but the objects."""
    far = ~ndi.binary_dilation(objects, iterations=3 * GLOW)
    if far.sum() < 100:
        far = ~objects
    if not far.any():
        raise ValueError("no background left around the chromosomes: nothing to paint with")
    return far


def noise_like(picture, objects, background, rng):
    """Camera noise drawn from the picture's own background residuals (their central 80%),
    lightly smoothed. It comes out somewhat smoother than the real grain (on mfish-dev V1301XY
    a neighbouring-pixel difference of 0.9 against 2.2 grey levels): the bundled classifier
    trained on it so, and changing it changes that recipe."""
    far = _plain(objects)
    residual = picture.astype(np.float32)[far] - background[far]
    grey = residual if residual.ndim == 1 else residual.mean(-1)
    lo, hi = np.percentile(grey, [10, 90])
    pool = residual[(grey >= lo) & (grey <= hi)]
    shape = picture.shape[:2]
    draw = pool[rng.integers(len(pool), size=shape[0] * shape[1])].reshape(*shape, *pool.shape[1:])
    spatial = (0.7, 0.7) + (0,) * (draw.ndim - 2)
    smooth = ndi.gaussian_filter(draw, spatial)
    scale = draw.std(axis=(0, 1)) / np.maximum(smooth.std(axis=(0, 1)), 1e-6)
    return (smooth - smooth.mean(axis=(0, 1))) * scale


def _paint(picture, region, source, *, feather=1.5, protect=None):
    """``picture`` with ``region`` replaced by ``source`` (float, same shape), its edge
    feathered over about ``feather`` pixels, ``protect``'s pixels left exactly as they are."""
    alpha = ndi.gaussian_filter(region.astype(np.float32), feather)
    alpha = np.clip(np.maximum(alpha, region), 0, 1)
    if protect is not None:
        alpha[protect] = 0
    if picture.ndim == 3:
        alpha = alpha[..., None]
    out = picture.astype(np.float32) * (1 - alpha) + source * alpha
    return np.clip(np.rint(out), 0, np.iinfo(picture.dtype).max).astype(picture.dtype)


def too_few(picture, instances, rng, keep_range=(12, 36)):
    """The picture with all but 12-36 of its chromosomes erased (the kept ones' pixels exactly
    as they were); (picture, the instance ids kept)."""
    ids = np.unique(instances[instances > 0])
    keep_n = int(rng.integers(keep_range[0], min(keep_range[1], len(ids) - 4) + 1))
    chosen = rng.choice(ids, size=keep_n, replace=False)
    kept = np.isin(instances, chosen)
    gone = (instances > 0) & ~kept
    region = ndi.binary_dilation(gone, iterations=GLOW) & ~kept
    objects = instances > 0
    background = local_background(picture, objects)
    fill = background + noise_like(picture, objects, background, rng)
    return _paint(picture, region, fill, protect=kept), np.sort(chosen)


def mixed(picture, instances, other, other_instances, rng):
    """The canvas widened to the right or downwards and ``other``'s spread (its chromosomes and
    their glow, on this picture's background) pasted there."""
    rows, cols = np.nonzero(other_instances)
    r0, c0 = max(0, rows.min() - 3 * GLOW), max(0, cols.min() - 3 * GLOW)
    r1 = min(other.shape[0], rows.max() + 1 + 3 * GLOW)
    c1 = min(other.shape[1], cols.max() + 1 + 3 * GLOW)
    theirs = local_background(other, other_instances > 0)
    level = np.median(theirs[_plain(other_instances > 0)], axis=0)  # away from the spread
    lift = (other.astype(np.float32) - level)[r0:r1, c0:c1]  # the spread and its glow
    where = ndi.binary_dilation(other_instances[r0:r1, c0:c1] > 0, iterations=GLOW)
    h, w = picture.shape[:2]
    ph, pw = where.shape
    gap = int(rng.integers(0, 40))
    if rng.random() < 0.5:  # beside
        H, W = max(h, ph), w + gap + pw
        top, left = int(rng.integers(0, H - ph + 1)), w + gap
    else:  # below
        H, W = h + gap + ph, max(w, pw)
        top, left = h + gap, int(rng.integers(0, W - pw + 1))
    objects = instances > 0
    ours = local_background(picture, objects)
    level = np.median(ours.reshape(-1, *ours.shape[2:]), axis=0)  # the canvas beyond the picture
    background = np.broadcast_to(level, (H, W, *ours.shape[2:])).copy()
    background[:h, :w] = ours
    grain = noise_like(picture, objects, ours, rng)  # tiled over the wider canvas
    noise = np.tile(grain, (-(-H // h), -(-W // w)) + (1,) * (grain.ndim - 2))[:H, :W]
    canvas = np.clip(np.rint(background + noise), 0, np.iinfo(picture.dtype).max)
    canvas = canvas.astype(picture.dtype)
    canvas[:h, :w] = picture
    region = np.zeros((H, W), bool)
    region[top : top + ph, left : left + pw] = where
    source = background + noise
    source[top : top + ph, left : left + pw] += lift
    return _paint(canvas, region, source, feather=GLOW / 2)


def derive(
    items: list[tuple[str, InstanceTarget, str, str, int]],
    out: str | os.PathLike,
    *,
    seed: int = 0,
) -> list[tuple[Path, str, str]]:
    """Write each item's picture and, from each usable one, ``copies`` too_few and ``copies``
    mixed pictures under ``out/<label>/``; a mix's second spread comes from another item of the
    same group (a split, a stain), or the picture mirrored when there is none. ``items`` are
    (name, target, label, group, copies), label one of metasift's classes. Returns
    (path, label, group) rows, each original picture ``copies`` times (a training manifest's
    weighting), and writes ``out/labels.csv`` with each picture once."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        # (so it never writes over a picture, its own sources included)
        raise ValueError(f"{out}: not empty; derive writes into a new or empty folder")
    names = [name for name, *_ in items]
    made = {f"{name}_{k}" for name, *_, copies in items for k in range(copies)}
    if len(set(names)) < len(names) or made & set(names):
        raise ValueError("derive: two pictures would get one name (each name_k is taken too)")
    for _name, target, label, *_ in items:
        present = len(np.unique(target.instances[target.instances > 0]))
        if label == "available" and present < 16:
            raise ValueError(
                f"{target.image}: {present} chromosomes annotated in a usable picture; "
                "too few to erase down to 12-36 (check its annotation)"
            )
    rng = np.random.default_rng(seed)
    pictures = [
        (name, decode(t.image)[0], t.instances, label, group, copies)  # the stored values
        for name, t, label, group, copies in items
    ]
    rows = []
    for name, picture, instances, label, group, copies in pictures:
        path = out / label / f"{name}.png"
        save_image(path, picture, "png")
        rows += [(path, label, group)] * copies
        if label != "available":
            continue
        partners = [p for p in pictures if p[4] == group and p[0] != name and p[2].any()]
        for k in range(copies):
            few, _ = too_few(picture, instances, rng)
            save_image(out / "too_few" / f"{name}_{k}.png", few, "png")
            rows.append((out / "too_few" / f"{name}_{k}.png", "too_few", group))
            other = partners[rng.integers(len(partners))] if partners else None
            second = (other[1], other[2]) if other else (picture[:, ::-1], instances[:, ::-1])
            two = mixed(picture, instances, *second, rng)
            save_image(out / "mixed" / f"{name}_{k}.png", two, "png")
            rows.append((out / "mixed" / f"{name}_{k}.png", "mixed", group))
    with atomic_write(out / "labels.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "group"])
        once = dict.fromkeys(rows)  # in order, each picture once
        writer.writerows((p.relative_to(out).as_posix(), label, group) for p, label, group in once)
    return rows

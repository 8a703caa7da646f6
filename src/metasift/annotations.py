"""Instance targets: every annotated picture, synthetic or real, in one training format.

A target is the picture's path and two arrays of its size (rows x columns):

- ``instances`` (uint16): 0 background, k > 0 one chromosome (a synthetic picture's chromosome
  or fragment with annotation id k - 1); where chromosomes overlap, the one on top;
- ``classes`` (uint8): ``MASK_CLASSES`` index per pixel (background, chromosome, centromere,
  nucleus, debris), or ``UNKNOWN`` where the source does not say (a real set annotated with
  boxes says nothing about the dark pixels outside them).

On disk (``masks/<id>.tif`` of a ``metasift synth`` folder) the two are one zlib-compressed
TIFF of shape (2, rows, columns), uint16: instances, then classes. Readers turn the real sets
into the same targets:

- ``mfish_target``: a karyotype mask (one class label 1-24 per homologue pair, 255 where
  chromosomes overlap, as in the PSI M-FISH set): each class label split into its connected
  components, overlaps joined to the chromosomes they touch;
- ``box_target``: one YOLO box per chromosome (class, x, y, w, h relative to the picture): the
  dark pixels inside each box (smallest box first where boxes overlap);
- ``read_targets``: every target of a folder: a ``metasift synth`` folder with masks, a folder
  with ``manifest.csv`` naming ``karyotype_mask`` or ``chromosome_boxes`` per image.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

MASK_CLASSES = ("background", "chromosome", "centromere", "nucleus", "debris")
BACKGROUND, CHROMOSOME, CENTROMERE, NUCLEUS, DEBRIS = range(len(MASK_CLASSES))
UNKNOWN = 255  # a pixel the annotation says nothing about: leave it out of a loss
OVERLAP = 255  # the karyotype masks' label for pixels where chromosomes overlap
MIN_PIECE = 12  # pixels: a smaller connected piece of a karyotype label is an edge speck


@dataclass
class InstanceTarget:
    """One annotated picture as a detector trains on it."""

    image: Path  # the picture file
    instances: np.ndarray  # uint16 rows x columns: 0 background, k one chromosome
    classes: np.ndarray  # uint8 rows x columns: MASK_CLASSES index or UNKNOWN
    source: str  # synthetic, karyotype mask, boxes
    chromosomes: list[dict] = field(default_factory=list)  # per instance: id, box, label

    @property
    def count(self) -> int:
        return int(self.instances.max()) if self.instances.size else 0


# ---- the file format ------------------------------------------------------------------------
def write_masks(path: str | os.PathLike, instances: np.ndarray, classes: np.ndarray) -> None:
    """Write ``masks/<id>.tif`` atomically: (2, rows, columns) uint16, instances then classes."""
    import tifffile

    from .atomic import atomic_path

    if instances.shape != classes.shape or instances.ndim != 2:
        raise ValueError(
            f"instances {instances.shape} and classes {classes.shape} must be one 2-D shape"
        )
    stack = np.stack([instances.astype(np.uint16), classes.astype(np.uint16)])
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, stack, compression="zlib", compressionargs={"level": 1})


def read_masks(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(instances uint16, classes uint8) from a file written by ``write_masks``."""
    import tifffile

    stack = tifffile.imread(path)
    if stack.ndim != 3 or stack.shape[0] != 2:
        raise ValueError(f"{path}: not a metasift mask file (shape {stack.shape}, want 2 x H x W)")
    return stack[0].astype(np.uint16), stack[1].astype(np.uint8)


# ---- real sets ------------------------------------------------------------------------------
def mfish_target(image: str | os.PathLike, mask: str | os.PathLike) -> InstanceTarget:
    """Instances from a karyotype mask (0 background, 1-24 class of a homologue pair, 255
    overlap): each class label's connected components, each overlap pixel given to the
    chromosome nearest to it (it belongs to two: the annotation does not say which is on top)."""
    from PIL import Image

    with Image.open(mask) as im:
        labels = np.asarray(im)
    if labels.ndim != 2:
        raise ValueError(f"{mask}: a karyotype mask is one grey channel, not {labels.shape}")
    instances = np.zeros(labels.shape, np.uint16)
    chromosomes = []
    overlap = labels == OVERLAP
    for value in sorted(int(v) for v in np.unique(labels) if v not in (0, OVERLAP)):
        # a chromosome crossed by another is cut in two by the overlap: join through it
        pieces, n = ndi.label((labels == value) | overlap)
        for k in range(1, n + 1):
            own = (pieces == k) & (labels == value)
            if own.sum() < MIN_PIECE:
                continue
            instances[own] = len(chromosomes) + 1
            chromosomes.append(dict(id=len(chromosomes), label=value, box=_box(own)))
    if overlap.any() and chromosomes:
        _, (rows, cols) = ndi.distance_transform_edt(instances == 0, return_indices=True)
        instances[overlap] = instances[rows[overlap], cols[overlap]]
    classes = np.where(instances > 0, CHROMOSOME, BACKGROUND).astype(np.uint8)
    return InstanceTarget(Path(image), instances, classes, "karyotype mask", chromosomes)


def box_target(image: str | os.PathLike, boxes: str | os.PathLike) -> InstanceTarget:
    """Instances from one YOLO box per chromosome: the dark pixels in each box (a threshold
    halfway between the box's own background and its darkest pixels). Pixels dark but in no
    box are UNKNOWN (nuclei, debris: the boxes do not say)."""
    from .io import read_image

    picture, _ = read_image(image)  # dark on light, whatever the stain
    h, w = picture.shape
    table = np.loadtxt(boxes, ndmin=2) if Path(boxes).stat().st_size else np.zeros((0, 5))
    if table.size and table.shape[1] < 5:
        raise ValueError(
            f"{boxes}: a YOLO box line is 'class x y w h', got {table.shape[1]} values"
        )
    smooth = ndi.gaussian_filter(picture, 1.0)
    background = float(np.median(smooth))
    order = np.argsort(table[:, 3] * table[:, 4]) if len(table) else []
    instances = np.zeros((h, w), np.uint16)
    chromosomes = [None] * len(table)
    for i in order[::-1]:  # largest first, so the smallest box ends on top where they overlap
        cls, x, y, bw, bh = table[i, :5]
        r0, r1 = int(max(0, np.floor((y - bh / 2) * h))), int(min(h, np.ceil((y + bh / 2) * h)))
        c0, c1 = int(max(0, np.floor((x - bw / 2) * w))), int(min(w, np.ceil((x + bw / 2) * w)))
        patch = smooth[r0:r1, c0:c1]
        if patch.size == 0:
            continue
        cut = (background + float(np.percentile(patch, 5))) / 2
        dark = patch < cut
        instances[r0:r1, c0:c1][dark] = i + 1
        chromosomes[i] = dict(id=int(i), label=int(cls), box=[r0, c0, r1 - 1, c1 - 1])
    classes = np.where(instances > 0, CHROMOSOME, BACKGROUND).astype(np.uint8)
    dark_elsewhere = (smooth < background - 0.15) & (instances == 0)
    classes[ndi.binary_dilation(dark_elsewhere, iterations=2) & (instances == 0)] = UNKNOWN
    found = [c for c in chromosomes if c is not None]
    return InstanceTarget(Path(image), instances, classes, "boxes", found)


def read_targets(folder: str | os.PathLike) -> Iterator[InstanceTarget]:
    """Every target of ``folder``, in a stable order: a ``metasift synth`` folder written with
    masks, or a real set whose ``manifest.csv`` names a ``karyotype_mask`` or
    ``chromosome_boxes`` file per ``image``."""
    folder = Path(folder)
    if (folder / "synth.json").exists():
        yield from _synthetic(folder)
        return
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        raise ValueError(
            f"{folder}: neither a metasift synth folder (synth.json) nor a set with manifest.csv"
        )
    with open(manifest, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row.get("karyotype_mask"):
            yield mfish_target(folder / row["image"], folder / row["karyotype_mask"])
        elif row.get("chromosome_boxes"):
            yield box_target(folder / row["image"], folder / row["chromosome_boxes"])
        else:
            raise ValueError(
                f"{manifest}: row {row.get('image')!r} names no karyotype_mask or "
                "chromosome_boxes file"
            )


def _synthetic(folder: Path) -> Iterator[InstanceTarget]:
    masks = folder / "masks"
    if not masks.is_dir():
        raise ValueError(f"{folder}: written without masks; make it with masks=True")
    for path in sorted((folder / "annotations").glob("*.json")):
        ann = json.loads(path.read_text(encoding="utf-8"))
        instances, classes = read_masks(masks / f"{path.stem}.tif")
        chromosomes = [
            dict(id=c["id"], label=c["kind"], box=c["box"])
            for c in sorted(ann["chromosomes"] + ann["fragments"], key=lambda c: c["id"])
        ]
        yield InstanceTarget(folder / ann["path"], instances, classes, "synthetic", chromosomes)


def _box(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask)
    return [int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())]

"""Labelled picture sets, splits, preprocessing and augmentation.

Nothing here imports PyTorch: classification on a lab PC uses the same :func:`prepare` as
training, so the two cannot drift apart (timm's ``resolve_data_config`` idea).
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io import IMAGE_SUFFIXES, ImageReadError, read_image

KEEP_CLASSES = ("keep", "available")  # the class that means "usable for scoring"
MANIFEST = "path,label[,reasons][,group][,split]"  # a CSV manifest's columns, as --help says
ALIASES = {  # what labs' own sheets call the columns
    "path": ("image", "file", "filename", "picture"),
    "reasons": ("reason",),
    "group": ("slide", "donor"),
}
UNDECIDED = ("borderline", "unsure", "uncertain", "?", "")  # labels not used for training
SPLITS = ("train", "val", "test")
PAPER_RATIOS = (0.82, 0.08, 0.10)  # 16,400 / 1,641 / 2,040 pictures in the reference paper


class DataError(ValueError):
    """A data set that cannot be used as given; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    group: str = ""  # slide or donor: a group never sits on both sides of a split


@dataclass
class DataSet:
    classes: tuple[str, ...]  # keep class first, then the reject reasons, sorted
    splits: dict[str, list[Sample]] = field(default_factory=dict)
    source: str = ""
    skipped: dict[str, int] = field(default_factory=dict)  # undecided labels left out, by label

    @property
    def keep_class(self) -> str:
        return self.classes[0]

    @property
    def reject_classes(self) -> tuple[str, ...]:
        return self.classes[1:]

    def targets(self, split: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[s.label] for s in self.splits[split]], dtype=np.int64)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "classes": list(self.classes),
            "skipped": dict(self.skipped),
            "counts": {
                split: {c: sum(s.label == c for s in items) for c in self.classes}
                for split, items in self.splits.items()
            },
        }


def discover(source: str | os.PathLike, *, seed: int = 0, ratios=PAPER_RATIOS) -> DataSet:
    """Find labelled pictures: an ImageFolder (``keep/ reject/`` or ``available/ mixed/ debris/
    too_few/``, optionally under ``train/ val/ test/``) or a CSV manifest (``MANIFEST``) with
    paths relative to the CSV; rows labelled borderline or unsure are left out and counted."""
    source = Path(source)
    skipped: dict[str, int] = {}
    if source.is_file() and source.suffix.lower() == ".csv":
        samples, fixed, skipped = _from_manifest(source)
    elif source.is_dir():
        samples, fixed = _from_folders(source)
    else:
        raise DataError(f"{source}: not a folder of class folders nor a .csv manifest")
    if not samples:
        raise DataError(f"{source}: no labelled pictures found")
    classes = _order_classes({s.label for s in samples}, source)
    if fixed is None:
        splits = split_samples(samples, seed=seed, ratios=ratios)
    else:
        splits = {name: [s for s, f in zip(samples, fixed) if f == name] for name in SPLITS}
        if not splits["train"]:
            raise DataError(f"{source}: the train split is empty")
        if not splits["val"]:  # carve validation out of train, as the paper does
            inner = split_samples(splits["train"], seed=seed, ratios=(0.9, 0.1, 0.0))
            splits["train"], splits["val"] = inner["train"], inner["val"]
    return DataSet(classes=classes, splits=splits, source=str(source), skipped=skipped)


def _order_classes(labels: set[str], source: Path) -> tuple[str, ...]:
    keep = [c for c in KEEP_CLASSES if c in labels]
    if len(keep) != 1:
        raise DataError(
            f"{source}: need exactly one class meaning 'usable', named 'keep' or 'available'; "
            f"found classes {sorted(labels)}"
        )
    if len(labels) < 2:
        raise DataError(f"{source}: need at least one reject class beside {keep[0]!r}")
    return (keep[0], *sorted(labels - {keep[0]}))


def _class_folders(folder: Path) -> list[Sample]:
    samples = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name in ("annotations", "masks"):  # a synthetic set's ground truth, not a class
            continue
        files = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        samples += [Sample(p, sub.name) for p in files]
    return samples


def _from_folders(root: Path):
    if (root / "train").is_dir():
        samples, fixed = [], []
        for name in SPLITS:
            if (root / name).is_dir():
                found = _class_folders(root / name)
                samples += found
                fixed += [name] * len(found)
        return samples, fixed
    return _class_folders(root), None


def _from_manifest(path: Path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text (byte {err.start}); save the manifest as CSV UTF-8"
        ) from None
    found = list(rows[0]) if rows else []
    columns = _columns(found)
    if not rows or not {"path", "label"} <= set(columns.values()):
        raise DataError(
            f"{path}: a manifest needs the columns {MANIFEST} (path may be called image or "
            f"file, reasons reason); found {', '.join(found) or 'no columns'}"
        )
    rows = [{columns.get(k, k): v for k, v in r.items()} for r in rows]
    skipped: dict[str, int] = {}
    decided = []
    for r in rows:
        label = (r["label"] or "").strip()
        if label.lower() in UNDECIDED:
            skipped[label or "(blank)"] = skipped.get(label or "(blank)", 0) + 1
        else:
            decided.append({**r, "label": label})
    base = path.parent
    samples = [
        Sample(base / r["path"], r["label"], (r.get("group") or "").strip()) for r in decided
    ]
    if decided and "split" in decided[0] and all(r.get("split") for r in decided):
        fixed = [r["split"].strip() for r in decided]
        bad = sorted(set(fixed) - set(SPLITS))
        if bad:
            raise DataError(f"{path}: unknown split names {bad}; use train, val, test")
        return samples, fixed, skipped
    return samples, None, skipped


def _columns(found: list[str]) -> dict[str, str]:
    """Each found column's standard name (``ALIASES``; case and spaces ignored), for the
    columns that have one."""
    names = {}
    for column in found:
        key = (column or "").strip().lower()
        for standard, aliases in ALIASES.items():
            if key == standard or key in aliases:
                names[column] = standard
        if key in ("label", "split"):
            names[column] = key
    return names


def split_samples(
    samples: list[Sample], *, seed: int, ratios=PAPER_RATIOS
) -> dict[str, list[Sample]]:
    """Seeded split in ``ratios``: stratified by label, or by whole groups when groups are set."""
    rng = np.random.default_rng(seed)
    ratios = np.asarray(ratios, float) / np.sum(ratios)
    out = {name: [] for name in SPLITS}
    if any(s.group for s in samples):
        groups: dict[str, list[Sample]] = {}
        for s in samples:
            groups.setdefault(s.group or f"_{s.path}", []).append(s)
        names = sorted(groups)
        rng.shuffle(names)
        target = ratios * len(samples)
        for name in names:  # each group goes where the split is furthest below its share
            fill = [len(out[k]) / t if t > 0 else np.inf for k, t in zip(SPLITS, target)]
            out[SPLITS[int(np.argmin(fill))]] += groups[name]
        return out
    for label in sorted({s.label for s in samples}):
        items = [s for s in samples if s.label == label]
        order = rng.permutation(len(items))
        n_val = round(float(ratios[1]) * len(items))
        n_test = round(float(ratios[2]) * len(items))
        if len(items) >= 3:  # every class is seen in validation and test when it can be
            n_val, n_test = max(n_val, int(ratios[1] > 0)), max(n_test, int(ratios[2] > 0))
        cut = len(items) - n_val - n_test
        out["train"] += [items[i] for i in order[:cut]]
        out["val"] += [items[i] for i in order[cut : cut + n_val]]
        out["test"] += [items[i] for i in order[cut + n_val :]]
    return out


# ---- preprocessing -----------------------------------------------------------------------
def normalise(small: np.ndarray, mean, std) -> np.ndarray:
    """Network input from resized canonical pictures, grey copied to RGB:
    H x W -> 3 x H x W, or a batch N x H x W -> N x 3 x H x W."""
    mean = np.asarray(mean, np.float32)[:, None, None]
    std = np.asarray(std, np.float32)[:, None, None]
    return (small[..., None, :, :] - mean) / std


def prepare(path, size: int, mean, std, crop: bool = False) -> np.ndarray:
    """File to network input: exactly what training and classification both use."""
    small, _ = read_image(path, size=size, crop=crop)
    return normalise(small, mean, std)


def augment(small: np.ndarray, rng: np.random.Generator, max_angle: float = 10.0) -> np.ndarray:
    """The paper's augmentation: flips and rotations (90-degree turns plus a small angle)."""
    from scipy import ndimage as ndi

    out = np.rot90(small, int(rng.integers(4)))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    angle = rng.uniform(-max_angle, max_angle)
    if max_angle > 0 and abs(angle) > 0.5:
        background = float(np.median(out))  # corners filled with background, not black
        out = ndi.rotate(out, angle, reshape=False, order=1, mode="constant", cval=background)
    return np.ascontiguousarray(out, dtype=np.float32)


def _load_one(job):
    path, size, crop = job
    try:
        small, _ = read_image(path, size=size, crop=crop)
    except ImageReadError as err:
        return None, str(err)
    return small.astype(np.float16), None


def load_resized(
    samples: list[Sample], size: int, workers: int = 0, progress=None, crop: bool = False
) -> np.ndarray:
    """Every picture read and resized once (float16, N x size x size), in worker processes;
    with ``crop``, the square around its chromosomes (:mod:`metasift.crop`).

    Raises DataError listing *every* unreadable file: training never skips a picture silently.
    """
    jobs = [(s.path, size, crop) for s in samples]
    if workers and len(jobs) > 8:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_load_one, jobs, chunksize=16))
    else:
        results = [_load_one(j) for j in jobs]
    errors = [err for _, err in results if err]
    if errors:
        listing = "\n  ".join(errors)
        raise DataError(
            f"{len(errors)} picture(s) could not be read; fix or remove them:\n  {listing}"
        )
    return np.stack([r for r, _ in results]) if results else np.zeros((0, size, size), np.float16)


class ArrayDataset:
    """Map-style data set over pre-resized pictures, for ``torch.utils.data.DataLoader``.

    Augmentation is seeded by (seed, epoch, index), so a run gives the same batches whether it
    is resumed or not and whatever the number of loader workers.
    """

    def __init__(self, images, targets, mean, std, *, augment=False, seed=0):
        self.images, self.targets = images, targets
        self.mean, self.std = mean, std
        self.augment, self.seed, self.epoch = augment, seed, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        small = self.images[i].astype(np.float32)
        if self.augment:
            small = augment(small, np.random.default_rng([self.seed, self.epoch, i]))
        return normalise(small, self.mean, self.std), self.targets[i]

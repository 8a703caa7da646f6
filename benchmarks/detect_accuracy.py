"""How well the chromosome detector counts and locates chromosomes, beside the training-free
counter (issue 21's figures), per set of pictures:

- count: mean absolute error (MAE), share within +-1 and +-2, mean signed error; on synthetic
  sets also the MAE per class and over the single spreads (available, too_few: every chromosome
  in sight; a debris picture's count holds chromosomes under an opaque particle, a mixed one a
  second spread's);
- too_few verdict accuracy (synthetic: also on the pictures with 37-42 chromosomes);
- instance F1 at IoU 0.5: ``mask`` (the detector's instances against instance masks, where a
  set has them) and ``box`` (every method's chromosome boxes against the true instances'
  boxes; a counter object holding several chromosomes matches none of them);
- keep/reject accuracy and verdicts matching the reading, where a set has labels;
- seconds per picture (the method alone, the picture already read; median).

Sets are folders ``metasift.annotations.read_targets`` reads: fresh synthetic pictures
(``metasift synth --style dca --randomise --masks`` with a seed never trained on), a real set
with karyotype masks (``--mfish``; ``--slides`` keeps the held-out slides) and one with
chromosome boxes and a reading (``--giemsa``).

    python benchmarks/detect_accuracy.py --detector src/metasift/default_detector \\
        --synthetic-only runs/synth --synthetic syn_test_dapi syn_test_giemsa \\
        --mfish ../shared/data/mfish-dev --slides V13,V16,V24,V28 \\
        --giemsa ../shared/data/giemsa-dev --json detect_accuracy.json
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from metasift.annotations import read_targets
from metasift.count import count_read
from metasift.criteria import MIN_CHROMOSOMES
from metasift.detect import Detector
from metasift.io import read_image


def mask_f1(truth: np.ndarray, found: np.ndarray) -> tuple[int, int, int]:
    """(matched, true, found) instances at IoU > 0.5 (a match is then unique)."""
    t, f = int(truth.max()), int(found.max())
    if t == 0 or f == 0:
        return 0, t, f
    both = (truth > 0) & (found > 0)
    pairs = np.bincount(
        truth[both].astype(np.int64) * (f + 1) + found[both], minlength=(t + 1) * (f + 1)
    )
    inter = pairs.reshape(t + 1, f + 1)[1:, 1:]
    at = np.bincount(truth.ravel(), minlength=t + 1)[1:]
    af = np.bincount(found.ravel(), minlength=f + 1)[1:]
    iou = inter / (at[:, None] + af[None, :] - inter)
    return int((iou > 0.5).sum()), t, f


def box_f1(truth: list, found: list) -> tuple[int, int, int]:
    """(matched, true, found) boxes (top, left, bottom, right) at IoU >= 0.5, greedily."""
    if not truth or not found:
        return 0, len(truth), len(found)
    a, b = np.array(truth, float)[:, None], np.array(found, float)[None]
    rows = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    cols = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    iou = rows * cols / (area(a) + area(b) - rows * cols)
    matched = 0
    while iou.size and iou.max() >= 0.5:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        iou[i, :], iou[:, j] = 0, 0
        matched += 1
    return matched, len(truth), len(found)


def pictures(kind: str, folder: Path, slides: set[str]):
    """(target, truth) per picture: truth holds the verdict labels where the set has them."""
    labels = {}
    if kind == "synthetic":
        with open(folder / "labels.csv", newline="") as fh:
            labels = {r["path"]: r for r in csv.DictReader(fh)}
        for target in read_targets(folder):
            row = labels[str(target.image.relative_to(folder))]
            yield target, dict(too_few="too_few" in row["reasons"], label=row["label"],
                               reasons=set(filter(None, row["reasons"].split(";"))))  # fmt: skip
        return
    with open(folder / "manifest.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    for row, target in zip(rows, read_targets(folder)):
        if slides and (row.get("slide") or row["image"]) not in slides:  # no slide: its image
            continue
        if kind == "giemsa":
            truth = dict(
                count=int(row["boxes"]), too_few=row["reason"] == "too_few",
                label=row["label"], reasons={row["reason"]} - {""},
            )  # fmt: skip
        else:
            truth = dict(too_few=target.count < MIN_CHROMOSOMES)
        yield target, truth


def measure(methods: dict, sets: list[tuple[str, str, Path, set]]) -> dict:
    figures = {}
    for name, kind, folder, slides in sets:
        rows = {m: [] for m in methods}
        for target, truth in pictures(kind, folder, slides):
            image, info = read_image(target.image)
            true_count = truth.get("count", target.count)
            true_boxes = [(s[0].start, s[1].start, s[0].stop, s[1].stop)
                          for s in ndi.find_objects(target.instances) if s is not None]  # fmt: skip
            for m, run in methods.items():
                start = time.perf_counter()
                found, instances = run(image, info)
                seconds = time.perf_counter() - start
                boxes = [c.box for c in found.chromosomes]
                row = dict(
                    path=str(target.image), true=true_count, found=found.chromosome_count,
                    too_few=found.too_few, true_too_few=truth["too_few"], seconds=seconds,
                    box=box_f1(true_boxes, boxes), verdicts=found.verdicts,
                    label=truth.get("label"), reasons=sorted(truth.get("reasons", ())),
                )  # fmt: skip
                if instances is not None and target.source != "boxes":
                    row["mask"] = mask_f1(target.instances, upsampled(instances, image.shape))
                rows[m].append(row)
        figures[name] = {m: summary(r, kind) for m, r in rows.items()}
        figures[name]["pictures"] = len(rows[next(iter(methods))])
        for m in methods:
            print(f"{name} {m}: " + json.dumps(figures[name][m]), flush=True)
    return figures


def upsampled(instances: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    rows = np.minimum((np.arange(h) + 0.5) * instances.shape[0] / h, instances.shape[0] - 1)
    cols = np.minimum((np.arange(w) + 0.5) * instances.shape[1] / w, instances.shape[1] - 1)
    return instances[np.ix_(rows.astype(int), cols.astype(int))]


def summary(rows: list[dict], kind: str) -> dict:
    true = np.array([r["true"] for r in rows])
    found = np.array([r["found"] for r in rows])
    err = found - true
    too_few = np.array([r["too_few"] == r["true_too_few"] for r in rows])
    out = dict(
        count_mae=round(float(np.abs(err).mean()), 2),
        within_1=round(float((np.abs(err) <= 1).mean()), 3),
        within_2=round(float((np.abs(err) <= 2).mean()), 3),
        signed_error=round(float(err.mean()), 2),
        too_few_accuracy=round(float(too_few.mean()), 3),
        seconds_per_picture=round(float(np.median([r["seconds"] for r in rows])), 3),
    )
    band = (true >= 37) & (true <= 42)
    if kind == "synthetic" and band.any():
        out["too_few_accuracy_37_42"] = round(float(too_few[band].mean()), 3)
        out["pictures_37_42"] = int(band.sum())
    if kind == "synthetic":  # a synthetic count holds chromosomes no one could count: those
        # under an opaque particle (debris) and a second spread's (mixed); per class, then the
        # single spreads with every chromosome in sight (available, too_few)
        labels = np.array([str(r["label"]) for r in rows])
        out["count_mae_by_class"] = {
            str(k): round(float(np.abs(err[labels == k]).mean()), 2) for k in sorted(set(labels))
        }
        clear = np.isin(labels, ("available", "too_few"))
        if clear.any():
            out["count_mae_single_spread"] = round(float(np.abs(err[clear]).mean()), 2)
    for key in ("box", "mask"):
        if all(key in r for r in rows):
            m, t, f = np.sum([r[key] for r in rows], 0)
            out[f"f1_{key}"] = round(2 * float(m) / max(t + f, 1), 3)
    labelled = [
        r
        for r in rows
        if r["label"] in ("keep", "reject", "available", "mixed", "debris", "too_few")
    ]
    if labelled:
        rejected = [r["label"] not in ("keep", "available") for r in labelled]
        said = [bool(r["verdicts"]) for r in labelled]
        out["keep_reject_accuracy"] = round(float(np.mean(np.equal(rejected, said))), 3)
        same = [set(r["verdicts"]) == set(r["reasons"]) for r in labelled]
        out["verdicts_matching"] = f"{sum(same)}/{len(same)}"
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--detector", type=Path, default=None, help="model folder (default: bundled)")
    p.add_argument(
        "--synthetic-only", type=Path, help="a detector trained on synthetic pictures alone"
    )
    p.add_argument("--synthetic", type=Path, nargs="*", default=[], help="fresh synthetic sets")
    p.add_argument("--mfish", type=Path, help="a real set with karyotype masks")
    p.add_argument("--slides", default="", help="comma-separated: the mfish slides to measure on")
    p.add_argument("--giemsa", type=Path, help="a real set with chromosome boxes and a reading")
    p.add_argument(
        "--giemsa-pictures",
        default="",
        help="comma-separated: the giemsa pictures to measure on (manifest image paths, e.g. "
        "the ones a detector was not trained on)",
    )
    p.add_argument("--no-classic", action="store_true", help="leave the training-free counter out")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()

    def detector(folder):
        model = Detector(folder)

        def run(image, info):
            got = model.detect(image, polarity=info.polarity)
            return got.findings, got.decoded.instances

        return run

    methods = {"detector": detector(args.detector)}
    if args.synthetic_only:
        methods["synthetic-only"] = detector(args.synthetic_only)
    if not args.no_classic:
        methods["classic"] = lambda image, info: (count_read(image, info), None)
    sets = [(f.name, "synthetic", f, set()) for f in args.synthetic]
    slides = {s for s in args.slides.split(",") if s}
    if args.mfish:
        sets.append((f"mfish {','.join(sorted(slides)) or 'all'}", "mfish", args.mfish, slides))
    if args.giemsa:
        chosen = {s for s in args.giemsa_pictures.split(",") if s}
        sets.append((f"giemsa {args.giemsa_pictures or 'all'}", "giemsa", args.giemsa, chosen))
    figures = measure(methods, sets)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""How well `metasift count` counts: mean absolute error against ground truth, share of pictures
exact / within +-1 / within +-2, accuracy of the too_few verdict, and seconds per picture.

Sets: synthetic pictures (ground truth from their annotations), ../shared/data/mfish-dev (86
real DAPI pictures, expert counts) and ../shared/data/giemsa-dev (8 real Giemsa pictures, one
box per chromosome). Targets (issue 5): real MAE <= 1.5 and >= 85% within +-2; synthetic MAE <= 1.0.

    python benchmarks/count_accuracy.py [--synthetic-n 80] [--mfish DIR] [--giemsa DIR]
"""

import argparse
import csv
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from metasift.count import count_read
from metasift.criteria import MIN_CHROMOSOMES
from metasift.io import read_image
from metasift.synth import SynthConfig, write_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def score(name, truths, counted, too_few_truth, seconds, groups=None):
    truths, found = np.array(truths), np.array([c.chromosome_count for c in counted])
    err = np.abs(found - truths)
    too_few = np.array([c.too_few for c in counted])
    print(f"{name}: {len(truths)} pictures, true counts {truths.min()}-{truths.max()}")
    print(
        f"  mean absolute error {err.mean():.2f}, exact {np.mean(err == 0):.0%}, within +-1 "
        f"{np.mean(err <= 1):.0%}, within +-2 {np.mean(err <= 2):.0%}, mean signed error "
        f"{np.mean(found - truths):+.2f}"
    )
    print(
        f"  too_few verdict accuracy {np.mean(too_few == np.array(too_few_truth)):.0%} "
        f"({int(np.sum(too_few_truth))} truly too few); {np.median(seconds):.3f} s per picture (median)"
    )
    if groups is not None:  # e.g. the synthetic class: debris pictures hide chromosomes
        groups = np.array(groups)
        print(
            "  by class: "
            + ", ".join(
                f"{g} MAE {err[groups == g].mean():.2f} ({np.sum(groups == g)})"
                for g in sorted(set(groups))
            )
        )
    return err


def error_sources(folder: Path, rows, counted) -> None:
    """Where the synthetic counts go wrong, per picture: each true chromosome's middle is looked
    up in the counter's objects (the smallest box holding it) and nuclei, then every object's
    count is compared with the chromosomes it holds."""
    tally = Counter()
    for row, c in zip(rows, counted):
        ann = json.loads((folder / "annotations" / f"{Path(row['path']).stem}.json").read_text())
        boxes = [ch.box for ch in c.chromosomes]
        held = [0] * len(boxes)
        for obj in ann["chromosomes"] + ann["fragments"]:
            line = obj["centerline"]
            middle = line[len(line) // 2]
            hits = [k for k, b in enumerate(boxes) if _inside(middle, b)]
            if hits:
                held[min(hits, key=lambda k: _area(boxes[k]))] += 1
            elif any(_inside(middle, n.box) for n in c.nuclei):
                tally["lost under a nucleus"] += 1
            else:
                tally["not found"] += 1
        for ch, n in zip(c.chromosomes, held):
            if n == 0:
                tally["objects holding no chromosome"] += ch.pieces
            elif ch.pieces < n:
                tally["touching chromosomes counted short"] += n - ch.pieces
            elif ch.pieces > n:
                tally["chromosomes counted more than once"] += ch.pieces - n
    print(
        "  error sources, chromosomes per picture: "
        + ", ".join(f"{k} {v / len(rows):.2f}" for k, v in sorted(tally.items()))
    )


def _inside(point, box) -> bool:  # box: (top, left, bottom, right), bottom and right exclusive
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]


def _area(box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def run(paths, truths):
    counted, seconds = [], []
    for p in paths:
        image, info = read_image(p)
        start = time.perf_counter()
        counted.append(count_read(image, info))
        seconds.append(time.perf_counter() - start)
    return counted, seconds


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synthetic-n", type=int, default=80, help="per stain; 0: skip")
    parser.add_argument("--mfish", type=Path, default=SHARED / "mfish-dev")
    parser.add_argument("--giemsa", type=Path, default=SHARED / "giemsa-dev")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        for stain in ("giemsa", "dapi") if args.synthetic_n > 0 else ():
            out = Path(tmp) / stain
            # single-spread classes: a count is defined per picture
            rows = write_dataset(
                out,
                args.synthetic_n,
                seed=args.seed,
                config=SynthConfig(stain=stain),
                classes=("available", "too_few", "debris"),
            )
            truths = [int(r["chromosome_count"]) + int(r["fragment_count"]) for r in rows]
            counted, seconds = run([out / r["path"] for r in rows], truths)
            score(
                f"synthetic {stain} (chromosomes + acentric fragments)",
                truths,
                counted,
                [r["label"] == "too_few" for r in rows],
                seconds,
                groups=[r["label"] for r in rows],
            )
            error_sources(out, rows, counted)

    if (args.mfish / "manifest.csv").is_file():
        rows = list(csv.DictReader(open(args.mfish / "manifest.csv")))
        truths = [int(r["chromosome_count"]) for r in rows]
        counted, seconds = run([args.mfish / r["image"] for r in rows], truths)
        score(
            f"real DAPI ({args.mfish.name})",
            truths,
            counted,
            [t < MIN_CHROMOSOMES for t in truths],
            seconds,
        )
    else:
        print(f"(no {args.mfish}/manifest.csv; pass --mfish DIR)")
    if (args.giemsa / "manifest.csv").is_file():
        rows = list(csv.DictReader(open(args.giemsa / "manifest.csv")))
        truths = [int(r["boxes"]) for r in rows]
        counted, seconds = run([args.giemsa / r["image"] for r in rows], truths)
        score(
            f"real Giemsa ({args.giemsa.name}, boxes)",
            truths,
            counted,
            [r["reason"] == "too_few" for r in rows],
            seconds,
        )
        for r, c in zip(rows, counted):
            print(
                f"    {r['image']}: truth {r['boxes']:>3s} ({r['label']} {r['reason']}), counted "
                f"{c.chromosome_count}, spreads {c.spread_count}, verdicts {c.verdicts or '-'}"
            )
    else:
        print(f"(no {args.giemsa}/manifest.csv; pass --giemsa DIR)")


if __name__ == "__main__":
    main()

"""Write a labelled set of real-looking rejects from held-out real pictures, for
benchmarks/decision_accuracy.py (``--synthetic DIR`` reads its labels.csv).

mfish-dev's pictures are all single spreads of >= 40 chromosomes, so on their own they only
measure wrong rejects. From each held-out picture this writes the picture itself (available),
one ``too_few`` (chromosomes erased, 12-36 left) and one ``mixed`` (a second held-out spread of
the same set pasted beside it), with metasift.synth.from_real. Only the pictures named are read;
nothing is written into the data folders.

    python benchmarks/real_rejects.py OUT --mfish ../shared/data/mfish-dev --slides V13,V16,V24,V28
    python benchmarks/decision_accuracy.py --synthetic OUT --counters detector
"""

from __future__ import annotations

import argparse
import collections
import csv
from pathlib import Path

from metasift.annotations import mfish_target
from metasift.criteria import MIN_CHROMOSOMES
from metasift.synth.from_real import derive


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("out", type=Path, help="new folder")
    p.add_argument("--mfish", type=Path, required=True, help="a set like mfish-dev")
    p.add_argument("--slides", required=True, help="comma-separated: the held-out slides")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    if args.mfish.resolve() in (args.out.resolve(), *args.out.resolve().parents):
        p.error(f"{args.out}: inside {args.mfish}; nothing is written into a data folder")
    if args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out}: not empty")
    slides = set(args.slides.split(","))
    items = []
    with open(args.mfish / "manifest.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["slide"] not in slides:
                continue
            target = mfish_target(args.mfish / r["image"], args.mfish / r["karyotype_mask"])
            enough = int(r["chromosome_count"]) >= MIN_CHROMOSOMES
            label = "available" if enough else "too_few"
            items.append((Path(r["image"]).stem, target, label, "dapi", 1))
    if not items:
        p.error(f"{args.mfish}: no picture of slides {args.slides}")
    rows = derive(items, args.out, seed=args.seed)
    counts = collections.Counter(label for _, label, _ in rows)
    print(f"wrote {len(rows)} pictures to {args.out}: {dict(counts)}")


if __name__ == "__main__":
    main()

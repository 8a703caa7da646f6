"""``metasift demo``: the daily job on a synthetic slide, compared with its ground truth."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the bundled demonstration",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Make a synthetic slide (with one damaged file), classify it with the bundled "
        "model, sort the pictures, write results.csv and report.html.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="folder for the demo's output"
    )
    p.add_argument("--n", type=int, default=60, help="pictures on the synthetic slide")
    p.set_defaults(handler=_demo)


def _demo(args) -> int:
    """Classify, sort and report a synthetic slide; then compare with the truth."""
    import csv

    from ..synth import write_dataset
    from .classify import classify_job

    slide, out = args.out / "slide", args.out
    start = time.perf_counter()
    write_dataset(slide, args.n, seed=2026)
    (slide / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 60)  # a damaged file, as labs meet
    print(
        f"made a synthetic slide of {args.n} pictures and one damaged file in {slide} "
        f"({time.perf_counter() - start:.1f} s)\n"
    )
    classify_job(
        [slide],
        out / "results.csv",
        report=out / "report.html",
        sort_into=out / "sorted",
    )
    with open(slide / "labels.csv", newline="") as fh:
        truth = {str(slide / r["path"]): r for r in csv.DictReader(fh)}
    with open(out / "results.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"] in truth]
    right = sum(
        (r["decision"] == "keep") == (truth[r["path"]]["label"] == "available") for r in rows
    )
    print(f"\nagainst the slide's ground truth: {right} of {len(rows)} keep/reject decisions right")
    print(f"sorted copies in {out / 'sorted'}; open {out / 'report.html'} in a browser to review")
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0

"""``metasift demo``: the daily job on a synthetic slide, compared with its ground truth."""

from __future__ import annotations

import time
from pathlib import Path

from ._common import HelpFormatter


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the bundled demonstration",
        formatter_class=HelpFormatter,
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

    from ..classify import Classifier
    from ..explain import write_explanation
    from ..pipeline import heatmap_name, read_results
    from ..report import write_report
    from ..synth import write_dataset
    from .classify import classify_job, summarise

    slide, out = args.out / "slide", args.out
    start = time.perf_counter()
    write_dataset(slide, args.n, seed=2026)
    (slide / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 60)  # a damaged file, as labs meet
    print(
        f"made a synthetic slide of {args.n} pictures and one damaged file in {slide} "
        f"({time.perf_counter() - start:.1f} s)\n"
    )
    began = time.perf_counter()
    classify_job([slide], out / "results.csv", sort_into=out / "sorted", overlay=out / "overlays")
    took = time.perf_counter() - began
    with open(slide / "labels.csv", newline="") as fh:
        truth = {str(slide / r["path"]): r for r in csv.DictReader(fh)}
    rows = read_results(out / "results.csv")
    # heat maps for a few pictures rejected by the CNN too (each takes 65 passes of the model)
    clf = Classifier()
    explained = {}
    both = [r for r in rows if r["decision"] == "reject" and float(r["p_reject"]) >= clf.threshold]
    for row in both[:3]:
        name = Path(heatmap_name(row["path"])).stem
        explained[row["path"]] = write_explanation(row["path"], clf, row, out / "heatmaps", name)
    write_report(
        rows,
        out / "report.html",
        title=f"metasift demo: {len(rows)} pictures",
        summary=summarise(rows, took),
        explanations=explained,
        overlays=out / "overlays",
    )
    scored = [r for r in rows if r["path"] in truth]
    right = sum(
        (r["decision"] == "keep") == (truth[r["path"]]["label"] == "available") for r in scored
    )
    print(
        f"\nagainst the slide's ground truth: {right} of {len(scored)} keep/reject decisions right"
    )
    print(f"sorted copies in {out / 'sorted'}")
    print(f"what the count found, drawn on each picture: {out / 'overlays'}")
    print(f"what the CNN looked at in {len(explained)} rejected pictures (heat maps): "
          f"{out / 'heatmaps'}")  # fmt: skip
    print(f"open {out / 'report.html'} in a browser to review the run")
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    print(
        f"\nto check and correct the decisions in your browser (needs the [review] extra):\n"
        f"  metasift review {out / 'results.csv'} --overlay {out / 'overlays'} "
        f"--explain {out / 'heatmaps'}\n"
        f"then train on your corrections: metasift review {out / 'results.csv'} --export "
        f"labels.csv && metasift train labels.csv --out my_model --init default"
    )
    return 0

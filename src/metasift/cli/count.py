"""``metasift count``: chromosomes, spreads, nuclei and debris counted (by the learned
detector, or the training-free counter), and the three verdicts. `count_job` is the whole job,
callable from Python."""

from __future__ import annotations

import time
from pathlib import Path

from ._common import HelpFormatter, add_scheduler, list_inputs_or_fail, progress

COUNTERS = ("classic", "detector")
# counts best on real held-out pictures (benchmarks/detect_accuracy.py)
DEFAULT_COUNTER = "detector"
# keeps and rejects best on real pictures by its verdicts (benchmarks/decision_accuracy.py)
CLASSIFY_COUNTER = "detector"


def add_counter(p, default: str = DEFAULT_COUNTER) -> None:
    """--counter and --detector, for every command that counts."""
    p.add_argument(
        "--counter",
        choices=COUNTERS,
        default=default,
        help="classic: image analysis, no model; detector: the learned chromosome detector",
    )
    p.add_argument(
        "--detector",
        default="default",
        metavar="MODEL",
        help="with --counter detector: a detector model folder ('default': the bundled one)",
    )


def count_settings(counter: str, detector: str, min_chromosomes: int):
    """The counting step's settings: a CountConfig, or the detector's settings."""
    if counter == "detector":
        from ..detect import DetectorSettings

        return DetectorSettings(model=str(detector), min_chromosomes=min_chromosomes)
    from ..count import CountConfig

    return CountConfig(min_chromosomes=min_chromosomes)


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "count",
        help="count chromosomes and check the criteria",
        formatter_class=HelpFormatter,
        description="Count chromosomes, spreads, nuclei and debris over chromosomes in "
        "each picture (by the bundled detector, or --counter classic: image analysis, no "
        "model), and give the verdicts mixed, debris and too_few with a short reason.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", type=Path, required=True, help="results .csv or .json")
    p.add_argument(
        "--overlay",
        type=Path,
        metavar="DIR",
        help="write each picture with the chromosomes found outlined and numbered",
    )
    p.add_argument("--min-chromosomes", type=int, default=40, help="fewer: too_few")
    add_counter(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep rows of OUT whose picture is unchanged; count the rest",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    p.add_argument("--workers", type=int, default=0, help="processes (0: all cores)")
    add_scheduler(p)
    p.set_defaults(handler=_count)


def _count(args) -> int:
    return count_job(
        args.inputs,
        args.out,
        overlay=args.overlay,
        min_chromosomes=args.min_chromosomes,
        counter=args.counter,
        detector=args.detector,
        resume=args.resume,
        overwrite=args.overwrite,
        workers=args.workers,
        scheduler=args.scheduler,
    )


def count_job(
    inputs,
    out: Path,
    *,
    overlay: Path | None = None,
    min_chromosomes: int = 40,
    counter: str = DEFAULT_COUNTER,
    detector: str = "default",
    resume: bool = False,
    overwrite: bool = False,
    workers: int = 0,
    scheduler: str | None = None,
) -> int:
    """Count the chromosomes of ``inputs`` into the results file ``out``; the exit code of
    ``metasift count`` (0: all counted, 1: some could not be read or counted)."""
    from ..criteria import REASONS
    from ..pipeline import Ledger, columns, run, still_valid

    files = list_inputs_or_fail(inputs, "count")
    config = count_settings(counter, detector, min_chromosomes)
    with Ledger(out, columns(("count",)), resume=resume, overwrite=overwrite) as ledger:
        # rows are reused only from the same counter and settings, for unchanged pictures
        known = still_valid(ledger.previous_rows(), config.identity, by="counter") if resume else {}
        done = sum(str(f) in known for f in files)
        if done:
            print(f"{len(files)} pictures, {done} already counted")
        start = time.perf_counter()
        results = run(
            files,
            ("count",),
            count_config=config,
            overlay_dir=overlay,
            known=known,
            workers=workers,
            scheduler=scheduler,
        )
        for n, result in enumerate(results, 1):
            ledger.add(result.row())
            progress(n, len(files), start)
        rows = list(ledger.rows())
    errors = [r for r in rows if r["error"]]
    counted = [r for r in rows if not r["error"]]
    flagged = {v: sum(int(r[v]) for r in counted) for v in REASONS}
    print(
        ("\n" if len(files) >= 50 else "")
        + f"{len(rows)} pictures counted in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in flagged.items())
        + f", {len(errors)} could not be read or counted"
    )
    for r in errors:
        print(f"  error: {r['error']}")
    print(f"results: {out}")
    return 1 if errors else 0

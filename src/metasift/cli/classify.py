"""``metasift classify``: keep or reject pictures with a model, say why, and set the count
beside each decision. `classify_job` is the whole job, callable from Python (the demo does)."""

from __future__ import annotations

import time
from pathlib import Path

from ._common import HelpFormatter, add_scheduler, list_inputs_or_fail, progress
from .count import CLASSIFY_COUNTER, add_counter, count_settings


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "classify",
        help="keep or reject pictures, and say why",
        formatter_class=HelpFormatter,
        description="Classify pictures (files, folders searched recursively, globs) "
        "with a model folder (default: the bundled model). Originals are only read. "
        "Exit code 0: all classified; 1: some could not be read (their rows say why); "
        "2: usage error.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument(
        "--out", type=Path, required=True, metavar="RESULTS", help="results .csv or .json"
    )
    p.add_argument(
        "--model",
        metavar="MODEL",
        help="a model folder, or a released name ('default'); unset: the bundled model",
    )
    p.add_argument(
        "--backend", default="onnx", choices=("onnx", "torch"), help="torch needs the [train] extra"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep rows of RESULTS whose picture is unchanged; classify the rest",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing RESULTS file")
    p.add_argument(
        "--sort-into",
        type=Path,
        metavar="DIR",
        help="copy pictures into DIR/keep/ and DIR/reject/<reason>/ (never overwrites)",
    )
    p.add_argument(
        "--link", action="store_true", help="with --sort-into: hard links instead of copies"
    )
    p.add_argument(
        "--explain", type=Path, metavar="DIR", help="heat map PNG for each rejected picture"
    )
    p.add_argument(
        "--overlay",
        type=Path,
        metavar="DIR",
        help="write each picture with what the count found drawn on it (as metasift count does)",
    )
    p.add_argument("--report", type=Path, metavar="HTML", help="self-contained review page")
    p.add_argument(
        "--threshold", type=float, help="on p_reject (unset: the model's thresholds.json)"
    )
    p.add_argument(
        "--decide-by",
        choices=("auto", "cnn", "count"),
        default="auto",
        help="what takes the keep/reject decision: the CNN's p_reject, or the count's verdicts "
        "(the CNN's p_reject stays beside them). auto: the count's with the bundled model (on "
        "real pictures they decide better than the bundled CNN), your model's with --model",
    )
    p.add_argument(
        "--review-band",
        type=float,
        default=0.0,
        metavar="B",
        help="decide 'review' (a person looks) when p_reject is within B of the threshold",
    )
    p.add_argument(
        "--review-disagreements",
        action="store_true",
        help="decide 'review' when the CNN and the count disagree",
    )
    p.add_argument(
        "--review-near",
        type=int,
        default=0,
        metavar="N",
        help="decide 'review' when a single spread's count is within N of --min-chromosomes "
        "(from min - N to min + N - 1)",
    )
    p.add_argument(
        "--min-chromosomes", type=int, default=40, help="the count's too_few: fewer than this"
    )
    add_counter(p, default=CLASSIFY_COUNTER)
    p.add_argument(
        "--no-count",
        action="store_true",
        help="skip the chromosome count and its verdicts (faster)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="pictures per call of the model")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="decoding workers: threads, or processes when counting (0: all cores)",
    )
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    add_scheduler(p)
    p.set_defaults(handler=_classify)


def _classify(args) -> int:
    return classify_job(
        args.inputs,
        args.out,
        model=args.model,
        backend=args.backend,
        resume=args.resume,
        overwrite=args.overwrite,
        sort_into=args.sort_into,
        link=args.link,
        explain=args.explain,
        overlay=args.overlay,
        report=args.report,
        threshold=args.threshold,
        decide_by=args.decide_by,
        review_band=args.review_band,
        review_disagreements=args.review_disagreements,
        review_near=args.review_near,
        count=not args.no_count,
        min_chromosomes=args.min_chromosomes,
        counter=args.counter,
        detector=args.detector,
        batch_size=args.batch_size,
        workers=args.workers,
        threads=args.threads,
        scheduler=args.scheduler,
    )


def classify_job(
    inputs,
    out: Path,
    *,
    model: Path | None = None,
    backend: str = "onnx",
    resume: bool = False,
    overwrite: bool = False,
    sort_into: Path | None = None,
    link: bool = False,
    explain: Path | None = None,
    overlay: Path | None = None,
    report: Path | None = None,
    threshold: float | None = None,
    decide_by: str = "auto",
    review_band: float = 0.0,
    review_disagreements: bool = False,
    review_near: int = 0,
    count: bool = True,
    min_chromosomes: int = 40,
    counter: str = CLASSIFY_COUNTER,
    detector: str = "default",
    batch_size: int = 16,
    workers: int = 0,
    threads: int = 0,
    scheduler: str | None = None,
) -> int:
    """Classify ``inputs`` into the results file ``out``; the exit code of ``metasift
    classify`` (0: all classified, 1: some could not be read). Pictures the evidence cannot
    settle (``review_band``, ``review_disagreements``, ``review_near``) get the decision
    ``review``; the CNN or the count takes the decision (``decide_by``; ``auto``: the count
    with the bundled model, else the model): `metasift.classify.settle`."""
    from ..classify import Classifier, check_settling, settle
    from ..classify import sort_into as sort_copy
    from ..models import default_model_dir
    from ..pipeline import Ledger, columns, heatmap_name, run, still_valid

    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out {out}: the results file must end in .csv or .json")
    clf = Classifier(model, backend=backend, threads=threads or None)
    if threshold is not None:
        if not 0 <= threshold <= 1:
            raise ValueError("--threshold must be between 0 and 1")
        clf.threshold = threshold
    if decide_by == "auto":  # a lab's own model decides; the bundled one defers to the count
        bundled = clf.folder.resolve() == default_model_dir().resolve()
        decide_by = "count" if count and bundled else "cnn"
    check_settling(decide_by, review_band, review_near)
    if review_band and decide_by == "count":
        raise ValueError(
            "--review-band is about the CNN's p_reject, and the count decides here (the "
            "default with the bundled model): use --review-near or --review-disagreements, "
            "or --decide-by cnn"
        )
    for needs, flag in ((review_disagreements, "--review-disagreements"),
                        (review_near > 0, "--review-near"),
                        (decide_by == "count", "--decide-by count")):  # fmt: skip
        if needs and not count:
            raise ValueError(f"{flag} needs the count (leave out --no-count)")
    files = list_inputs_or_fail(inputs, "classify")
    steps = ("classify", "count") if count else ("classify",)
    with Ledger(out, columns(steps, clf.classes), resume=resume, overwrite=overwrite) as ledger:
        config = count_settings(counter, detector, min_chromosomes) if count else None
        # rows are reused only from the same model (and counter, when counting)
        made_by = {"model": clf.name, **({"counter": config.identity} if count else {})}
        known = still_valid(ledger.previous_rows(), made_by) if resume else {}
        print(
            f"classifying {len(files)} pictures with {clf.name} ({clf.backend})"
            + (", deciding by the count's verdicts" if decide_by == "count" else "")
            + (f", {len(known)} already done" if known else "")
            + (f" on {scheduler}" if scheduler else "")
        )
        explained = {}
        start = time.perf_counter()
        results = run(
            files,
            steps,
            classifier=clf,
            count_config=config,
            overlay_dir=overlay if count else None,
            known=known,
            workers=workers,
            batch_size=batch_size,
            scheduler=scheduler,
        )
        for n, result in enumerate(results, 1):
            # taken again on a resumed row too: the band or threshold may have changed
            row = settle(result.row(), clf.threshold, by=decide_by, band=review_band,
                         disagreements=review_disagreements, near=review_near,
                         min_chromosomes=min_chromosomes)  # fmt: skip
            ledger.add(row)
            if sort_into:
                sort_copy(row, sort_into, link=link)
            # heat maps show what the CNN looked at: for the pictures the CNN rejects
            cnn_rejects = row["decision"] != "error" and float(row["p_reject"]) >= clf.threshold
            if explain and row["decision"] in ("reject", "review") and cnn_rejects:
                from ..explain import write_explanation

                name = Path(heatmap_name(row["path"])).stem  # the overlay's name, marked
                explained[row["path"]] = write_explanation(row["path"], clf, row, explain, name)
            progress(n, len(files), start)
        took = time.perf_counter() - start
        rows = list(ledger.rows())
    summary = summarise(rows, took)
    print(("\n" if len(files) >= 50 else "") + summary)
    for row in rows:
        if row["decision"] == "error":
            print(f"  error: {row['error']}")
        elif row.get("agreement") == "no count":  # classified, but the count failed
            print(f"  not counted: {row['path']}: {row['count_reason']}")
    print(f"results: {out}")
    if report:
        from ..report import write_report

        write_report(
            rows,
            report,
            title=f"metasift: {len(rows)} pictures",
            summary=summary,
            explanations=explained,
            overlays=overlay if count else None,
        )
        print(f"report: {report}")
    return 1 if any(r["decision"] == "error" for r in rows) else 0


def summarise(rows, seconds: float) -> str:
    """One line: kept, rejected (by first reason, when the model names reasons), unreadable,
    not counted, where the CNN and the count disagree, and the speed."""
    kept = sum(r["decision"] == "keep" for r in rows)
    review = sum(r["decision"] == "review" for r in rows)
    errors = sum(r["decision"] == "error" for r in rows)
    rejects = [r for r in rows if r["decision"] == "reject"]
    reasons: dict[str, int] = {}
    for r in rejects:
        if r.get("reasons"):
            key = r["reasons"].split(";")[0]
            reasons[key] = reasons.get(key, 0) + 1
    by = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    uncounted = sum(r.get("agreement") == "no count" for r in rows)
    disagree = sum(str(r.get("agreement", "")).startswith("disagree") for r in rows)
    differ = sum(str(r.get("agreement", "")).startswith("both reject") for r in rows)
    counted = any(r.get("agreement") for r in rows)
    return (
        f"{len(rows)} pictures: {kept} kept, {len(rejects)} rejected"
        + (f" ({by})" if by else "")
        + (f", {review} sent to review" if review else "")
        + f", {errors} could not be read"
        + (f", {uncounted} classified but not counted" if uncounted else "")
        + (f"; the CNN and the count disagree on {disagree}" if counted else "")
        + (f" (and reject {differ} more for different reasons)" if differ else "")
        + f"; {len(rows) / max(seconds, 1e-9):.1f} images/s"
    )

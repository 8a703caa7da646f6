"""The one ``metasift`` command and its subcommands.

Heavy imports (scipy, scikit-image, torch) happen inside the handlers, so ``metasift --help``
answers at once. ``main(argv)`` returns the exit code: 0 done, 1 some input failed, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__

CLASSES = ("available", "mixed", "debris", "too_few")  # same as metasift.synth.CLASSES


def get_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="metasift",
        description="Sift metaphase pictures for the dicentric chromosome assay.",
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"metasift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "synth",
        help="write synthetic labelled metaphase pictures",
        formatter_class=fmt,
        description="Write N synthetic DCA pictures as OUT_DIR/<class>/<id>.png with "
        "labels.csv, per-picture annotations and the settings used.",
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="new or empty folder")
    p.add_argument("--n", type=int, default=100, help="number of pictures")
    p.add_argument("--seed", type=int, default=0, help="same seed and options give the same bytes")
    p.add_argument(
        "--classes",
        nargs="+",
        default=list(CLASSES),
        choices=CLASSES,
        metavar="CLASS",
        help=f"classes to draw, from {', '.join(CLASSES)}",
    )
    p.add_argument(
        "--weights",
        nargs="+",
        type=float,
        default=None,
        help="relative share of each class (default: balanced)",
    )
    look = p.add_argument_group("picture")
    look.add_argument("--size", default="1280x1024", help="WIDTHxHEIGHT in pixels")
    look.add_argument("--stain", default="giemsa", choices=("giemsa", "giemsa-color", "dapi"))
    look.add_argument("--format", default="png", choices=("png", "tif"), dest="fmt")
    look.add_argument("--bits", type=int, default=8, choices=(8, 16), help="bit depth of the files")
    look.add_argument("--dicentric-rate", type=float, default=0.05, help="dicentrics per cell")
    look.add_argument("--ring-rate", type=float, default=0.005, help="centric rings per cell")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(handler=_synth)

    p = sub.add_parser(
        "train",
        help="train a classifier on labelled pictures",
        formatter_class=fmt,
        description="Fine-tune a CNN on labelled pictures and write a model folder. "
        "DATA is an ImageFolder (keep/ reject/, or available/ mixed/ debris/ too_few/, "
        "optionally under train/ val/ test/) or a CSV manifest path,label[,group]. "
        "Defaults follow --recipe; flags and --config override it.",
    )
    p.add_argument("data", type=Path, metavar="DATA")
    p.add_argument(
        "--out", type=Path, required=True, metavar="MODEL_DIR", help="new folder for the model"
    )
    p.add_argument(
        "--recipe",
        default="paper",
        choices=("paper", "cpu"),
        help="paper: Inception v3 at 299, 20 epochs (Jang et al.); cpu: EfficientNet-Lite0 at 224, 12 epochs",
    )
    p.add_argument("--config", type=Path, help="YAML file of settings (see MODEL_DIR/config.yaml)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in MODEL_DIR")
    p.add_argument(
        "--init",
        type=Path,
        metavar="MODEL_DIR",
        help="start from another model folder ('default': the bundled one) to fine-tune it",
    )
    net = p.add_argument_group("model")
    net.add_argument(
        "--arch",
        choices=(
            "inception_v3",
            "efficientnet_lite0",
            "mobilenet_v3_small",
            "mobilenet_v3_large",
            "efficientnet_b0",
            "resnet18",
        ),
    )
    net.add_argument("--input-size", type=int)
    net.add_argument(
        "--crop",
        choices=("spread", "none"),
        help="look at the square around the chromosomes (cpu recipe) or the whole picture (paper)",
    )
    net.add_argument("--pretrained", choices=("imagenet", "none"))
    net.add_argument("--weights", help="local weights file (.safetensors or .pth) for the backbone")
    net.add_argument("--dropout", type=float)
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int)
    opt.add_argument("--batch-size", type=int)
    opt.add_argument("--lr", type=float)
    opt.add_argument("--lr-decay", type=float)
    opt.add_argument("--seed", type=int)
    opt.add_argument("--workers", type=int)
    opt.add_argument("--max-steps", type=int, help="batches per epoch at most (smoke tests)")
    opt.add_argument(
        "--target-sensitivity",
        type=float,
        help="lower the p_reject threshold until this share of the validation rejects is caught (default: 0.5)",
    )
    opt.add_argument("--device", choices=("auto", "cpu", "cuda"))
    opt.add_argument(
        "--synthetic-data",
        action="store_true",
        default=None,
        help="record in config.json that the pictures were synthetic",
    )
    p.set_defaults(handler=_train)

    p = sub.add_parser(
        "evaluate",
        help="measure a model on labelled pictures",
        formatter_class=fmt,
        description="Test loss, accuracy, balanced accuracy, per-class figures, "
        "keep/reject sensitivity and specificity, ROC AUC, the confusion matrix and "
        "the misclassified files. Uses DATA's test split when it has one.",
    )
    p.add_argument("model", type=Path, metavar="MODEL_DIR")
    p.add_argument("data", type=Path, metavar="DATA")
    p.add_argument(
        "--json", type=Path, help="also write the figures here (and the confusion matrix as .png)"
    )
    p.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser(
        "classify",
        help="keep or reject pictures, and say why",
        formatter_class=fmt,
        description="Classify pictures (files, folders searched recursively, globs) "
        "with a model folder (default: the bundled model). Originals are only read. "
        "Exit code 0: all classified; 1: some could not be read (their rows say why); "
        "2: usage error.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument(
        "--out", type=Path, required=True, metavar="RESULTS", help="results .csv or .json"
    )
    p.add_argument("--model", type=Path, metavar="MODEL_DIR", help="default: the bundled model")
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
    p.add_argument("--report", type=Path, metavar="HTML", help="self-contained review page")
    p.add_argument(
        "--threshold", type=float, help="on p_reject (default: the model's thresholds.json)"
    )
    p.add_argument(
        "--no-count",
        action="store_true",
        help="skip the chromosome count and its verdicts (faster)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="decoding workers: threads, or processes when counting (default: all cores)",
    )
    p.add_argument("--threads", type=int, default=0, help="inference threads (default: all cores)")
    p.set_defaults(handler=_classify)

    p = sub.add_parser(
        "count",
        help="count chromosomes and check the criteria without a model",
        formatter_class=fmt,
        description="Count chromosomes, spreads, nuclei and debris over chromosomes in "
        "each picture by image analysis (no training), and give the verdicts mixed, "
        "debris and too_few with a short reason.",
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
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep rows of OUT whose picture is unchanged; count the rest",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    p.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    p.set_defaults(handler=_count)

    p = sub.add_parser(
        "info",
        help="read pictures and report what they hold",
        formatter_class=fmt,
        description="Read each picture as metasift sees it and print its format, "
        "bit depth, channels and polarity, or the reason it cannot be read.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or globs")
    p.add_argument("--polarity", default="auto", choices=("auto", "dark", "bright"))
    p.set_defaults(handler=_info)

    p = sub.add_parser(
        "demo",
        help="run the bundled demonstration",
        formatter_class=fmt,
        description="Make a synthetic slide (with one damaged file), classify it with the bundled "
        "model, sort the pictures, write results.csv and report.html.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="folder for the demo's output"
    )
    p.add_argument("--n", type=int, default=60, help="pictures on the synthetic slide")
    p.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is still printed
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as err:
        print(f"metasift {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"metasift {args.command}: interrupted", file=sys.stderr)
        return 130


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 1280x1024, not {text!r}") from None
    return width, height


def _synth(args) -> int:
    from .synth import SynthConfig, write_dataset

    width, height = _parse_size(args.size)
    config = SynthConfig(
        height=height,
        width=width,
        stain=args.stain,
        dicentric_rate=args.dicentric_rate,
        ring_rate=args.ring_rate,
    )
    start = time.perf_counter()
    rows = write_dataset(
        args.out_dir,
        args.n,
        seed=args.seed,
        config=config,
        classes=args.classes,
        weights=args.weights,
        fmt=args.fmt,
        bits=args.bits,
        workers=args.workers,
    )
    took = time.perf_counter() - start
    counts = {c: sum(r["label"] == c for r in rows) for c in args.classes}
    summary = ", ".join(f"{c} {k}" for c, k in counts.items())
    print(f"wrote {len(rows)} pictures to {args.out_dir} ({summary}) in {took:.1f} s")
    return 0


def _train(args) -> int:
    from .train import TrainConfig, train

    overrides = {
        k: getattr(args, k)
        for k in (
            "arch",
            "input_size",
            "crop",
            "pretrained",
            "weights",
            "dropout",
            "epochs",
            "batch_size",
            "lr",
            "lr_decay",
            "seed",
            "workers",
            "max_steps",
            "target_sensitivity",
            "device",
            "synthetic_data",
        )
    }
    if args.init:
        from .models import read_config
        from .predict import default_model_dir

        if str(args.init) == "default":
            args.init = default_model_dir()
        init = read_config(args.init)
        overrides.update(
            arch=init["arch"],
            input_size=args.input_size or init["input_size"],  # a CNN adapts to a new size
            crop=args.crop or init.get("crop", "none"),  # and looks at what it learnt on
            weights=str(args.init / "model.safetensors"),
        )
    config = TrainConfig.resolve(args.recipe, args.config, **overrides)
    train(args.data, args.out, config, resume=args.resume)
    return 0


def _evaluate(args) -> int:
    from .evaluate import evaluate

    evaluate(args.model, args.data, backend=args.backend, json_path=args.json)
    return 0


def _classify(args) -> int:
    from .predict import (
        Classifier,
        ResultsWriter,
        classify_files,
        list_inputs,
        read_results,
        result_columns,
        sort_into,
        still_valid,
    )

    out = args.out
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out {out}: the results file must end in .csv or .json")
    if out.exists() and not (args.resume or args.overwrite):
        raise FileExistsError(
            f"{out} exists; pass --resume to continue it or --overwrite to replace it"
        )
    clf = Classifier(args.model, backend=args.backend, threads=args.threads or None)
    if args.threshold is not None:
        if not 0 <= args.threshold <= 1:
            raise ValueError("--threshold must be between 0 and 1")
        clf.threshold = args.threshold
    files, notes = list_inputs(args.inputs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not files:
        raise ValueError("no pictures to classify")
    known = still_valid(read_results(out), clf.name) if args.resume else {}
    writer = ResultsWriter(out, result_columns(clf.classes, count=not args.no_count))
    print(
        f"classifying {len(files)} pictures with {clf.name} ({clf.backend})"
        + (f", {len(known)} already done" if known else "")
    )
    explained = {}
    start = time.perf_counter()
    try:
        rows_in = classify_files(
            files,
            clf,
            workers=args.workers,
            batch_size=args.batch_size,
            known=known,
            count=not args.no_count,
        )
        for n, row in enumerate(rows_in, 1):
            writer.add(row)
            if args.sort_into:
                sort_into(row, args.sort_into, link=args.link)
            if args.explain and row["decision"] == "reject":
                from .explain import write_explanation

                name = f"{n:06d}_{Path(row['path']).stem}"
                explained[row["path"]] = write_explanation(
                    row["path"], clf, row, args.explain, name
                )
            if n % 50 == 0:
                rate = n / (time.perf_counter() - start)
                print(
                    f"\r  {n}/{len(files)} ({rate:.1f} images/s)",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        writer.flush()
    took = time.perf_counter() - start
    rows = writer.rows
    summary = summarise(rows, took)
    print(("\n" if len(files) >= 50 else "") + summary)
    for row in rows:
        if row["decision"] == "error":
            print(f"  error: {row['error']}")
        elif row.get("agreement") == "no count":  # classified, but the count failed
            print(f"  not counted: {row['path']}: {row['count_reason']}")
    print(f"results: {out}")
    if args.report:
        from .report import write_report

        write_report(
            rows,
            args.report,
            title=f"metasift: {len(rows)} pictures",
            summary=summary,
            explanations=explained,
        )
        print(f"report: {args.report}")
    return 1 if any(r["decision"] == "error" for r in rows) else 0


def summarise(rows, seconds: float) -> str:
    kept = sum(r["decision"] == "keep" for r in rows)
    errors = sum(r["decision"] == "error" for r in rows)
    reasons: dict[str, int] = {}
    for r in rows:
        if r["decision"] == "reject":
            key = (r.get("reasons") or "unspecified").split(";")[0]
            reasons[key] = reasons.get(key, 0) + 1
    rejected = sum(reasons.values())
    by = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    uncounted = sum(r.get("agreement") == "no count" for r in rows)
    return (
        f"{len(rows)} pictures: {kept} kept, {rejected} rejected"
        + (f" ({by})" if by else "")
        + f", {errors} could not be read"
        + (f", {uncounted} classified but not counted" if uncounted else "")
        + f"; {len(rows) / max(seconds, 1e-9):.1f} images/s"
    )


def _count(args) -> int:
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from . import __version__
    from .count import COUNT_COLUMNS, count_job
    from .predict import ResultsWriter, list_inputs, read_results, still_valid

    if args.out.exists() and not (args.resume or args.overwrite):
        raise FileExistsError(
            f"{args.out} exists; pass --resume to continue it or --overwrite to replace it"
        )
    files, notes = list_inputs(args.inputs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not files:
        raise ValueError("no pictures to count")
    # rows are reused only from the same counter and settings, for unchanged pictures
    counter = f"metasift {__version__} count, min {args.min_chromosomes}"
    known = still_valid(read_results(args.out), counter, by="counter") if args.resume else {}
    columns = ["path", "width", "height", *COUNT_COLUMNS, "counter", "error"]
    writer = ResultsWriter(args.out, [*columns, "file_size", "mtime_ns", "sha256"])
    todo = [f for f in files if str(f) not in known]
    if known:
        print(f"{len(files)} pictures, {len(files) - len(todo)} already counted")
    job = partial(count_job, overlay=args.overlay, min_chromosomes=args.min_chromosomes)
    start = time.perf_counter()
    workers = args.workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(todo) > 1 else None
    try:
        fresh = pool.map(job, todo, chunksize=2) if pool else map(job, todo)
        for n, path in enumerate(files, 1):
            row = known.get(str(path)) or {**next(fresh), "counter": counter}
            writer.add(row)
            if n % 50 == 0:
                rate = n / (time.perf_counter() - start)
                print(f"\r  {n}/{len(files)} ({rate:.1f} images/s)", end="", file=sys.stderr)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        writer.flush()
    rows = writer.rows
    errors = [r for r in rows if r["error"]]
    counted = [r for r in rows if not r["error"]]
    flagged = {v: sum(int(r[v]) for r in counted) for v in ("mixed", "debris", "too_few")}
    print(
        ("\n" if len(files) >= 50 else "")
        + f"{len(rows)} pictures counted in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in flagged.items())
        + f", {len(errors)} could not be read or counted"
    )
    for r in errors:
        print(f"  error: {r['error']}")
    print(f"results: {args.out}")
    return 1 if errors else 0


def _info(args) -> int:
    from .io import ImageReadError, read_image
    from .predict import list_inputs

    files, notes = list_inputs(args.inputs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not files:
        print("metasift info: error: no image files found", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        try:
            _, info = read_image(path, polarity=args.polarity)
        except ImageReadError as err:
            print(f"ERROR  {err}")
            failed += 1
            continue
        notes = "; ".join(info.warnings)
        print(
            f"ok     {path}: {info.format} {info.dtype} {info.width}x{info.height} "
            f"{info.channels}ch polarity={info.polarity}" + (f"  ({notes})" if notes else "")
        )
    print(f"{len(files) - failed} read, {failed} could not be read")
    return 1 if failed else 0


def _demo(args) -> int:
    """The daily job on a synthetic slide: classify, sort, report; then compare with the truth."""
    import csv

    from .synth import write_dataset

    slide, out = args.out / "slide", args.out
    start = time.perf_counter()
    write_dataset(slide, args.n, seed=2026)
    (slide / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 60)  # a damaged file, as labs meet
    print(
        f"made a synthetic slide of {args.n} pictures and one damaged file in {slide} "
        f"({time.perf_counter() - start:.1f} s)\n"
    )
    code = main(
        [
            "classify",
            str(slide),
            "--out",
            str(out / "results.csv"),
            "--report",
            str(out / "report.html"),
            "--sort-into",
            str(out / "sorted"),
        ]
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
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    sys.exit(main())

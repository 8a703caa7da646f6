"""Accuracy of a CPU-friendly backbone trained on synthetic pictures, on held-out pictures made
with another seed (issue 3 target: keep/reject accuracy >= 0.99 on 1,000 pictures).

    python benchmarks/train_accuracy.py [--train DIR] [--test DIR] [--recipe cpu] [--arch ...]
                                        [--epochs N] [--pretrained none] [--seed N]
                                        [--workers N] [--out MODEL_DIR] [--skip-training]

Without --train/--test it first writes 4,000 training pictures (seed 1) and 1,000 test
pictures (seed 2) under bench_out/. The model folder is kept (default bench_out/model_<arch>),
with its evaluation.json; with --skip-training the evaluation goes to
bench_out/evaluation_<model folder name>.json instead.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from metasift.evaluate import evaluate
from metasift.train import TrainConfig, train

OUT = Path("bench_out")


def ensure(folder: Path, n: int, seed: int) -> Path:
    if not (folder / "labels.csv").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "metasift",
                "synth",
                str(folder),
                "--n",
                str(n),
                "--seed",
                str(seed),
            ],
            check=True,
        )
    return folder


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path)
    parser.add_argument("--test", type=Path)
    parser.add_argument("--recipe", default="cpu")
    parser.add_argument("--arch")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--pretrained", help="imagenet (default) or none")
    parser.add_argument("--weights", help="a local ImageNet weights file")
    parser.add_argument("--seed", type=int, help="splits, initialisation and augmentation (0)")
    parser.add_argument("--workers", type=int, help="data loading processes (all cores)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-training", action="store_true", help="evaluate --out as it is")
    args = parser.parse_args()
    train_dir = args.train or ensure(OUT / "synth_train4000", 4000, 1)
    test_dir = args.test or ensure(OUT / "synth_test1000", 1000, 2)
    config = TrainConfig.resolve(
        args.recipe,
        arch=args.arch,
        epochs=args.epochs,
        input_size=args.input_size,
        pretrained=args.pretrained,
        weights=args.weights,
        seed=args.seed,
        workers=args.workers,
        synthetic_data=True,
    )
    out = args.out or OUT / f"model_{config.arch}"
    if not args.skip_training:
        start = time.perf_counter()
        train(train_dir, out, config, resume=(out / "checkpoint.pt").is_file())
        print(f"training took {(time.perf_counter() - start) / 60:.1f} min")
    # a model it did not train (the bundled one, say) is only read, never written into
    report = OUT / f"evaluation_{out.name}.json" if args.skip_training else out / "evaluation.json"
    report.parent.mkdir(exist_ok=True)
    result = evaluate(out, test_dir, json_path=report)
    b = result["binary"]
    print(
        f"\nheld-out synthetic test ({result['n']} pictures, {test_dir}): keep/reject accuracy "
        f"{b['accuracy']:.4f} (target >= 0.99), 4-class accuracy {result['accuracy']:.4f}"
    )
    by_difficulty(result, test_dir)


def by_difficulty(result: dict, test_dir: Path) -> None:
    """Keep/reject accuracy on the pictures whose count sits near the 40 boundary (37-42, a
    single spread without debris) and on all others, then for each true count from 34 to 46,
    from the synthetic ground truth."""
    import csv

    threshold = result["binary"]["threshold"]
    wrong = {
        Path(m["path"]).resolve()
        for m in result["misclassified"]
        if (m["p_reject"] >= threshold) != (m["label"] != "available")
    }
    near, rest, by_count = [], [], {}
    for row in csv.DictReader(open(test_dir / "labels.csv")):
        right = (test_dir / row["path"]).resolve() not in wrong
        single = row["label"] in ("available", "too_few")
        count = int(row["chromosome_count"])
        (near if single and 37 <= count <= 42 else rest).append(right)
        if single:
            by_count.setdefault(count, []).append(right)
    for name, right in (("count 37-42", near), ("all others", rest)):
        if right:
            print(
                f"  keep/reject accuracy, {name}: {sum(right) / len(right):.4f} ({len(right)} pictures)"
            )
    shown = [c for c in sorted(by_count) if 34 <= c <= 46]
    print(
        "  by true count (available and too_few; right/pictures): "
        + ", ".join(f"{c}: {sum(by_count[c])}/{len(by_count[c])}" for c in shown)
    )


if __name__ == "__main__":
    main()

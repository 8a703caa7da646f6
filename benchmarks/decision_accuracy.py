"""Which evidence should take `metasift classify`'s keep/reject decision (issue 21): the CNN,
the count's verdicts (training-free counter or detector), and how many pictures a review rule
sends to a person, per set of labelled pictures.

Each set is classified once per counter with the bundled (or given) classifier, through
``classify_job`` as a user runs it; every decision rule is then taken from the same rows with
``metasift.classify.settle``. Accuracy counts keep vs reject (a picture sent to review is
neither: "accuracy of the rest" leaves them out, "share to review" says how many).

Sets and their labels:
- ``--synthetic DIR``: a ``metasift synth`` folder (labels.csv), a seed never trained on;
- ``--giemsa DIR``: a folder with manifest.csv naming image and label (keep / reject;
  borderline pictures are left out), as ``giemsa-dev``;
- ``--mfish DIR --slides S``: karyotyped single-cell spreads (manifest.csv with
  chromosome_count): keep when it has at least 40 chromosomes (they are single, clean spreads).

    python benchmarks/decision_accuracy.py --synthetic syn_test_dapi syn_test_giemsa \\
        --giemsa ../shared/data/giemsa-dev --mfish ../shared/data/mfish-dev \\
        --slides V13,V16,V24,V28 [--model MODEL_DIR] [--detector MODEL_DIR] [--json out.json]

A detector trained on some giemsa-dev pictures is measured on the others only
(``--giemsa-pictures images/1.png,images/3.png,images/5.png,images/7.png``, no other set).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import tempfile
from pathlib import Path

from metasift.classify import Classifier, settle
from metasift.cli.classify import classify_job
from metasift.criteria import MIN_CHROMOSOMES

RULES = (  # name, settle's keywords
    ("cnn", dict(by="cnn")),
    ("cnn, review band 0.1", dict(by="cnn", band=0.1)),
    ("count", dict(by="count")),
    ("count, review disagreements", dict(by="count", disagreements=True)),
    ("count, review near 40 (+-2)", dict(by="count", near=2)),
)


def labelled(kind: str, folder: Path, slides: set[str]) -> dict[str, str]:
    """Absolute picture path -> keep or reject (``slides``: only these; a picture without a
    slide column is named by its manifest image path)."""
    if kind == "synthetic":
        with open(folder / "labels.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return {
            str((folder / r["path"]).resolve()): ("keep" if r["label"] == "available" else "reject")
            for r in rows
        }
    with open(folder / "manifest.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for r in rows:
        path = str((folder / r["image"]).resolve())
        if slides and (r.get("slide") or r["image"]) not in slides:
            continue
        if kind == "giemsa" and r["label"] in ("keep", "reject"):
            out[path] = r["label"]
        elif kind == "mfish":
            out[path] = "keep" if int(r["chromosome_count"]) >= MIN_CHROMOSOMES else "reject"
    return out


def figures(rows: list[dict], labels: dict[str, str], threshold: float) -> dict:
    out = {}
    for name, rule in RULES:
        decided = [settle(r, threshold, **rule) for r in rows if r["decision"] != "error"]
        sure = [r for r in decided if r["decision"] != "review"]
        right = sum(r["decision"] == labels[str(Path(r["path"]).resolve())] for r in sure)
        review = len(decided) - len(sure)
        out[name] = dict(
            accuracy_of_the_rest=round(right / max(len(sure), 1), 3),
            right=f"{right}/{len(sure)}",
            share_to_review=round(review / max(len(decided), 1), 3),
            # a picture sent to review counts as right (a person decides it)
            accuracy_with_review=round((right + review) / max(len(decided), 1), 3),
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--synthetic", type=Path, nargs="*", default=[])
    p.add_argument("--giemsa", type=Path)
    p.add_argument(
        "--giemsa-pictures", default="", help="comma-separated: only these (e.g. held out)"
    )
    p.add_argument("--mfish", type=Path)
    p.add_argument("--slides", default="", help="comma-separated: the mfish slides to use")
    p.add_argument("--model", type=Path, help="classifier model folder (default: bundled)")
    p.add_argument("--detector", default="default", help="detector model folder")
    p.add_argument("--counters", default="classic,detector")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    slides = {s for s in args.slides.split(",") if s}
    chosen = {s for s in args.giemsa_pictures.split(",") if s}
    sets = [(f.name, "synthetic", f, set()) for f in args.synthetic]
    if args.giemsa:
        sets.append((f"giemsa {args.giemsa_pictures or 'all'}", "giemsa", args.giemsa, chosen))
    if args.mfish:
        sets.append((f"mfish {args.slides or 'all'}", "mfish", args.mfish, slides))
    threshold = Classifier(args.model).threshold
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, folder, only in sets:
            labels = labelled(kind, folder, only)
            for counter in args.counters.split(","):
                out = Path(tmp) / f"{len(result)}.csv"
                with contextlib.redirect_stdout(io.StringIO()):
                    classify_job(sorted(labels), out, model=args.model, counter=counter,
                                 detector=args.detector, workers=1)  # fmt: skip
                with open(out, newline="") as fh:
                    rows = list(csv.DictReader(fh))
                got = figures(rows, labels, threshold)
                if counter != args.counters.split(",")[0]:  # the CNN alone: once per set
                    got = {k: v for k, v in got.items() if not k.startswith("cnn")}
                result[f"{name} | counter {counter}"] = got
                print(f"{name} ({len(labels)} pictures), counter {counter}:")
                for rule, f in got.items():
                    print(f"  {rule:30s} accuracy {f['accuracy_of_the_rest']:.3f} ({f['right']}), "
                          f"to review {f['share_to_review']:.3f}, "
                          f"with review {f['accuracy_with_review']:.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

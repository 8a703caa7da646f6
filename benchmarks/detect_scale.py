"""How the detector's count holds when a picture's chromosome width is misjudged: each
held-out mfish-dev picture counted at its measured scale times each factor, and the mean
absolute error (against the karyotype mask's instances, as benchmarks/detect_accuracy.py) per
factor. Another lab's pictures can fool the width measurement; a detector whose error grows
fast away from 1.0 then loses spreads.

    python benchmarks/detect_scale.py --detector MODEL_DIR --mfish ../shared/data/mfish-dev \\
        --slides V13,V16,V24,V28 [--factors 0.7,0.85,1,1.2,1.4] [--per-picture]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from metasift.annotations import mfish_target
from metasift.detect import Detector, decode, resized
from metasift.io import read_image


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--detector", required=True, help="a detector model folder")
    p.add_argument("--mfish", type=Path, required=True)
    p.add_argument("--slides", required=True, help="comma-separated: held out from training")
    p.add_argument("--factors", default="0.7,0.85,1,1.2,1.4")
    p.add_argument("--per-picture", action="store_true", help="print every picture's counts")
    args = p.parse_args()
    detector = Detector(args.detector, threads=1)
    factors = [float(f) for f in args.factors.split(",")]
    slides = set(args.slides.split(","))
    errors = {f: [] for f in factors}
    with open(args.mfish / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["slide"] in slides]
    for r in rows:
        target = mfish_target(args.mfish / r["image"], args.mfish / r["karyotype_mask"])
        image, info = read_image(target.image)
        scale = detector.scale(image, polarity=info.polarity)
        counts = []
        for f in factors:
            probs = detector.probabilities(resized(image, scale * f))
            decoded = decode(probs, detector.decode_config, width=detector.target_width)
            counts.append(len(decoded.centres))
            errors[f].append(abs(counts[-1] - target.count))
        if args.per_picture:
            print(r["image"], "truth", target.count, "scale", round(scale, 3), "counts", counts)
    print(f"{len(rows)} pictures; count MAE per scale factor:",
          {f: round(float(np.mean(e)), 2) for f, e in errors.items()})  # fmt: skip


if __name__ == "__main__":
    main()

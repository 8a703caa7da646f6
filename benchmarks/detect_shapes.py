"""Chromosome shapes as the detector sees them: each annotated chromosome's width, length and
length over width after its picture is scaled the way the detector scales it (its chromosomes
then ``--target-width`` pixels wide by their measured width). A synthetic set whose chromosomes
are shorter or stubbier than a real set's trains a detector that splits the real ones.

    python benchmarks/detect_shapes.py SET [SET ...] [--n 30] [--width bodies]

SET: a 'metasift synth --masks' folder or a real set with a manifest.csv (as train-detector
reads them). Width: twice the largest inner distance of a chromosome's own mask; length: its
skeleton's pixels; chromosomes of fewer than 20 mask pixels are left out.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from metasift.annotations import read_targets
from metasift.detect import TARGET_WIDTH, chromosome_width, scale_for
from metasift.io import read_image


def shapes(folder: str, n: int, how: str, target: float) -> np.ndarray:
    """(width, length, length / width) per chromosome of the first ``n`` pictures, in the
    detector's pixels."""
    rows = []
    for t in itertools.islice(read_targets(folder), n):
        image, info = read_image(t.image)
        width, _ = chromosome_width(image, how, polarity=info.polarity)
        scale = scale_for(image.shape, width, target)
        inner = ndi.distance_transform_edt(t.instances > 0)
        for k, box in enumerate(ndi.find_objects(t.instances), 1):
            if box is None:
                continue
            own = t.instances[box] == k
            if own.sum() < 20:
                continue
            w = 2 * inner[box][own].max()
            length = skeletonize(own).sum()
            rows.append((w * scale, length * scale, length / w))
    return np.array(rows).reshape(-1, 3)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("sets", nargs="+")
    p.add_argument("--n", type=int, default=30, help="pictures per set")
    p.add_argument("--width", choices=["plain", "bodies"], default="bodies")
    p.add_argument("--target-width", type=float, default=TARGET_WIDTH)
    args = p.parse_args()
    print("set | chromosomes | width p50 | length p50 / p90 | length/width p50 / p90")
    for folder in args.sets:
        s = shapes(folder, args.n, args.width, args.target_width)
        if not len(s):
            print(f"{folder} | 0 | - | - | -")
            continue
        w, length, ratio = s.T
        print(
            f"{folder} | {len(s)} | {np.median(w):.1f} | {np.median(length):.1f} / "
            f"{np.percentile(length, 90):.1f} | {np.median(ratio):.1f} / {np.percentile(ratio, 90):.1f}"
        )


if __name__ == "__main__":
    main()

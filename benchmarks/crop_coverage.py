"""How well the classifier's crop (metasift.crop) keeps the chromosomes in view, and its cost.

For each set it prints how many chromosomes lie outside the square, in how many pictures, the
zoom it gives (short side of the picture / side of the square; 1 = the whole frame) and the
milliseconds per picture:

- synthetic pictures (a metasift synth folder): every annotated chromosome's box centre;
- ../shared/data/mfish-dev (real DAPI): each object of the expert karyotype mask, outside when
  none of its pixels is in the square;
- ../shared/data/giemsa-dev (real Giemsa): each chromosome box's centre.

    python benchmarks/crop_coverage.py [--synthetic DIR] [--mfish DIR] [--giemsa DIR]
"""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from metasift.crop import spread_box
from metasift.io import read_image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def square(image):
    h, w = image.shape
    start = time.perf_counter()
    box = spread_box(image) or (0, 0, w, h)
    return box, time.perf_counter() - start, min(h, w) / (box[3] - box[1])


def inside(box, x, y):
    left, top, right, bottom = box
    return (x >= left) & (x <= right) & (y >= top) & (y <= bottom)


def synthetic(folder: Path):
    for f in sorted((folder / "annotations").glob("*.json")):
        a = json.loads(f.read_text())
        image, _ = read_image(folder / a["path"])
        box, took, zoom = square(image)
        b = np.array([c["box"] for c in a["chromosomes"]], float)  # r0, c0, r1, c1
        seen = inside(box, (b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2)
        yield len(seen), int((~seen).sum()), took, zoom


def mfish(folder: Path):
    with open(folder / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            image, _ = read_image(folder / row["image"])
            box, took, zoom = square(image)
            labels, n = ndi.label(np.asarray(Image.open(folder / row["karyotype_mask"])) > 0)
            left, top, right, bottom = (round(v) for v in box)
            view = np.zeros(labels.shape, bool)
            view[top:bottom, left:right] = True
            seen = np.unique(labels[view & (labels > 0)])
            yield n, n - len(seen), took, zoom


def giemsa(folder: Path):
    with open(folder / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            image, _ = read_image(folder / row["image"])
            box, took, zoom = square(image)
            h, w = image.shape
            x, y = np.loadtxt(folder / row["chromosome_boxes"], ndmin=2)[:, 1:3].T * [[w], [h]]
            seen = inside(box, x, y)
            yield len(seen), int((~seen).sum()), took, zoom


def report(name, results):
    r = np.array(list(results), float)
    if not len(r):
        return
    total, out = r[:, 0].sum(), r[:, 1].sum()
    print(
        f"{name:28s} {len(r):5d} pictures: {out:.0f} of {total:.0f} chromosomes outside the "
        f"square ({100 * out / total:.2f}%), in {(r[:, 1] > 0).sum():.0f} pictures; zoom median "
        f"{np.median(r[:, 3]):.2f} (range {r[:, 3].min():.2f}-{r[:, 3].max():.2f}); "
        f"{1000 * np.median(r[:, 2]):.1f} ms per picture (median)"
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synthetic", type=Path, help="a metasift synth folder")
    parser.add_argument("--mfish", type=Path, default=SHARED / "mfish-dev")
    parser.add_argument("--giemsa", type=Path, default=SHARED / "giemsa-dev")
    args = parser.parse_args()
    if args.synthetic:
        report(f"synthetic ({args.synthetic.name})", synthetic(args.synthetic))
    if (args.mfish / "manifest.csv").is_file():
        report("real DAPI (mfish-dev)", mfish(args.mfish))
    if (args.giemsa / "manifest.csv").is_file():
        report("real Giemsa (giemsa-dev)", giemsa(args.giemsa))


if __name__ == "__main__":
    main()

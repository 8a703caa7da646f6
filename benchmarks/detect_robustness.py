"""How the detector's count holds when the same held-out pictures come as another lab's camera
and software would write them: resized (another resolution) and saved as JPEG (lossy). Each
variant is written to a temporary file and read back through metasift.io, as a user's picture
would be, then counted by the detector as `metasift count` does; mean absolute and signed
error against the annotation (mfish-dev karyotype masks, giemsa-dev boxes) per variant. The
width measurement has to follow the resolution; the network has to ignore JPEG blocks.

    python benchmarks/detect_robustness.py --detector MODEL_DIR \\
        [--mfish ../shared/data/mfish-dev --slides V13,V16,V24,V28] \\
        [--giemsa ../shared/data/giemsa-dev --giemsa-pictures images/1.png,images/3.png] \\
        [--sizes 0.667,2] [--jpeg 70]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from metasift.annotations import box_target, mfish_target
from metasift.detect import Detector
from metasift.io import read_image


def chosen(folder: Path, column: str, keep: str) -> list[dict]:
    """The manifest rows of ``folder`` whose ``column`` is one of the comma-separated ``keep``."""
    with open(folder / "manifest.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r[column] in set(keep.split(","))]


def targets(args):
    """(set name, annotation target) of every chosen held-out picture."""
    m, g = args.mfish, args.giemsa
    for r in chosen(m, "slide", args.slides) if m else []:
        yield "mfish", mfish_target(m / r["image"], m / r["karyotype_mask"])
    for r in chosen(g, "image", args.giemsa_pictures) if g else []:
        yield "giemsa", box_target(g / r["image"], g / r["chromosome_boxes"])


def variants(path: Path, sizes, quality: int, tmp: Path) -> dict[str, Path]:
    """The picture as stored, and each variant written as a file."""
    out = {"as stored": path}
    picture = Image.open(path)
    picture = picture.convert("RGB" if picture.mode in ("RGB", "RGBA", "P") else "L")
    for size in sizes:
        w, h = round(picture.width * size), round(picture.height * size)
        out[f"size {size:g}"] = tmp / f"size{size:g}.png"
        picture.resize((w, h), Image.LANCZOS).save(out[f"size {size:g}"])
    if quality:
        out[f"jpeg {quality}"] = tmp / "picture.jpg"
        picture.save(out[f"jpeg {quality}"], quality=quality)
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--detector", default="default", help="a detector model folder")
    p.add_argument("--mfish", type=Path)
    p.add_argument("--slides", default="V13,V16,V24,V28", help="mfish-dev slides held out")
    p.add_argument("--giemsa", type=Path)
    p.add_argument("--giemsa-pictures", default="", help="comma-separated: held out")
    p.add_argument("--sizes", default="0.667,2", help="comma-separated resize factors")
    p.add_argument("--jpeg", type=int, default=70, help="JPEG quality (0: none)")
    args = p.parse_args()
    if not args.mfish and not args.giemsa:
        p.error("give --mfish and/or --giemsa")
    detector = Detector(args.detector, threads=1)
    sizes = [float(s) for s in args.sizes.split(",") if s]
    errors: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, target in targets(args):
            for kind, path in variants(target.image, sizes, args.jpeg, Path(tmp)).items():
                image, info = read_image(path)
                found = detector.detect(image, polarity=info.polarity).findings
                errors.setdefault(name, {}).setdefault(kind, []).append(
                    found.chromosome_count - target.count
                )
    for name, kinds in errors.items():
        for kind, e in kinds.items():
            e = np.array(e)
            print(f"{name} ({len(e)} pictures) {kind}: count MAE {np.abs(e).mean():.2f}, "
                  f"signed {e.mean():+.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

"""How close synthetic pictures are to real ones: the same measurements on both.

For each set (real Giemsa, synthetic Giemsa, real DAPI, synthetic DAPI) it prints, per picture
averaged over the set: intensity statistics of the canonical image (as metasift.io reads it)
and of the stored pixels, and the objects found by one simple segmentation applied alike to
all sets (dark threshold, connected components): chromosome-sized objects, nuclei, their sizes
relative to the picture. Where ground truth exists it prints it too. It writes a contact sheet
with real and synthetic pictures side by side.

    python benchmarks/realism.py [--giemsa DIR] [--dapi DIR] [--n 16] [--sheet realism.png]

DIR defaults to ../shared/data/giemsa-dev/images and ../shared/data/mfish-dev/images when they
exist (the real sets are not shipped with metasift).
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import filters, measure, morphology

from metasift.io import decode, read_image
from metasift.synth import CLASSES, SynthConfig, write_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def measure_picture(path):
    image, info = read_image(path)
    raw = decode(path)[0].astype(np.float32)
    full = float(np.iinfo(np.dtype(info.dtype)).max) if info.dtype.startswith("uint") else 1.0
    h, w = image.shape
    smooth = filters.gaussian(image, 1.0)
    background = float(np.median(smooth))
    noise = float(np.median(np.abs(image - smooth)) * 1.4826)
    dark = smooth < min(filters.threshold_otsu(smooth), background - 0.15)
    dark = morphology.remove_small_objects(dark, max_size=max(4, int(h * w * 2e-6)))
    props = measure.regionprops(measure.label(dark))
    area = h * w
    nuclei = [p for p in props if p.area > area * 4e-3 and p.solidity > 0.8]
    chroms = [p for p in props if area * 2e-5 < p.area < area * 1e-3]
    return dict(
        raw_background=float(np.median(raw)) / full,
        raw_contrast=float((np.median(raw) - np.percentile(raw, 0.5)) / full)
        if info.polarity == "dark"
        else float((np.percentile(raw, 99.5) - np.median(raw)) / full),
        background=background,
        noise=noise,
        dark_fraction=float(dark.mean()),
        chromosome_objects=len(chroms),
        chromosome_area=float(np.median([p.area for p in chroms]) / area * 1e4)
        if chroms
        else np.nan,
        chromosome_length=float(np.median([p.axis_major_length for p in chroms]) / w * 100)
        if chroms
        else np.nan,
        nuclei=len(nuclei),
        nucleus_diameter=float(np.median([p.equivalent_diameter_area for p in nuclei]) / w * 100)
        if nuclei
        else np.nan,
    )


COLUMNS = {
    "raw_background": "stored background (fraction of full scale)",
    "raw_contrast": "stored contrast, background to 0.5% darkest (or brightest)",
    "background": "canonical background",
    "noise": "canonical noise (robust sd)",
    "dark_fraction": "share of pixels in dark objects",
    "chromosome_objects": "chromosome-sized objects per picture",
    "chromosome_area": "median chromosome object area (1e-4 of picture)",
    "chromosome_length": "median chromosome object length (% of width)",
    "nuclei": "nuclei per picture",
    "nucleus_diameter": "median nucleus diameter (% of width)",
}


def summarise(rows):
    return {
        k: (float(np.nanmean([r[k] for r in rows])), float(np.nanstd([r[k] for r in rows])))
        for k in COLUMNS
    }


def ground_truth_giemsa(folder):
    boxes = folder.parent / "chromosome_boxes"
    if not boxes.is_dir():
        return None
    counts, sizes = [], []
    for txt in sorted(boxes.glob("*.txt")):
        b = np.loadtxt(txt, ndmin=2)
        counts.append(len(b))
        sizes.append(np.median(np.maximum(b[:, 3] * 1440, b[:, 4] * 1024)) / 1440 * 100)
    return (
        f"chromosomes per picture {np.mean(counts):.1f}, "
        f"median box side {np.mean(sizes):.2f}% of width"
    )


def ground_truth_dapi(folder):
    manifest = folder.parent / "manifest.csv"
    if not manifest.exists():
        return None
    import csv

    counts = [int(r["chromosome_count"]) for r in csv.DictReader(open(manifest))]
    return f"chromosomes per picture {np.mean(counts):.1f} (expert karyotypes)"


def ground_truth_synth(folder):
    anns = [json.loads(p.read_text()) for p in sorted((folder / "annotations").glob("*.json"))]
    counts = [a["chromosome_count"] for a in anns]
    lengths = [
        np.median([c["length"] for c in a["chromosomes"]]) / a["config"]["width"] * 100
        for a in anns
    ]
    nuclei = [a["nuclei_count"] for a in anns]
    return (
        f"chromosomes per picture {np.mean(counts):.1f}, "
        f"median length {np.mean(lengths):.2f}% of width, "
        f"nuclei {np.mean(nuclei):.1f}"
    )


def thumbs(paths, size=(320, 240)):
    out = []
    for p in paths:
        image, _ = read_image(p)
        im = Image.fromarray((image * 255).astype(np.uint8)).resize(size, Image.BILINEAR)
        out.append(np.asarray(im))
    return out


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--giemsa", type=Path, default=SHARED / "giemsa-dev" / "images")
    parser.add_argument("--dapi", type=Path, default=SHARED / "mfish-dev" / "images")
    parser.add_argument("--n", type=int, default=16, help="pictures per set")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--sheet", type=Path, default=Path("bench_out/realism.png"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sets, truth, sheet_rows = {}, {}, []
        for stain, real_dir, gt in (
            ("giemsa", args.giemsa, ground_truth_giemsa),
            ("dapi", args.dapi, ground_truth_dapi),
        ):
            syn_dir = Path(tmp) / stain
            config = SynthConfig(stain=stain)
            write_dataset(
                syn_dir, args.n, seed=args.seed, config=config, classes=CLASSES, workers=2
            )
            syn_paths = sorted(syn_dir.glob("*/*.png"))
            if real_dir.is_dir():
                real_paths = sorted(real_dir.glob("*.png"))[: args.n]
                sets[f"real {stain} ({real_dir.parent.name})"] = [
                    measure_picture(p) for p in real_paths
                ]
                truth[f"real {stain} ({real_dir.parent.name})"] = gt(real_dir)
                sheet_rows.append(thumbs(real_paths[:4]))
            else:
                print(f"(no real {stain} pictures at {real_dir}; pass --{stain} DIR)")
            sets[f"synthetic {stain}"] = [measure_picture(p) for p in syn_paths]
            truth[f"synthetic {stain}"] = ground_truth_synth(syn_dir)
            sheet_rows.append(thumbs([sorted(syn_dir.glob(f"{c}/*.png"))[0] for c in CLASSES]))

    names = list(sets)
    width = 26
    print(
        f"{'measurement (mean ± sd over pictures)':62s}"
        + "".join(f"{n[:width]:>{width}s}" for n in names)
    )
    summaries = {n: summarise(sets[n]) for n in names}
    for key, label in COLUMNS.items():
        cells = "".join(
            f"{summaries[n][key][0]:>{width - 9}.3g} ± {summaries[n][key][1]:<6.2g}" for n in names
        )
        print(f"{label:62s}{cells}")
    print("ground truth:")
    for n in names:
        print(f"  {n}: {truth[n]} ({len(sets[n])} pictures)")

    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    grid = np.vstack(
        [np.hstack(row + [np.full_like(row[0], 255)] * (4 - len(row))) for row in sheet_rows]
    )
    Image.fromarray(grid).save(args.sheet)
    print(
        f"contact sheet: {args.sheet} (rows: real Giemsa, synthetic Giemsa (one per class: "
        f"{', '.join(CLASSES)}), real DAPI, synthetic DAPI)"
    )


if __name__ == "__main__":
    main()

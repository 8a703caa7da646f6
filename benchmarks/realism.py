"""How close synthetic pictures are to real ones: the same measurements on both.

For each stain it draws N synthetic pictures (as `metasift synth` writes them: the stored file,
so quantisation and compression count) and reads the real pictures of the folders given (any
format metasift reads: TIFF, PNG, JPEG, BMP; searched recursively). It prints:

1. the table of issue 20: per-picture statistics, mean +- sd over pictures, of the stored
   pixels, of the canonical image (as metasift.io reads it), and of the objects one simple
   segmentation finds alike in every set (dark threshold, connected components). Beside them,
   the real DCA columns of issue 20 (21 Giemsa pictures from two DCA labs, 117 DAPI pictures
   from two capture systems), and whether each synthetic mean lies within one of their sd;
2. per stain and real folder, a cross-validated real-vs-synthetic ROC AUC: a logistic regression
   on per-picture statistics (intensity quantiles, noise and texture, object counts, sizes and
   shapes), trained on the other folds (stratified; real pictures of one slide stay in one fold
   when the folder's manifest.csv names slides); 0.5 = indistinguishable, 1.0 = always told
   apart. And the features that separate the sets most (their own AUC, one by one);
3. a contact sheet (PNG): rows of real pictures, then synthetic ones;
4. with ``--count``, the classic counter's mean absolute error on the synthetic single-spread
   pictures (truth: chromosomes + acentric fragments) and on the real folders (truth: the
   manifest's chromosome_count or boxes), as a first check of realism downstream.

    python benchmarks/realism.py [--giemsa DIR ...] [--dapi DIR ...] [--n 40]
        [--half tune|test|all] [--set FIELD=VALUE ...] [--format png|tif|jpg] [--count]
        [--match-size]

DIR defaults to ../shared/data/giemsa-dev and ../shared/data/mfish-dev when they exist (the real
sets are not shipped with metasift). ``--half`` takes every other slide (or picture, without
slides) of each real folder: tune on ``tune``, report on ``test``. ``--set`` passes SynthConfig
fields (``--set style=legacy``). ``--match-size`` draws each stain's synthetic pictures at the
median size of its first real folder's pictures (mfish-dev: 645x517) instead of 1280x1024: the
gradient, Laplacian and noise features are per pixel, so a set at half the resolution is told
apart by its pixel size alone (the table's sizes are fractions of the frame and do not move).
"""

import argparse
import csv
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage import filters, measure, morphology

from metasift.detect import chromosome_width, resized, scale_for
from metasift.io import IMAGE_SUFFIXES, decode, read_image
from metasift.synth import CLASSES, SynthConfig, write_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# Issue 20's real DCA columns (mean, sd over pictures), measured by this script's table.
REFERENCE = {
    "giemsa": {
        "raw_background": (0.879, 0.016),
        "raw_contrast": (0.711, 0.077),
        "background": (0.949, 0.012),
        "noise": (0.0093, 0.003),
        "chromosome_objects": (31.5, 12),
        "chromosome_area": (4.88, 1.4),
        "chromosome_length": (2.91, 0.53),
        "nuclei": (2.6, 2.8),
        "nucleus_diameter": (11.5, 3.4),
    },
    "dapi": {
        "raw_background": (0.037, 0.017),
        "raw_contrast": (0.656, 0.088),
        "background": (0.972, 0.018),
        "noise": (0.0059, 0.001),
        "chromosome_objects": (13.5, 5.9),
        "chromosome_area": (6.34, 0.89),
        "chromosome_length": (3.51, 0.62),
        "nuclei": (1.1, 1.9),
        "nucleus_diameter": (13.2, 5.8),
    },
}
COLUMNS = {
    "raw_background": "stored background (fraction of full scale)",
    "raw_contrast": "stored contrast, background to 0.5% darkest (brightest)",
    "background": "canonical background",
    "noise": "canonical noise (robust sd)",
    "dark_fraction": "share of pixels in dark objects",
    "chromosome_objects": "chromosome-sized objects per picture",
    "chromosome_area": "median chromosome object area (1e-4 of picture)",
    "chromosome_length": "median chromosome object length (% of width)",
    "chromosome_bands": "darkness range along chromosome objects (p90 - p10 over p90)",
    "edge_blur": "edge blur, a chromosome (plain width) 7 pixels wide (pixels)",
    "nuclei": "nuclei per picture",
    "nucleus_diameter": "median nucleus diameter (% of width)",
}


def measure_picture(path):
    """The table's statistics (issue 20's definitions, unchanged) and the features the
    real-vs-synthetic classifier sees."""
    image, info = read_image(path)
    raw = decode(path)[0].astype(np.float32)
    full = float(np.iinfo(np.dtype(info.dtype)).max) if info.dtype.startswith("uint") else 1.0
    h, w = image.shape
    smooth = filters.gaussian(image, 1.0)
    background = float(np.median(smooth))
    noise = float(np.median(np.abs(image - smooth)) * 1.4826)
    dark = smooth < min(filters.threshold_otsu(smooth), background - 0.15)
    dark = morphology.remove_small_objects(dark, max_size=max(4, int(h * w * 2e-6)))
    props = measure.regionprops(measure.label(dark), intensity_image=image)
    area = h * w
    nuclei = [p for p in props if p.area > area * 4e-3 and p.solidity > 0.8]
    chroms = [p for p in props if area * 2e-5 < p.area < area * 1e-3]
    specks = [p for p in props if p.area <= area * 2e-5]

    def med(values, scale=1.0):
        return float(np.median(values) * scale) if len(values) else np.nan

    row = dict(
        raw_background=float(np.median(raw)) / full,
        raw_contrast=float((np.median(raw) - np.percentile(raw, 0.5)) / full)
        if info.polarity == "dark"
        else float((np.percentile(raw, 99.5) - np.median(raw)) / full),
        background=background,
        noise=noise,
        dark_fraction=float(dark.mean()),
        chromosome_objects=len(chroms),
        chromosome_area=med([p.area for p in chroms], 1e4 / area),
        chromosome_length=med([p.axis_major_length for p in chroms], 100 / w),
        chromosome_bands=med(
            [v for p in chroms if np.isfinite(v := _bands(p, background - smooth))]
        ),
        nuclei=len(nuclei),
        nucleus_diameter=med([p.equivalent_diameter_area for p in nuclei], 100 / w),
        edge_blur=_edge_blur(image, info.polarity),
    )
    # features for the classifier only
    quantiles = np.percentile(image, [1, 5, 25, 75, 95, 99])
    coarse = filters.gaussian(image, 3.0)
    back = ~ndi.binary_dilation(dark, iterations=3)
    grad = filters.sobel(smooth)
    lap = ndi.laplace(smooth)
    row.update(
        {f"q{q:02d}": float(v) for q, v in zip((1, 5, 25, 75, 95, 99), quantiles)},
        noise_coarse=float(np.median(np.abs(smooth - coarse)) * 1.4826),
        background_sd=float(np.std(coarse[back])) if back.any() else np.nan,
        gradient_mean=float(grad.mean()),
        gradient_back=float(grad[back].mean()) if back.any() else np.nan,
        laplace_sd=float(lap.std()),
        blockiness=_blockiness(image),
        speck_objects=len(specks),
        chromosome_solidity=med([p.solidity for p in chroms]),
        chromosome_eccentricity=med([p.eccentricity for p in chroms]),
        chromosome_width=med([p.axis_minor_length for p in chroms], 100 / w),
        chromosome_darkness=background - med([p.intensity_mean for p in chroms]),
        chromosome_spread=_spread(chroms, w),
        nucleus_darkness=background - med([p.intensity_mean for p in nuclei]),
        nucleus_texture=med([_texture(p) for p in nuclei]),
        log_objects=float(np.log1p(len(props))),
    )
    return row


def _edge_blur(image, polarity):
    """How soft chromosome edges are where the detector looks (the picture resized so a
    chromosome, at its plain width, is 7 pixels wide): the Gaussian sigma of a step with the picture's contrast
    (background to its darkest 2%) and the 90th percentile of the gradient on mid-grey edge
    pixels, in the detector's pixels."""
    width, _ = chromosome_width(image, "plain", polarity=polarity)
    small = resized(image, scale_for(image.shape, width))
    grad = np.hypot(ndi.sobel(small, 0), ndi.sobel(small, 1)) / 8
    back, core = float(np.median(small)), float(np.percentile(small, 2))
    edge = (small > core + 0.3 * (back - core)) & (small < core + 0.7 * (back - core))
    if edge.sum() < 50 or back - core < 0.1:
        return np.nan
    return (back - core) / (float(np.percentile(grad[edge], 90)) * np.sqrt(2 * np.pi))


def _blockiness(image):
    """JPEG's 8-pixel grid: steps across block edges relative to steps elsewhere."""
    d = np.abs(np.diff(image, axis=1))
    if d.shape[1] < 16:
        return np.nan
    on = d[:, 7::8].mean()
    return float(on / (d.mean() + 1e-9))


def _bands(prop, darkness):
    """How much an object's darkness varies along its middle line (bands, constrictions):
    (p90 - p10) / p90 over its skeleton."""
    values = darkness[prop.slice][morphology.skeletonize(prop.image)]
    if values.size < 5:
        return np.nan
    top = np.percentile(values, 90)
    return float((top - np.percentile(values, 10)) / top) if top > 0 else np.nan


def _texture(prop):
    values = prop.image_intensity[prop.image]
    return float(np.std(values)) if values.size else np.nan


def _spread(chroms, width):
    """How far the chromosome objects lie from their median centre (% of width)."""
    if len(chroms) < 3:
        return np.nan
    c = np.array([p.centroid for p in chroms])
    return float(np.median(np.hypot(*(c - np.median(c, 0)).T)) / width * 100)


# ---- real folders -------------------------------------------------------------------------
def real_pictures(folder: Path, half: str) -> tuple[list[Path], list[str]]:
    """Pictures under ``folder`` (not under masks/ or annotations/) and each one's slide
    (from manifest.csv when it names one; else the picture itself); every other slide kept for
    ``half`` tune/test."""
    paths = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not {"masks", "annotations", "karyotype_masks"} & set(p.relative_to(folder).parts)
    )
    slide_of = {}
    manifest = folder / "manifest.csv"
    if manifest.exists():
        with open(manifest, newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("slide"):
                    slide_of[(folder / r["image"]).resolve()] = r["slide"]
    slides = [slide_of.get(p.resolve(), p.stem) for p in paths]
    if half != "all":
        order = sorted(set(slides), key=lambda s: (len(s), s))
        pick = set(order[0 if half == "tune" else 1 :: 2])
        keep = [i for i, s in enumerate(slides) if s in pick]
        paths, slides = [paths[i] for i in keep], [slides[i] for i in keep]
    return paths, slides


# ---- real vs synthetic ----------------------------------------------------------------------
def auc(scores, labels) -> float:
    """ROC AUC by ranks (Mann-Whitney), ties shared."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    ranks = _ranks(scores)
    n1, n0 = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _ranks(x):
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # average rank for ties
        tie = x == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def logistic_fit(x, y, l2=1.0, steps=50):
    """L2-regularised logistic regression by Newton's method; returns (weights, bias)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.eye(d + 1) * l2
    reg[-1, -1] = 0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (p - y) + reg @ beta
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + reg
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-6:
            break
    return beta[:-1], beta[-1]


def cross_validated_auc(features, is_real, groups, folds=5, seed=0):
    """Out-of-fold AUC: standardise on the training folds, fit, score the held-out fold.
    Groups (slides) never straddle folds; real and synthetic are dealt out separately."""
    x = np.asarray(features, float)
    y = np.asarray(is_real, float)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), int)
    for cls in (0.0, 1.0):
        idx = np.nonzero(y == cls)[0]
        uniq = np.unique([groups[i] for i in idx])
        rng.shuffle(uniq)
        where = {g: k % folds for k, g in enumerate(uniq)}
        for i in idx:
            fold[i] = where[groups[i]]
    scores = np.zeros(len(y))
    for k in range(folds):
        test, train = fold == k, fold != k
        if not test.any() or len(np.unique(y[train])) < 2:
            continue
        mean = np.nanmean(x[train], 0)
        sd = np.nanstd(x[train], 0) + 1e-9
        z = np.nan_to_num((x - mean) / sd)  # a missing value counts as the mean
        w, b = logistic_fit(z[train], y[train])
        scores[test] = z[test] @ w + b
    return auc(scores, y.astype(bool))


# ---- output -----------------------------------------------------------------------------
def summarise(rows):
    return {
        k: (float(np.nanmean([r[k] for r in rows])), float(np.nanstd([r[k] for r in rows])))
        for k in rows[0]
    }


def thumbs(paths, size=(320, 240)):
    out = []
    for p in paths:
        image, _ = read_image(p)
        im = Image.fromarray((image * 255).astype(np.uint8)).resize(size, Image.BILINEAR)
        out.append(np.asarray(im))
    return out


def synthetic_set(folder, stain, n, seed, overrides, fmt):
    fields = {f.name: f.type for f in dataclasses.fields(SynthConfig)}
    values = {}
    for item in overrides:
        key, _, text = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {item}: SynthConfig has no field {key!r}")
        values[key] = json.loads(text) if text[:1] in "-0123456789tfn[{" else text
    config = SynthConfig(stain=stain, **values)
    workers = min(2, os.cpu_count() or 1)
    write_dataset(folder, n, seed=seed, config=config, classes=CLASSES, workers=workers, fmt=fmt)
    paths = sorted(p for c in CLASSES for p in (folder / c).glob("*") if p.is_file())
    return paths, config


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = lambda name: [SHARED / name] if (SHARED / name).is_dir() else []  # noqa: E731
    parser.add_argument("--giemsa", type=Path, nargs="*", default=default("giemsa-dev"))
    parser.add_argument("--dapi", type=Path, nargs="*", default=default("mfish-dev"))
    parser.add_argument("--n", type=int, default=40, help="synthetic pictures per stain")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--half", choices=("tune", "test", "all"), default="all")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--format", default="png", choices=("png", "tif", "jpg"))
    parser.add_argument("--stains", nargs="*", default=["giemsa", "dapi"])
    parser.add_argument("--sheet", type=Path, default=Path("bench_out/realism.png"))
    parser.add_argument("--top", type=int, default=6, help="separating features to name")
    parser.add_argument("--count", action="store_true", help="classic counter's error too")
    parser.add_argument(
        "--match-size", action="store_true", help="synthesise at the real pictures' size"
    )
    args = parser.parse_args()

    sheet_rows, lines = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for stain in args.stains:
            sets, real_paths = {}, []
            for folder in getattr(args, stain.split("-")[0]):
                paths, slides = real_pictures(folder, args.half)
                if not paths:
                    print(f"(no pictures under {folder})")
                    continue
                real_paths = real_paths or paths
                name = f"real {folder.name}"
                sets[name] = ([measure_picture(p) for p in paths], slides)
                sheet_rows.append(thumbs(paths[:4]))
            overrides = list(args.set)
            if args.match_size and real_paths:
                width, height = _median_size(real_paths)
                overrides += [f"height={height}", f"width={width}"]
            syn_paths, config = synthetic_set(
                Path(tmp) / stain, stain, args.n, args.seed, overrides, args.format
            )
            synthetic = [measure_picture(p) for p in syn_paths]
            sheet_rows.append(thumbs([next(p for p in syn_paths if c in p.parts) for c in CLASSES]))
            lines += report(stain, sets, synthetic, config, args.top)
            if args.count:
                lines += count_errors(stain, args, syn_paths, Path(tmp) / stain)
    print("\n".join(lines))
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    blank = np.full_like(sheet_rows[0][0], 255)
    grid = np.vstack([np.hstack(row + [blank] * (4 - len(row))) for row in sheet_rows])
    Image.fromarray(grid).save(args.sheet)
    print(f"contact sheet: {args.sheet} (per stain: real folders' rows, then one synthetic row)")


def _median_size(paths) -> tuple[int, int]:
    """(width, height): the median of each, over the pictures' headers."""
    sizes = []
    for p in paths:
        with Image.open(p) as im:
            sizes.append(im.size)
    return tuple(int(np.median(v)) for v in zip(*sizes))


def count_errors(stain, args, syn_paths, syn_dir):
    """The classic counter against the truth, on synthetic and real pictures."""
    from metasift.count import count_read

    def mae(paths, truths):
        found = [count_read(*read_image(p)).chromosome_count for p in paths]
        err = np.abs(np.array(found) - np.array(truths))
        return f"MAE {err.mean():.2f}, within +-2 {np.mean(err <= 2):.0%} ({len(paths)} pictures)"

    out = []
    anns = [json.loads(p.read_text()) for p in sorted((syn_dir / "annotations").glob("*.json"))]
    single = [a for a in anns if a["label"] != "mixed"]
    truths = [a["chromosome_count"] + a["fragment_count"] for a in single]
    out.append(f"count, synthetic {stain}: {mae([syn_dir / a['path'] for a in single], truths)}")
    for folder in getattr(args, stain.split("-")[0]):
        manifest = folder / "manifest.csv"
        if not manifest.exists():
            continue
        paths, _ = real_pictures(folder, args.half)
        with open(manifest, newline="") as fh:
            rows = {(folder / r["image"]).resolve(): r for r in csv.DictReader(fh)}
        truth = {
            p: int(rows[p.resolve()].get("chromosome_count") or rows[p.resolve()]["boxes"])
            for p in paths
            if p.resolve() in rows
        }
        out.append(f"count, real {folder.name}: {mae(list(truth), list(truth.values()))}")
    return out


def report(stain, sets, synthetic, config, top):
    ref = REFERENCE.get(stain.split("-")[0], {})
    names = [*sets, f"synthetic {stain}"]
    summaries = [summarise(rows) for rows, _ in sets.values()] + [summarise(synthetic)]
    width = 20
    out = [
        "",
        f"== {stain}: synthetic {json.dumps(dataclasses.asdict(config))}",
        f"{'measurement (mean ± sd over pictures)':58s}{'real DCA (issue 20)':>20s}"
        + "".join(f"{n[:width]:>{width}s}" for n in names)
        + "  synthetic within 1 sd of real DCA",
    ]
    for key, label in COLUMNS.items():
        r = ref.get(key)
        cells = f"{r[0]:>11.3g} ± {r[1]:<6.2g}" if r else f"{'':>20s}"
        cells += "".join(f"{s[key][0]:>{width - 9}.3g} ± {s[key][1]:<6.2g}" for s in summaries)
        mean = summaries[-1][key][0]
        ok = "" if r is None else ("yes" if abs(mean - r[0]) <= r[1] else "NO")
        out.append(f"{label:58s}{cells}  {ok}")
    keys = [k for k in synthetic[0] if np.isfinite([r[k] for r in synthetic]).any()]
    for name, (rows, slides) in sets.items():
        x = np.array([[r[k] for k in keys] for r in rows + synthetic], float)
        y = np.r_[np.ones(len(rows)), np.zeros(len(synthetic))]
        groups = list(slides) + [f"synthetic {i}" for i in range(len(synthetic))]
        folds = max(2, min(5, len(set(slides))))
        cv = cross_validated_auc(x, y, groups, folds=folds)
        single = {}
        for j, k in enumerate(keys):
            col = np.nan_to_num(x[:, j], nan=np.nanmedian(x[:, j]))
            single[k] = auc(col, y.astype(bool))
        worst = sorted(single, key=lambda k: -abs(single[k] - 0.5))[:top]
        out.append(
            f"{name} ({len(rows)} pictures, {len(set(slides))} slides) vs synthetic "
            f"({len(synthetic)}): cross-validated AUC {cv:.3f} ({folds}-fold, slides kept "
            f"whole, {len(keys)} features)"
        )
        out.append(
            "  most separating (AUC alone; > 0.5: higher in real): "
            + ", ".join(f"{k} {single[k]:.2f}" for k in worst)
        )
    return out


if __name__ == "__main__":
    main()

"""``metasift synth``: synthetic labelled metaphase pictures."""

from __future__ import annotations

import time
from pathlib import Path

from ..criteria import CLASSES
from ._common import HelpFormatter

# the synthesiser's choices, without importing it (numpy, scipy) for --help
STAINS = ("giemsa", "giemsa-color", "dapi")
STYLES = ("legacy", "dca")
FORMATS = ("png", "tif", "jpg")


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write synthetic labelled metaphase pictures",
        formatter_class=HelpFormatter,
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
        "--weights", nargs="+", type=float, help="relative share of each class (unset: balanced)"
    )
    look = p.add_argument_group("picture")
    look.add_argument("--size", default="1280x1024", help="WIDTHxHEIGHT in pixels")
    look.add_argument("--stain", default="giemsa", choices=STAINS)
    look.add_argument("--format", default="png", choices=FORMATS, dest="fmt")
    look.add_argument("--jpeg-quality", type=int, default=92, help="for --format jpg")
    look.add_argument("--bits", type=int, default=8, choices=(8, 16), help="bit depth of the files")
    look.add_argument(
        "--style",
        default="legacy",
        choices=STYLES,
        help="legacy: the pictures the bundled model was trained on; dca: what real DCA labs' "
        "pictures show (X-shaped chromosomes, sharp and pyknotic nuclei, refractile dots, labels)",
    )
    look.add_argument(
        "--randomise",
        action="store_true",
        help="domain randomisation: stain colour, blur, light, gamma, scale, noise, JPEG, "
        "within what microscopes give",
    )
    p.add_argument(
        "--masks",
        action="store_true",
        help="also write masks/<id>.tif: an instance label per chromosome and a class map",
    )
    look.add_argument("--dicentric-rate", type=float, default=0.05, help="dicentrics per cell")
    look.add_argument("--ring-rate", type=float, default=0.005, help="centric rings per cell")
    p.add_argument("--workers", type=int, help="processes (unset: all cores)")
    p.set_defaults(handler=_synth)


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 1280x1024, not {text!r}") from None
    return width, height


def _synth(args) -> int:
    from ..synth import SynthConfig, write_dataset

    width, height = parse_size(args.size)
    config = SynthConfig(
        height=height,
        width=width,
        stain=args.stain,
        dicentric_rate=args.dicentric_rate,
        ring_rate=args.ring_rate,
        style=args.style,
        randomise=args.randomise,
        masks=args.masks,
        jpeg_quality=args.jpeg_quality,
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

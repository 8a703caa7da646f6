"""How fast `metasift synth` writes pictures: images/s for N 1280x1024 pictures on disk.

Targets: issue 2, 1,000 pictures in under 2 minutes on a 2-core machine; issue 20, >= 10
pictures/s at 1280x1024 with masks.

    python benchmarks/synth_speed.py --n 1000 [--workers 2] [--stain giemsa] [--format png]
        [--style dca] [--masks] [--randomise]
"""

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from metasift.synth import SynthConfig, write_dataset


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--stain", default="giemsa", choices=("giemsa", "giemsa-color", "dapi"))
    parser.add_argument("--format", default="png", choices=("png", "tif", "jpg"))
    parser.add_argument("--style", default="legacy", choices=("legacy", "dca"))
    parser.add_argument("--masks", action="store_true", help="write masks/<id>.tif too")
    parser.add_argument("--randomise", action="store_true", help="domain randomisation")
    parser.add_argument("--bits", type=int, default=8, choices=(8, 16))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth"
        start = time.perf_counter()
        cpu_start = _cpu_seconds()
        write_dataset(
            out,
            args.n,
            seed=0,
            config=SynthConfig(
                stain=args.stain, style=args.style, masks=args.masks, randomise=args.randomise
            ),
            fmt=args.format,
            bits=args.bits,
            workers=args.workers,
        )
        took = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"synth: {args.n} pictures 1280x1024 {args.stain} {args.style} {args.format} "
        f"{args.bits}-bit{' with masks' if args.masks else ''}"
        f"{' randomised' if args.randomise else ''}, "
        f"{args.workers} workers, {os.cpu_count()} cores"
    )
    print(f"  {took:.1f} s, {args.n / took:.1f} images/s, {size / 2**20:.0f} MiB on disk")
    # on a shared machine the wall clock depends on the other jobs; CPU time much less so
    print(
        f"  {cpu / args.n:.3f} CPU s per picture (this process and its workers): "
        f"{args.workers / (cpu / args.n):.1f} images/s on {args.workers} idle cores"
    )
    print(f"  projected for 1,000 pictures: {1000 * took / args.n:.0f} s (target < 120 s)")


def _cpu_seconds() -> float:
    own, workers = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


if __name__ == "__main__":
    main()

"""`metasift classify` on a Dask cluster against the same run on this machine.

Starts a real cluster as a lab would, on 127.0.0.1 only: `dask scheduler` and `dask worker`
with 2 worker processes of one thread each. Classifies N synthetic 1280x1024 TIFFs (written by
the synthesiser) once locally and once with `--scheduler`, prints images/s of both, and checks
that the two results files are the same bytes. Needs the [cluster] extra.

    .venv/bin/python benchmarks/cluster.py [--n 500] [--count]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_cluster(tmp: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or "dask"
    info = tmp / "scheduler.json"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(info)], **quiet,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not info.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    worker = subprocess.Popen(
        [dask, "worker", "--scheduler-file", str(info), "--nworkers", str(workers),
         "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], **quiet,
    )  # fmt: skip
    import json

    from distributed import Client

    address = json.loads(info.read_text())["address"]
    with Client(address) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, [worker, scheduler]


def classify(folder: Path, out: Path, extra: list[str]) -> float:
    from metasift.cli import main

    start = time.perf_counter()
    code = main(["classify", str(folder), "--out", str(out), *extra])
    if code not in (0, 1):
        raise SystemExit(f"classify failed with exit code {code}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--count", action="store_true", help="with counting (default: --no-count)")
    args = parser.parse_args()
    from metasift.synth import write_dataset

    extra = [] if args.count else ["--no-count"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_dataset(tmp / "slide", args.n, seed=9, fmt="tif")
        address, processes = start_cluster(tmp, args.workers)
        try:
            here = classify(tmp / "slide", tmp / "here.csv", extra)
            there = classify(tmp / "slide", tmp / "there.csv", [*extra, "--scheduler", address])
        finally:
            for p in processes:
                p.terminate()
                p.wait(timeout=30)
        same = (tmp / "here.csv").read_bytes() == (tmp / "there.csv").read_bytes()
        mode = "with counting" if args.count else "without counting"
        print(f"\n{args.n} pictures {mode}: this machine {args.n / here:.1f} images/s; "
              f"Dask cluster on this machine (scheduler + {args.workers} worker processes) "
              f"{args.n / there:.1f} images/s ({here / there:.2f}x)")  # fmt: skip
        print(f"results files identical: {same}")
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()

"""How long the results ledger takes to resume a large run and write its results file.

A run of N pictures (tiny files here: the figure is the ledger's, not the reading's) is
written once, as a classify run writes it; then resumed: the earlier rows are read back,
checked against the files (size and time), given back in order and the results file written.
Target (issue 19): a 20,000-row resume and the final write under 5 s in total. Also prints
how many times the results file was rewritten during the first run (it grows geometrically,
so the cost stays linear in the rows).

    .venv/bin/python benchmarks/ledger_speed.py --n 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from metasift.pipeline import Ledger, columns, still_valid
from metasift.pipeline.ledger import write_results

CLASSES = ["available", "mixed", "debris", "too_few"]


def fake_row(path: Path, i: int) -> dict:
    st = path.stat()
    return dict(
        path=str(path), decision="reject" if i % 3 else "keep", p_reject=0.12345, p_mixed=0.01,
        p_debris=0.1, p_too_few=0.01, reasons="debris" if i % 3 else "", chromosome_count=46,
        spread_count=1, chromosomes_per_spread="46", nuclei_count=2, debris_over_chromosomes=0,
        mixed=0, debris=0, too_few=0, count_reason="46 chromosomes in one spread",
        agreement="agree", width=1280, height=1024, model="default_model@e626e8356b04",
        error="", file_size=st.st_size, mtime_ns=st.st_mtime_ns, sha256="0" * 64,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    cols = columns(("classify", "count"), CLASSES)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(args.n):
            f = tmp / "pictures" / f"{i // 1000:03d}" / f"{i:06d}.tif"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"II*\x00")
            files.append(f)
        out = tmp / "results.csv"

        start = time.perf_counter()
        writes = 0
        real_flush = Ledger.flush

        def counted_flush(self):
            nonlocal writes
            writes += 1
            real_flush(self)

        Ledger.flush = counted_flush
        with Ledger(out, cols, every=0.0) as ledger:  # every=0: rewrite as often as allowed
            for i, f in enumerate(files):
                ledger.add(fake_row(f, i))
        first = time.perf_counter() - start
        Ledger.flush = real_flush
        size = out.stat().st_size
        print(f"first run: {args.n} rows in {first:.2f} s, results file ({size / 1e6:.1f} MB) "
              f"written {writes} times")  # fmt: skip

        start = time.perf_counter()
        with Ledger(out, cols, resume=True) as ledger:
            known = still_valid(ledger.previous_rows(), "default_model@e626e8356b04")
            read = time.perf_counter() - start
            for f in files:
                ledger.add(known[str(f)])
        took = time.perf_counter() - start
        print(f"resume: {len(known)} rows read back and checked in {read:.2f} s; "
              f"with the rows given back and the final write: {took:.2f} s (target < 5 s)")  # fmt: skip

        rows = list(known.values())
        start = time.perf_counter()
        for k in range(1, 11):  # what a rewrite every 2 s did: the whole file, again and again
            write_results(tmp / "old.csv", cols, rows[: len(rows) * k // 10])
        print(f"for scale: rewriting the whole file 10 times as it grows takes "
              f"{time.perf_counter() - start:.2f} s (a 2 s rewrite in a run of hours: thousands)")  # fmt: skip


if __name__ == "__main__":
    main()

"""How fast the review page answers on a large run (issue 23's targets: the first page of a
20,000-picture run under 1 s, the next picture under 100 ms).

A classify + count run of N rows is written as metasift writes it (the ledger and the CSV),
over N paths that are hard links to a few synthetic 1280x1024 slides' pictures (so every path
is a real picture, without N pictures' disk). A quarter of the pictures get a review. Then,
in-process (FastAPI's TestClient; the browser and the network not counted):

- start: the run read from the ledger and the app built;
- first page: the page and the first page of the grid (60 pictures, their files checked);
- a filtered, sorted page (unreviewed, by p_reject), and the last page;
- next picture: its figures (JSON) and its large view, as the page asks for them: made from the
  picture (cold) and from the cache (the page fetches the next picture ahead, so this is what a
  reviewer waits for);
- a change (keep) saved, and the grid's thumbnails made.

    .venv/bin/python benchmarks/review_speed.py --n 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from metasift.pipeline import Ledger, columns, file_identity

CLASSES = ["available", "debris", "mixed", "too_few"]
ORIGIN = "http://127.0.0.1:8765"


def write_run(root: Path, n: int, pictures: list[Path]) -> Path:
    identities = {p: file_identity(p) for p in pictures}
    results = root / "results.csv"
    links = root / "scans"
    with Ledger(results, columns(("classify", "count"), CLASSES), every=60) as ledger:
        for i in range(n):
            source = pictures[i % len(pictures)]
            slide = links / f"slide{i // 1000:02d}"
            slide.mkdir(parents=True, exist_ok=True)
            path = slide / f"{i:05d}{source.suffix}"
            os.link(source, path)
            size, mtime, sha = identities[source]
            p = (i * 7919 % 1000) / 1000
            ledger.add(
                dict(
                    path=str(path), decision="reject" if p > 0.5 else "keep", p_reject=p,
                    p_debris=p / 2, p_mixed=p / 4, p_too_few=p / 4,
                    reasons="debris" if p > 0.5 else "", chromosome_count=30 + i % 25,
                    spread_count=1, chromosomes_per_spread=30 + i % 25, nuclei_count=1,
                    debris_over_chromosomes=0, mixed=0, debris=int(p > 0.5),
                    too_few=int(30 + i % 25 < 40), count_reason="synthetic row",
                    agreement="agree" if i % 4 else "disagree", width=1280, height=1024,
                    model="default_model@000000000000", error="", file_size=size,
                    mtime_ns=mtime, sha256=sha,
                )
            )  # fmt: skip
    return results


def timed(call, repeat: int = 1) -> tuple[float, object]:
    """Seconds for one call (the median of ``repeat``), and its result."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--pictures", type=int, default=24, help="distinct synthetic pictures")
    parser.add_argument("--steps", type=int, default=30, help="next-picture steps timed")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from metasift.review import make_app, open_review
    from metasift.synth import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_dataset(root / "synth", args.pictures, seed=5)
        pictures = sorted((root / "synth").rglob("*.png"))
        results = write_run(root, args.n, pictures)
        print(f"run of {args.n:,} rows over {len(pictures)} synthetic 1280x1024 pictures "
              f"written in {time.perf_counter() - start:.1f} s")  # fmt: skip

        review = open_review(results, reviewer="bench")
        for p in review.run.pictures[::4]:
            review.store.set(p.key, {"decision": "keep"}, "bench")
        review.store.close()

        t_start, review = timed(lambda: open_review(results, reviewer="bench"))
        t_app, app = timed(lambda: make_app(review))
        client = TestClient(app, base_url=ORIGIN)
        t_html, _ = timed(lambda: client.get("/"))
        t_page, first = timed(lambda: client.get("/api/pictures?limit=60").json())
        assert first["total"] == args.n and len(first["items"]) == 60
        t_summary, _ = timed(lambda: client.get("/api/summary"))
        t_filtered, _ = timed(
            lambda: client.get("/api/pictures?status=unreviewed&sort=p_reject_desc").json(), 5
        )
        t_last, _ = timed(lambda: client.get(f"/api/pictures?offset={args.n - 60}").json(), 5)

        def step(i: int) -> None:
            assert client.get(f"/api/pictures/{i}").status_code == 200
            assert client.get(f"/pictures/{i}/large").status_code == 200

        # cold: each step's view made from its picture; distinct files, so no cache helps
        cold = [timed(lambda i=i: step(i))[0] for i in range(1, min(args.steps, len(pictures)))]
        warm = [timed(lambda i=i: step(i))[0] for i in range(1, min(args.steps, len(pictures)))]
        t_json = [timed(lambda i=i: client.get(f"/api/pictures/{i}"))[0] for i in range(100, 130)]
        origin = {"Origin": ORIGIN}
        t_keep = [
            timed(
                lambda i=i: client.post(
                    f"/api/pictures/{i}", json={"decision": "keep"}, headers=origin
                )
            )[0]
            for i in range(201, 231)
        ]
        t_thumbs, _ = timed(lambda: [client.get(f"/pictures/{i}/thumb") for i in range(300, 360)])
        t_thumbs_cached, _ = timed(
            lambda: [client.get(f"/pictures/{i}/thumb") for i in range(300, 360)]
        )

        ms = 1000
        print(f"start (read {args.n:,} rows from the ledger, open the review): {t_start:.2f} s, "
              f"app {t_app * ms:.0f} ms")  # fmt: skip
        print(f"first page: page {t_html * ms:.0f} ms + first 60 pictures {t_page * ms:.0f} ms "
              f"= {(t_html + t_page) * ms:.0f} ms; with start {t_start + t_app + t_html + t_page:.2f} s "
              "(target < 1 s)")  # fmt: skip
        print(f"summary (filters' counts, progress): {t_summary * ms:.0f} ms; filtered and sorted "
              f"page: {t_filtered * ms:.0f} ms; last page: {t_last * ms:.0f} ms")  # fmt: skip
        print(f"next picture, figures + large view from the cache (what the page waits for, as it "
              f"fetches ahead): median {statistics.median(warm) * ms:.0f} ms, "
              f"max {max(warm) * ms:.0f} ms (target < 100 ms)")  # fmt: skip
        print(f"next picture, large view made from the 1280x1024 picture: median "
              f"{statistics.median(cold) * ms:.0f} ms, max {max(cold) * ms:.0f} ms")  # fmt: skip
        print(f"figures alone: median {statistics.median(t_json) * ms:.1f} ms; a keep saved: "
              f"median {statistics.median(t_keep) * ms:.1f} ms")  # fmt: skip
        print(f"a grid page's 60 thumbnails made from the pictures: {t_thumbs:.2f} s (once; "
              f"then from the cache: {t_thumbs_cached * ms:.0f} ms)")  # fmt: skip
        client.close()
        review.store.close()


if __name__ == "__main__":
    main()

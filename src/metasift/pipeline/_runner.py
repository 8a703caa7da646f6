"""The streaming runner: many pictures through the pipeline's steps, in order, in bounded
memory, on this machine's cores (or, with ``scheduler``, on a Dask cluster)."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from ._picture import Plan, classify_prepared, prepare
from .schema import Result

STEPS = ("classify", "count")


def run(
    paths: Iterable[str | os.PathLike],
    steps: Iterable[str] = STEPS,
    *,
    classifier=None,
    count_config=None,
    overlay_dir: str | os.PathLike | None = None,
    known: dict[str, dict] | None = None,
    workers: int = 0,
    batch_size: int = 16,
    scheduler: str | None = None,
) -> Iterator[Result]:
    """Yield one `Result` per picture, in the order given, streaming: at most a few batches
    of pictures are in memory however many there are.

    ``steps``: ``classify`` (with ``classifier``, a `metasift.classify.Classifier`; default:
    the bundled model) and/or ``count`` (with ``count_config``: a
    `metasift.detect.DetectorSettings` for the detector, by default the bundled one, or a
    `CountConfig` for the training-free counter). ``known``
    maps a path to an earlier row that is still valid (resume): it is given back as it is.
    ``workers``: processes or threads (0: all cores). ``scheduler``: the address of a Dask
    scheduler (``tcp://host:8786``) to run on instead of this machine.
    """
    given = {steps} if isinstance(steps, str) else set(steps)
    if not given or given - set(STEPS):
        raise ValueError(f"steps must be chosen from {STEPS}, got {sorted(given)}")
    steps = tuple(s for s in STEPS if s in given)
    if "classify" in steps and classifier is None:
        from ..classify import Classifier

        classifier = Classifier()
    if "count" in steps and count_config is None:  # the bundled detector, as the commands
        from ..detect import DetectorSettings

        count_config = DetectorSettings()
    plan = Plan(
        steps=steps,
        size=classifier.size if classifier else 0,
        crop=classifier.crop if classifier else False,
        count_config=count_config,
        overlay_dir=str(overlay_dir) if overlay_dir else None,
    )
    known = known or {}
    if scheduler:
        from .distributed import run_on_cluster

        yield from run_on_cluster(scheduler, paths, plan, classifier, known, batch_size)
        return
    yield from _run_here(paths, plan, classifier, known, workers, batch_size)


def _run_here(paths, plan: Plan, classifier, known, workers, batch_size) -> Iterator[Result]:
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    workers = workers or max(1, os.cpu_count() or 1)
    # Decoding, the stretch, the resize and hashing run in C and release the GIL: threads do
    # them in parallel without copying pictures between processes (8% more images/s, measured).
    # Counting is Python and scipy code that holds the GIL: it needs processes.
    if workers <= 1:
        pool = None
    elif "count" in plan.steps:
        # not forked from this process: a forked worker would inherit the results lock and,
        # orphaned by a kill -9, hold it after the run is gone
        context = multiprocessing.get_context("spawn" if os.name == "nt" else "forkserver")
        pool = ProcessPoolExecutor(workers, mp_context=context)
    else:
        pool = ThreadPoolExecutor(workers)
    pending: deque = deque()
    todo = iter(paths)
    window = batch_size * 3

    def submit():
        for path in todo:
            if str(path) in known:
                pending.append((path, None))
            else:
                pending.append((path, pool.submit(prepare, Path(path), plan) if pool else path))
            if len(pending) >= window:
                return

    try:
        submit()
        while pending:
            batch = []
            while pending and len(batch) < batch_size:
                path, job = pending.popleft()
                if job is None:
                    batch.append((path, None))
                else:
                    batch.append((path, job.result() if pool else prepare(Path(job), plan)))
            submit()
            fresh = [p for _, p in batch if p is not None]
            if "classify" in plan.steps:
                done = iter(classify_prepared(fresh, classifier))
            else:
                done = iter(result for result, _ in fresh)
            for path, prepared in batch:
                if prepared is None:
                    yield Result(Path(path), steps=plan.steps, ready_row=known[str(path)])
                else:
                    yield next(done)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)

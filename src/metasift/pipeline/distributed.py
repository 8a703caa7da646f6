"""The same pipeline on a Dask cluster: the only module of metasift that imports Dask.

A lab starts a cluster with ``dask scheduler`` and ``dask worker tcp://host:8786`` (or on
SLURM/PBS with dask-jobqueue) and runs ``metasift classify|count ... --scheduler
tcp://host:8786``. Each task is one batch of pictures: a worker reads them from a folder every
worker sees (a shared file system), counts and classifies them with its own copy of the model
(loaded once per worker process), and sends back the result rows only, never pictures. This
process keeps the order and writes the one ledger, so resume and crash safety are as on one
machine, and the rows are the same as a local run's.

A worker that dies mid-run loses nothing: Dask gives its batches to another worker. A batch
that kills workers again and again (Dask gives up after ``distributed.scheduler.allowed-
failures`` tries) or fails comes back as error rows, one per picture, and the run goes on.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from ._picture import Plan, file_identity, run_batch
from .schema import Result

IN_FLIGHT_PER_THREAD = 3  # batches queued per worker thread: busy workers, bounded memory


def _client(scheduler):
    try:
        from distributed import Client
    except ImportError:
        raise RuntimeError(
            "--scheduler needs Dask, which this install lacks: pip install 'metasift[cluster]' "
            "(on this machine and on every worker)"
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout="15s"), True
    except (OSError, TimeoutError) as err:
        raise RuntimeError(
            f"cannot reach the Dask scheduler at {scheduler} ({err}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`"
        ) from None


def run_on_cluster(
    scheduler, paths, plan: Plan, classifier, known: dict, batch_size: int
) -> Iterator[Result]:
    """Yield one `Result` per picture, in order (rows only), computed on the cluster at
    ``scheduler`` (an address, or a `distributed.Client`)."""
    client, own = _client(scheduler)
    model, name = None, ""
    if classifier is not None:
        name = classifier.name
        model = dict(
            folder=str(Path(classifier.folder).resolve()),
            backend=classifier.backend,
            threshold=classifier.threshold,
        )
    run_id = uuid.uuid4().hex[:8]
    try:
        slots = max(1, sum(client.nthreads().values())) * IN_FLIGHT_PER_THREAD
        pending: deque = deque()  # (paths of a batch, future) or (path, None) for a known row
        todo = iter(paths)
        batch: list = []
        n = 0

        def send(batch):
            nonlocal n
            key = f"metasift-batch-{run_id}-{n}"
            n += 1
            future = client.submit(_batch_on_worker, [str(p) for p in batch], plan, model, key=key)
            pending.append((list(batch), future))

        def fill():
            in_flight = sum(1 for _, f in pending if f is not None)
            for path in todo:
                if str(path) in known:
                    if batch:  # keep the order: what came before goes first
                        send(batch)
                        batch.clear()
                        in_flight += 1
                    pending.append((path, None))
                else:
                    batch.append(path)
                    if len(batch) == batch_size:
                        send(batch)
                        batch.clear()
                        in_flight += 1
                if in_flight >= slots:
                    return
            if batch:
                send(batch)
                batch.clear()

        fill()
        while pending:
            item, future = pending.popleft()
            if future is None:
                yield Result(Path(item), steps=plan.steps, ready_row=known[str(item)])
                continue
            try:
                rows = future.result()
            except Exception as err:  # the batch failed, or killed workers too often
                rows = [_error_row(p, plan, name, err) for p in item]
            for row in rows:
                yield Result(Path(row["path"]), steps=plan.steps, ready_row=row)
            fill()
    finally:
        for _, future in pending:
            if future is not None:
                future.cancel()
        if own:
            client.close()


def _batch_on_worker(paths: list[str], plan: Plan, model: dict | None) -> list[dict]:
    """Runs on a worker: the batch's rows. The model's inference threads share the worker's
    cores with its other task threads."""
    threads = None
    try:
        from distributed import get_worker

        threads = max(1, (os.cpu_count() or 1) // max(1, get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        pass
    model = dict(model or {}, threads=threads) if model else None
    return run_batch(paths, plan, model)


def _error_row(path, plan: Plan, model_name: str, err: Exception) -> dict:
    result = Result(Path(path), identity=file_identity(Path(path)), steps=plan.steps)
    result.error = f"{path}: not processed on the cluster ({type(err).__name__}: {err})"
    result.model = model_name
    return result.row()

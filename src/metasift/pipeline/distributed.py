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
failures`` tries) or fails is tried again one picture at a time; a picture that still fails is
an error row (which ``--resume`` tries again), and the run goes on. Workers get absolute paths
and the bundled model by name, so they may start in any folder.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ._picture import Plan, classify_prepared, file_identity, prepare
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
    model = None
    if classifier is not None:
        from ..models import default_model_dir

        folder = Path(classifier.folder).resolve()
        bundled = folder == default_model_dir().resolve()  # every install has it, by name
        model = dict(
            folder="default" if bundled else str(folder),
            backend=classifier.backend,
            threshold=classifier.threshold,
            name=classifier.name,
        )
    # workers may start in another folder: they get absolute paths, rows keep the given ones
    plan = replace(plan, overlay_dir=plan.overlay_dir and os.path.abspath(plan.overlay_dir))
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
            where = [os.path.abspath(p) for p in batch]
            future = client.submit(_batch_on_worker, where, plan, model, key=key)
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
            except Exception:  # the batch failed, or killed workers: each picture on its own
                rows = [_alone(client, p, plan, model) for p in item]
            for given, row in zip(item, rows):
                # as this machine named it, in the error text too
                row["error"] = row.get("error", "").replace(os.path.abspath(given), str(given))
                row["path"] = str(given)
                yield Result(Path(given), steps=plan.steps, ready_row=row)
            fill()
    finally:
        for _, future in pending:
            if future is not None:
                future.cancel()
        if own:
            client.close()


def _alone(client, path, plan: Plan, model: dict | None) -> dict:
    """One picture of a failed batch, tried by itself; an error row if it fails again (with
    no model named, so that --resume tries it once more)."""
    try:
        return client.submit(_batch_on_worker, [os.path.abspath(path)], plan, model).result()[0]
    except Exception as err:
        result = Result(Path(path), identity=file_identity(Path(path)), steps=plan.steps)
        result.error = f"{path}: not processed on the cluster ({type(err).__name__}: {err})"
        return result.row()


def _batch_on_worker(paths: list[str], plan: Plan, model: dict | None) -> list[dict]:
    """Runs on a worker: prepare, classify with the worker's own copy of the model, and send
    back the batch's rows only, never pictures."""
    prepared = [prepare(Path(p), plan) for p in paths]
    if "classify" not in plan.steps:
        return [r.row() for r, _ in prepared]
    classifier = _worker_classifier(model["folder"], model["backend"])
    if classifier.name != model["name"]:
        raise RuntimeError(
            f"this worker's {model['folder']} is {classifier.name}, not {model['name']}: "
            "install the same metasift (or put the model folder where every worker sees it)"
        )
    results = classify_prepared(prepared, classifier, threshold=model["threshold"])
    return [r.row() for r in results]


_CLASSIFIERS: dict = {}


def _worker_classifier(folder: str, backend: str):
    """One loaded model per worker process, kept between batches; its inference threads
    share the worker's cores with the worker's other task threads."""
    key = (folder, backend)
    if key not in _CLASSIFIERS:
        from distributed import get_worker

        from ..classify import Classifier

        threads = max(1, (os.cpu_count() or 1) // max(1, get_worker().state.nthreads))
        _CLASSIFIERS[key] = Classifier(folder, backend=backend, threads=threads)
    return _CLASSIFIERS[key]

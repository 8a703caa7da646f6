"""Run a model folder on pictures: ONNX Runtime (core install) or PyTorch (``[train]``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .data import normalise
from .models import ModelFolderError, read_config, read_threshold

BACKENDS = ("onnx", "torch")


def default_model_dir() -> Path:
    """The model bundled with metasift (trained on synthetic pictures)."""
    return Path(__file__).parent / "default_model"


class Classifier:
    """A loaded model folder: ``probs(batch)`` for prepared inputs (N x 3 x S x S float32)."""

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        *,
        backend: str = "onnx",
        threads: int | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.folder = Path(folder) if folder else default_model_dir()
        self.config = read_config(self.folder)
        self.classes = list(self.config["classes"])
        self.size = int(self.config["input_size"])
        self.crop = self.config.get("crop", "none") == "spread"  # models before 0.2: whole picture
        self.mean, self.std = self.config["mean"], self.config["std"]
        self.threshold = read_threshold(self.folder)
        self.backend = backend
        threads = threads or os.cpu_count() or 1
        if backend == "onnx":
            self._run = self._onnx(threads)
        else:
            self._run = self._torch(threads)

    @property
    def name(self) -> str:
        return f"{self.folder.name}@{self.hash}"

    @property
    def hash(self) -> str:
        """First 12 hex digits of the SHA-256 of the weights actually run."""
        if not hasattr(self, "_hash"):
            file = self.folder / ("model.onnx" if self.backend == "onnx" else "model.safetensors")
            self._hash = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
        return self._hash

    def _onnx(self, threads: int):
        import onnxruntime as ort

        path = self.folder / "model.onnx"
        if not path.is_file():
            raise ModelFolderError(f"{self.folder}: model.onnx is missing")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # decoding workers share the cores: threads that busy-wait between operators would
        # take their time (measured: ~10% fewer images/s)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ModelFolderError(
                f"{path}: cannot be loaded ({str(err).splitlines()[0]})"
            ) from None
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        if inp.shape[1:] != [3, self.size, self.size] or out.shape[-1] != len(self.classes):
            raise ModelFolderError(
                f"{path}: takes {inp.shape[1:]} and gives {out.shape[-1]} classes, but config.json "
                f"says 3 x {self.size} x {self.size} and {len(self.classes)} classes"
            )
        return lambda x: session.run(None, {inp.name: x})[0]

    def _torch(self, threads: int):
        import torch

        from .models import load_torch_model

        torch.set_num_threads(threads)
        model, _ = load_torch_model(self.folder)
        model = model.to(memory_format=torch.channels_last)

        def run(x):
            with torch.inference_mode():
                t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
                return model(t).numpy()

        return run

    def probs(self, batch: np.ndarray) -> np.ndarray:
        logits = self._run(np.ascontiguousarray(batch, dtype=np.float32)).astype(np.float64)
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)


# ---- classifying folders of pictures --------------------------------------------------------
RESULT_BASE = ("path", "decision", "p_reject")
RESULT_TAIL = ("reasons", "width", "height", "model", "error", "file_size", "mtime_ns", "sha256")
REASON_SHARE = 0.3  # a reject class is named as a reason when it holds this share of p(reject)


def list_inputs(inputs) -> tuple[list[Path], list[str]]:
    """Picture files named by ``inputs`` (files, folders searched recursively, globs), sorted,
    each once; and notes about inputs that matched nothing or were given twice."""
    import glob

    from .io import IMAGE_SUFFIXES

    found: dict[str, Path] = {}
    notes = []
    for item in map(str, inputs):
        path = Path(item)
        if path.is_dir():
            files = [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            ]
            if not files:
                notes.append(f"{item}: folder holds no TIFF, PNG, JPEG or BMP pictures")
        elif any(ch in item for ch in "*?[") and not path.exists():
            files = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not files:
                notes.append(f"{item}: matches no file")
        else:
            files = [path]  # named directly: kept even when missing, so its row says why
        for p in files:
            key = os.path.realpath(p)
            if key in found:
                notes.append(f"{p}: given more than once; taken once")
            found.setdefault(key, p)
    return sorted(found.values(), key=lambda p: str(p)), notes


def _prepare_job(job) -> dict:
    """Worker: one file to its resized grey picture, size, file identity and (optionally)
    counts."""
    from .crop import view
    from .io import ImageReadError, read_image

    path, size, crop, count = job
    out = dict(
        zip(("file_size", "mtime_ns", "sha256"), file_stat(path)),
        array=None,
        width="",
        height="",
        error="",
    )
    try:
        # counting needs the full picture; classifying alone takes the faster resized read
        image, info = read_image(path, size=None if count else size, crop=crop)
    except ImageReadError as err:
        out["error"] = str(err)
        return out
    out.update(
        array=view(image, size, crop) if count else image, width=info.width, height=info.height
    )
    if count:
        from .count import count_read

        try:
            counted = count_read(image, info)
            out.update(counted.row(), count_verdicts=";".join(counted.verdicts))
        except Exception as err:  # the classification stands; the row says the count failed
            out.update(count_reason=f"counting failed ({type(err).__name__}: {err})")
    return out


def file_stat(path: Path):
    """(size, modification time in ns, SHA-256) of a file, or blanks when it cannot be read."""
    try:
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return st.st_size, st.st_mtime_ns, digest
    except OSError:
        return "", "", ""


def result_columns(classes, count: bool = True) -> list[str]:
    extra = []
    if count:  # imported only then: counting brings scipy, 0.2 s of start-up
        from .count import COUNT_COLUMNS

        extra = [*COUNT_COLUMNS, "agreement"]
    return [*RESULT_BASE, *(f"p_{c}" for c in classes[1:]), "reasons", *extra, *RESULT_TAIL[1:]]


def decide(p: np.ndarray, classes, threshold: float) -> dict:
    """Keep or reject from class probabilities, with the reasons behind a rejection."""
    p_reject = float(1 - p[0])
    row = {
        "p_reject": round(p_reject, 5),
        "decision": "reject" if p_reject >= threshold else "keep",
    }
    reasons = []
    if row["decision"] == "reject" and len(classes) > 2:
        order = np.argsort(-p[1:])
        reasons = [classes[1 + i] for i in order if p[1 + i] >= REASON_SHARE * p_reject]
    elif row["decision"] == "reject":
        reasons = [classes[1]]
    row["reasons"] = ";".join(reasons)
    for i, c in enumerate(classes[1:], 1):
        row[f"p_{c}"] = round(float(p[i]), 5)
    return row


def classify_files(
    files,
    clf: Classifier,
    *,
    workers: int = 0,
    batch_size: int = 16,
    known=None,
    count: bool = True,
):
    """Yield one result row per file, in order, streaming: at most a few batches of decoded
    pictures are in memory whatever the number of files. ``known`` maps a path to an earlier
    row that is still valid (resume). ``count`` adds the chromosome count and its verdicts."""
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    known = known or {}
    workers = workers or max(1, (os.cpu_count() or 1))
    # Decoding, the stretch, the resize and hashing run in C and release the GIL: threads do
    # them in parallel without copying pictures between processes (8% more images/s, measured).
    # Counting is Python and scipy code that holds the GIL: it needs processes.
    executor = ProcessPoolExecutor if count else ThreadPoolExecutor
    pool = executor(workers) if workers > 1 else None
    pending: deque = deque()
    todo = iter(files)
    window = batch_size * 3

    def submit():
        for path in todo:
            if str(path) in known:
                pending.append((path, None))
            else:
                job = (path, clf.size, clf.crop, count)
                pending.append((path, pool.submit(_prepare_job, job) if pool else job))
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
                    batch.append((path, job.result() if pool else _prepare_job(job)))
            submit()
            arrays = [
                res["array"] for _, res in batch if res is not None and res["array"] is not None
            ]
            # workers send the small grey picture; the 3-channel input is made here, at a third
            # of the bytes between processes
            batch_input = normalise(np.stack(arrays), clf.mean, clf.std) if arrays else None
            probs = iter(clf.probs(batch_input) if arrays else [])
            for path, res in batch:
                if res is None:
                    yield known[str(path)]
                    continue
                array = res.pop("array")
                row = dict(path=str(path), model=clf.name, **res)
                if array is None:
                    row.update(decision="error", p_reject="", reasons="")
                else:
                    row.update(decide(next(probs), clf.classes, clf.threshold))
                    if count:
                        row["agreement"] = agreement(row)
                yield row
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)


def agreement(row: dict) -> str:
    """Whether the CNN's decision and the measured evidence (the count's verdicts) agree."""
    verdicts = row.pop("count_verdicts", None)
    if verdicts is None:  # the count failed (count_reason says why): nothing to compare
        return "no count"
    verdicts = [v for v in verdicts.split(";") if v]
    if (row["decision"] == "reject") == bool(verdicts):
        return "agree"
    if verdicts:
        return f"disagree: CNN keeps, count finds {', '.join(verdicts)} ({row['count_reason']})"
    return (
        f"disagree: CNN rejects ({row['reasons']}), count finds no problem ({row['count_reason']})"
    )


class ResultsWriter:
    """Results as CSV or JSON, always a valid file on disk: rewritten atomically (temporary file,
    fsync, rename) every few seconds and at the end, so an interrupted run leaves the rows done."""

    def __init__(self, path: Path, columns, every: float = 2.0):
        if path.suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"{path}: the results file must end in .csv or .json")
        self.path, self.columns, self.every = path, list(columns), every
        path.parent.mkdir(parents=True, exist_ok=True)  # as --sort-into and --overlay do
        self.rows: list[dict] = []
        self._last = 0.0

    def add(self, row: dict) -> None:
        import time

        self.rows.append(row)
        if time.monotonic() - self._last > self.every:
            self.flush()

    def flush(self) -> None:
        import csv
        import io as _io
        import json
        import time

        if self.path.suffix.lower() == ".json":
            text = (
                json.dumps([{k: r.get(k, "") for k in self.columns} for r in self.rows], indent=1)
                + "\n"
            )
        else:
            buf = _io.StringIO()
            writer = csv.DictWriter(
                buf, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n"
            )
            writer.writeheader()
            writer.writerows(self.rows)
            text = buf.getvalue()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        # a file name that is not UTF-8 (possible on Linux) is written as its own bytes
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._last = time.monotonic()


def read_results(path: Path) -> list[dict]:
    import csv
    import json

    if not path.is_file():
        return []
    if path.suffix.lower() == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def still_valid(rows: list[dict], made_by: str, by: str = "model") -> dict:
    """Earlier rows whose file is unchanged (same size and modification time, or same content)
    and that the same model (column ``by``) made: those need no second look."""
    valid = {}
    for row in rows:
        path = Path(row["path"])
        if row.get(by) != made_by:
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        same_stat = str(st.st_size) == str(row.get("file_size")) and str(st.st_mtime_ns) == str(
            row.get("mtime_ns")
        )
        if same_stat or hashlib.sha256(path.read_bytes()).hexdigest() == row.get("sha256"):
            valid[row["path"]] = {k: v for k, v in row.items()}
    return valid


def sort_into(row: dict, root: Path, *, link: bool = False) -> Path | None:
    """Copy (or hard-link) a classified picture into root/keep/ or root/reject/<reason>/,
    never overwriting: a different file of the same name gets a numbered name."""
    import filecmp
    import shutil

    if row["decision"] == "error":
        return None
    source = Path(row["path"])
    reason = (row.get("reasons") or "").split(";")[0] or "unspecified"
    folder = root / "keep" if row["decision"] == "keep" else root / "reject" / reason
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    n = 1
    while target.exists():
        if filecmp.cmp(source, target, shallow=False):
            return target  # already there, identical
        n += 1
        target = folder / f"{source.stem} ({n}){source.suffix}"
    if link:
        try:
            os.link(source, target)
            return target
        except OSError:
            pass  # another file system: fall back to a copy
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copy2(source, tmp)
    try:
        os.link(tmp, target)  # unlike a rename, never replaces a file that appeared meanwhile
    finally:
        tmp.unlink()
    return target

"""Classify pictures with a model folder: ONNX Runtime (core install) or PyTorch (``[train]``).

`Classifier` runs a model folder on prepared inputs, `decide` turns class probabilities into
keep or reject with the reasons, `sort_into` copies a classified picture into a sorted folder.
The per-picture loop over many files is `metasift.pipeline.run`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .criteria import MIN_CHROMOSOMES
from .models import ModelFolderError, read_config, read_threshold, resolve

BACKENDS = ("onnx", "torch")


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
        self.folder = resolve(folder)  # a folder, or a released name ("default")
        self.config = read_config(self.folder, task="classify")
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


# ---- deciding -------------------------------------------------------------------------------
REASON_SHARE = 0.3  # a reject class is named as a reason when it holds this share of p(reject)


def reason_classes(classes) -> list[str]:
    """The reject classes that name a reason (a keep/reject model's ``reject`` names none)."""
    return [c for c in classes[1:] if c != "reject"]


def leaning(probs: dict[str, float], p_reject: float) -> list[str]:
    """The reject classes a rejection names, most probable first: those holding at least
    ``REASON_SHARE`` of p_reject."""
    return [
        c for c in sorted(probs, key=lambda c: -probs[c]) if probs[c] >= REASON_SHARE * p_reject
    ]


def decide(p: np.ndarray, classes, threshold: float) -> dict:
    """Keep or reject from class probabilities, with the reasons behind a rejection (none
    from a keep/reject model: it cannot say why)."""
    p_reject = round(float(1 - p[0]), 5)  # as stored, so a decision taken again agrees
    row = {
        "p_reject": p_reject,
        "decision": "reject" if p_reject >= threshold else "keep",
    }
    reasons = []
    if row["decision"] == "reject" and len(classes) > 2:
        reasons = leaning({c: float(p[i]) for i, c in enumerate(classes[1:], 1)}, p_reject)
    row["reasons"] = ";".join(reasons)
    for i, c in enumerate(classes[1:], 1):
        if c in reason_classes(classes):
            row[f"p_{c}"] = round(float(p[i]), 5)
    return row


DECIDERS = ("cnn", "count")  # what takes the keep/reject decision in `settle`


def settle(
    row: dict,
    threshold: float,
    *,
    by: str = "cnn",
    band: float = 0.0,
    disagreements: bool = False,
    near: int = 0,
    min_chromosomes: int = MIN_CHROMOSOMES,
) -> dict:
    """``row`` with its decision, reasons and agreement taken again from its evidence, by the
    CNN (``cnn``: p_reject at ``threshold``, reasons from its class probabilities, as
    `decide`) or by the count (``count``: its verdicts; the CNN where the count failed). The
    decision is ``review`` when the evidence cannot settle it: ``band``, the CNN decides and
    its p_reject lies within ``band`` of the threshold; ``disagreements``, the CNN and the
    count disagree; ``near``, a single spread's count lies within ``near`` of
    ``min_chromosomes`` (from min - near to min + near - 1, where a miscount of one or two
    turns the too_few verdict) and nothing else (mixed, debris) rejects it. A review row keeps
    the reasons the decision leans to. Rows that are errors are left as they are."""
    from .criteria import REASONS, agreement

    check_settling(by, band, near)
    if row.get("decision") == "error" or row.get("p_reject") in (None, ""):
        return row
    p_reject = float(row["p_reject"])
    # the CNN's own decision and reasons at this threshold (as `decide` gave them)
    cnn = "reject" if p_reject >= threshold else "keep"
    probs = {c: float(v) for k, v in row.items()
             if k.startswith("p_") and k != "p_reject" and (c := k[2:]) and v not in ("", None)}  # fmt: skip
    cnn_reasons = leaning(probs, p_reject) if cnn == "reject" else []
    counted = row.get("agreement") not in (None, "", "no count")
    out = {**row}
    found = [r for r in REASONS if str(row.get(r)) == "1"]
    if counted:  # the agreement as at this threshold
        out["agreement"] = agreement(cnn, ";".join(cnn_reasons), found, row.get("count_reason", ""))
    if by == "count" and counted:
        decision, reasons = ("reject" if found else "keep"), found
    else:
        decision, reasons = cnn, cnn_reasons
    count = row.get("chromosome_count")
    borderline = (
        near > 0
        and counted
        and count not in (None, "")
        and not set(found) - {"too_few"}
        and min_chromosomes - near <= int(count) < min_chromosomes + near
    )
    cnn_decides = by == "cnn" or not counted
    if (
        (cnn_decides and abs(p_reject - threshold) < band)
        or (disagreements and str(out.get("agreement", "")).startswith("disagree"))
        or borderline
    ):
        decision = "review"
    out.update(decision=decision, reasons=";".join(reasons))
    return out


def check_settling(by: str, band: float, near: int) -> None:
    """Clear errors for `settle`'s settings."""
    if by not in DECIDERS:
        raise ValueError(f"decide by one of {DECIDERS}, not {by!r}")
    if not 0 <= band < 0.5:
        raise ValueError(f"the review band must be from 0 to 0.5, not {band}")
    if near < 0:
        raise ValueError(f"review near must be 0 or more, not {near}")


def sort_into(row: dict, root: Path, *, link: bool = False) -> Path | None:
    """Copy (or hard-link) a classified picture into root/keep/, root/reject/<reason>/
    (root/reject/ when the model names no reason) or root/review/, never overwriting: a
    different file of the same name gets a numbered name."""
    import filecmp
    import shutil

    if row["decision"] == "error":
        return None
    source = Path(row["path"])
    reason = (row.get("reasons") or "").split(";")[0]
    if row["decision"] in ("keep", "review"):
        folder = root / row["decision"]
    else:
        folder = root / "reject" / reason
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

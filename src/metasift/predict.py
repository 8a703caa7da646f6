"""Run a model folder on pictures: ONNX Runtime (core install) or PyTorch (``[train]``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

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

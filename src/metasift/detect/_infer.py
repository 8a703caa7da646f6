"""Run a detector model folder on pictures with ONNX Runtime (no PyTorch)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..criteria import MIN_CHROMOSOMES
from ..objects import Findings
from ._decode import DecodeConfig, Decoded, decode, findings
from ._net import MULTIPLE, OUTPUTS
from ._targets import TARGET_WIDTH, TARGET_WIDTHS, chromosome_width, resized, scale_for


def default_detector_dir() -> Path:
    """The detector bundled with metasift (see examples/make_default_detector.py)."""
    return Path(__file__).resolve().parent.parent / "default_detector"


@dataclass
class Detection:
    """What the detector found on one picture."""

    findings: Findings  # objects, counts and verdicts in full-picture coordinates
    decoded: Decoded  # the same at the network's scale (instances, maps)
    scale: float  # network pixels per picture pixel
    count_sd: float  # standard deviation of the chromosome count


class Detector:
    """A detector model folder loaded once: ``detect(image)`` for each picture."""

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        decode_config: DecodeConfig | None = None,
        threads: int = 0,
    ):
        import onnxruntime as ort

        from ..models import read_config

        self.folder = Path(model) if model is not None else default_detector_dir()
        if str(model) == "default" and not self.folder.is_dir():
            self.folder = default_detector_dir()
        self.config = read_config(self.folder, task="detect")
        if list(self.config["classes"]) != list(OUTPUTS):
            raise ValueError(
                f"{self.folder}: outputs {self.config['classes']} are not this metasift's "
                f"{list(OUTPUTS)}"
            )
        saved = self.config.get("decode", {})
        self.decode_config = decode_config or DecodeConfig(**saved)
        # pictures whose chromatids lie apart are looked at this much smaller (chosen by
        # metasift.train.detector.tune_apart_scale; 1 in folders from before it)
        self.apart_scale = float(self.config.get("apart_scale", 1.0))
        if not 0 < self.apart_scale <= 2:
            raise ValueError(f"{self.folder}: apart_scale {self.apart_scale} is not in (0, 2]")
        # the chromosome width, in pixels, at which the network was trained to see them
        low, high = TARGET_WIDTHS
        try:
            self.target_width = float(self.config.get("target_width", TARGET_WIDTH))
        except (TypeError, ValueError):
            self.target_width = float("nan")
        if not low <= self.target_width <= high:
            raise ValueError(
                f"{self.folder}: target_width {self.config.get('target_width')!r} is not a "
                f"number in [{low}, {high}]"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def probabilities(self, small: np.ndarray) -> np.ndarray:
        """Output probabilities (``OUTPUTS`` x rows x columns) for a prepared picture."""
        h, w = small.shape
        x = np.pad(small, ((0, -h % MULTIPLE), (0, -w % MULTIPLE)), constant_values=1.0)
        logits = self.session.run(None, {"image": x[None, None].astype(np.float32)})[0][0]
        return 1 / (1 + np.exp(-logits[:, :h, :w]))

    def scale(self, image: np.ndarray, *, polarity: str = "dark") -> float:
        """Network pixels per picture pixel: a chromosome ``target_width`` wide, its width
        measured as the model was trained (config ``width``), times ``apart_scale`` where
        sister chromatids lie apart."""
        width, apart = chromosome_width(image, self.config.get("width", "plain"), polarity=polarity)
        return scale_for(image.shape, width, self.target_width) * (
            self.apart_scale if apart else 1.0
        )

    def detect(
        self, image: np.ndarray, *, polarity: str = "dark", min_chromosomes: int = MIN_CHROMOSOMES
    ) -> Detection:
        """Chromosomes, nuclei and debris of a canonical picture (dark on light, [0, 1]);
        ``polarity``: as stored ("bright": fluorescence, as metasift.io's ImageInfo says)."""
        if image.ndim != 2:
            raise ValueError(f"a canonical picture is 2-D (grey), not of shape {image.shape}")
        scale = self.scale(image, polarity=polarity)
        probs = self.probabilities(resized(image, scale))
        decoded = decode(probs, self.decode_config, width=self.target_width)
        found = findings(decoded, scale, min_chromosomes=min_chromosomes, width=self.target_width)
        return Detection(found, decoded, scale, decoded.count_sd)


def detect_file(path: str | os.PathLike, detector: Detector | None = None, **kw) -> Detection:
    """Detect the chromosomes of a picture file (read with metasift.io)."""
    from ..io import read_image

    image, info = read_image(path)
    kw.setdefault("polarity", info.polarity)
    return (detector or Detector()).detect(image, **kw)

"""A learned chromosome detector: every chromosome, nucleus and particle located, and the three
criteria decided from them through ``metasift.criteria``, as the counter does.

- `_net`: the network (a U-Net on the EfficientNet-Lite0 encoder; PyTorch, for training and
  export only) and its ONNX export;
- `_targets`: the network's view of a picture (resized so a chromosome is a few pixels wide)
  and the targets encoded from instance masks;
- `_decode`: instances from the outputs (centre peaks, watershed), then `Findings`;
- `_infer`: a model folder run on ONNX Runtime (``Detector``), in the core install;
- `_counter`: the detector as the pipeline's counter (``DetectorSettings``, ``detect_read``).

Train one with ``metasift train-detector`` (``metasift.train.detector``).
"""

from ._counter import DetectorSettings, detect_read
from ._decode import DecodeConfig, Decoded, decode, findings, local_peaks
from ._infer import Detection, Detector, default_detector_dir, detect_file
from ._net import ARCH, OUTPUTS
from ._targets import (
    TARGET_WIDTH,
    chromosome_width,
    encode,
    heat_map,
    measure_width,
    resized,
    scale_for,
)

__all__ = [
    "ARCH",
    "OUTPUTS",
    "TARGET_WIDTH",
    "DecodeConfig",
    "Decoded",
    "Detection",
    "Detector",
    "DetectorSettings",
    "chromosome_width",
    "decode",
    "default_detector_dir",
    "detect_file",
    "detect_read",
    "encode",
    "findings",
    "heat_map",
    "local_peaks",
    "measure_width",
    "resized",
    "scale_for",
]

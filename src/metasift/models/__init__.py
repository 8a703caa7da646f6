"""Networks and the model folder they are released as.

- `_registry`: the architectures (``ARCHS``; ``register`` adds one), read by the command
  line's choices and the loader.
- `_weights`: building a network with a new head (``build_model``) from ImageNet or local
  weights.
- `_folder`: the self-describing model folder (``config.json`` with its ``task``,
  ``model.safetensors``, ``model.onnx``, ``thresholds.json``), and the released models
  (``resolve("default")``).

Reading a folder's config needs neither PyTorch nor ONNX Runtime.
"""

from ._folder import (
    FILES,
    FORMAT,
    RELEASED,
    TASKS,
    ModelFolderError,
    default_model_dir,
    export_onnx,
    load_torch_model,
    make_config,
    read_config,
    read_threshold,
    resolve,
    save_weights,
    static_padding,
    write_json,
)
from ._registry import ARCHS, IMAGENET_MEAN, IMAGENET_STD, Arch, get_arch, register
from ._weights import PretrainedWeightsError, build_model, read_state

__all__ = [
    "ARCHS",
    "FILES",
    "FORMAT",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RELEASED",
    "TASKS",
    "Arch",
    "ModelFolderError",
    "PretrainedWeightsError",
    "build_model",
    "default_model_dir",
    "export_onnx",
    "get_arch",
    "load_torch_model",
    "make_config",
    "read_config",
    "read_state",
    "read_threshold",
    "register",
    "resolve",
    "save_weights",
    "static_padding",
    "write_json",
]

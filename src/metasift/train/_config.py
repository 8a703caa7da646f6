"""Training settings: the recipes and the config that records a run."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ..models import ARCHS

RECIPES = {
    # the reference paper, exactly
    "paper": dict(arch="inception_v3", input_size=299, epochs=20, batch_size=32, lr=1e-3),
    # what a 2-core CPU trains in minutes: EfficientNet-Lite0 from ImageNet at its native size
    # a square around the chromosomes rather than the whole frame (metasift.crop)
    "cpu": dict(
        arch="efficientnet_lite0", input_size=224, crop="spread", epochs=12, batch_size=32, lr=1e-3
    ),
}
CROPS = ("none", "spread")


@dataclass
class TrainConfig:
    recipe: str = "paper"  # paper: Inception v3 as published; cpu: EfficientNet-Lite0, fewer epochs
    arch: str = "inception_v3"  # backbone, see metasift.models.ARCHS
    input_size: int = 299  # pictures are resized to input_size x input_size (paper: 299)
    crop: str = "none"  # none: the whole picture (paper); spread: the square around the chromosomes
    epochs: int = 20  # paper: 20
    batch_size: int = 32  # paper: 32
    lr: float = 1e-3  # initial learning rate (paper: 0.001)
    lr_decay: float = 0.9  # per epoch, exponential, as in the reference paper
    beta1: float = 0.9  # Adam, TensorFlow defaults used by the paper
    beta2: float = 0.999
    dropout: float = 0.2  # before the new linear layer (paper: 0.2)
    aux_weight: float = 0.4  # Inception v3 auxiliary logits' share of the loss (Szegedy et al.)
    pretrained: str = "imagenet"  # imagenet or none
    weights: str = ""  # a local weights file instead of the ImageNet download
    max_angle: float = 10.0  # small random rotation on top of the 90-degree turns, in degrees
    augment: bool = True  # flips and rotations, as in the paper
    target_sensitivity: float = 0.0  # > 0: threshold on p(reject) for this sensitivity; 0: 0.5
    seed: int = 0  # splits, augmentation, initialisation and dropout
    workers: int = -1  # data loading processes; -1: all cores
    max_steps: int = 0  # stop each epoch after this many batches (0: all); for smoke tests
    device: str = "auto"  # auto (CUDA when there), cpu or cuda
    synthetic_data: bool = False  # say in config.json that the training pictures were synthetic

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, not {self.recipe!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}, not {self.crop!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.input_size < 32:
            raise ValueError("epochs and batch_size must be >= 1 and input_size >= 32")
        if not (0 < self.lr < 1 and 0 < self.lr_decay <= 1 and 0 <= self.dropout < 1):
            raise ValueError("need 0 < lr < 1, 0 < lr_decay <= 1 and 0 <= dropout < 1")
        if not 0 <= self.target_sensitivity <= 1:
            raise ValueError("target_sensitivity must be in [0, 1] (0: threshold 0.5)")
        if self.arch == "inception_v3" and self.input_size < 299:
            raise ValueError("inception_v3 needs input_size >= 299 (its auxiliary classifier)")

    @classmethod
    def resolve(cls, recipe: str = "paper", file: str | os.PathLike | None = None, **overrides):
        """Recipe defaults, then a YAML file, then explicit overrides (flags)."""
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, not {recipe!r}")
        values = dict(RECIPES[recipe], recipe=recipe)
        if file:
            import yaml

            loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
            unknown = set(loaded) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(f"{file}: unknown settings {sorted(unknown)}")
            values.update(loaded)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

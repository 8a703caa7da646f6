"""Training: the loop shared by every task (`_engine`), its settings (`_config`), what a run
leaves beside the model (`_outputs`), and each task's own start and finish (`classifier`)."""

from ._config import CROPS, RECIPES, TrainConfig
from .classifier import choose_threshold, evaluate_logits, train

__all__ = ["CROPS", "RECIPES", "TrainConfig", "choose_threshold", "evaluate_logits", "train"]

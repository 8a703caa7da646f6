"""``metasift train`` and ``metasift evaluate``: a classifier from labelled pictures, and its
figures on held-out ones."""

from __future__ import annotations

from pathlib import Path

from ..models._registry import ARCHS
from ._common import HelpFormatter


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a classifier on labelled pictures",
        formatter_class=HelpFormatter,
        description="Fine-tune a CNN on labelled pictures and write a model folder. "
        "DATA is an ImageFolder (keep/ reject/, or available/ mixed/ debris/ too_few/, "
        "optionally under train/ val/ test/) or a CSV manifest path,label[,reasons][,group][,split] "
        "(image or file for path, reason for reasons; rows labelled borderline or unsure are "
        "left out). "
        "Defaults follow --recipe; flags and --config override it.",
    )
    p.add_argument("data", type=Path, metavar="DATA")
    p.add_argument(
        "--out", type=Path, required=True, metavar="MODEL_DIR", help="new folder for the model"
    )
    p.add_argument(
        "--recipe",
        default="paper",
        choices=("paper", "cpu"),
        help="paper: Inception v3 at 299, 20 epochs (Jang et al.); cpu: EfficientNet-Lite0 at 224, 12 epochs",
    )
    p.add_argument("--config", type=Path, help="YAML file of settings (see MODEL_DIR/config.yaml)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in MODEL_DIR")
    p.add_argument(
        "--init",
        type=Path,
        metavar="MODEL_DIR",
        help="start from another model (a folder, or 'default': the bundled one) to fine-tune it",
    )
    net = p.add_argument_group("model")
    net.add_argument(
        "--arch",
        choices=tuple(ARCHS),  # the registry (metasift.models)
    )
    net.add_argument("--input-size", type=int)
    net.add_argument(
        "--crop",
        choices=("spread", "none"),
        help="look at the square around the chromosomes (cpu recipe) or the whole picture (paper)",
    )
    net.add_argument("--pretrained", choices=("imagenet", "none"))
    net.add_argument("--weights", help="local weights file (.safetensors or .pth) for the backbone")
    net.add_argument("--dropout", type=float)
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int)
    opt.add_argument("--batch-size", type=int)
    opt.add_argument("--lr", type=float)
    opt.add_argument("--lr-decay", type=float)
    opt.add_argument("--seed", type=int)
    opt.add_argument("--workers", type=int)
    opt.add_argument("--max-steps", type=int, help="batches per epoch at most (smoke tests)")
    opt.add_argument(
        "--target-sensitivity",
        type=float,
        help="lower the p_reject threshold until this share of the validation rejects is caught "
        "(unset: 0.5)",
    )
    opt.add_argument("--device", choices=("auto", "cpu", "cuda"))
    opt.add_argument(
        "--synthetic-data",
        action="store_true",
        default=None,
        help="record in config.json that the pictures were synthetic",
    )
    p.set_defaults(handler=_train)

    p = sub.add_parser(
        "evaluate",
        help="measure a model on labelled pictures",
        formatter_class=HelpFormatter,
        description="Test loss, accuracy, balanced accuracy, per-class figures, "
        "keep/reject sensitivity and specificity, ROC AUC, the confusion matrix and "
        "the misclassified files. Uses DATA's test split when it has one.",
    )
    p.add_argument("model", type=Path, metavar="MODEL_DIR")
    p.add_argument("data", type=Path, metavar="DATA")
    p.add_argument(
        "--json", type=Path, help="also write the figures here (and the confusion matrix as .png)"
    )
    p.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    p.set_defaults(handler=_evaluate)


def _train(args) -> int:
    from ..train import TrainConfig, train

    overrides = {
        k: getattr(args, k)
        for k in (
            "arch",
            "input_size",
            "crop",
            "pretrained",
            "weights",
            "dropout",
            "epochs",
            "batch_size",
            "lr",
            "lr_decay",
            "seed",
            "workers",
            "max_steps",
            "target_sensitivity",
            "device",
            "synthetic_data",
        )
    }
    if args.init:
        from ..models import read_config, resolve

        args.init = resolve(args.init)  # a folder or a released name ("default")
        init = read_config(args.init)
        overrides.update(
            arch=init["arch"],
            input_size=args.input_size or init["input_size"],  # a CNN adapts to a new size
            crop=args.crop or init.get("crop", "none"),  # and looks at what it learnt on
            weights=str(args.init / "model.safetensors"),
        )
    config = TrainConfig.resolve(args.recipe, args.config, **overrides)
    train(args.data, args.out, config, resume=args.resume)
    return 0


def _evaluate(args) -> int:
    from ..evaluate import evaluate

    evaluate(args.model, args.data, backend=args.backend, json_path=args.json)
    return 0

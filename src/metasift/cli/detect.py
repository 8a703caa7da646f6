"""``metasift train-detector``: the chromosome detector from pictures with instance masks."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "train-detector",
        help="train the chromosome detector on pictures with instance masks",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train the chromosome detector (a U-Net on EfficientNet-Lite0 that marks "
        "chromosome centres, outlines, centromeres, nuclei and debris) and write a model "
        "folder (config.json with task detect, model.safetensors, model.onnx). DATA are "
        "'metasift synth --masks' folders (one whose name contains 'val' validates) and real "
        "sets with manifest.csv naming karyotype_mask or chromosome_boxes per image.",
    )
    p.add_argument("data", nargs="+", type=Path, metavar="DATA")
    p.add_argument(
        "--out", type=Path, required=True, metavar="MODEL_DIR", help="new folder for the model"
    )
    p.add_argument("--config", type=Path, help="YAML file of settings (see MODEL_DIR/config.yaml)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in MODEL_DIR")
    split = p.add_argument_group(
        "real sets' slides (manifest.csv's slide column; a picture without one is a slide of "
        "its own named by its image column, e.g. images/1.png)"
    )
    split.add_argument("--val-slides", help="comma-separated: validate on these, not train")
    split.add_argument("--test-slides", help="comma-separated: held out, never read")
    opt = p.add_argument_group("optimisation (defaults: metasift.train.detector)")
    for flag, kind in (
        ("--epochs", int),
        ("--steps", int),
        ("--batch-size", int),
        ("--crop", int),
        ("--lr", float),
        ("--lr-decay", float),
        ("--real-share", float),
        ("--scale-jitter", float),
        ("--zoom", float),
        ("--detail", float),
        ("--ema", float),
        ("--debris-weight", float),
        ("--max-val", int),
        ("--seed", int),
        ("--workers", int),
        ("--max-steps", int),
    ):
        opt.add_argument(flag, type=kind)
    opt.add_argument("--pretrained", choices=("imagenet", "none"))
    opt.add_argument(
        "--clean-karyotypes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a karyotype mask's chromosome pixels (overlaps too) teach not-nucleus, not-debris "
        "(validation pictures' loss too)",
    )
    opt.add_argument("--init", metavar="MODEL_DIR", help="start from this detector (fine-tune)")
    opt.add_argument(
        "--width",
        choices=("plain", "bodies"),
        help="chromosome width: as the counter measures it, or whole bodies where sister "
        "chromatids lie apart in bright-field pictures (metasift.detect.chromosome_width; such "
        "pictures are then seen apart_scale times smaller, chosen at the end of training)",
    )
    opt.add_argument(
        "--target-width",
        type=float,
        metavar="PIXELS",
        help="chromosome width at the network's input (3-14; default 7): fewer pixels, a "
        "faster network (config target_width)",
    )
    opt.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.set_defaults(handler=_train_detector)


def _train_detector(args) -> int:
    from ..train.detector import DetectTrainConfig, train_detector

    names = (
        "epochs steps batch_size crop lr lr_decay real_share scale_jitter zoom detail target_width ema "
        "debris_weight max_val "
        "seed workers "
        "max_steps pretrained clean_karyotypes init width device val_slides test_slides"
    ).split()
    config = DetectTrainConfig.resolve(args.config, **{k: getattr(args, k) for k in names})
    train_detector(args.data, args.out, config, resume=args.resume)
    return 0

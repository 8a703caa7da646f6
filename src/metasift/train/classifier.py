"""Fine-tune a CNN classifier on a lab's labelled pictures, as the reference paper does
(Jang et al.).

The paper's recipe is the default: Inception v3 at 299x299 from ImageNet weights, Adam
(beta1 0.9, beta2 0.999), batch 32, 20 epochs, learning rate 0.001 decayed by 0.9 per epoch,
dropout 0.2, flips and rotations, and the model of the epoch with the lowest validation loss.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..data import SPLITS, ArrayDataset, discover, load_resized
from ..models import ARCHS, build_model, export_onnx, make_config, write_json
from ._config import TrainConfig
from ._engine import end_epoch, model_folder, progress_line, restore, train_one_epoch
from ._outputs import write_yaml


def train(
    data: str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig,
    *,
    resume: bool = False,
    log=print,
) -> dict:
    """Train on ``data`` and write the model folder ``out``; returns the config.json dict."""
    import torch

    out, checkpoint = Path(out), model_folder(out, resume)

    dataset = discover(data, seed=config.seed)
    for split in ("train", "val"):
        if not dataset.splits[split]:
            raise ValueError(f"{data}: the {split} split is empty; add pictures")
    workers = (os.cpu_count() or 1) if config.workers < 0 else config.workers
    device = torch.device(
        "cuda"
        if config.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if config.device == "auto"
        else config.device
    )
    torch.set_num_threads(os.cpu_count() or 1)
    mean, std = ARCHS[config.arch].mean, ARCHS[config.arch].std

    log(f"recipe {config.recipe}: {RECIPE_WHY[config.recipe]}")
    if config.recipe == "paper" and device.type == "cpu":
        log("  (no GPU here: the paper's recipe takes hours on a CPU; --recipe cpu takes minutes)")
    skipped = ", ".join(f"{n} labelled {label}" for label, n in dataset.skipped.items())
    log(
        f"reading {sum(len(v) for v in dataset.splits.values())} pictures from {data} "
        f"(classes: {', '.join(dataset.classes)})" + (f"; left out: {skipped}" if skipped else "")
    )
    # every picture of every split is read once, so all unreadable files are listed together
    everything = [s for split in SPLITS for s in dataset.splits[split]]
    loaded = load_resized(everything, config.input_size, workers, crop=config.crop == "spread")
    cuts = np.cumsum([0] + [len(dataset.splits[split]) for split in SPLITS])
    images = {split: loaded[cuts[i] : cuts[i + 1]] for i, split in enumerate(SPLITS)}
    train_set = ArrayDataset(
        images["train"],
        dataset.targets("train"),
        mean,
        std,
        augment=config.augment,
        seed=config.seed,
    )
    val_set = ArrayDataset(images["val"], dataset.targets("val"), mean, std)

    torch.manual_seed(config.seed)
    model = build_model(
        config.arch,
        len(dataset.classes),
        dropout=config.dropout,
        pretrained=config.pretrained,
        weights_file=config.weights or None,
    )
    model.to(device, memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)
    )
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=config.lr_decay)
    state = dict(epoch=0, best_loss=float("inf"), best_epoch=0, history=[])
    if resume:
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        if _without_epochs(saved["config"]) != _without_epochs(asdict(config)):
            raise ValueError(
                f"{checkpoint}: was made with other settings; resume with the same ones "
                "(only --epochs and --target-sensitivity may change)"
            )
        state = restore(saved, model, optimiser, schedule)
        log(f"resuming after epoch {state['epoch']}")
    write_yaml(out / "config.yaml", asdict(config))

    amp = device.type == "cuda"
    # on a CPU the network needs the cores; on a GPU, augmentation is the bottleneck
    loader_workers = workers if amp else min(workers, 4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def loss_fn(output, y):
        if isinstance(output, tuple):  # Inception v3 in training: (logits, aux_logits)
            loss = torch.nn.functional.cross_entropy(output[0], y)
            return loss + config.aux_weight * torch.nn.functional.cross_entropy(
                output[1], y
            ), output[0]
        return torch.nn.functional.cross_entropy(output, y), output

    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        start = time.perf_counter()
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout: same in a resumed run
        train_set.epoch = epoch
        order = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        loader = torch.utils.data.DataLoader(
            train_set,
            batch_size=config.batch_size,
            shuffle=True,
            generator=order,
            num_workers=loader_workers if len(train_set) > 64 else 0,
            drop_last=len(train_set) > config.batch_size,
        )
        fit = train_one_epoch(
            model,
            loader,
            optimiser,
            scaler,
            device,
            loss_fn,
            max_steps=config.max_steps,
            progress=progress_line(epoch, config.epochs, start),
        )
        val = evaluate_logits(model, val_set, config.batch_size, device)
        lr = optimiser.param_groups[0]["lr"]
        schedule.step()
        row = dict(
            epoch=epoch,
            train_loss=fit["loss"],
            train_accuracy=fit["accuracy"],
            val_loss=val["loss"],
            val_accuracy=val["accuracy"],
            lr=lr,
            seconds=time.perf_counter() - start,
            images_per_s=fit["seen"] / (time.perf_counter() - start),
        )
        state["history"].append(row)
        log(
            f"epoch {epoch}/{config.epochs}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}"
            f" | val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f} | {row['seconds']:.0f} s"
        )
        # the paper keeps the epoch of lowest validation loss
        end_epoch(out, model, optimiser, schedule, state, config, epoch, val["loss"])

    # the best epoch's weights become the model
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(out / "model.safetensors")))
    model.eval()
    val = evaluate_logits(model, val_set, config.batch_size, device)
    threshold = choose_threshold(val["p_reject"], val["is_reject"], config.target_sensitivity)
    write_json(out / "thresholds.json", threshold)
    test_figures = {}
    if len(images["test"]):
        test_set = ArrayDataset(images["test"], dataset.targets("test"), mean, std)
        test = evaluate_logits(model, test_set, config.batch_size, device)
        keep_right = (test["p_reject"] >= threshold["p_reject"]) == test["is_reject"]
        test_figures = dict(
            n=len(test_set),
            loss=test["loss"],
            accuracy=test["accuracy"],
            keep_reject_accuracy=float(keep_right.mean()),
        )
        log(
            f"test split: {len(test_set)} pictures, loss {test['loss']:.4g}, accuracy "
            f"{test['accuracy']:.4f}, keep/reject accuracy {test_figures['keep_reject_accuracy']:.4f}"
        )
    warnings = _caveats(val, threshold["p_reject"], "the validation split")
    if len(images["test"]):
        warnings += _caveats(test, threshold["p_reject"], "the test split")
    else:
        warnings.append("no test split: the model has not been measured on held-out pictures")
    for warning in warnings:
        log(f"warning: {warning}")
    best = state["history"][state["best_epoch"] - 1]
    meta = make_config(
        config.arch,
        dataset.classes,
        input_size=config.input_size,
        crop=config.crop,
        pretrained=config.pretrained if not config.weights else f"file:{Path(config.weights).name}",
        recipe=config.recipe,
        trained_on=dataset.summary(),
        synthetic_training_data=config.synthetic_data,
        note=(
            "Trained on synthetic pictures only: fine-tune on your own labelled pictures before "
            "real use (metasift train DATA --out MODEL_DIR --init default)."
            if config.synthetic_data
            else ""
        ),
        best_epoch=state["best_epoch"],
        validation=dict(
            loss=best["val_loss"],
            accuracy=best["val_accuracy"],
            sensitivity=threshold["val_sensitivity"],
            specificity=threshold["val_specificity"],
        ),
        test=test_figures,
        warnings=warnings,
        trained_with=f"metasift {__version__}, torch {torch.__version__}, device {device.type}",
    )
    write_json(out / "config.json", meta)
    diff = export_onnx(model.cpu(), out, config.input_size)
    log(
        f"model folder {out}: best epoch {state['best_epoch']} (val loss {best['val_loss']:.4f}, "
        f"accuracy {best['val_accuracy']:.4f}); ONNX matches PyTorch to {diff:.1e}"
    )
    return meta


RECIPE_WHY = {
    "paper": "Inception v3 at 299 x 299 from ImageNet weights, 20 epochs: the reference "
    "paper's method (Jang et al.), exactly",
    "cpu": "EfficientNet-Lite0 at 224 x 224 on the square around the chromosomes, 12 epochs: "
    "trains in minutes on a CPU",
}


def _caveats(figures: dict, threshold: float, where: str) -> list[str]:
    """What keeps ``figures`` (from evaluate_logits) from meaning anything, in words."""
    from ..evaluate import caveats, roc_auc

    is_reject = figures["is_reject"]
    predicted = figures["p_reject"] >= threshold
    binary = dict(
        accuracy=float(np.mean(predicted == is_reject)) if len(is_reject) else float("nan"),
        sensitivity=float(predicted[is_reject].mean()) if is_reject.any() else float("nan"),
        specificity=float((~predicted[~is_reject]).mean()) if (~is_reject).any() else float("nan"),
        roc_auc=roc_auc(figures["p_reject"], is_reject),
    )
    return caveats(binary, int((~is_reject).sum()), int(is_reject.sum()), where)


def _without_epochs(settings: dict) -> dict:
    """Settings that shape training; the number of epochs and the threshold rule may change."""
    return {k: v for k, v in settings.items() if k not in ("epochs", "target_sensitivity")}


def evaluate_logits(model, dataset: ArrayDataset, batch_size: int, device) -> dict:
    """Loss, accuracy and p(reject) of ``model`` on a prepared data set."""
    import torch

    model.eval()
    probs, targets = [], []
    with torch.no_grad():
        for i in range(0, len(dataset), batch_size):
            items = [dataset[j] for j in range(i, min(i + batch_size, len(dataset)))]
            x = torch.from_numpy(np.stack([a for a, _ in items])).to(
                device, memory_format=torch.channels_last
            )
            probs.append(torch.softmax(model(x).float(), 1).cpu().numpy())
            targets += [int(t) for _, t in items]
    p = np.concatenate(probs) if probs else np.zeros((0, 1))
    y = np.array(targets, dtype=np.int64)
    loss = (
        float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))))
        if len(y)
        else float("nan")
    )
    return dict(
        loss=loss,
        accuracy=float(np.mean(p.argmax(1) == y)) if len(y) else float("nan"),
        p_reject=1 - p[:, 0],
        is_reject=y != 0,
        probs=p,
        targets=y,
    )


def choose_threshold(p_reject, is_reject, target: float = 0.0) -> dict:
    """The decision threshold on p(reject), with its sensitivity and specificity on validation.

    ``target`` > 0: the highest threshold up to 0.5 whose sensitivity (rejects caught) reaches it.
    ``target`` = 0: 0.5, the more probable answer. (Balancing sensitivity and specificity, as
    Youden's J does, chose 0.71-0.81 in three of five runs of the cpu recipe, which then let
    12-13% of the held-out bad pictures through, against 5-6% at 0.5.)
    """
    p_reject, is_reject = np.asarray(p_reject, float), np.asarray(is_reject, bool)
    threshold = 0.5
    if target > 0 and is_reject.any():
        scores = np.sort(p_reject[is_reject])
        k = int(np.floor((1 - target) * len(scores)))  # rejects allowed to slip under
        threshold = float(min(0.5, scores[k])) if k < len(scores) else 0.5
    pred = p_reject >= threshold
    sens = float(pred[is_reject].mean()) if is_reject.any() else float("nan")
    spec = float((~pred[~is_reject]).mean()) if (~is_reject).any() else float("nan")
    rule = f"sensitivity >= {target}" if target > 0 else "0.5 (default)"
    return dict(
        p_reject=threshold,
        rule=rule,
        target_sensitivity=target or None,
        val_sensitivity=sens,
        val_specificity=spec,
        chosen_on="validation split",
    )

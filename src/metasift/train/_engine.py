"""The training loop's parts that do not depend on the task (classifier now, detector next):
one epoch of optimisation, the checkpoint a run resumes from, the progress bar."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..atomic import atomic_path


def train_one_epoch(
    model, loader, optimiser, scaler, device, loss_fn, *, max_steps: int, progress
) -> dict:
    """One pass over ``loader``; ``loss_fn(output, y)`` gives (loss, logits). Returns the
    epoch's mean loss, accuracy and the number of pictures seen."""
    import torch

    amp = device.type == "cuda"
    model.train()
    seen, loss_sum, correct = 0, 0.0, 0
    steps = min(len(loader), max_steps or len(loader))
    for step, (x, y) in enumerate(loader, 1):
        x = x.to(device, memory_format=torch.channels_last)
        y = y.to(device)
        with torch.autocast(device.type, enabled=amp):
            loss, logits = loss_fn(model(x), y)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        seen += len(y)
        loss_sum += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        progress(step, steps, loss_sum / seen, correct / seen, seen)
        if step >= steps:
            break
    return dict(loss=loss_sum / seen, accuracy=correct / seen, seen=seen)


def progress_line(epoch: int, epochs: int, start: float):
    """A function ``show(step, steps, loss, acc, seen)`` that draws the epoch's progress: a bar
    on a terminal (tqdm), nothing in a log file, where each epoch's summary line is enough."""
    bar = None

    def show(step, steps, loss, acc, seen):
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(
                total=steps,
                desc=f"epoch {epoch}/{epochs}",
                unit="batch",
                leave=False,
                file=sys.stderr,
                disable=not sys.stderr.isatty(),
            )
        rate = seen / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix_str(f"loss {loss:.4f} acc {acc:.3f} {rate:.1f} img/s", refresh=False)
        bar.update(step - bar.n)
        if step >= steps:
            bar.close()

    return show


def model_folder(out, resume: bool) -> Path:
    """Make the training's output folder ``out`` (a new or empty one, or with ``resume`` one
    holding a checkpoint) and return its checkpoint's path."""
    out = Path(out)
    checkpoint = out / "checkpoint.pt"
    if resume and not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: nothing to resume")
    if not resume and out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder or pass --resume")
    out.mkdir(parents=True, exist_ok=True)
    return checkpoint


def save_checkpoint(path: Path, model, optimiser, schedule, state, config, averaged=None) -> None:
    import torch

    saved = dict(
        model=model.state_dict(),
        optimiser=optimiser.state_dict(),
        schedule=schedule.state_dict(),
        state=state,
        config=asdict(config),
    )
    if averaged is not None:
        saved["averaged"] = averaged.state_dict()
    with atomic_path(path) as tmp:
        torch.save(saved, tmp)


def restore(saved: dict, model, optimiser, schedule, averaged=None) -> dict:
    """Load a checkpoint written by `save_checkpoint` into the model, optimiser and schedule
    (and the averaged weights, when the run keeps them); returns the training state it holds
    (epoch, best score, history)."""
    model.load_state_dict(saved["model"])
    optimiser.load_state_dict(saved["optimiser"])
    schedule.load_state_dict(saved["schedule"])
    if averaged is not None:
        averaged.load_state_dict(saved["averaged"])
    return saved["state"]


def end_epoch(
    out: Path, model, optimiser, schedule, state: dict, config, epoch: int, score, averaged=None
):
    """After each epoch: keep the weights when ``score`` is the lowest yet (model.safetensors;
    the ``averaged`` model's when there is one), then the checkpoint a run resumes from and the
    history with its curves."""
    from ..models import save_weights
    from ._outputs import write_history

    if not score >= state["best_loss"]:  # a NaN score is never "the best" over a real one
        state["best_loss"], state["best_epoch"] = score, epoch
        save_weights(averaged if averaged is not None else model, out)
    state["epoch"] = epoch
    save_checkpoint(out / "checkpoint.pt", model, optimiser, schedule, state, config, averaged)
    write_history(out, state["history"])

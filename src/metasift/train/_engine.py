"""The training loop's parts that do not depend on the task (classifier now, detector next):
one epoch of optimisation, the checkpoint a run resumes from, the progress line."""

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
    """A function that redraws the epoch's progress line on stderr."""

    def show(step, steps, loss, acc, seen):
        width = 24
        done = int(width * step / max(steps, 1))
        rate = seen / max(time.perf_counter() - start, 1e-9)
        sys.stderr.write(
            f"\repoch {epoch}/{epochs} [{'#' * done}{'.' * (width - done)}] {step}/{steps} "
            f"loss {loss:.4f} acc {acc:.3f} {rate:.1f} img/s"
        )
        sys.stderr.flush()

    return show


def save_checkpoint(path: Path, model, optimiser, schedule, state, config) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(
            dict(
                model=model.state_dict(),
                optimiser=optimiser.state_dict(),
                schedule=schedule.state_dict(),
                state=state,
                config=asdict(config),
            ),
            tmp,
        )

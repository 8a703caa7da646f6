"""How precisely can a small network trained on synthetic pictures count chromosomes?

Issue 3's keep/reject target turns, for pictures with 37-42 chromosomes, on telling 39 from 40.
The classifier counts to about +-1.3 chromosomes; this benchmark measures what a network made
for counting does: a small U-Net that marks each chromosome's centre (the middle of its centre
line, from the synthetic annotations) on the picture at half size, trained with the focal loss
of CenterNet on random patches; the count is the number of peaks above a threshold chosen on
held-out training pictures. It prints, for the single-spread test pictures (available,
too_few), the count error and how often "fewer than 40" by this count matches the label, on
all of them and on the 168-odd with 37-42 chromosomes.

    python benchmarks/count_network.py [--train DIR] [--test DIR] [--steps 3800] [--device cpu]

DIR: folders written by `metasift synth` (annotations included); default: bench_out/synth_train
(4,000 pictures, seed 1) and bench_out/synth_test (1,000, seed 2), written when missing.
Needs the training extra (PyTorch). A research probe, not part of metasift.
"""

import argparse
import csv
import itertools
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from metasift.count._counter import _block_mean
from metasift.criteria import MIN_CHROMOSOMES
from metasift.io import read_image

SIGMA = 1.5  # pixels at half size: the spot drawn at each centre
VALIDATION = 200  # training pictures held out to choose the peak threshold


def load_one(job):
    root, row = job
    image, _ = read_image(root / row["path"])
    half = _block_mean(image, 2)
    ann = json.loads((root / "annotations" / f"{Path(row['path']).stem}.json").read_text())
    centres = [c["centerline"][len(c["centerline"]) // 2] for c in ann["chromosomes"]]
    return (1 - half).astype(np.float16), np.array(centres, np.float32).reshape(-1, 2) / 2


def load(root: Path, workers: int):
    rows = list(csv.DictReader(open(root / "labels.csv", newline="")))
    with ProcessPoolExecutor(workers) as pool:
        loaded = list(pool.map(load_one, [(root, r) for r in rows], chunksize=8))
    return rows, np.stack([p for p, _ in loaded]), [c for _, c in loaded]


def network():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def block(i, o):
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
            nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
        )  # fmt: skip

    class UNet(nn.Module):
        def __init__(self, c=(16, 32, 64, 96)):
            super().__init__()
            pairs = list(itertools.pairwise(c))  # (16, 32), (32, 64), (64, 96)
            self.down = nn.ModuleList([block(1, c[0]), *(block(a, b) for a, b in pairs)])
            self.up = nn.ModuleList(block(b + a, a) for a, b in reversed(pairs))
            self.out = nn.Conv2d(c[0], 1, 1)
            nn.init.constant_(self.out.bias, -2.19)  # p = 0.1 everywhere at the start

        def forward(self, x):
            skips = []
            for k, layer in enumerate(self.down):
                x = layer(x if k == 0 else F.max_pool2d(x, 2))
                skips.append(x)
            x = skips.pop()
            for layer in self.up:
                skip = skips.pop()
                x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
                x = layer(torch.cat([x, skip], 1))
            return self.out(x)

    return UNet()


def spots(centres, r0, c0, h, w):
    """The target: a Gaussian spot (peak 1) at each centre, over the patch at (r0, c0)."""
    rows = np.arange(h, dtype=np.float32)[:, None] + r0
    cols = np.arange(w, dtype=np.float32)[None, :] + c0
    out = np.zeros((h, w), np.float32)
    for r, c in centres:
        if r0 - 8 <= r < r0 + h + 8 and c0 - 8 <= c < c0 + w + 8:
            out = np.maximum(out, np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * SIGMA**2)))
    return out


def focal_loss(logits, target):
    """CenterNet's penalty-reduced focal loss."""
    import torch

    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    centre = target.ge(0.99).float()
    pos = torch.log(p) * (1 - p) ** 2 * centre
    neg = torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - centre)
    return -(pos.sum() + neg.sum()) / centre.sum().clamp(min=1)


def train(net, images, centres, args, device):
    import torch

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    opt = torch.optim.Adam(net.parameters(), args.lr)
    n, h, w = images.shape
    size = args.patch
    start, running = time.perf_counter(), None
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:  # cosine decay to zero
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.steps))
        xs, ys = [], []
        for _ in range(args.batch):
            i = rng.integers(n)
            if len(centres[i]) and rng.random() < 0.7:  # most patches around a chromosome
                r, c = centres[i][rng.integers(len(centres[i]))]
                r0 = int(np.clip(r - rng.integers(size), 0, h - size))
                c0 = int(np.clip(c - rng.integers(size), 0, w - size))
            else:
                r0, c0 = rng.integers(h - size + 1), rng.integers(w - size + 1)
            x = images[i, r0 : r0 + size, c0 : c0 + size].astype(np.float32)
            y = spots(centres[i], r0, c0, size, size)
            k = rng.integers(4)
            x, y = np.rot90(x, k), np.rot90(y, k)
            if rng.random() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            xs.append(x * rng.uniform(0.7, 1.3) + rng.normal(0, 0.01))  # exposure
            ys.append(y.copy())
        x = torch.from_numpy(np.stack(xs)[:, None]).to(device)
        y = torch.from_numpy(np.stack(ys)[:, None]).to(device)
        loss = focal_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 200 == 0 or step == args.steps:
            print(
                f"  step {step}/{args.steps}: loss {running:.3f}, {time.perf_counter() - start:.0f} s"
            )


def peak_maps(net, images, device, batch=2):
    """For each picture, the heights of the local maxima of its centre map (above 0.1)."""
    import torch
    import torch.nn.functional as F

    net.eval()
    heights = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch].astype(np.float32)[:, None]).to(device)
            p = torch.sigmoid(net(x))
            peak = (F.max_pool2d(p, 3, 1, 1) == p) & (p > 0.1)
            heights += [p[k][peak[k]].cpu().numpy() for k in range(len(p))]
    return heights


def counts_at(heights, threshold):
    return np.array([int(np.sum(h > threshold)) for h in heights])


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, default=Path("bench_out/synth_train"))
    parser.add_argument("--test", type=Path, default=Path("bench_out/synth_test"))
    parser.add_argument("--steps", type=int, default=3800, help="batches of patches")
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--patch", type=int, default=160, help="pixels, at half size")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="processes reading pictures")
    parser.add_argument("--save", type=Path, help="write the trained weights here")
    args = parser.parse_args()

    import torch

    device = torch.device(args.device)
    for folder, n, seed in ((args.train, 4000, 1), (args.test, 1000, 2)):
        if not (folder / "labels.csv").is_file():
            from metasift.synth import write_dataset

            print(f"writing {n} synthetic pictures (seed {seed}) to {folder}")
            write_dataset(folder, n, seed=seed)
    start = time.perf_counter()
    _, images, centres = load(args.train, args.workers)
    test_rows, test_images, test_centres = load(args.test, args.workers)
    print(
        f"read {len(images)} + {len(test_images)} pictures in {time.perf_counter() - start:.0f} s"
    )

    net = network().to(device)
    start = time.perf_counter()
    held_out = min(VALIDATION, len(images) // 5)
    fit = len(images) - held_out
    train(net, images[:fit], centres[:fit], args, device)
    print(
        f"trained {args.steps} steps of {args.batch} patches in {time.perf_counter() - start:.0f} s"
    )
    if args.save:
        torch.save(net.state_dict(), args.save)

    # the peak threshold: the least mean absolute error on the held-out training pictures
    held = peak_maps(net, images[fit:], device)
    truth = np.array([len(c) for c in centres[fit:]])
    grid = np.round(np.arange(0.15, 0.61, 0.025), 3)
    mae = [np.abs(counts_at(held, t) - truth).mean() for t in grid]
    threshold = float(grid[int(np.argmin(mae))])
    print(f"peak threshold {threshold} (validation MAE {min(mae):.2f}, all classes)")

    start = time.perf_counter()
    counts = counts_at(peak_maps(net, test_images, device), threshold)
    seconds = (time.perf_counter() - start) / len(test_images)
    truth = np.array([len(c) for c in test_centres])
    labels = np.array([r["label"] for r in test_rows])
    err = counts - truth
    single = np.isin(labels, ["available", "too_few"])
    band = single & (truth >= MIN_CHROMOSOMES - 3) & (truth <= MIN_CHROMOSOMES + 2)
    right = (counts < MIN_CHROMOSOMES) == (labels == "too_few")
    print(f"test, {args.test} ({len(truth)} pictures, {seconds:.2f} s each on {args.device}):")
    print(f"  all classes: count MAE {np.abs(err).mean():.2f}, exact {np.mean(err == 0):.0%}")
    e = err[single]
    print(
        f"  single spread ({single.sum()}): count MAE {np.abs(e).mean():.2f}, exact "
        f"{np.mean(e == 0):.0%}, within +-1 {np.mean(np.abs(e) <= 1):.0%}, within +-2 "
        f"{np.mean(np.abs(e) <= 2):.0%}, signed {e.mean():+.2f}"
    )
    print(
        f"  'fewer than {MIN_CHROMOSOMES}' by this count matches the label: "
        f"{right[single].mean():.3f} of the single-spread pictures, {right[band].mean():.3f} of "
        f"the {band.sum()} with {MIN_CHROMOSOMES - 3}-{MIN_CHROMOSOMES + 2} chromosomes"
    )


if __name__ == "__main__":
    main()

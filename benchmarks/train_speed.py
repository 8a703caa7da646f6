"""Training and inference throughput of every backbone on this machine (images/s), the
projected time of the paper's full recipe for Inception v3 (16,400 pictures x 20 epochs), and an
end-to-end run of the paper recipe (`metasift train --recipe paper`, 2 short epochs).

    python benchmarks/train_speed.py [--steps 5] [--batch 16] [--archs ...] [--no-paper-run]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from metasift.models import ARCHS, build_model


def throughput(arch: str, steps: int, batch: int) -> tuple[float, float]:
    size = ARCHS[arch].input_size
    model = build_model(arch, 4, pretrained="none").to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 4, (batch,))
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    model.train()

    def step():
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    train_rate = steps * batch / (time.perf_counter() - start)
    model.eval()
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(steps):
            model(x)
    return train_rate, steps * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    parser.add_argument("--no-paper-run", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, channels_last"
    )
    print(f"{'arch':20s} {'input':>6s} {'train img/s':>12s} {'infer img/s':>12s}")
    rates = {}
    for arch in args.archs:
        train_rate, infer_rate = throughput(arch, args.steps, args.batch)
        rates[arch] = train_rate
        size = ARCHS[arch].input_size
        print(f"{arch:20s} {size:>6d} {train_rate:12.1f} {infer_rate:12.1f}")
    if "inception_v3" in rates:
        hours = 16_400 * 20 / rates["inception_v3"] / 3600
        print(
            f"paper recipe (inception_v3, 16,400 pictures x 20 epochs) projected on this CPU: {hours:.1f} h"
        )
    if args.no_paper_run:
        return
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "model"
        cli = [sys.executable, "-m", "metasift"]
        subprocess.run([*cli, "synth", str(data), "--n", "40", "--seed", "3"], check=True)
        start = time.perf_counter()
        run = subprocess.run(
            [
                *cli,
                "train",
                str(data),
                "--out",
                str(out),
                "--recipe",
                "paper",
                "--pretrained",
                "none",
                "--epochs",
                "2",
                "--max-steps",
                "2",
            ],
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - start
        print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:])
        status = (
            "ran end to end" if run.returncode == 0 and (out / "model.onnx").is_file() else "FAILED"
        )
        print(
            f"paper recipe, 2 epochs x 2 batches of 32 at 299x299 (from scratch: no download here): "
            f"{status} in {took:.0f} s"
        )


if __name__ == "__main__":
    main()

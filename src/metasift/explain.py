"""Why a picture was rejected: an occlusion map (Zeiler & Fergus 2014) over the picture.

Each cell of a grid is covered in turn with background; the drop in p(reject) says how much
that part of the picture drove the decision. It needs only forward passes, so it works with
the ONNX model of the core install as well as with PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .crop import spread_box, view
from .data import normalise
from .io import read_image


def occlusion_map(image: np.ndarray, clf, *, grid: int = 8):
    """grid x grid map of how much p(reject) falls when each cell is hidden (>= 0), and the
    (left, top, right, bottom) box of the picture it covers: what the model looks at."""
    h, w = image.shape
    box = spread_box(image) if clf.crop else None
    small = view(image, clf.size, box=box)
    background = float(np.median(small))
    edges = np.linspace(0, clf.size, grid + 1).astype(int)
    batch = [normalise(small, clf.mean, clf.std)]
    for i in range(grid):
        for j in range(grid):
            hidden = small.copy()
            hidden[edges[i] : edges[i + 1], edges[j] : edges[j + 1]] = background
            batch.append(normalise(hidden, clf.mean, clf.std))
    p_reject = []
    for k in range(0, len(batch), 32):
        p_reject.append(1 - clf.probs(np.stack(batch[k : k + 32]))[:, 0])
    p_reject = np.concatenate(p_reject)
    return np.clip(p_reject[0] - p_reject[1:], 0, None).reshape(grid, grid), box or (0, 0, w, h)


def write_explanation(path: str | Path, clf, row: dict, out_dir: Path, name: str) -> Path:
    """PNG of the picture with the occlusion map over it and the decision written on it."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    image, _ = read_image(path)
    heat, box = occlusion_map(image, clf)
    h, w = image.shape
    scale = 640 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    left, top, right, bottom = (round(v * scale) for v in box)
    seen = (max(1, right - left), max(1, bottom - top))
    base = (
        Image.fromarray((image * 255).astype(np.uint8)).resize(size, Image.BILINEAR).convert("RGB")
    )
    norm = heat / heat.max() if heat.max() > 0 else heat
    colour = (colormaps["inferno"](norm)[..., :3] * 255).astype(np.uint8)
    overlay = Image.fromarray(colour).resize(seen, Image.BICUBIC)
    alpha = Image.fromarray((norm * 150).astype(np.uint8)).resize(seen, Image.BICUBIC)
    base.paste(overlay, (left, top), alpha)
    draw = ImageDraw.Draw(base)
    if seen != size:  # the model looked at this square only
        draw.rectangle((left, top, left + seen[0] - 1, top + seen[1] - 1), outline=(0, 160, 255))
    text = f"{row['decision']}: {row.get('reasons') or '-'}  p_reject {float(row['p_reject']):.3f}"
    draw.rectangle((0, 0, size[0], 18), fill=(0, 0, 0))
    draw.text((4, 3), text, fill=(255, 255, 255))
    target = Path(out_dir) / f"{name}.png"
    with atomic_path(target, ".png") as tmp:
        base.save(tmp)
    return target

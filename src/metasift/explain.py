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
    """``out_dir/name.png``: the picture with the occlusion map over it, the square the model
    looked at labelled, the decision written on it, and a colour scale saying what the colours
    mean."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    image, _ = read_image(path)
    heat, box = occlusion_map(image, clf)
    h, w = image.shape
    scale = 640 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    left, top, right, bottom = (round(v * scale) for v in box)
    seen = (max(1, right - left), max(1, bottom - top))
    band, scale_w = 20, 150
    canvas = Image.new("RGB", (size[0], size[1] + 2 * band), (0, 0, 0))
    picture = Image.fromarray((image * 255).astype(np.uint8)).resize(size, Image.BILINEAR)
    canvas.paste(picture.convert("RGB"), (0, band))
    top_drop = float(heat.max())
    norm = heat / top_drop if top_drop > 0 else heat
    colour = (colormaps["inferno"](norm)[..., :3] * 255).astype(np.uint8)
    overlay = Image.fromarray(colour).resize(seen, Image.BICUBIC)
    # strong enough to see: any cell that mattered is at least half opaque
    alpha = np.where(norm > 0.05, 110 + 110 * norm, 0).astype(np.uint8)
    canvas.paste(overlay, (left, top + band), Image.fromarray(alpha).resize(seen, Image.BICUBIC))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(
        (left, top + band, left + seen[0] - 1, top + band + seen[1] - 1),
        outline=(0, 160, 255),
        width=2,
    )
    draw.text((left + 3, top + band + 2), "what the classifier looked at", fill=(0, 160, 255))
    text = f"{row['decision']}: {row.get('reasons') or '-'}  p_reject {float(row['p_reject']):.3f}"
    draw.text((4, 4), text, fill=(255, 255, 255))
    ramp = (colormaps["inferno"](np.linspace(0, 1, scale_w))[:, :3] * 255).astype(np.uint8)
    y = size[1] + band + 4
    canvas.paste(Image.fromarray(np.repeat(ramp[None], 12, 0)), (4, y))
    draw.text(
        (scale_w + 10, y),
        f"how much hiding that part lowers p_reject: 0 to {top_drop:.3f}",
        fill=(255, 255, 255),
    )
    target = Path(out_dir) / f"{name}.png"
    with atomic_path(target, ".png") as tmp:
        canvas.save(tmp)
    return target

"""Train the chromosome detector (``metasift.detect``) on pictures with instance masks.

Pictures come from any folder ``metasift.annotations.read_targets`` reads: synthetic sets
written with masks, and real sets (karyotype masks, chromosome boxes). Each picture is
resized once so a chromosome is ``target_width`` pixels wide (7 by default; its width measured
on the picture, as at inference), then training draws random crops around its chromosomes, real
pictures a fixed share of them. One epoch is a fixed number of batches; after each, the
network runs on the validation pictures whole, the epoch of the lowest validation loss is the
model, and the decoding settings that count the validation pictures best go with it
(``tune_decoding``). Same conventions as the classifier: config.yaml, checkpoint.pt (``--resume``),
history.csv and curves.png beside the model folder's config.json, model.safetensors and
model.onnx.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import csv
import itertools
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..detect._targets import SIGMA, TARGET_WIDTH
from ..models import make_config, write_json
from ._engine import end_epoch, model_folder, progress_line, restore
from ._outputs import write_yaml


@dataclass
class DetectTrainConfig:
    epochs: int = 20  # 20 x 50 batches of 8 crops: about 40 min on one core of a busy CPU
    steps: int = 50  # batches per epoch (a fixed number: the pictures are cropped at random)
    batch_size: int = 8  # crops per batch
    crop: int = 192  # crop side at the network's scale (27 chromosome widths: much of a spread)
    lr: float = 1e-3  # Adam's initial learning rate, as the classifier's
    lr_decay: float = 0.9  # per epoch, exponential, as the classifier's (an eighth by the 20th)
    real_share: float = 0.5  # share of crops from real pictures (when there are any)
    scale_jitter: float = 0.15  # each training picture's scale times 1 +- this (other optics)
    clean_karyotypes: bool = False  # a karyotype mask's chromosome pixels teach "not nucleus,
    # not debris" (a karyotyped spread is clean; the real sets mark no debris at all otherwise)
    zoom: float = 0.0  # each crop zoomed by a new factor within 1 / (1 + zoom) .. 1 + zoom (a
    # chromosome width misjudged; 0: off); the prepared pictures keep one scale each
    detail: float = 0.0  # share of crops whose chromosomes get a random inner texture (pale and
    # dark patches, then sharpened or not: `_textured`), so that the network splits chromosomes
    # at their outline, not at the bands, grain and glare within them (0: off)
    pretrained: str = "imagenet"  # the encoder starts from ImageNet (imagenet) or not (none)
    init: str = ""  # a detector model folder (or "default") to start from, instead of pretrained
    width: str = "plain"  # how the chromosome width is measured (detect.WIDTHS; config "width")
    target_width: float = TARGET_WIDTH  # pixels a chromosome is wide at the network's input (config
    # "target_width"; fewer: a faster network that sees less of a chromosome's inner detail)
    val_slides: str = ""  # comma-separated slides of a real set to validate on, not train on
    test_slides: str = ""  # comma-separated slides of a real set never read (held out)
    max_val: int = 24  # validation pictures counted after each epoch, at most (its time)
    debris_weight: float = 1.0  # weight of a debris pixel in the debris output's loss (1: as
    # any; debris is a few % of the pixels, and at 1 the output learned to stay below 0.5)
    ema: float = 0.0  # weights averaged over the steps with this decay at most (0: off);
    # the decay warms up as (1 + step) / (10 + step) (0.985 after 600 steps, 0.995 after
    # 1,800), so a short run averages over fewer steps; validation and the saved model use the
    # average (steadier than the last step's weights)
    seed: int = 0  # crops, augmentation and initialisation
    workers: int = -1  # processes preparing the pictures and drawing crops; -1: all cores
    max_steps: int = 0  # stop each epoch after this many batches (0: `steps`); smoke tests
    device: str = "auto"  # auto (CUDA when there), cpu or cuda

    def __post_init__(self):
        if min(self.epochs, self.steps, self.batch_size) < 1:
            raise ValueError("epochs, steps and batch_size must be 1 or more")
        if self.crop < 64 or self.crop % 32:
            raise ValueError(f"crop must be a multiple of 32, at least 64, not {self.crop}")
        if not (0 < self.lr < 1 and 0 < self.lr_decay <= 1):
            raise ValueError("need 0 < lr < 1 and 0 < lr_decay <= 1")
        if not (0 <= self.real_share <= 1 and 0 <= self.scale_jitter < 0.5):
            raise ValueError("need 0 <= real_share <= 1 and 0 <= scale_jitter < 0.5")
        if not isinstance(self.clean_karyotypes, bool):
            raise ValueError(
                f"clean_karyotypes must be true or false, not {self.clean_karyotypes!r}"
            )
        if not 0 <= self.zoom <= 1:
            raise ValueError(f"zoom must be within 0 (off) and 1, not {self.zoom}")
        if not 0 <= self.detail <= 1:
            raise ValueError(f"detail must be a share within 0 (off) and 1, not {self.detail}")
        if self.pretrained not in ("imagenet", "none"):
            raise ValueError(f"pretrained must be imagenet or none, not {self.pretrained!r}")
        if not self.debris_weight >= 1:
            raise ValueError(f"debris_weight must be 1 or more, not {self.debris_weight}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be 0 (off) or a decay below 1, not {self.ema}")
        from ..detect._targets import TARGET_WIDTHS, WIDTHS

        if self.width not in WIDTHS:
            raise ValueError(f"width must be one of {WIDTHS}, not {self.width!r}")
        low, high = TARGET_WIDTHS
        if not low <= self.target_width <= high:
            raise ValueError(
                f"target_width must be within {low} and {high}, not {self.target_width}"
            )

    @classmethod
    def resolve(cls, file: str | os.PathLike | None = None, **overrides):
        """Defaults, then a YAML file, then explicit overrides (flags)."""
        values = {}
        if file:
            import yaml

            values = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
            unknown = set(values) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(f"{file}: unknown settings {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def validation_items(split: dict, config: DetectTrainConfig) -> list:
    """The validation pictures a training counts: at most ``max_val``, drawn with its seed."""
    items = split["val"]
    if len(items) <= config.max_val:
        return items
    rng = np.random.default_rng(config.seed)
    return [items[i] for i in sorted(rng.choice(len(items), config.max_val, replace=False))]


def _slides(text: str) -> set[str]:
    return {s.strip() for s in text.split(",") if s.strip()}


def list_pictures(folders, config: DetectTrainConfig) -> dict[str, list]:
    """(folder, index in read_targets order, real) per picture, split into train and val: a
    real set's ``val_slides`` validate, its ``test_slides`` are left out (a picture without a
    slide column is a slide of its own, named by its manifest ``image`` path); synthetic
    folders whose name contains 'val' validate."""
    val_slides, test_slides = _slides(config.val_slides), _slides(config.test_slides)
    split = {"train": [], "val": []}
    for folder in map(Path, folders):
        if (folder / "synth.json").exists():
            n = len(list((folder / "annotations").glob("*.json")))
            part = "val" if "val" in folder.name else "train"
            split[part] += [(str(folder), i, False) for i in range(n)]
            continue
        with open(folder / "manifest.csv", newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        for i, row in enumerate(rows):
            slide = row.get("slide") or row.get("image", "")
            if slide in test_slides:
                continue
            split["val" if slide in val_slides else "train"].append((str(folder), i, True))
        if rows:
            target_of(folder, 0)  # a folder it cannot read fails here, early
    return split


def target_of(folder: str | os.PathLike, index: int):
    """The ``index``-th target of ``folder`` in ``read_targets`` order, reading that picture's
    annotation alone (``read_targets`` reads every one before it)."""
    import json

    from .. import annotations as ann

    folder = Path(folder)
    if (folder / "synth.json").exists():
        path = sorted((folder / "annotations").glob("*.json"))[index]
        meta = json.loads(path.read_text(encoding="utf-8"))
        instances, classes = ann.read_masks(folder / "masks" / f"{path.stem}.tif")
        return ann.InstanceTarget(folder / meta["path"], instances, classes, "synthetic")
    with open(folder / "manifest.csv", newline="", encoding="utf-8-sig") as fh:
        row = list(csv.DictReader(fh))[index]
    if row.get("karyotype_mask"):
        return ann.mfish_target(folder / row["image"], folder / row["karyotype_mask"])
    return ann.box_target(folder / row["image"], folder / row["chromosome_boxes"])


def _prepare(job) -> dict:
    """One picture at the network's scale with its targets (in a worker process)."""
    from ..detect._targets import encode, measure_width, resized, scale_for
    from ..io import read_image

    folder, index, real, jitter, width, clean, wide = job
    target = target_of(folder, index)
    image, info = read_image(target.image)
    measured = measure_width(image, width, polarity=info.polarity)
    scale = scale_for(image.shape, measured, wide) * jitter
    small = resized(image, scale)
    clean = clean and target.source == "karyotype mask"
    targets = encode(target.instances, target.classes, scale, small.shape, full=not real,
                     clean=clean, width=wide)  # fmt: skip
    centres = np.argwhere(targets[0] >= 0.999)
    return dict(
        path=str(target.image), image=small.astype(np.float16), targets=targets,
        centres=centres, real=real, count=target.count, scale=scale, set=str(folder),
    )  # fmt: skip


def prepare_all(
    items,
    *,
    jitter: float,
    seed: int,
    workers: int,
    width: str = "plain",
    clean: bool = False,
    target_width: float = TARGET_WIDTH,
) -> list[dict]:
    rng = np.random.default_rng(seed)
    jobs = [
        (f, i, real, 1 + rng.uniform(-jitter, jitter), width, clean, target_width)
        for f, i, real in items
    ]
    if workers <= 1 or len(jobs) < 4:
        return [_prepare(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_prepare, jobs, chunksize=2))


class CropSampler:
    """Batches of random crops (image, targets), the same for the same seed and epoch. Real
    crops come from each real set equally often (a set of 4 Giemsa pictures beside 43 DAPI
    ones would otherwise hardly be seen)."""

    def __init__(self, pictures: list[dict], config: DetectTrainConfig):
        sets: dict[str, list] = {}
        for p in pictures:
            if p["real"]:
                sets.setdefault(p["set"], []).append(p)
        self.real = list(sets.values())
        self.synthetic = [p for p in pictures if not p["real"]]
        self.config = config

    def batch(self, rng: np.random.Generator):
        cfg, xs, ys = self.config, [], []
        share = cfg.real_share if self.real and self.synthetic else float(bool(self.real))
        for _ in range(cfg.batch_size):
            if rng.random() < share:
                pool = self.real[rng.integers(len(self.real))]
            else:
                pool = self.synthetic
            x, y = crop(pool[rng.integers(len(pool))], cfg.crop, rng, zoom=cfg.zoom,
                        sigma=cfg.target_width / 4, detail=cfg.detail)  # fmt: skip
            xs.append(x)
            ys.append(y)
        return np.stack(xs)[:, None], np.stack(ys)


_SAMPLER: CropSampler | None = None  # the sampler forked crop workers draw from


def _pooled_batch(key) -> tuple:
    return _SAMPLER.batch(np.random.default_rng(key))


def batches(sampler: CropSampler, keys, pool=None, ahead: int = 8):
    """One batch per key (seed, epoch, step), each drawn from its own random stream, so the
    crops are the same whether ``pool`` (``_crop_pool``'s processes, which draw from the sampler
    it was given) draws them or ``sampler`` here; the pool draws at most ``ahead`` batches
    ahead of the training (memory stays flat)."""
    if pool is None:
        yield from (sampler.batch(np.random.default_rng(k)) for k in keys)
        return
    pending = collections.deque()
    for key in keys:
        pending.append(pool.submit(_pooled_batch, key))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@contextlib.contextmanager
def _crop_pool(sampler: CropSampler, workers: int):
    """Processes that draw the batches while the network trains (forked, so they share the
    prepared pictures instead of copying them; a worker that dies raises BrokenProcessPool);
    None for one worker or where fork is missing."""
    global _SAMPLER
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    _SAMPLER = sampler
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            yield pool
    finally:
        _SAMPLER = None


def crop(
    picture: dict,
    side: int,
    rng: np.random.Generator,
    *,
    zoom: float = 0.0,
    sigma: float = SIGMA,
    detail: float = 0.0,
):
    """A ``side`` x ``side`` crop around a random chromosome (or anywhere, one time in five),
    zoomed (``zoom`` > 0: by a factor within 1 / (1 + zoom) .. 1 + zoom, the centre heat map
    drawn again at the new scale, its peaks ``sigma`` wide), turned, flipped, and with its
    contrast, light, noise and sharpness changed; one time in 1 / ``detail``, its chromosomes
    given a random inner texture first (`_textured`). The targets are the picture's own."""
    from ..detect._targets import heat_map

    image, targets = picture["image"], picture["targets"]
    h, w = image.shape
    z = float(np.exp(rng.uniform(-np.log1p(zoom), np.log1p(zoom)))) if zoom else 1.0
    big = max(8, round(side * z))  # the crop's side in the prepared picture
    if len(picture["centres"]) and rng.random() < 0.8:
        r, c = picture["centres"][rng.integers(len(picture["centres"]))]
        r, c = (
            r + rng.integers(-big // 3, big // 3 + 1),
            c + rng.integers(-big // 3, big // 3 + 1),
        )
    else:
        r, c = rng.integers(h), rng.integers(w)
    top, left = int(r) - big // 2, int(c) - big // 2
    x = np.ones((big, big), np.float32)
    y = np.zeros((targets.shape[0], big, big), np.float32)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + big, h), min(left + big, w)
    if r1 > r0 and c1 > c0:
        x[r0 - top : r1 - top, c0 - left : c1 - left] = image[r0:r1, c0:c1]
        y[:, r0 - top : r1 - top, c0 - left : c1 - left] = targets[:, r0:r1, c0:c1]
    if big != side:
        from PIL import Image

        x = np.asarray(Image.fromarray(x, "F").resize((side, side), Image.BILINEAR))
        at = np.minimum(((np.arange(side) + 0.5) * big / side).astype(int), big - 1)
        y = y[:, at][:, :, at]  # masks: nearest
        centres = (picture["centres"] - (top, left)) * (side / big)
        y[0] = heat_map(centres, (side, side), sigma)  # peaks of height exactly 1 again
    k = int(rng.integers(4))
    x, y = np.rot90(x, k), np.rot90(y, k, axes=(1, 2))
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, :, ::-1]
    x = np.ascontiguousarray(x)
    if detail and rng.random() < detail:
        x = _textured(x, rng, 4 * sigma)
    x = _photometric(x, rng)
    return x, np.ascontiguousarray(y)


def _textured(x: np.ndarray, rng: np.random.Generator, width: float) -> np.ndarray:
    """The crop's dark parts (its chromosomes, ``width`` pixels wide) made paler and darker in
    smooth patches a fifth to half a chromosome width across, at random strength, then
    sharpened half the time: what bands, chromatin grain and a sharp objective put inside a
    real chromosome. Meant for a network trained on synthetic pictures alone that split real
    DAPI rods; measured, it split them more and counted real Giemsa better (README). The
    background (1) stays as it is."""
    from scipy import ndimage as ndi

    noise = rng.normal(size=x.shape).astype(np.float32)
    field = _unit(ndi.gaussian_filter(noise, rng.uniform(0.2, 0.5) * width))
    dark = 1 - x
    change = rng.uniform(0.15, 0.45) * field * np.clip(dark / 0.3, 0, 1)  # not on background
    x = 1 - dark * np.clip(1 + change, 0.2, 1.8)
    if rng.random() < 0.5:  # unsharp mask
        x = x + rng.uniform(0.3, 1.2) * (x - ndi.gaussian_filter(x, rng.uniform(0.1, 0.3) * width))
    return np.clip(x, 0, 1).astype(np.float32)


def _photometric(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage as ndi

    if rng.random() < 0.3:
        x = ndi.gaussian_filter(x, rng.uniform(0.3, 1.0))
    x = 1 - (1 - x) * rng.uniform(0.6, 1.3)  # chromosomes paler or darker
    x = x + rng.uniform(-0.1, 0.1)  # light level
    x = np.clip(x, 0, 1) ** rng.uniform(0.7, 1.4)  # gamma
    x = x + rng.normal(0, rng.uniform(0, 0.04), x.shape)  # camera noise
    if rng.random() < 0.25:  # mottled background (grainy slides, noisy cameras stretched hard)
        x = x + rng.uniform(0.03, 0.12) * _unit(ndi.gaussian_filter(
            rng.normal(size=x.shape).astype(np.float32), rng.uniform(0.7, 2.5)))  # fmt: skip
    return np.clip(x, 0, 1).astype(np.float32)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / max(float(a.std()), 1e-6)


def detection_loss(logits, targets, debris_weight: float = 1.0):
    """CenterNet's focal loss on the centre heat map (Zhou et al. 2019, alpha 2, beta 4) plus
    binary cross-entropy on the masks, each where its annotation says something; the boundary
    between touching chromosomes weighs 5 times (it is thin, and it is what splits them), a
    debris pixel ``debris_weight`` times (debris is rare)."""
    import torch
    import torch.nn.functional as F

    known, known2, known3 = targets[:, 6:7], targets[:, 7:8], targets[:, 8:9]
    heat = targets[:, 0:1]
    p = torch.sigmoid(logits[:, 0:1]).clamp(1e-4, 1 - 1e-4)
    pos = (heat >= 0.999).float() * known
    neg = (1 - pos) * known * (1 - heat) ** 4
    focal = -(torch.log(p) * (1 - p) ** 2 * pos + torch.log(1 - p) * p**2 * neg).sum()
    focal = focal / pos.sum().clamp(min=1)
    bce = F.binary_cross_entropy_with_logits(logits[:, 1:], targets[:, 1:6], reduction="none")
    debris = known3 * (1 + (debris_weight - 1) * targets[:, 5:6])
    weights = torch.cat([known, known * (1 + 4 * targets[:, 2:3]), known2, known3, debris], 1)
    per = (bce * weights).sum((0, 2, 3)) / weights.sum((0, 2, 3)).clamp(min=1)
    loss = focal + per[0] + per[1] + 0.5 * (per[2] + per[3] + per[4])
    right = ((logits[:, 1:2] > 0) == (targets[:, 1:2] > 0.5)).float() * known
    return loss, float(right.sum() / known.sum().clamp(min=1))


def predict(net, image: np.ndarray, device) -> np.ndarray:
    """Output probabilities of the network on one prepared picture (padded to ``MULTIPLE``)."""
    import torch

    from ..detect._net import MULTIPLE

    h, w = image.shape
    ph, pw = -h % MULTIPLE, -w % MULTIPLE
    x = np.pad(image.astype(np.float32), ((0, ph), (0, pw)), constant_values=1.0)
    with torch.no_grad():
        out = net(torch.from_numpy(x)[None, None].to(device))
    return torch.sigmoid(out[0, :, :h, :w]).float().cpu().numpy()


def validate(
    net, pictures: list[dict], device, debris_weight: float = 1.0, width: float = TARGET_WIDTH
) -> dict:
    """Loss and count error of the network on whole validation pictures (prepared with
    chromosomes ``width`` pixels wide)."""
    import torch

    from ..detect._decode import decode

    net.eval()
    losses, errors = [], []
    for p in pictures:
        probs = predict(net, p["image"], device)
        logits = torch.logit(torch.from_numpy(probs).clamp(1e-6, 1 - 1e-6))[None]
        losses.append(
            float(
                detection_loss(
                    logits, torch.from_numpy(p["targets"].astype(np.float32))[None], debris_weight
                )[0]
            )
        )
        found = int(decode(probs, width=width).instances.max())
        errors.append(found - p["count"])
    errors = np.array(errors, float)
    return dict(
        loss=float(np.mean(losses)) if losses else float("nan"),
        mae=float(np.abs(errors).mean()) if len(errors) else float("nan"),
        within2=float((np.abs(errors) <= 2).mean()) if len(errors) else float("nan"),
    )


def train_detector(folders, out, config: DetectTrainConfig, *, resume=False, log=print) -> dict:
    """Train on the pictures of ``folders`` and write the detector's model folder ``out``;
    returns its config.json dict."""
    import torch

    from ..detect._net import ARCH, OUTPUTS, build_net, export_onnx

    out, checkpoint = Path(out), model_folder(out, resume)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if config.device == "auto"
        else config.device
    )
    workers = (os.cpu_count() or 1) if config.workers < 0 else config.workers
    split = list_pictures(folders, config)
    if not split["train"]:
        raise ValueError(f"{', '.join(map(str, folders))}: no pictures to train on")
    log(f"preparing {len(split['train'])} training and {len(split['val'])} validation pictures")
    pictures = prepare_all(
        split["train"], jitter=config.scale_jitter, seed=config.seed, workers=workers,
        width=config.width, clean=config.clean_karyotypes, target_width=config.target_width,
    )  # fmt: skip
    val = prepare_all(
        validation_items(split, config), jitter=0.0, seed=config.seed, workers=workers,
        width=config.width, clean=config.clean_karyotypes, target_width=config.target_width,
    )  # fmt: skip
    sampler = CropSampler(pictures, config)
    torch.manual_seed(config.seed)
    net = build_net(config.pretrained == "imagenet" and not config.init).to(device)
    if config.init and not resume:
        net.load_state_dict(_init_weights(config.init))
        log(f"starting from the detector in {config.init}")
        was = float(_init_config(config.init).get("target_width", TARGET_WIDTH))
        if was != config.target_width:
            log(f"it saw chromosomes {was:g} pixels wide; this training {config.target_width:g}")
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=config.lr_decay)
    averaged = copy.deepcopy(net).eval().requires_grad_(False) if config.ema else None
    state = dict(epoch=0, best_loss=float("inf"), best_epoch=0, history=[], val_mae=[])
    if resume:
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        # a setting added since the checkpoint was written: it was trained with the default
        before = {**asdict(DetectTrainConfig()), **saved["config"]}
        free = ("epochs", "workers", "device")  # neither changes what is trained
        if {k: v for k, v in before.items() if k not in free} != {
            k: v for k, v in asdict(config).items() if k not in free
        }:
            raise ValueError(
                f"{checkpoint}: was made with other settings; resume with the same ones"
            )
        state = restore(saved, net, optimiser, schedule, averaged)
        log(f"resuming after epoch {state['epoch']}")
    write_yaml(out / "config.yaml", asdict(config))

    steps = min(config.steps, config.max_steps or config.steps)
    with _crop_pool(sampler, workers) as pool:
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            start = time.perf_counter()
            torch.manual_seed(config.seed * 1000 + epoch)
            keys = [(config.seed, epoch, step) for step in range(1, steps + 1)]
            net.train()
            show = progress_line(epoch, config.epochs, start)
            loss_sum, acc_sum = 0.0, 0.0
            drawn = batches(sampler, keys, pool, ahead=2 * workers)
            for step, (x, y) in enumerate(drawn, 1):
                x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
                loss, acc = detection_loss(net(x), y, config.debris_weight)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                if averaged is not None:
                    _average(averaged, net, config.ema, (epoch - 1) * steps + step)
                loss_sum, acc_sum = loss_sum + loss.item(), acc_sum + acc
                show(step, steps, loss_sum / step, acc_sum / step, step * config.batch_size)
            judged = averaged if averaged is not None else net
            figures = (
                validate(judged, val, device, config.debris_weight, config.target_width)
                if val
                else dict(loss=float("nan"), mae=float("nan"), within2=float("nan"))
            )
            lr = optimiser.param_groups[0]["lr"]
            schedule.step()
            seconds = time.perf_counter() - start
            state["history"].append(dict(
                epoch=epoch, train_loss=loss_sum / steps, train_accuracy=acc_sum / steps,
                val_loss=figures["loss"], val_accuracy=figures["within2"], lr=lr, seconds=seconds,
                images_per_s=steps * config.batch_size / seconds,
            ))  # fmt: skip
            state["val_mae"].append(figures["mae"])
            sys.stderr.write("\n")
            log(
                f"epoch {epoch}/{config.epochs}: train loss {loss_sum / steps:.4f} | val loss "
                f"{figures['loss']:.4f}, count error {figures['mae']:.2f}, within 2: "
                f"{figures['within2']:.2f} | {seconds:.0f} s"
            )
            # the lowest validation loss, as the classifier; the count error at fixed decoding
            # settings swings with the heat map's calibration, which tune_decoding then fixes
            score = figures["loss"] if val else -epoch  # without validation: the last epoch
            end_epoch(out, net, optimiser, schedule, state, config, epoch, score, averaged)

    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(out / "model.safetensors")))
    net.eval()

    def count(part):
        return dict(
            real=sum(p[2] for p in split[part]), synthetic=sum(not p[2] for p in split[part])
        )

    meta = make_config("efficientnet_lite0", OUTPUTS, input_size=config.crop)
    meta.update(
        task="detect",
        arch=ARCH,
        reject_classes=[],
        keep_class="",
        channels=1,
        mean=[0.0],
        std=[1.0],
        target_width=config.target_width,
        width=config.width,
        preprocessing="metasift.io.read_image (grey, dark on light, [0, 1]); resized so a "
        "chromosome (width measured as metasift count does) is target_width pixels wide; "
        "stretched from its 0.5th to 99.5th percentile to [0, 1]; padded with 1 to a multiple "
        "of 32 on each side (metasift.detect)",
        pretrained=config.pretrained,
        **({"init": config.init} if config.init else {}),
        trained_on=dict(folders=[str(f) for f in folders], train=count("train"), val=count("val"),
                        val_slides=config.val_slides, test_slides=config.test_slides),
        best_epoch=state["best_epoch"],
        validation=dict(count_mae=state["val_mae"][state["best_epoch"] - 1]),
        trained_with=f"metasift {__version__}, torch {torch.__version__}, device {device.type}",
    )  # fmt: skip
    started = _init_config(config.init).get("decode") if config.init else None
    if started:  # the decoding of the detector it started from (tuning, below, keeps what it
        meta["decode"] = started  # does not search; without validation pictures, all of it)
    write_json(out / "config.json", meta)
    diff = export_onnx(net.cpu(), out)
    log(f"model folder {out}: best epoch {state['best_epoch']}; ONNX matches PyTorch to {diff:.1e}")
    if val:
        meta["decode"] = tune_decoding(out, val, log=log)
    elif started:
        log(f"no validation pictures: decoding as {config.init} does ({started})")
    meta["apart_scale"] = tune_apart_scale(out, split["train"], config.width, log=log)
    return meta


def _average(averaged, net, decay: float, step: int) -> None:
    """One step of the exponential moving average of the weights (and batch-norm statistics),
    its decay ``min(decay, (1 + step) / (10 + step))``: the first steps are not held at the
    start."""
    import torch

    decay = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for a, b in zip(averaged.state_dict().values(), net.state_dict().values(), strict=True):
            if a.is_floating_point():
                a.mul_(decay).add_(b, alpha=1 - decay)
            else:
                a.copy_(b)


def _init_folder(folder: str) -> Path:
    """A detector model folder to start from ("default": the bundled one)."""
    from ..detect._infer import default_detector_dir

    return default_detector_dir() if folder == "default" else Path(folder)


def _init_config(folder: str) -> dict:
    """The config.json of the detector model folder ``folder`` (checked to be a detector's)."""
    from ..models import read_config

    return read_config(_init_folder(folder), task="detect")


def _init_weights(folder: str) -> dict:
    """The weights of a detector model folder (float16 ones as float32), to fine-tune."""
    from safetensors.torch import load_file

    _init_config(folder)  # a clear error for anything that is not a detector
    state = load_file(str(_init_folder(folder) / "model.safetensors"))
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


PEAKS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5)  # centre-peak heights tried on validation
ORPHANS = (1.0, 2.0, 4.0, 1000.0)  # orphan areas tried (1000: orphans never count)
WINDOWS = (3, 5)  # peak windows tried (5: two peaks on one chromosome's arms count once)
# the picture's own threshold (DecodeConfig.soft): heights at which a peak counts whole, and
# the lowest peaks that count at all
SOFTS = (0.3, 0.4, 0.5)
LOWS = (0.1, 0.15, 0.2)


def decodings(base):
    """Every decoding tune_decoding tries, in the order that breaks ties: the picture's own
    threshold first (each peak counted by how sure the network is of it rather than all or
    nothing at one height: a count that varies less from picture to picture), then a fixed
    peak height."""
    from dataclasses import replace

    for soft, low, orphan, window in itertools.product(SOFTS, LOWS, ORPHANS, WINDOWS):
        yield replace(base, peak=low, unsure=low, orphan_area=orphan, window=window, soft=soft)
    for peak, orphan, window in itertools.product(PEAKS, ORPHANS, WINDOWS):
        yield replace(base, peak=peak, unsure=min(0.1, peak), orphan_area=orphan, window=window,
                      soft=0.0)  # fmt: skip


def tune_decoding(folder: str | os.PathLike, pictures: list[dict], *, log=print) -> dict:
    """The decoding settings (``DecodeConfig``: centre-peak height or the picture's own
    threshold, orphan area, peak window; ``decodings``) that count the validation ``pictures``
    (prepared as for training) best: the real ones when there are any (the decoding is what
    carries a model to real pictures: synthetic ones, many more, would choose for themselves),
    else the synthetic ones; written into ``folder``'s
    config.json as ``decode``, where ``metasift.detect.Detector`` reads them. The settings not
    searched (e.g. ``debris_level``) stay the folder's (``train_detector`` gives a fine-tuned
    detector those of the one it started from)."""
    from ..detect import DecodeConfig, Detector, decode
    from ..models import read_config

    meta = read_config(folder, task="detect")
    base = DecodeConfig(**meta.get("decode", {}))
    model = Detector(folder)
    probs = [model.probabilities(p["image"].astype(np.float32)) for p in pictures]
    truth = np.array([p["count"] for p in pictures])
    real = np.array([bool(p["real"]) for p in pictures])
    judged = real if real.any() else ~real
    best, best_mae = base, float("inf")
    for config in decodings(base):
        found = np.array(
            [int(decode(p, config, width=model.target_width).instances.max()) for p in probs]
        )
        mae = float(np.abs(found - truth)[judged].mean())
        if mae < best_mae - 1e-9:
            best, best_mae = config, mae
    meta["decode"] = asdict(best)
    meta.setdefault("validation", {})["count_mae_tuned"] = round(best_mae, 3)
    write_json(Path(folder) / "config.json", meta)
    how = (
        f"own threshold (soft {best.soft}, low {best.unsure})" if best.soft else f"peak {best.peak}"
    )
    log(
        f"decoding: {how}, orphan area {best.orphan_area}, window {best.window}: "
        f"count MAE {best_mae:.2f} on the {int(judged.sum())} "
        f"{'real' if real.any() else 'synthetic'} validation pictures"
    )
    return asdict(best)


APART_SCALES = (0.7, 0.75, 0.8, 0.85, 0.9, 1.0)  # apart_scale values tried


def tune_apart_scale(folder: str | os.PathLike, items, width: str, *, log=print) -> float:
    """How much smaller than its measured width (``apart_scale``, written into ``folder``'s
    config.json) the detector should see a picture whose sister chromatids lie apart: the
    factor that counts best the real ``items`` (``list_pictures`` rows; only real bright-field
    pictures where the width is the closed one count) at the folder's decoding; ties go to
    the factor nearest 1, and 1 without such pictures. Chosen on the training pictures, as no
    validation picture shows chromatids apart: the network was fitted to them at 1, so a
    smaller factor that still counts them better is no training artefact (held out, at 1 the
    stage-5 fold models counted giemsa-dev 1, 2 and 8 62, 106 and 31 for 50, 102 and 29; at
    the factors they chose, 0.75 and 0.8, 52, 103 and 27). Synthetic
    pictures do not choose: their chromatids are drawn closer than real ones, and at 0.75 the
    detector undercounts them. The decoding (``tune_decoding``) is chosen before, on the
    validation pictures at their measured scale, none of which shows chromatids apart in the
    bundled recipe (its validation slides are DAPI)."""
    from ..detect import Detector, chromosome_width, decode, resized, scale_for
    from ..io import read_image
    from ..models import read_config

    model = Detector(folder)
    errors = {k: [] for k in APART_SCALES}
    real = [(source, index) for source, index, is_real in items if is_real]
    for source, index in real if width == "bodies" else []:  # only bodies are measured apart
        target = target_of(source, index)
        image, info = read_image(target.image)
        measured, apart = chromosome_width(image, width, polarity=info.polarity)
        if not apart:
            continue
        for k in APART_SCALES:
            scale = scale_for(image.shape, measured, model.target_width) * k
            probs = model.probabilities(resized(image, scale))
            found = int(
                decode(probs, model.decode_config, width=model.target_width).instances.max()
            )
            errors[k].append(abs(found - target.count))
    seen = len(errors[1.0])
    best = min(APART_SCALES, key=lambda k: (np.mean(errors[k]) if seen else 0, abs(1 - k)))
    meta = read_config(folder, task="detect")
    meta["apart_scale"] = best
    write_json(Path(folder) / "config.json", meta)
    if seen:
        log(
            f"apart_scale {best}: count error {np.mean(errors[best]):.2f} (at 1: "
            f"{np.mean(errors[1.0]):.2f}) on the {seen} real training pictures whose "
            "chromatids lie apart"
        )
    else:
        log("apart_scale 1: no real training picture shows chromatids apart")
    return best


def retune_decoding(folder: str | os.PathLike, folders, *, log=print) -> dict:
    """``tune_decoding`` and ``tune_apart_scale`` again for a trained detector ``folder``
    (after what they try changed), on the pictures its training drew: the same split, settings
    and seed (its config.yaml), from the same data ``folders``; returns the decoding."""
    import yaml

    settings = yaml.safe_load((Path(folder) / "config.yaml").read_text(encoding="utf-8"))
    config = DetectTrainConfig(**settings)
    split = list_pictures(folders, config)
    items = validation_items(split, config)
    if not items:
        raise ValueError(f"{', '.join(map(str, folders))}: no validation pictures")
    val = prepare_all(items, jitter=0.0, seed=config.seed, workers=1, width=config.width,
                      clean=config.clean_karyotypes, target_width=config.target_width)  # fmt: skip
    decoding = tune_decoding(folder, val, log=log)
    tune_apart_scale(folder, split["train"], config.width, log=log)
    return decoding

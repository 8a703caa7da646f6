"""From the network's outputs to instances, then to `Findings` and verdicts.

Chromosomes: the peaks of the centre heat map are the markers of a watershed that splits the
foreground (less the boundary between touching chromosomes) among them, so two touching
chromosomes with two centres become two. A sizeable piece of foreground no centre reached is
one more chromosome. Nuclei and debris are the connected pieces of their own maps; they lie
over chromosomes when chromosomes leave them in two or more places (the counter's rule).
The count's uncertainty comes from the centre peaks that are neither clearly there nor
clearly absent: each peak of height p counts as a coin with probability p.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from scipy import ndimage as ndi

from ..criteria import MIN_CHROMOSOMES, in_words, spreads, verdicts
from ..objects import Chromosome, Debris, Findings, Nucleus, Spread
from ._net import OUTPUTS
from ._targets import TARGET_WIDTH

CENTRE, FOREGROUND, BOUNDARY, CENTROMERE, NUCLEUS, DEBRIS = range(len(OUTPUTS))


@dataclass(frozen=True)
class DecodeConfig:
    """How outputs become objects. Areas are in squared chromosome widths at the input."""

    peak: float = 0.3  # a centre heat-map peak this high is a chromosome (chosen on validation)
    foreground: float = 0.5  # chromosome pixels: foreground probability above this
    boundary: float = 0.5  # ... less those between touching chromosomes above this
    orphan_area: float = 2.0  # foreground no centre reached, this large, is one chromosome more
    min_area: float = 0.3  # smaller watershed regions are slivers: dropped
    nucleus_area: float = 10.0  # nuclei are at least this large (a chromosome: about 6)
    debris_area: float = 0.5  # a smaller debris piece is noise
    debris_level: float = 0.5  # debris pixels: debris probability above this (not nucleus)
    unsure: float = 0.1  # peaks from here to `peak` add to the count's uncertainty only
    window: int = 3  # a peak is the highest point of the window x window square around it
    # 0: every peak of at least `peak` is a chromosome. Else the picture's own threshold: its
    # peaks above `unsure`, each counted as min(1, height / soft), add up to n (halves round
    # up), and the n highest are the chromosomes (a peak's height is how sure the network is)
    soft: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            if not getattr(self, f.name) >= 0:
                raise ValueError(f"{f.name} must be 0 or more, not {getattr(self, f.name)}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be an odd number of pixels, not {self.window}")
        if not 0 < self.debris_level < 1:
            raise ValueError(f"need 0 < debris_level < 1, not {self.debris_level}")
        if not 0 < self.peak < 1 or self.unsure > self.peak:
            raise ValueError(f"need 0 <= unsure <= peak < 1, not {self.unsure}, {self.peak}")
        if self.soft >= 1:
            raise ValueError(f"need 0 <= soft < 1, not {self.soft}")


@dataclass
class Decoded:
    """A picture's objects at the network's input scale."""

    instances: np.ndarray  # int32: 0 background, k chromosome k
    centres: np.ndarray  # (n, 2) rows, columns of each chromosome's centre
    scores: np.ndarray  # (n,) its centre peak's height (orphans: their mean foreground)
    centromeres: list = field(default_factory=list)  # (row, column) per chromosome
    nuclei: np.ndarray | None = None  # int32 labels
    debris: np.ndarray | None = None  # int32 labels
    count_sd: float = 0.0  # standard deviation of the count


def local_peaks(heat: np.ndarray, low: float, size: int = 3) -> np.ndarray:
    """(row, column, height) of the local maxima of ``heat`` above ``low`` (plateaux: once)."""
    top = (heat == ndi.maximum_filter(heat, size)) & (heat > low)
    at = np.argwhere(top)
    if len(at) == 0:
        return np.zeros((0, 3))
    labels, n = ndi.label(top)
    if n < len(at):  # a plateau: its centre, once
        at = np.array(ndi.center_of_mass(top, labels, np.arange(1, n + 1))).round().astype(int)
    return np.column_stack([at, heat[at[:, 0], at[:, 1]]])


def decode(
    probs: np.ndarray, config: DecodeConfig | None = None, *, width: float = TARGET_WIDTH
) -> Decoded:
    """Instances from the outputs' probabilities (``OUTPUTS`` x rows x columns) of a network
    that sees chromosomes ``width`` pixels wide (its config's ``target_width``)."""
    from skimage.segmentation import watershed

    cfg = config or DecodeConfig()
    if probs.ndim != 3 or probs.shape[0] != len(OUTPUTS):
        raise ValueError(f"outputs must be {len(OUTPUTS)} x rows x columns, not {probs.shape}")
    unit = width**2
    heat = probs[CENTRE]
    fg = probs[FOREGROUND] > cfg.foreground
    inner = fg & (probs[BOUNDARY] < cfg.boundary)
    candidates = local_peaks(heat, cfg.unsure, cfg.window)
    if cfg.soft:
        n = int(np.floor(np.minimum(1.0, candidates[:, 2] / cfg.soft).sum() + 0.5))
        chosen = np.zeros(len(candidates), bool)
        chosen[np.argsort(-candidates[:, 2], kind="stable")[:n]] = True
    else:
        chosen = candidates[:, 2] >= cfg.peak
    sure, unsure = candidates[chosen], candidates[~chosen, 2]
    markers = np.zeros(heat.shape, np.int32)
    markers[sure[:, 0].astype(int), sure[:, 1].astype(int)] = np.arange(1, len(sure) + 1)
    instances = watershed(-heat, markers, mask=fg | (markers > 0))
    # boundary pixels go to the region they were flooded from; what no centre reached:
    orphans, n = ndi.label(inner & (instances == 0))
    centres, scores = list(sure[:, :2]), list(sure[:, 2])
    if n:
        areas = _areas(orphans, n)
        for k in np.flatnonzero(areas >= cfg.orphan_area * unit) + 1:
            own = orphans == k
            instances[own] = len(centres) + 1
            centres.append(np.argwhere(own).mean(0))
            scores.append(float(probs[FOREGROUND][own].mean()))
    # slivers: a marker whose region is tiny (a second peak on one chromosome's end)
    count = len(centres)
    if count:
        keep = _areas(instances, count) >= cfg.min_area * unit
        relabel = np.zeros(count + 1, np.int32)
        relabel[1:][keep] = np.arange(1, keep.sum() + 1)
        instances = relabel[instances]
        centres = [c for c, k in zip(centres, keep) if k]
        scores = [s for s, k in zip(scores, keep) if k]
    sure_scores = np.array(scores, float)
    spread = np.concatenate([sure_scores, unsure])
    if cfg.soft:  # each peak a coin with probability min(1, height / soft)
        spread = np.minimum(1.0, spread / cfg.soft)
    return Decoded(
        instances=instances,
        centres=np.array(centres, float).reshape(-1, 2),
        scores=sure_scores,
        centromeres=_centromeres(probs[CENTROMERE], instances),
        nuclei=_pieces(probs[NUCLEUS] > 0.5, cfg.nucleus_area * unit),
        debris=_pieces(
            (probs[DEBRIS] > cfg.debris_level) & ~(probs[NUCLEUS] > 0.5), cfg.debris_area * unit
        ),
        count_sd=float(np.sqrt(np.sum(spread * (1 - spread)))),
    )


def _areas(labels: np.ndarray, n: int) -> np.ndarray:
    """Pixels of each label 1..n."""
    return np.bincount(labels.ravel(), minlength=n + 1)[1 : n + 1]


def _pieces(mask: np.ndarray, min_area: float) -> np.ndarray:
    labels, n = ndi.label(mask)
    if n == 0:
        return labels
    keep = np.zeros(n + 1, bool)
    keep[1:] = _areas(labels, n) >= min_area
    labels, _ = ndi.label(keep[labels])
    return labels


def _centromeres(heat: np.ndarray, instances: np.ndarray) -> list:
    """The centromere heat map's highest point in each chromosome (None when below 0.3; of
    equal heights, the first in raster order, where scipy's maximum_position takes any)."""
    n = int(instances.max())
    if n == 0:
        return []
    where = np.flatnonzero(instances)
    labels, values = instances.ravel()[where], heat.ravel()[where].astype(np.float64)
    order = np.lexsort((-values, labels))  # by label, then highest first (stable: raster)
    firsts = order[np.r_[0, np.flatnonzero(np.diff(labels[order])) + 1]]
    best = {int(labels[i]): divmod(int(where[i]), heat.shape[1]) for i in firsts}
    return [
        tuple(map(float, best[k])) if k in best and heat[best[k]] >= 0.3 else None
        for k in range(1, n + 1)
    ]


def findings(
    decoded: Decoded,
    scale: float,
    *,
    min_chromosomes: int = MIN_CHROMOSOMES,
    width: float = TARGET_WIDTH,
) -> Findings:
    """The picture's `Findings` (full-picture coordinates) and the verdicts, by the rules of
    ``metasift.criteria`` as the counter applies them; ``width``: as for `decode`."""
    inv = 1.0 / scale
    result = Findings(min_chromosomes=min_chromosomes, chromosome_width=round(width * inv, 2))
    inst = decoded.instances
    for k, sl in enumerate(ndi.find_objects(inst), 1):
        if sl is None:
            continue
        box = _box(sl, inv)
        centre = tuple(float(v) * inv for v in decoded.centres[k - 1])
        at = decoded.centromeres[k - 1] if k <= len(decoded.centromeres) else None
        result.chromosomes.append(Chromosome(
            box, [centre], outline=_outline(inst[sl] == k, sl, inv),
            centromeres=[] if at is None else [tuple(float(v) * inv for v in at)],
            score=round(float(decoded.scores[k - 1]), 3) if k <= len(decoded.scores) else None,
        ))  # fmt: skip
    chromosomes = inst > 0
    over = []
    for kind, labels in ((Nucleus, decoded.nuclei), (Debris, decoded.debris)):
        if labels is None:
            continue
        for k, sl in enumerate(ndi.find_objects(labels), 1):
            pad = tuple(slice(max(a.start - 3, 0), a.stop + 3) for a in sl)
            own = labels[pad] == k
            near = ndi.binary_dilation(own, iterations=1)
            ring = ndi.binary_dilation(near, iterations=2) & ~near
            crossings = ndi.label(ring & chromosomes[pad])[1]
            item = kind(
                centre=tuple(float(v) * inv + a.start * inv for v, a in
                             zip(np.argwhere(own).mean(0), pad)),
                area=round(float(own.sum()) * inv * inv),
                box=_box(sl, inv),
                crossings=int(crossings),
            )  # fmt: skip
            (result.nuclei if kind is Nucleus else result.debris_objects).append(item)
            if item.over_chromosomes:
                over.append(item)
    result.chromosome_count = len(result.chromosomes)
    result.debris_over_chromosomes = len(over)
    sd = f", +-{decoded.count_sd:.1f}" if decoded.count_sd >= 0.05 else ""
    if not result.chromosomes:
        result.verdicts = verdicts([], 0, min_chromosomes=min_chromosomes)
        seen = f", {result.nuclei_count} nuclei" if result.nuclei else ""
        result.reason = f"no chromosomes found{seen} (0 < {min_chromosomes})"
        return result
    groups = spreads(decoded.centres, width / 2)
    main = [len(g) for g in groups]
    result.spreads = [Spread(len(g), _centre_box(decoded.centres[g], inv)) for g in groups]
    result.verdicts = verdicts(main, len(over), min_chromosomes=min_chromosomes)
    # the uncertainty goes with the count wherever the reason names it
    count = f"{result.chromosome_count}{sd}"
    result.reason = in_words(
        main, len(over), result.verdicts, min_chromosomes=min_chromosomes, count=count
    )
    return result


def _outline(own: np.ndarray, sl, inv: float) -> list[tuple[float, float]]:
    """The polygon around one instance (its longest contour's corners: the points where it
    turns, at the network's input), in full-picture (row, column)."""
    from skimage.measure import find_contours

    contours = find_contours(np.pad(own, 1).astype(np.float32), 0.5)
    if not contours:
        return []
    line = max(contours, key=len)
    step = np.diff(line, axis=0, prepend=line[-2:-1])  # a closed contour: last point = first
    turns = np.any(np.abs(np.diff(step, axis=0, append=step[1:2])) > 1e-9, axis=1)
    line = line[turns] if turns.sum() >= 3 else line  # the corners: straight runs say nothing
    at = (line - 1 + 0.5 + (sl[0].start, sl[1].start)) * inv
    return [tuple(p) for p in np.round(at, 1).tolist()]


def _centre_box(centres: np.ndarray, inv: float) -> tuple[int, int, int, int]:
    (r0, c0), (r1, c1) = centres.min(0) * inv, centres.max(0) * inv
    return int(np.floor(r0)), int(np.floor(c0)), int(np.ceil(r1)) + 1, int(np.ceil(c1)) + 1


def _box(sl, inv: float) -> tuple[int, int, int, int]:
    return (
        int(np.floor(sl[0].start * inv)),
        int(np.floor(sl[1].start * inv)),
        int(np.ceil(sl[0].stop * inv)),
        int(np.ceil(sl[1].stop * inv)),
    )

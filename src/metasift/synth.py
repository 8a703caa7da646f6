"""Synthetic DCA pictures with full ground truth.

A picture is built the way a microscope forms it. Every object adds optical density (OD) to a
map: chromosomes (two sister chromatids with a centromere constriction and faint bands),
interphase nuclei, debris, fibres and a faint cytoplasm halo. Bright-field Giemsa is then
``illumination * exp(-OD)``; fluorescence (DAPI) is ``background + OD``; both are blurred and
get camera noise. Sizes come from the human karyotype and scale with a per-picture
magnification and condensation, so short compact and long prometaphase-like spreads occur.

Classes follow the three rejection criteria of the reference paper (Jang et al.):

- ``available``: one spread, >= 40 chromosomes, nothing over any chromosome;
- ``mixed``: two or more spreads, intermingled, side by side or apart;
- ``debris``: particles, clumps or nuclei over chromosomes;
- ``too_few``: one spread with fewer than 40 chromosomes (partial spread or scattered losses).

Hard cases sit on each boundary (exactly 40 vs 39 chromosomes, a nucleus touching a spread
without covering it, a single small particle on one chromosome, spreads far apart).
All coordinates in annotations are (row, column) in pixels.
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from .criteria import CLASSES, MIN_CHROMOSOMES, verdicts

STAINS = ("giemsa", "giemsa-color", "dapi")
FORMATS = ("png", "tif")
LABEL_COLUMNS = (
    "path", "label", "reasons", "chromosome_count", "spread_count", "dicentric_count",
    "ring_count", "fragment_count", "debris_overlap_count", "nuclei_count", "seed", "stain",
    "width", "height",
)  # fmt: skip

# Human chromosomes: name, relative length (% of haploid autosome length) and centromere index
# (short arm / whole length), rounded from ISCN 2020 ideogram measurements.
KARYOTYPE = (
    ("1", 8.44, 0.48), ("2", 8.02, 0.39), ("3", 6.83, 0.47), ("4", 6.30, 0.29),
    ("5", 6.08, 0.29), ("6", 5.90, 0.39), ("7", 5.36, 0.39), ("8", 4.93, 0.34),
    ("9", 4.80, 0.35), ("10", 4.59, 0.33), ("11", 4.61, 0.40), ("12", 4.66, 0.30),
    ("13", 3.74, 0.17), ("14", 3.56, 0.19), ("15", 3.46, 0.20), ("16", 3.36, 0.41),
    ("17", 3.25, 0.34), ("18", 2.93, 0.31), ("19", 2.67, 0.47), ("20", 2.56, 0.45),
    ("21", 1.90, 0.23), ("22", 2.04, 0.27), ("X", 5.12, 0.40), ("Y", 2.15, 0.27),
)  # fmt: skip
_TYPE = {name: (rel, ci) for name, rel, ci in KARYOTYPE}
# Each chromosome type has its own fixed band pattern, as a real karyotype does.
_BANDS = {
    name: ndi.gaussian_filter1d(np.random.default_rng(101 + i).random(96), 2.0, mode="nearest")
    for i, (name, _, _) in enumerate(KARYOTYPE)
}


@dataclass(frozen=True)
class SynthConfig:
    """How pictures are made; every field is written next to the data set (synth.json)."""

    height: int = 1024  # rows; 1280 x 1024 is the common DCA camera frame
    width: int = 1280  # columns
    stain: str = "giemsa"  # giemsa (grey), giemsa-color (purple RGB) or dapi (bright on dark)
    dicentric_rate: float = 0.05  # dicentrics per cell (Poisson); ~1-2 Gy of X/gamma rays
    ring_rate: float = 0.005  # centric rings per cell; about a tenth of the dicentric yield

    def __post_init__(self):
        if self.stain not in STAINS:
            raise ValueError(f"stain must be one of {STAINS}, not {self.stain!r}")
        if not (256 <= self.height <= 8192 and 256 <= self.width <= 8192):
            raise ValueError(
                f"image size {self.width} x {self.height} is outside 256-8192 pixels per side"
            )
        if not (0 <= self.dicentric_rate <= 3 and 0 <= self.ring_rate <= 3):
            raise ValueError("dicentric_rate and ring_rate must be between 0 and 3 per cell")


def generate(label: str, seed: int, config: SynthConfig = SynthConfig()):
    """One picture of class ``label``: (pixels in [0, 1], H x W or H x W x 3), annotation."""
    if label not in CLASSES:
        raise ValueError(f"label must be one of {CLASSES}, not {label!r}")
    return _Scene(label, seed, config).build()


class _Scene:
    """Plans and draws one picture. Optical density maps are float32, rows x columns."""

    def __init__(self, label: str, seed: int, config: SynthConfig):
        self.label, self.seed, self.cfg = label, int(seed), config
        self.rng = np.random.default_rng(self.seed)
        self.shape = (config.height, config.width)
        self.od_chrom = np.zeros(self.shape, np.float32)
        self.od_other = np.zeros(self.shape, np.float32)  # nuclei, debris, halo, fibres
        self.owner = np.full(self.shape, -1, np.int16)  # chromosome index covering each pixel
        self.chromosomes, self.fragments, self.spreads = [], [], []
        self.nuclei, self.debris = [], []
        self.layout = "single"  # how spreads lie: single, intermingled, side_by_side, apart

    # ---- planning -----------------------------------------------------------------------
    def build(self):
        rng, side = self.rng, min(self.shape)
        # length of chromosome 1 in pixels: real Giemsa frames measure ~4-8% of the short side;
        # fluorescence karyotyping frames are taken at higher magnification (~7-12%)
        zoom = (0.07, 0.12) if self.cfg.stain == "dapi" else (0.035, 0.075)
        self.chr1 = side * rng.uniform(*zoom)
        self.condensed = rng.uniform(0.0, 1.0)  # 1: short, thick metaphase; 0: prometaphase
        self.width_px = max(3.0, self.chr1 * (0.16 + 0.08 * self.condensed))
        self.od_peak = rng.uniform(0.6, 1.1)
        self.band_contrast = rng.uniform(0.05, 0.3)
        self.sister_gap = rng.uniform(0.0, 1.0)  # how visibly the two chromatids separate

        plans = self._plan_spreads()
        for spread_id, plan in enumerate(plans):
            self._add_spread(spread_id, **plan)
        self._draw_halo()
        self._add_nuclei()
        self._add_background_debris()
        if self.label == "debris":
            self._add_overlapping_debris()
        image = self._render()
        return image, self._annotation()

    def _n_final(self) -> int:
        """Chromosomes left in the (first) spread, by class; hard cases at the 40 boundary."""
        rng = self.rng
        if self.label == "too_few":
            return int(rng.integers(37, 40) if rng.random() < 0.35 else rng.integers(18, 37))
        if rng.random() < 0.12:
            return MIN_CHROMOSOMES  # exactly 40: still usable
        return 46 if rng.random() < 0.55 else int(rng.integers(MIN_CHROMOSOMES, 46))

    def _plan_spreads(self) -> list[dict]:
        rng = self.rng
        if self.label != "mixed":
            plan = dict(n_final=self._n_final(), scale=1.0)
            plan["radius"] = self._spread_radius(46)
            plan["center"] = self._center_inside(plan["radius"])
            return [plan]
        n_spreads = 3 if rng.random() < 0.12 else 2
        plans = []
        for k in range(n_spreads):
            n = 46 if rng.random() < 0.4 else int(rng.integers(22, 46))
            scale = 1.0 if k == 0 else rng.uniform(0.85, 1.15)  # cells at other stages
            radius = self._spread_radius(n) * rng.uniform(0.8, 1.0)
            plans.append(dict(n_final=n, scale=scale, radius=radius))
        plans[0]["center"] = self._center_inside(plans[0]["radius"])
        for plan in plans[1:]:
            plan["center"] = self._neighbour_center(plans[0], plan["radius"])
        return plans

    def _spread_radius(self, n: int) -> float:
        mean_len = self.chr1 * 0.55
        spacing = mean_len * self.rng.uniform(1.3, 2.3)  # compact to loosely scattered
        return float(np.sqrt(n * spacing**2 / np.pi))

    def _center_inside(self, radius: float) -> tuple[float, float]:
        h, w = self.shape
        mr, mc = min(radius * 1.05, h / 2 - 1), min(radius * 1.05, w / 2 - 1)
        return float(self.rng.uniform(mr, h - mr)), float(self.rng.uniform(mc, w - mc))

    def _neighbour_center(self, first: dict, radius: float) -> tuple[float, float]:
        """A second spread intermingled with, beside, or apart from the first one."""
        rng, (h, w) = self.rng, self.shape
        mode = str(rng.choice(["intermingled", "side_by_side", "apart"], p=[0.35, 0.4, 0.25]))
        self.layout = mode
        lo, hi = {"intermingled": (0.3, 0.7), "side_by_side": (0.8, 1.05), "apart": (1.2, 2.2)}[
            mode
        ]
        (r0, c0), reach = first["center"], first["radius"] + radius
        for factor in np.linspace(1.0, 0.3, 12):  # shrink the distance until it fits
            for _ in range(8):
                angle = rng.uniform(0, 2 * np.pi)
                dist = reach * rng.uniform(lo, hi) * factor
                r, c = r0 + dist * np.sin(angle), c0 + dist * np.cos(angle)
                if radius * 0.7 < r < h - radius * 0.7 and radius * 0.7 < c < w - radius * 0.7:
                    return float(r), float(c)
        return float(np.clip(r0, 0, h - 1)), float(np.clip(c0 + reach * 0.5, 0, w - 1))

    def _add_spread(self, spread_id, *, n_final, scale, radius, center):
        """Lay out one metaphase: 46 positions in an ellipse, then losses and aberrations."""
        rng = self.rng
        n_dic = int(rng.poisson(self.cfg.dicentric_rate))
        n_ring = int(rng.poisson(self.cfg.ring_rate))
        n_dic, n_ring = min(n_dic, 46 - n_final), min(n_ring, max(0, 46 - n_final - n_dic))
        xy = "XY" if rng.random() < 0.5 else "XX"
        types = [str(i) for i in range(1, 23) for _ in (0, 1)] + list(xy)
        positions = self._positions(46, radius, center)
        n_cell = n_final + n_dic  # a dicentric joins two chromosomes into one
        if self.label == "too_few" and spread_id == 0 and rng.random() < 0.5:
            # partial spread: the chromosomes on one side of a line were lost or out of frame
            angle = rng.uniform(0, 2 * np.pi)
            proj = (positions - positions.mean(0)) @ np.array([np.sin(angle), np.cos(angle)])
            keep = np.argsort(proj)[:n_cell]
        else:
            keep = rng.choice(46, size=n_cell, replace=False)
        keep = np.sort(keep)
        cells = [(types[i], positions[i]) for i in keep]
        rng.shuffle(cells)
        length1 = self.chr1 * scale
        n_objects = 0
        for d in range(n_dic):
            (ta, pa), (tb, _) = cells[2 * d], cells[2 * d + 1]
            self._dicentric(spread_id, ta, tb, pa, length1)
            n_objects += 1
        rest = cells[2 * n_dic :]
        for k, (t, p) in enumerate(rest):
            if k < n_ring:
                self._ring(spread_id, t, p, length1)
            else:
                self._chromosome(spread_id, t, p, length1)
            n_objects += 1
        self.spreads.append(
            dict(
                id=spread_id, center=_r(center), radius=round(radius, 1), chromosome_count=n_objects
            )
        )

    def _positions(self, n: int, radius: float, center) -> np.ndarray:
        """n chromosome centres in a rotated ellipse, mostly apart, a few touching."""
        rng = self.rng
        aspect, theta = rng.uniform(0.65, 1.0), rng.uniform(0, np.pi)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        min_gap = self.chr1 * 0.45
        chosen = np.empty((0, 2))
        while len(chosen) < n:
            u, phi = rng.random(64), rng.uniform(0, 2 * np.pi, 64)
            rad = radius * np.sqrt(u)
            if rng.random() < 0.08:  # a stray chromosome outside the main cluster
                rad = radius * rng.uniform(1.05, 1.4, 64)
            cand = np.stack([rad * np.sin(phi) * aspect, rad * np.cos(phi)], 1) @ rot.T
            for p in cand:
                if len(chosen) == n:
                    break
                gap = np.min(np.hypot(*(chosen - p).T)) if len(chosen) else np.inf
                if gap > min_gap or rng.random() < 0.04:  # some touch or cross
                    chosen = np.vstack([chosen, p])
            min_gap *= 0.97  # a crowded ellipse loosens its rule rather than loop forever
        pts = chosen + np.asarray(center)
        h, w = self.shape
        return np.clip(pts, [4, 4], [h - 5, w - 5])

    # ---- chromosomes ----------------------------------------------------------------------
    def _centerline(self, center, length: float, closed=False) -> np.ndarray:
        rng = self.rng
        n_seg = int(np.clip(length / 5, 3, 14))
        angle = rng.uniform(0, 2 * np.pi)
        if closed:
            t = np.linspace(0, 2 * np.pi, n_seg * 2 + 1)
            rad = length / (2 * np.pi)
            pts = np.stack([rad * np.sin(t) * rng.uniform(0.8, 1), rad * np.cos(t)], 1)
        else:
            bend = rng.normal(0, 0.9) * min(1.0, length / (self.chr1 * 0.5))
            wobble = rng.normal(0, 0.12, n_seg + 1).cumsum() * 0.5
            headings = angle + np.linspace(-bend / 2, bend / 2, n_seg + 1)[:-1] + wobble[:-1]
            steps = np.stack([np.sin(headings), np.cos(headings)], 1) * (length / n_seg)
            pts = np.vstack([[0, 0], np.cumsum(steps, 0)])
            pts -= pts.mean(0)
            return pts + center
        c, s = np.cos(angle), np.sin(angle)
        return pts @ np.array([[c, -s], [s, c]]).T + center

    def _chromosome(self, spread_id, name, center, length1):
        rel, ci = _TYPE[name]
        length = length1 * rel / _TYPE["1"][0] * self.rng.uniform(0.9, 1.1)
        length = max(length, self.width_px * 1.2)
        line = self._centerline(center, length)
        self._draw(line, [ci * length], name, spread_id, kind="chromosome")

    def _dicentric(self, spread_id, name_a, name_b, center, length1):
        """Two chromosomes broken in their long arms, centric pieces joined; plus a fragment."""
        rng, ref = self.rng, _TYPE["1"][0]
        (rel_a, ci_a), (rel_b, ci_b) = _TYPE[name_a], _TYPE[name_b]
        la, lb = length1 * rel_a / ref, length1 * rel_b / ref
        cut_a, cut_b = rng.uniform(ci_a + 0.15, 0.95) * la, rng.uniform(ci_b + 0.15, 0.95) * lb
        length = cut_a + cut_b
        line = self._centerline(center, length)
        cens = [ci_a * la, cut_a + (cut_b - ci_b * lb)]
        self._draw(line, cens, f"dic({name_a};{name_b})", spread_id, kind="dicentric")
        self._fragment(spread_id, center, (la - cut_a) + (lb - cut_b))

    def _ring(self, spread_id, name, center, length1):
        rng, ref = self.rng, _TYPE["1"][0]
        rel, ci = _TYPE[name]
        total = length1 * rel / ref
        p_cut, q_cut = (
            rng.uniform(0.1, 0.8) * ci * total,
            (ci + rng.uniform(0.2, 0.9) * (1 - ci)) * total,
        )
        circumference = max(q_cut - p_cut, self.width_px * 3)
        line = self._centerline(center, circumference, closed=True)
        self._draw(line, [ci * total - p_cut], f"r({name})", spread_id, kind="ring", closed=True)
        self._fragment(spread_id, center, total - (q_cut - p_cut))

    def _fragment(self, spread_id, near, length):
        angle = self.rng.uniform(0, 2 * np.pi)
        offset = self.chr1 * self.rng.uniform(0.5, 1.2)
        center = np.asarray(near) + offset * np.array([np.sin(angle), np.cos(angle)])
        h, w = self.shape
        center = np.clip(center, [4, 4], [h - 5, w - 5])
        line = self._centerline(center, max(length * 0.6, self.width_px * 0.8))
        self._draw(line, [], "ace", spread_id, kind="fragment")

    def _draw(self, line, centromeres, name, spread_id, *, kind, closed=False):
        """Add one chromosome's OD: two chromatids, constricted at each centromere, banded."""
        width = self.width_px * self.rng.uniform(0.9, 1.1)
        half = width / 2
        pad = int(half + 3)
        h, w = self.shape
        r0, c0 = np.floor(line.min(0)).astype(int) - pad
        r1, c1 = np.ceil(line.max(0)).astype(int) + pad + 1
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
        if r1 <= r0 or c1 <= c0:
            return
        rr, cc = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        s, across, beyond = _project(rr, cc, line.astype(np.float32), closed)
        total = float(np.sum(np.hypot(*np.diff(line, axis=0).T)))
        pinch = np.zeros_like(s)
        for cen in centromeres:
            pinch += np.exp(-(((s - cen) / (0.45 * width)) ** 2))
        pinch = np.minimum(pinch, 1.0)
        offset = half * (0.35 + 0.2 * self.sister_gap) * (1 - 0.75 * pinch)
        radius = half * (0.62 - 0.1 * self.sister_gap) * (1 - 0.3 * pinch)
        if kind == "ring":
            offset, radius = offset * 0.3, radius * 0.8
        density = np.zeros_like(s)
        for sign in (-1.0, 1.0):
            dist = np.sqrt(beyond**2 + (across - sign * offset) ** 2)
            chord = np.sqrt(np.clip(1 - (dist / radius) ** 2, 0, 1))
            edge = expit((radius - dist) / 0.45)
            density = np.maximum(density, np.maximum(chord, 0.35 * edge) * edge)
        bands = np.interp(
            s / max(total, 1e-3), np.linspace(0, 1, 96), _BANDS.get(name, _BANDS["1"])
        )
        density *= 1 - self.band_contrast * (bands - 0.5) * 2
        od = (self.od_peak * density).astype(np.float32)
        self.od_chrom[r0:r1, c0:c1] += od
        index = len(self.chromosomes) + len(self.fragments)
        mask = density > 0.3
        self.owner[r0:r1, c0:c1][mask] = index
        rows, cols = np.nonzero(mask)
        box = (
            [int(rows.min() + r0), int(cols.min() + c0), int(rows.max() + r0), int(cols.max() + c0)]
            if len(rows)
            else [r0, c0, r1 - 1, c1 - 1]
        )
        item = dict(
            id=index,
            name=name,
            kind=kind,
            spread=spread_id,
            centerline=_r(line),
            width=round(width, 2),
            length=round(total, 1),
            box=box,
            centromeres=[_r(_point_at(line, c)) for c in centromeres],
            dicentric=kind == "dicentric",
            ring=kind == "ring",
        )
        (self.fragments if kind == "fragment" else self.chromosomes).append(item)

    # ---- other objects ---------------------------------------------------------------------
    def _draw_halo(self):
        """A faint cytoplasm remnant around some spreads."""
        if self.cfg.stain == "dapi" or self.rng.random() > 0.5:
            return
        h, w = self.shape
        for spread in self.spreads:
            (r, c), radius = spread["center"], spread["radius"] * self.rng.uniform(1.05, 1.4)
            e = int(radius * 1.8)
            r0, r1, c0, c1 = (
                max(int(r) - e, 0),
                min(int(r) + e, h),
                max(int(c) - e, 0),
                min(int(c) + e, w),
            )
            rr, cc = np.ogrid[r0:r1, c0:c1]
            dist = np.hypot(rr - r, cc - c).astype(np.float32) / radius
            self.od_other[r0:r1, c0:c1] += self.rng.uniform(0.02, 0.07) * expit((1 - dist) * 8)

    def _cover(self, margin: int) -> np.ndarray:
        """Pixels within ``margin`` of a chromosome (dilated only around the chromosomes)."""
        cover = self.owner >= 0
        rows, cols = np.nonzero(cover.any(1))[0], np.nonzero(cover.any(0))[0]
        if margin and len(rows):
            box = (
                slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
                slice(max(cols[0] - margin, 0), cols[-1] + margin + 1),
            )
            cover[box] = ndi.binary_dilation(cover[box], iterations=margin)
        return cover

    def _add_nuclei(self):
        """Interphase nuclei: never over chromosomes here (that is the debris class's job)."""
        rng = self.rng
        n = int(
            rng.choice([0, 1, 2, 3, 4, 5, 6, 8], p=[0.08, 0.12, 0.18, 0.18, 0.16, 0.12, 0.1, 0.06])
        )
        cover = self._cover(2)
        radius_mean = self._nucleus_radius()
        touching = self.label != "mixed" and rng.random() < 0.25  # hard case for "available"
        for k in range(n):
            radius = radius_mean * rng.uniform(0.8, 1.2)
            if k == 0 and touching:
                nucleus = self._nucleus_touching(radius, cover)
            else:
                make = lambda center, radius=radius: _Nucleus(center, radius, rng)  # noqa: E731
                nucleus = self._free_spot(make, cover)
            if nucleus is not None:
                self._paint_nucleus(nucleus)

    def _nucleus_radius(self) -> float:
        """Measured on the real sets: ~1.5 x chromosome 1 in Giemsa frames, ~0.9 x in the
        higher-magnification DAPI frames."""
        low, high = (0.7, 1.2) if self.cfg.stain == "dapi" else (1.1, 1.9)
        return self.chr1 * self.rng.uniform(low, high)

    def _nucleus_touching(self, radius, cover):
        """A nucleus pushed in from outside until it almost touches the spread."""
        spread = self.spreads[0]
        angle = self.rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(angle), np.cos(angle)])
        nucleus = _Nucleus(np.array(spread["center"]), radius, self.rng)
        last_free = None
        for dist in np.arange(spread["radius"] * 1.6 + radius, 0, -2.0):
            nucleus.center = np.asarray(spread["center"]) + dist * direction
            if not self._inside(nucleus.center, radius * 0.6):
                continue
            if nucleus.overlaps(cover):
                break
            last_free = nucleus.center.copy()
        if last_free is None:
            return None
        nucleus.center = last_free
        nucleus.touching = True
        return nucleus

    def _inside(self, center, margin) -> bool:
        h, w = self.shape
        return -margin < center[0] < h + margin and -margin < center[1] < w + margin

    def _free_spot(self, make, cover, tries=25):
        h, w = self.shape
        for _ in range(tries):
            obj = make(self.rng.uniform([0, 0], [h, w]))
            if not obj.overlaps(cover):
                return obj
        return None

    def _paint_nucleus(self, nucleus, over=()):
        od = nucleus.od(self.od_peak * self.rng.uniform(0.35, 0.65), self.shape)
        self.od_other[nucleus.window] += od
        self.nuclei.append(
            dict(
                center=_r(nucleus.center),
                radius=round(nucleus.radius, 1),
                box=nucleus.box(),
                over_chromosomes=list(over),
                touching=nucleus.touching,
            )
        )

    def _add_background_debris(self):
        """Specks, small particles and fibres away from chromosomes (all classes)."""
        rng = self.rng
        cover = self._cover(2)
        for _ in range(int(rng.integers(5, 120))):
            size = rng.uniform(0.6, 2.2)
            blob = self._free_spot(lambda c, s=size: _Blob(c, s, rng, parts=1), cover, tries=3)
            if blob is not None:
                self._paint_blob(blob, "speck", rng.uniform(0.1, 0.6) * self.od_peak)
        for _ in range(int(rng.integers(0, 3))):
            size = self.width_px * rng.uniform(0.6, 1.8)
            blob = self._free_spot(lambda c, s=size: _Blob(c, s, rng, parts=4), cover, tries=10)
            if blob is not None:
                self._paint_blob(blob, "particle", rng.uniform(0.5, 1.2) * self.od_peak)
        for _ in range(int(rng.choice([0, 0, 1, 2]))):
            fibre = self._free_spot(
                lambda c: _Fibre(c, self.chr1 * rng.uniform(1.5, 6), rng), cover, tries=10
            )
            if fibre is not None:
                self._paint_blob(fibre, "fibre", rng.uniform(0.08, 0.25) * self.od_peak)

    def _add_overlapping_debris(self):
        """1-3 particles, clumps or nuclei lying over chromosomes; at least one must hit."""
        rng = self.rng
        cover = self._cover(0)
        want = int(rng.choice([1, 1, 2, 3]))
        for _ in range(40):
            if (
                len([d for d in self.debris if d["over_chromosomes"]])
                + len([n for n in self.nuclei if n["over_chromosomes"]])
                >= want
            ):
                break
            target = self.chromosomes[int(rng.integers(len(self.chromosomes)))]
            r0, c0, r1, c1 = target["box"]
            at = np.array([rng.uniform(r0, r1 + 1), rng.uniform(c0, c1 + 1)])
            kind = rng.choice(["particle", "clump", "nucleus"], p=[0.45, 0.25, 0.3])
            if kind == "nucleus":
                radius = self._nucleus_radius()
                angle = rng.uniform(0, 2 * np.pi)
                shift = radius * rng.uniform(0.2, 0.9) * np.array([np.sin(angle), np.cos(angle)])
                obj = _Nucleus(at + shift, radius, rng)
            elif kind == "clump":
                obj = _Blob(
                    at, self.width_px * rng.uniform(2, 5), rng, parts=int(rng.integers(6, 16))
                )
            else:
                obj = _Blob(
                    at, self.width_px * rng.uniform(0.6, 2.0), rng, parts=int(rng.integers(2, 6))
                )
            over = obj.over(self.owner, cover)
            if not over:
                continue
            if kind == "nucleus":
                self._paint_nucleus(obj, over)
            else:
                self._paint_blob(obj, str(kind), rng.uniform(0.7, 1.3) * self.od_peak, over)

    def _paint_blob(self, blob, kind, od, over=()):
        self.od_other[blob.window] += blob.od(od, self.shape)
        self.debris.append(
            dict(kind=kind, center=_r(blob.center), box=blob.box(), over_chromosomes=list(over))
        )

    # ---- image formation -----------------------------------------------------------------
    def _render(self) -> np.ndarray:
        rng, (h, w) = self.rng, self.shape
        od = self.od_chrom + self.od_other
        uneven = np.float32(rng.uniform(0.0, 0.01))  # stain left unevenly on the slide
        od += _smooth_noise(self.shape, 160, rng) * uneven
        # illumination: off-centre vignetting and a slight tilt, as in a real bright-field frame
        r0, c0 = rng.uniform([0.2, 0.2], [0.8, 0.8]).astype(np.float32)
        rows = np.linspace(0, 1, h, dtype=np.float32)[:, None]
        cols = np.linspace(0, 1, w, dtype=np.float32)[None, :]
        fall = np.float32(rng.uniform(0.05, 0.3))
        tilt_r, tilt_c = (np.float32(v) for v in rng.uniform(-0.1, 0.1, 2))
        light = (1 - fall * (rows - r0) ** 2 + tilt_r * (rows - 0.5)) + (
            -fall * (cols - c0) ** 2 + tilt_c * (cols - 0.5)
        )
        blur = rng.uniform(0.5, 1.6) * min(h, w) / 1024
        if self.cfg.stain == "dapi":
            image = (
                np.float32(rng.uniform(0.02, 0.1)) * light
                + od * np.float32(rng.uniform(0.55, 0.95)) * light
            )
            image = ndi.gaussian_filter(image, blur)
            shot = np.float32(rng.uniform(0.001, 0.005)) + 0.006 * np.sqrt(np.clip(image, 0, None))
            image += rng.standard_normal(self.shape, np.float32) * shot
            return np.clip(image, 0, 1)
        level = rng.uniform(0.3, 0.85)  # exposure: real Giemsa frames sit anywhere here
        if self.cfg.stain == "giemsa":
            absorb, tint = [1.0], [1.0]
        else:  # purple: Giemsa absorbs green most, blue least
            absorb = np.array([0.75, 1.0, 0.35]) * rng.uniform(0.9, 1.1, 3)
            tint = np.array([0.95, 0.92, 1.0]) * rng.uniform(0.97, 1.03, 3)
        noise_sd = np.float32(rng.uniform(0.001, 0.005))
        channels = []
        for a, t in zip(absorb, tint):
            ch = np.exp(od * np.float32(-a)) * light
            ch *= np.float32(level * t)
            ch = ndi.gaussian_filter(ch, blur)
            ch += rng.standard_normal(self.shape, np.float32) * (
                noise_sd * (0.5 + np.sqrt(np.clip(ch, 0, None)))
            )
            channels.append(np.clip(ch, 0, 1))
        return channels[0] if len(channels) == 1 else np.stack(channels, -1)

    def _annotation(self) -> dict:
        reasons = reasons_for(self.spreads, self.nuclei, self.debris)
        return dict(
            label=self.label,
            reasons=reasons,
            seed=self.seed,
            config=asdict(self.cfg),
            chromosome_count=len(self.chromosomes),
            spread_count=len(self.spreads),
            spreads_layout=self.layout,
            dicentric_count=sum(c["dicentric"] for c in self.chromosomes),
            ring_count=sum(c["ring"] for c in self.chromosomes),
            fragment_count=len(self.fragments),
            debris_overlap_count=sum(
                bool(o["over_chromosomes"]) for o in self.nuclei + self.debris
            ),
            nuclei_count=len(self.nuclei),
            chromosome_length_px=round(self.chr1, 1),
            spreads=self.spreads,
            chromosomes=self.chromosomes,
            fragments=self.fragments,
            nuclei=self.nuclei,
            debris=self.debris,
        )


def reasons_for(spreads, nuclei, debris) -> list[str]:
    """The rejection criteria a picture meets, from its ground truth."""
    over = sum(bool(o["over_chromosomes"]) for o in list(nuclei) + list(debris))
    return verdicts([s["chromosome_count"] for s in spreads], over)


class _Shape:
    """An object drawn from a fixed local pattern, computed once, placed at ``center``.

    ``pattern()`` gives the shape over offsets -e..e from the centre; moving the object while
    looking for a free spot only re-slices it.
    """

    center: np.ndarray
    extent: float
    threshold = 0.2  # pattern value above which a pixel belongs to the object

    def pattern(self) -> np.ndarray:
        if getattr(self, "_pattern", None) is None:
            e = self.half = int(np.ceil(self.extent)) + 2
            dr, dc = np.mgrid[-e : e + 1, -e : e + 1].astype(np.float32)
            self._pattern = self._shape(dr, dc)
        return self._pattern

    def _local(self, shape, full=None):
        """The part of ``full`` (default: the pattern) that falls inside the image; sets
        ``window``, the matching slices of the image."""
        pattern = self.pattern() if full is None else full
        e, (h, w) = self.half, shape
        r, c = (round(float(v)) for v in self.center)
        r0, r1 = min(max(r - e, 0), h), max(min(r + e + 1, h), 0)
        c0, c1 = min(max(c - e, 0), w), max(min(c + e + 1, w), 0)
        r1, c1 = max(r1, r0), max(c1, c0)
        self.window = (slice(r0, r1), slice(c0, c1))
        return pattern[r0 - r + e : r1 - r + e, c0 - c + e : c1 - c + e]

    def mask(self, shape) -> np.ndarray:
        return self._local(shape) > self.threshold

    def overlaps(self, cover) -> bool:
        mask = self.mask(cover.shape)
        return bool(mask.size and np.any(cover[self.window][mask]))

    def over(self, owner, cover) -> list[int]:
        mask = self.mask(cover.shape)
        ids = owner[self.window][mask & cover[self.window]]
        return sorted(int(i) for i in np.unique(ids) if i >= 0)

    def od(self, peak, shape) -> np.ndarray:
        return (peak * self._local(shape)).astype(np.float32)

    def box(self):
        rs, cs = self.window
        return [rs.start, cs.start, rs.stop - 1, cs.stop - 1]


class _Nucleus(_Shape):
    """A round, textured interphase nucleus with a slightly irregular, granular rim."""

    def __init__(self, center, radius, rng):
        self.center, self.radius, self.rng = np.asarray(center, float), float(radius), rng
        self.extent = radius * 1.15
        self.aspect = rng.uniform(0.88, 1.0)
        self.tilt = rng.uniform(0, np.pi)
        self.lobes = rng.normal(0, 0.012, 3)
        self.touching = False  # placed to almost touch the spread without covering it

    def _shape(self, dr, dc):
        """Normalised radius: < 1 inside the nucleus."""
        ct, st = np.cos(self.tilt), np.sin(self.tilt)
        u, v = dr * ct + dc * st, (-dr * st + dc * ct) * self.aspect
        angle = np.arctan2(u, v)
        rim = 1 + sum(a * np.cos((k + 2) * angle + k) for k, a in enumerate(self.lobes))
        return np.hypot(u, v) / (self.radius * rim)

    def mask(self, shape):
        return self._local(shape) < 1.03

    def od(self, peak, shape):
        rng, rho = self.rng, self.pattern()
        blotch = _smooth_noise(rho.shape, max(4, self.radius / 5), rng)
        grain = ndi.gaussian_filter(rng.random(rho.shape, np.float32), 1.0)
        grain = (grain - grain.mean()) / (grain.std() + 1e-6)
        body = np.sqrt(np.clip(1 - rho**2, 0, 1)) * 0.4 + 0.6
        edge = expit((1 - rho) / 0.035)
        texture = np.clip(1 + 0.2 * blotch + 0.12 * grain, 0.2, None)
        return self._local(shape, (peak * body * edge * texture).astype(np.float32))


class _Blob(_Shape):
    """A dark particle: one or several overlapping soft discs (a clump when many)."""

    def __init__(self, center, size, rng, parts=1):
        self.center, self.size, self.rng = np.asarray(center, float), float(size), rng
        spread = 0 if parts == 1 else size * 0.6
        self.parts = rng.normal(0, 1, (parts, 2)) * spread
        self.radii = size * rng.uniform(0.3, 0.7, parts) if parts > 1 else np.array([size])
        self.extent = float(np.max(np.abs(self.parts)) + self.radii.max() + 2)

    def _shape(self, dr, dc):
        dens = np.zeros_like(dr)
        for (pr, pc), rad in zip(self.parts, self.radii):
            dens = np.maximum(dens, expit((rad - np.hypot(dr - pr, dc - pc)) / 0.5))
        return dens


class _Fibre(_Shape):
    """A thin, faint, curved fibre lying on the slide."""

    def __init__(self, center, length, rng):
        self.center, self.rng = np.asarray(center, float), rng
        n = 12
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.15, n))
        steps = np.stack([np.sin(heading), np.cos(heading)], 1) * (length / n)
        pts = np.vstack([[0, 0], np.cumsum(steps, 0)])
        self.line = (pts - pts.mean(0)).astype(np.float32)
        self.thick = rng.uniform(0.6, 1.4)
        self.extent = float(np.abs(self.line).max() + 4)

    def _shape(self, dr, dc):
        _, across, beyond = _project(dr, dc, self.line, False)
        return expit((self.thick - np.hypot(across, beyond)) / 0.5)


def _project(rr, cc, line, closed):
    """Pixel coordinates relative to a polyline, from its nearest segment: arc position ``s``,
    signed distance ``across`` it, and distance ``beyond`` its two ends (0 between them)."""
    seg = line[1:] - line[:-1]
    seg_len = np.maximum(np.hypot(seg[:, 0], seg[:, 1]), 1e-6)
    offsets = np.concatenate([[0], np.cumsum(seg_len)[:-1]])
    best = np.full(rr.shape, np.inf, np.float32)
    s, across, beyond = (np.zeros(rr.shape, np.float32) for _ in range(3))
    last = len(seg) - 1
    for i, length in enumerate(seg_len):
        ur, uc = seg[i] / length
        qr, qc = rr - line[i, 0], cc - line[i, 1]
        along = qr * ur + qc * uc
        perp = qc * ur - qr * uc
        before, after = np.maximum(-along, 0), np.maximum(along - length, 0)
        end = (before if i == 0 and not closed else 0) + (after if i == last and not closed else 0)
        inner = before + after - end  # past a bend: fold into the distance across
        dist2 = perp * perp + (before + after) ** 2
        better = dist2 < best
        best = np.where(better, dist2, best)
        s = np.where(better, offsets[i] + np.clip(along, 0, length), s)
        across = np.where(better, np.sign(perp) * np.sqrt(perp * perp + inner * inner), across)
        beyond = np.where(better, end, beyond)
    return s, across, beyond


def _smooth_noise(shape, scale, rng) -> np.ndarray:
    """Smooth noise (about unit spread) with features about ``scale`` pixels across: a coarse
    random grid, interpolated bilinearly (rows, then columns; no BLAS threads to fight over
    between worker processes)."""
    h, w = shape
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    small = rng.standard_normal((gh, gw), np.float32)
    lo, frac = _interp_weights(h, gh)
    tall = small[lo] * (1 - frac)[:, None] + small[lo + 1] * frac[:, None]
    lo, frac = _interp_weights(w, gw)
    return tall[:, lo] * (1 - frac) + tall[:, lo + 1] * frac


def _interp_weights(n: int, m: int):
    """Left neighbour and weight to linearly interpolate m grid values onto n points."""
    pos = np.linspace(0, m - 1, n, dtype=np.float32)
    lo = np.minimum(pos.astype(int), m - 2)
    return lo, pos - lo


def _point_at(line, s):
    seg = np.diff(line, axis=0)
    cum = np.concatenate([[0], np.cumsum(np.hypot(*seg.T))])
    return np.array([np.interp(s, cum, line[:, 0]), np.interp(s, cum, line[:, 1])])


def _r(values):
    return np.round(np.asarray(values, float), 1).tolist()


# ---- data sets on disk --------------------------------------------------------------------
def plan_labels(n: int, seed: int, classes=CLASSES, weights=None) -> list[str]:
    """``n`` class labels in a seeded random order, in proportion to ``weights`` (default equal)."""
    classes = tuple(classes)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or not classes:
        raise ValueError(f"classes must be chosen from {CLASSES}, got {list(classes)}")
    weights = np.ones(len(classes)) if weights is None else np.asarray(weights, float)
    if weights.shape != (len(classes),) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"need one non-negative weight per class ({len(classes)}), got {list(weights)}"
        )
    exact = n * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1  # largest remainders: a balanced set stays balanced to one picture
    labels = [c for c, k in zip(classes, counts) for _ in range(k)]
    np.random.default_rng(seed).shuffle(labels)
    return labels


def image_seed(seed: int, index: int) -> int:
    """The seed of picture ``index`` of a data set: independent of the others and of workers."""
    return int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0])


def to_stored(image: np.ndarray, bits: int) -> np.ndarray:
    """Quantise a [0, 1] picture to uint8 or uint16 as a camera would store it."""
    top = 255 if bits == 8 else 65535
    return np.round(np.clip(image, 0, 1) * top).astype(np.uint8 if bits == 8 else np.uint16)


def save_image(path: Path, stored: np.ndarray, fmt: str) -> None:
    """Write ``stored`` to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "tif":
        import tifffile

        tifffile.imwrite(
            tmp,
            stored,
            photometric="rgb" if stored.ndim == 3 else "minisblack",
            compression="zlib",
            compressionargs={"level": 1},
        )
    else:
        import imagecodecs  # libpng: about twice as fast as Pillow's encoder at level 1

        tmp.write_bytes(imagecodecs.png_encode(stored, level=1))
    os.replace(tmp, path)


def write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_one(job) -> dict:
    index, label, seed, config, out_dir, fmt, bits = job
    image, ann = generate(label, seed, config)
    name = f"{index:06d}"
    rel = f"{label}/{name}.{fmt}"
    save_image(out_dir / rel, to_stored(image, bits), fmt)
    write_json(out_dir / "annotations" / f"{name}.json", dict(id=name, path=rel, **ann))
    row = {k: ann[k] for k in LABEL_COLUMNS if k in ann}
    row.update(
        path=rel,
        reasons=";".join(ann["reasons"]),
        stain=config.stain,
        width=config.width,
        height=config.height,
    )
    return row


def write_dataset(
    out_dir: str | os.PathLike,
    n: int,
    *,
    seed: int = 0,
    config: SynthConfig = SynthConfig(),
    classes=CLASSES,
    weights=None,
    fmt: str = "png",
    bits: int = 8,
    workers: int | None = None,
) -> list[dict]:
    """Write ``n`` pictures as ``out_dir/<class>/<id>.<fmt>`` with ``labels.csv``,
    ``annotations/<id>.json`` and ``synth.json``. Same seed and settings, same bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    if bits not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bits}")
    if n < 1:
        raise ValueError(f"the number of pictures must be at least 1, not {n}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir} is not empty; metasift never overwrites files: choose a new folder"
        )
    labels = plan_labels(n, seed, classes, weights)
    for sub in [*sorted(set(labels)), "annotations"]:
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    jobs = [
        (i, lab, image_seed(seed, i), config, out_dir, fmt, bits) for i, lab in enumerate(labels)
    ]
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers == 1 or n < 4:
        rows = [_write_one(job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_write_one, jobs, chunksize=4))
    settings = dict(
        n=n,
        seed=seed,
        classes=list(classes),
        weights=None if weights is None else list(weights),
        format=fmt,
        bits=bits,
        config=asdict(config),
    )
    write_json(out_dir / "synth.json", settings)
    tmp = out_dir / ".labels.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out_dir / "labels.csv")
    return rows

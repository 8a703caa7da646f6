"""Where the spreads of a picture lie and where each chromosome of a spread goes.

Coordinates are (row, column) in pixels. The class of the picture decides how many spreads it
holds and how many chromosomes each keeps; hard cases sit on every boundary (exactly 40 vs 39
chromosomes, spreads intermingled, side by side or apart).
"""

from __future__ import annotations

import numpy as np

from ..criteria import MIN_CHROMOSOMES

LAYOUTS = ("intermingled", "side_by_side", "apart")  # how a second spread lies by the first


class SpreadPlanner:
    """Plans the spreads of one picture from its random stream (drawn in a fixed order)."""

    def __init__(self, rng, label: str, shape: tuple[int, int], chr1: float):
        self.rng, self.label, self.shape, self.chr1 = rng, label, shape, chr1
        self.layout = "single"  # how spreads lie: single, intermingled, side_by_side, apart
        self.spacing = (1.3, 2.3)  # mean gap between chromosomes, in mean chromosome lengths
        self.min_gap = 0.45  # closest two chromosomes usually lie, in chromosome-1 lengths
        self.inside = 1.05  # spread radii kept inside the frame (< 1: the edge cuts a few)

    def n_final(self) -> int:
        """Chromosomes left in the (first) spread, by class; hard cases at the 40 boundary."""
        rng = self.rng
        if self.label == "too_few":
            return int(rng.integers(37, 40) if rng.random() < 0.35 else rng.integers(18, 37))
        if rng.random() < 0.12:
            return MIN_CHROMOSOMES  # exactly 40: still usable
        return 46 if rng.random() < 0.55 else int(rng.integers(MIN_CHROMOSOMES, 46))

    def spreads(self) -> list[dict]:
        """One plan per spread: chromosomes kept, size scale, radius and centre."""
        rng = self.rng
        if self.label != "mixed":
            plan = dict(n_final=self.n_final(), scale=1.0)
            plan["radius"] = self.spread_radius(46)
            plan["center"] = self.center_inside(plan["radius"])
            return [plan]
        n_spreads = 3 if rng.random() < 0.12 else 2
        plans = []
        for k in range(n_spreads):
            n = 46 if rng.random() < 0.4 else int(rng.integers(22, 46))
            scale = 1.0 if k == 0 else rng.uniform(0.85, 1.15)  # cells at other stages
            radius = self.spread_radius(n) * rng.uniform(0.8, 1.0)
            plans.append(dict(n_final=n, scale=scale, radius=radius))
        plans[0]["center"] = self.center_inside(plans[0]["radius"])
        for plan in plans[1:]:
            plan["center"] = self.neighbour_center(plans[0], plan["radius"])
        return plans

    def spread_radius(self, n: int) -> float:
        mean_len = self.chr1 * 0.55
        spacing = mean_len * self.rng.uniform(*self.spacing)  # compact to loosely scattered
        return float(np.sqrt(n * spacing**2 / np.pi))

    def center_inside(self, radius: float) -> tuple[float, float]:
        h, w = self.shape
        mr, mc = min(radius * self.inside, h / 2 - 1), min(radius * self.inside, w / 2 - 1)
        return float(self.rng.uniform(mr, h - mr)), float(self.rng.uniform(mc, w - mc))

    def neighbour_center(self, first: dict, radius: float) -> tuple[float, float]:
        """A second spread intermingled with, beside, or apart from the first one."""
        rng, (h, w) = self.rng, self.shape
        mode = str(rng.choice(list(LAYOUTS), p=[0.35, 0.4, 0.25]))
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

    def positions(self, n: int, radius: float, center) -> np.ndarray:
        """n chromosome centres in a rotated ellipse, mostly apart, a few touching."""
        rng = self.rng
        aspect, theta = rng.uniform(0.65, 1.0), rng.uniform(0, np.pi)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        min_gap = self.chr1 * self.min_gap
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

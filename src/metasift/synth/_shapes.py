"""The shapes drawn on a slide besides chromosomes, and the geometry they share.

A shape is a fixed local pattern computed once around its centre (rows, columns), so moving it
while looking for a free spot only re-slices it: interphase nuclei, particles and clumps,
fibres. ``project`` measures pixels against a polyline (a chromosome's or a fibre's centre
line).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit


class Shape:
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


class Nucleus(Shape):
    """A round, textured interphase nucleus with a slightly irregular, granular rim."""

    look = "soft"  # soft (legacy), sharp (granular, crisp edge) or pyknotic (dark, compact)
    blotchy = 0.25  # a sharp nucleus's chromatin blotches (fluorescence shows them more)

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
        if self.look != "soft":
            return self._local(shape, self._crisp(peak))
        rng, rho = self.rng, self.pattern()
        blotch = smooth_noise(rho.shape, max(4, self.radius / 5), rng)
        grain = ndi.gaussian_filter(rng.random(rho.shape, np.float32), 1.0)
        grain = (grain - grain.mean()) / (grain.std() + 1e-6)
        body = np.sqrt(np.clip(1 - rho**2, 0, 1)) * 0.4 + 0.6
        edge = expit((1 - rho) / 0.035)
        texture = np.clip(1 + 0.2 * blotch + 0.12 * grain, 0.2, None)
        return self._local(shape, (peak * body * edge * texture).astype(np.float32))

    def _crisp(self, peak):
        """A real DCA slide's nucleus: a crisp edge and coarse chromatin granules; a pyknotic
        one is small, nearly uniform and very dark."""
        rng, rho = self.rng, self.pattern()
        if self.look == "pyknotic":
            body = 0.85 + 0.15 * np.sqrt(np.clip(1 - rho**2, 0, 1))
            return (peak * body * expit((1 - rho) / 0.02)).astype(np.float32)
        blotch = smooth_noise(rho.shape, max(4, self.radius / 4), rng)
        grain = ndi.gaussian_filter(rng.random(rho.shape, np.float32), 0.8)
        grain = (grain - grain.mean()) / (grain.std() + 1e-6)
        body = np.sqrt(np.clip(1 - rho**2, 0, 1)) * 0.25 + 0.75
        edge = expit((1 - rho) / 0.012)
        texture = np.clip(1 + self.blotchy * blotch + rng.uniform(0.15, 0.35) * grain, 0.2, None)
        return (peak * body * edge * texture).astype(np.float32)


class Bodies(Shape):
    """A cluster of small round dark bodies (apoptotic bodies, a broken-up nucleus)."""

    def __init__(self, center, size, rng, parts):
        self.center, self.size, self.rng = np.asarray(center, float), float(size), rng
        self.parts = rng.normal(0, 1, (parts, 2)) * size * rng.uniform(1.5, 3.5)
        self.radii = size * rng.uniform(0.4, 1.0, parts)
        self.extent = float(np.max(np.abs(self.parts)) + self.radii.max() + 2)

    def _shape(self, dr, dc):
        dens = np.zeros_like(dr)
        for (pr, pc), rad in zip(self.parts, self.radii):
            dens = np.maximum(dens, expit((rad - np.hypot(dr - pr, dc - pc)) / 0.4))
        return dens


class Refractile(Shape):
    """A refractile dot or ring: brighter than the background in bright-field, with a thin dark
    rim (out-of-focus glass or crystal). Its pattern is signed: > 0 bright, < 0 dark."""

    def __init__(self, center, size, rng):
        self.center, self.size, self.rng = np.asarray(center, float), float(size), rng
        self.ring = rng.random() < 0.4
        self.extent = size * 1.6 + 2

    def _shape(self, dr, dc):
        d = np.hypot(dr, dc)
        if self.ring:
            bright = np.exp(-(((d - self.size) / max(1.0, self.size * 0.25)) ** 2))
        else:
            bright = expit((self.size - d) / 0.5)
        rim = np.exp(-(((d - self.size * 1.3) / max(0.8, self.size * 0.15)) ** 2))
        return (bright - 0.35 * rim).astype(np.float32)

    def mask(self, shape):
        return np.abs(self._local(shape)) > self.threshold


class Blob(Shape):
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


class Fibre(Shape):
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
        _, across, beyond = project(dr, dc, self.line, False)
        return expit((self.thick - np.hypot(across, beyond)) / 0.5)


def project(rr, cc, line, closed):
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


def smooth_noise(shape, scale, rng) -> np.ndarray:
    """Smooth noise (about unit spread) with features about ``scale`` pixels across: a coarse
    random grid, interpolated bilinearly (rows, then columns; no BLAS threads to fight over
    between worker processes)."""
    h, w = shape
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    small = rng.standard_normal((gh, gw), np.float32)
    lo, frac = interp_weights(h, gh)
    tall = small[lo] * (1 - frac)[:, None] + small[lo + 1] * frac[:, None]
    lo, frac = interp_weights(w, gw)
    return tall[:, lo] * (1 - frac) + tall[:, lo + 1] * frac


def interp_weights(n: int, m: int):
    """Left neighbour and weight to linearly interpolate m grid values onto n points."""
    pos = np.linspace(0, m - 1, n, dtype=np.float32)
    lo = np.minimum(pos.astype(int), m - 2)
    return lo, pos - lo


def point_at(line, s):
    seg = np.diff(line, axis=0)
    cum = np.concatenate([[0], np.cumsum(np.hypot(*seg.T))])
    return np.array([np.interp(s, cum, line[:, 0]), np.interp(s, cum, line[:, 1])])

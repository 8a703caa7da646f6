"""One synthetic picture: its spreads, chromosomes, nuclei and debris, and its ground truth.

Every object adds optical density (OD) to a map; ``_optics`` turns the map into pixels. The
ground truth (the annotation) names every object drawn, with (row, column) coordinates in
pixels, and the rejection criteria the picture meets (``metasift.criteria``).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from ..annotations import CENTROMERE, CHROMOSOME, DEBRIS, NUCLEUS
from ..criteria import CLASSES, verdicts
from ._config import SynthConfig
from ._karyotype import CELL, LONGEST, TYPE, centerline, density, dicentric_cuts, ring_cuts
from ._layout import SpreadPlanner
from ._optics import burn_label, jpeg_history, render, render_dca
from ._shapes import Blob, Bodies, Fibre, Nucleus, Refractile, point_at


def generate(label: str, seed: int, config: SynthConfig | None = None):
    """One picture of class ``label``: (pixels in [0, 1], H x W or H x W x 3), annotation.
    ``config`` defaults to ``SynthConfig()``."""
    config = SynthConfig() if config is None else config
    if label not in CLASSES:
        raise ValueError(f"label must be one of {CLASSES}, not {label!r}")
    return _Scene(label, seed, config).build()


def generate_with_masks(label: str, seed: int, config: SynthConfig | None = None):
    """``generate``'s picture and annotation, and its instance labels and class map (as
    ``metasift.annotations`` defines them): (image, annotation, instances, classes)."""
    config = SynthConfig() if config is None else config
    if label not in CLASSES:
        raise ValueError(f"label must be one of {CLASSES}, not {label!r}")
    scene = _Scene(label, seed, config)
    image, annotation = scene.build()
    return (image, annotation, *scene.masks())


class _Scene:
    """Places the objects of one picture and records its ground truth.

    Optical density maps are float32, rows x columns; ``owner`` says which chromosome (index
    into chromosomes + fragments, in drawing order) covers each pixel.
    """

    def __init__(self, label: str, seed: int, config: SynthConfig):
        self.label, self.seed, self.cfg = label, int(seed), config
        self.rng = np.random.default_rng(self.seed)
        self.shape = (config.height, config.width)
        self.od_chrom = np.zeros(self.shape, np.float32)
        self.od_other = np.zeros(self.shape, np.float32)  # nuclei, debris, halo, fibres
        self.owner = np.full(self.shape, -1, np.int16)  # chromosome index covering each pixel
        self.chromosomes, self.fragments, self.spreads = [], [], []
        self.nuclei, self.debris = [], []
        self.kind_map = np.zeros(self.shape, np.uint8)  # nucleus / debris under the chromosomes
        self._covers = {}  # _cover's answers by margin, until the next chromosome is drawn

    def build(self):
        rng = self.rng
        if self.cfg.style == "dca":
            self._dca_look()
        else:
            self._legacy_look()
        for spread_id, plan in enumerate(self.planner.spreads()):
            self._add_spread(spread_id, **plan)
        self._draw_halo()
        self._add_nuclei()
        self._add_background_debris()
        if self.cfg.style == "dca":
            self._add_slide_artefacts()
        if self.label == "debris":
            self._add_overlapping_debris()
        od = self.od_chrom + self.od_other
        if self.cfg.style == "legacy":
            return render(od, self.cfg.stain, rng), self._annotation()
        image = render_dca(od, self.cfg.stain, rng, randomise=self.cfg.randomise)
        # a frame label on half of the DCA labs' pictures, on none of giemsa-dev's
        if self.cfg.stain != "dapi" and rng.random() < (0.3 if self.cfg.randomise else 0.5):
            burn_label(image, rng, self._cover(4) == 0)
        # a JPEG history: common in bright-field DCA captures, rarer in fluorescence ones
        # (mfish-dev: none), where the software keeps the camera's 8 or 16 bits
        chance = (0.6 if self.cfg.randomise else 0.4) * (0.5 if self.cfg.stain == "dapi" else 1)
        if rng.random() < chance:
            low = 50 if self.cfg.randomise else 75
            if self.cfg.stain == "dapi":  # saved at high quality when at all
                low = 80 if self.cfg.randomise else 90
            image = jpeg_history(image, int(rng.integers(low, 97)))
        return image, self._annotation()

    def _legacy_look(self):
        """The draws of the pictures the bundled model was trained on (unchanged)."""
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
        self.coarse_bands = False  # the band pattern as fluorescence resolves it (_dca_look)
        self.splay = 0.0
        self.bend, self.constriction, self.closure = 0.9, 0.3, 0.75
        self.heterochromatin = False
        self.step = 5.0  # pixels per segment of a centre line
        self.planner = SpreadPlanner(rng, self.label, self.shape, self.chr1)

    def _dca_look(self):
        """Real DCA pictures (issue 20): mostly colcemid-arrested chromosomes, short and wide
        with their sister chromatids apart and splayed into an X, down to long prometaphase
        ones; solid Giemsa (faint bands); dense DAPI spreads whose chromosomes touch."""
        rng, side = self.rng, min(self.shape)
        dapi = self.cfg.stain == "dapi"
        zoom = (0.06, 0.108) if dapi else (0.04, 0.08)
        scale = rng.uniform(0.75, 1.3) if self.cfg.randomise else 1.0
        # 1: colcemid-arrested; 0: prometaphase
        self.condensed = float(rng.beta(1.8 if dapi else 2.5, 1.2))
        self.chr1 = side * rng.uniform(*zoom) * scale * (1.15 - 0.25 * self.condensed)
        thick = 0.26 if dapi else 0.17  # a fluorescent chromosome looks thicker than it is
        if self.cfg.randomise and not dapi:  # fixation and spreading: giemsa-dev's are wider
            thick *= rng.uniform(0.9, 1.35)
        self.width_px = max(3.0, self.chr1 * (thick + (0.077 if dapi else 0.13) * self.condensed))
        self.od_peak = rng.uniform(0.6, 1.0) if dapi else rng.uniform(1.1, 2.0)
        if self.cfg.randomise and not dapi:  # paler stains (giemsa-dev: 0.25 contrast)
            self.od_peak *= rng.uniform(0.45, 1.0)
        # mfish-dev's DAPI bands: coarse and strong (along a chromosome object its darkness varies
        # by p90 - p10 over p90 0.22 at its size; synthetic 0.09 before these, 0.31 with them and
        # the grain: realism.py)
        self.band_contrast = rng.uniform(*((0.6, 1.2) if dapi else (0.0, 0.12)))
        self.coarse_bands = dapi
        if dapi:  # a fluorescence frame seldom resolves the chromatids: rods (mfish-dev)
            self.sister_gap, self.splay = rng.uniform(0.0, 0.2), 0.0
        else:
            self.sister_gap = rng.uniform(0.1, 0.4) + self.condensed * rng.uniform(0.1, 0.7)
            self.splay = self.condensed * rng.uniform(0.05, 0.45)
        # mfish-dev's chromosomes lie mostly straight, a centromere hardly narrower (solidity
        # 0.93 and eccentricity 0.81 of their objects)
        # (a DAPI chromosome's chromatids hardly close at the centromere: no bow tie)
        self.bend, self.constriction, self.closure = (0.45, 0.1, 0.3) if dapi else (0.6, 0.3, 0.75)
        self.heterochromatin = dapi  # DAPI's bright blocks (1q12, 9q12, 16q11.2, Yq12)
        self.step = 8.0  # condensed chromosomes bend little: fewer segments, faster drawing
        self.planner = SpreadPlanner(rng, self.label, self.shape, self.chr1)
        self.planner.spacing = (1.45, 2.45) if dapi else (1.1, 2.1)  # objects as real (realism.py)
        if self.cfg.randomise:  # spreads from tight to loose (giemsa-dev: 43 objects of 46)
            self.planner.spacing = (self.planner.spacing[0], self.planner.spacing[1] + 0.9)
        self.planner.min_gap = 0.33 if dapi else 0.4
        self.planner.inside = 0.85  # a few chromosomes of a spread cut by the frame edge

    # ---- chromosomes ----------------------------------------------------------------------
    def _add_spread(self, spread_id, *, n_final, scale, radius, center):
        """Lay out one metaphase: 46 positions in an ellipse, then losses and aberrations."""
        rng = self.rng
        n_dic = int(rng.poisson(self.cfg.dicentric_rate))
        n_ring = int(rng.poisson(self.cfg.ring_rate))
        n_dic, n_ring = min(n_dic, 46 - n_final), min(n_ring, max(0, 46 - n_final - n_dic))
        xy = "XY" if rng.random() < 0.5 else "XX"
        types = CELL + list(xy)
        positions = self.planner.positions(46, radius, center)
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

    def _chromosome(self, spread_id, name, center, length1):
        rel, ci = TYPE[name]
        length = length1 * rel / LONGEST * self.rng.uniform(0.9, 1.1)
        length = max(length, self.width_px * 1.2)
        line = centerline(self.rng, center, length, self.chr1, bend=self.bend, step=self.step)
        self._draw(line, [ci * length], name, spread_id, kind="chromosome")

    def _dicentric(self, spread_id, name_a, name_b, center, length1):
        """Two chromosomes joined at their broken long arms; plus the acentric fragment."""
        length, cens, rest = dicentric_cuts(self.rng, name_a, name_b, length1)
        line = centerline(self.rng, center, length, self.chr1, bend=self.bend, step=self.step)
        self._draw(line, cens, f"dic({name_a};{name_b})", spread_id, kind="dicentric")
        self._fragment(spread_id, center, rest)

    def _ring(self, spread_id, name, center, length1):
        ring_length, cen, rest = ring_cuts(self.rng, name, length1)
        circumference = max(ring_length, self.width_px * 3)
        line = centerline(self.rng, center, circumference, self.chr1, closed=True)
        self._draw(line, [cen], f"r({name})", spread_id, kind="ring", closed=True)
        self._fragment(spread_id, center, rest)

    def _fragment(self, spread_id, near, length):
        angle = self.rng.uniform(0, 2 * np.pi)
        offset = self.chr1 * self.rng.uniform(0.5, 1.2)
        center = np.asarray(near) + offset * np.array([np.sin(angle), np.cos(angle)])
        h, w = self.shape
        center = np.clip(center, [4, 4], [h - 5, w - 5])
        line = centerline(
            self.rng,
            center,
            max(length * 0.6, self.width_px * 0.8),
            self.chr1,
            bend=self.bend,
            step=self.step,
        )
        self._draw(line, [], "ace", spread_id, kind="fragment")

    def _draw(self, line, centromeres, name, spread_id, *, kind, closed=False):
        """Add one chromosome's OD on its own box, and record it."""
        width = self.width_px * self.rng.uniform(0.9, 1.1)
        pad = int(width / 2 + 3)
        h, w = self.shape
        r0, c0 = np.floor(line.min(0)).astype(int) - pad
        r1, c1 = np.ceil(line.max(0)).astype(int) + pad + 1
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
        if r1 <= r0 or c1 <= c0:
            return
        rr, cc = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        dens, total, body = density(
            rr,
            cc,
            line,
            centromeres,
            name,
            width=width,
            sister_gap=self.sister_gap,
            band_contrast=self.band_contrast,
            ring=kind == "ring",
            closed=closed,
            splay=self.splay,
            constriction=self.constriction,
            closure=self.closure,
            coarse_bands=self.coarse_bands,
        )
        od = (self.od_peak * dens).astype(np.float32)
        if self.heterochromatin and centromeres:
            # within the chromosome's own body, so the masks hold every bright pixel
            od += self._heterochromatin(rr, cc, line, centromeres[0], total, name, width) * dens
        self.od_chrom[r0:r1, c0:c1] += od
        index = len(self.chromosomes) + len(self.fragments)
        # strong coarse bands dim whole stretches of a chromosome: its mask is its body's
        mask = (body if self.coarse_bands else dens) > 0.3
        if self.cfg.style == "dca":  # the gap between splayed chromatids is the chromosome's
            mask = _closing(mask, 2)
        self.owner[r0:r1, c0:c1][mask] = index
        self._covers.clear()
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
            centromeres=[_r(point_at(line, c)) for c in centromeres],
            dicentric=kind == "dicentric",
            ring=kind == "ring",
        )
        (self.fragments if kind == "fragment" else self.chromosomes).append(item)

    def _heterochromatin(self, rr, cc, line, centromere, total, name, width):
        """The block of satellite DNA that DAPI stains brightest on chromosomes 1, 9 and 16
        (beside the centromere, on the long arm) and Y (the long arm's end): OD on the box."""
        if name not in ("1", "9", "16", "Y"):
            return np.float32(0)
        at = total * 0.8 if name == "Y" else centromere + width * 0.6
        r, c = point_at(line, min(at, total))
        spot = np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * (width * 0.35) ** 2))
        return (self.od_peak * self.rng.uniform(1.0, 2.0) * spot).astype(np.float32)

    # ---- other objects ---------------------------------------------------------------------
    def _draw_halo(self):
        """A faint cytoplasm remnant around some spreads."""
        # a legacy DAPI picture has none; in a dca one it is the cytoplasm's autofluorescence
        if (self.cfg.stain == "dapi" and self.cfg.style == "legacy") or self.rng.random() > 0.5:
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
            if self.cfg.style == "legacy":  # float64 distances, as the bundled model saw
                rr, cc = np.ogrid[r0:r1, c0:c1]
                dist = np.hypot(rr - r, cc - c).astype(np.float32) / radius
            else:
                rr = np.arange(r0, r1, dtype=np.float32)[:, None] - np.float32(r)
                cc = np.arange(c0, c1, dtype=np.float32)[None, :] - np.float32(c)
                dist = np.hypot(rr, cc) / np.float32(radius)
            self.od_other[r0:r1, c0:c1] += self.rng.uniform(0.02, 0.07) * expit((1 - dist) * 8)

    def _cover(self, margin: int) -> np.ndarray:
        """Pixels within ``margin`` of a chromosome (dilated only around the chromosomes);
        read only (kept until the next chromosome is drawn)."""
        if margin in self._covers:
            return self._covers[margin]
        cover = self._covers[margin] = self.owner >= 0
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
        if self.cfg.style == "dca" and self.cfg.stain == "dapi":  # issue 20: 1.1 +- 1.9
            n = int(rng.choice(7, p=[0.5, 0.25, 0.1, 0.06, 0.05, 0.02, 0.02]))
        elif self.cfg.style == "dca" and self.cfg.randomise:  # giemsa-dev: 6.3 (2-8)
            n = int(rng.integers(0, 10))
        elif self.cfg.style == "dca":  # issue 20: 2.6 +- 2.8 per real Giemsa picture
            n = int(rng.choice(9, p=[0.2, 0.2, 0.17, 0.13, 0.1, 0.08, 0.06, 0.04, 0.02]))
        else:
            n = int(
                rng.choice(
                    [0, 1, 2, 3, 4, 5, 6, 8], p=[0.08, 0.12, 0.18, 0.18, 0.16, 0.12, 0.1, 0.06]
                )
            )
        cover = self._cover(2)
        radius_mean = self._nucleus_radius()
        touching = self.label != "mixed" and rng.random() < 0.25  # hard case for "available"
        for k in range(n):
            radius = radius_mean * rng.uniform(0.8, 1.2)
            if k == 0 and touching:
                nucleus = self._nucleus_touching(radius, cover)
            else:
                make = lambda center, radius=radius: Nucleus(center, radius, rng)  # noqa: E731
                nucleus = self._free_spot(make, cover)
            if nucleus is not None:
                self._paint_nucleus(nucleus)

    def _nucleus_radius(self) -> float:
        """Measured on the real sets: ~1.5 x chromosome 1 in Giemsa frames, ~0.9 x in the
        higher-magnification DAPI frames (dca DAPI: 0.8-1.5 x its longer chromosome 1, a
        nucleus 13% of the frame's width as in mfish-dev)."""
        low, high = (0.7, 1.2) if self.cfg.stain == "dapi" else (1.1, 1.9)
        if self.cfg.style == "dca":  # issue 20: 11.5% of the width in real DCA Giemsa frames
            low, high = (0.8, 1.5) if self.cfg.stain == "dapi" else (0.9, 1.6)
        return self.chr1 * self.rng.uniform(low, high)

    def _nucleus_touching(self, radius, cover):
        """A nucleus pushed in from outside until it almost touches the spread."""
        spread = self.spreads[0]
        angle = self.rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(angle), np.cos(angle)])
        nucleus = Nucleus(np.array(spread["center"]), radius, self.rng)
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
        if self.cfg.style == "dca":
            if nucleus.look == "soft":
                nucleus.look = "sharp"
            low, high = (0.9, 1.3) if nucleus.look == "pyknotic" else (0.5, 0.9)
            nucleus.blotchy = self.rng.uniform(0.25, 0.6)  # giemsa-dev: 0.14 sd inside
            if self.cfg.stain == "dapi":  # an interphase nucleus holds more dye than a
                low, high = low * 1.1, high * 1.1  # chromosome's width (mfish-dev: 1.45x)
                nucleus.blotchy = self.rng.uniform(0.15, 0.4)  # mfish-dev: 0.17 sd inside
        else:
            low, high = 0.35, 0.65
        od = nucleus.od(self.od_peak * self.rng.uniform(low, high), self.shape)
        self.od_other[nucleus.window] += od
        self.kind_map[nucleus.window][nucleus.mask(self.shape)] = NUCLEUS
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
        dim = self.cfg.style == "dca" and self.cfg.stain == "dapi"  # dust hardly fluoresces
        for _ in range(int(rng.integers(0, 4) if dim else rng.integers(5, 120))):
            size = rng.uniform(0.6, 2.2)
            blob = self._free_spot(lambda c, s=size: Blob(c, s, rng, parts=1), cover, tries=3)
            if blob is not None:
                self._paint_blob(blob, "speck", rng.uniform(0.1, 0.6) * self.od_peak)
        for _ in range(int(rng.integers(0, 3))):
            size = self.width_px * rng.uniform(0.6, 1.8)
            blob = self._free_spot(lambda c, s=size: Blob(c, s, rng, parts=4), cover, tries=10)
            if blob is not None:
                self._paint_blob(blob, "particle", rng.uniform(0.5, 1.2) * self.od_peak)
        for _ in range(int(rng.choice([0, 0, 1, 2]))):
            fibre = self._free_spot(
                lambda c: Fibre(c, self.chr1 * rng.uniform(1.5, 6), rng), cover, tries=10
            )
            if fibre is not None:
                self._paint_blob(fibre, "fibre", rng.uniform(0.08, 0.25) * self.od_peak)

    def _add_slide_artefacts(self):
        """What real DCA slides show beside the cells (issue 20), away from chromosomes: dark
        compact pyknotic nuclei, clusters of small round bodies, refractile dots and rings."""
        rng = self.rng
        cover = self._cover(2)
        dapi = self.cfg.stain == "dapi"  # mfish-dev's fluorescence frames show few of these
        for _ in range(int(rng.choice(3, p=[0.88, 0.1, 0.02] if dapi else [0.7, 0.2, 0.1]))):
            radius = self._nucleus_radius() * rng.uniform(0.25, 0.5)

            def make(center, radius=radius):
                nucleus = Nucleus(center, radius, rng)
                nucleus.look = "pyknotic"
                return nucleus

            nucleus = self._free_spot(make, cover, tries=10)
            if nucleus is not None:
                self._paint_nucleus(nucleus)
        for _ in range(int(rng.poisson(0.15 if dapi else 0.7))):
            size = self.width_px * rng.uniform(0.3, 0.7)
            parts = int(rng.integers(4, 15))
            bodies = self._free_spot(lambda c, s=size, k=parts: Bodies(c, s, rng, k), cover, 10)
            if bodies is not None:
                self._paint_blob(bodies, "bodies", rng.uniform(0.6, 1.1) * self.od_peak)
        if dapi:
            return  # refractile glass does not fluoresce
        side = min(self.shape) / 1024
        for _ in range(int(rng.integers(0, 14))):
            size = rng.uniform(1.2, 5.0) * side
            dot = self._free_spot(lambda c, s=size: Refractile(c, s, rng), cover, tries=3)
            if dot is not None:
                self._paint_blob(dot, "refractile", -rng.uniform(0.02, 0.08))

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
                obj = Nucleus(at + shift, radius, rng)
            elif kind == "clump":
                obj = Blob(
                    at, self.width_px * rng.uniform(2, 5), rng, parts=int(rng.integers(6, 16))
                )
            else:
                obj = Blob(
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
        self.kind_map[blob.window][blob.mask(self.shape)] = DEBRIS
        self.debris.append(
            dict(kind=kind, center=_r(blob.center), box=blob.box(), over_chromosomes=list(over))
        )

    # ---- ground truth ----------------------------------------------------------------------
    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Instance labels (annotation id + 1; the chromosome drawn last on top where they
        overlap) and the class map (``metasift.annotations.MASK_CLASSES``); rows x columns."""
        instances = (self.owner.astype(np.int32) + 1).astype(np.uint16)
        classes = self.kind_map.copy()
        classes[self.owner >= 0] = CHROMOSOME
        h, w = self.shape
        for item in self.chromosomes:
            radius = max(1.5, item["width"] * 0.3)
            for r, c in item["centromeres"]:
                r0, r1 = max(int(r - radius), 0), min(int(r + radius) + 2, h)
                c0, c1 = max(int(c - radius), 0), min(int(c + radius) + 2, w)
                if r1 <= r0 or c1 <= c0:
                    continue
                rr, cc = np.ogrid[r0:r1, c0:c1]
                disc = (rr - r) ** 2 + (cc - c) ** 2 <= radius**2
                disc &= self.owner[r0:r1, c0:c1] == item["id"]
                classes[r0:r1, c0:c1][disc] = CENTROMERE
        return instances, classes

    def _annotation(self) -> dict:
        reasons = reasons_for(self.spreads, self.nuclei, self.debris)
        return dict(
            label=self.label,
            reasons=reasons,
            seed=self.seed,
            config=asdict(self.cfg),
            chromosome_count=len(self.chromosomes),
            spread_count=len(self.spreads),
            spreads_layout=self.planner.layout,
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


def _closing(mask: np.ndarray, k: int) -> np.ndarray:
    """Binary closing by a (2k+1)-pixel square (as ``binary_closing`` with a 3 x 3 square and
    ``k`` iterations, the border left open), by maximum and minimum filters: faster."""
    padded = np.pad(mask, k)
    grown = ndi.maximum_filter(padded, 2 * k + 1, mode="constant", cval=0)
    return ndi.minimum_filter(grown, 2 * k + 1, mode="constant", cval=1)[k:-k, k:-k] | mask


def _r(values):
    return np.round(np.asarray(values, float), 1).tolist()

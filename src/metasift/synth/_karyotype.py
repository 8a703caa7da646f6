"""Human chromosomes: their relative sizes, centromeres and bands, and how one is drawn.

A chromosome is a centre line (a bent polyline in pixels, rows and columns) with two sister
chromatids along it, constricted at each centromere and faintly banded; its optical density
is computed on the pixels of its own box only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from ._shapes import project

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
TYPE = {name: (rel, ci) for name, rel, ci in KARYOTYPE}
LONGEST = TYPE["1"][0]  # lengths are given relative to chromosome 1
# Each chromosome type has its own fixed band pattern, as a real karyotype does.
BANDS = {
    name: ndi.gaussian_filter1d(np.random.default_rng(101 + i).random(96), 2.0, mode="nearest")
    for i, (name, _, _) in enumerate(KARYOTYPE)
}
# the same patterns coarser, as a fluorescence frame shows them (mfish-dev's DAPI bands run a
# chromosome width or more), at the same spread of values
COARSE_BANDS = {
    name: 0.5 + (g - g.mean()) * (float(np.std(list(BANDS.values()))) / g.std())
    for name, g in ((n, ndi.gaussian_filter1d(b, 5.0, mode="nearest")) for n, b in BANDS.items())
}
CELL = [str(i) for i in range(1, 23) for _ in (0, 1)]  # the 44 autosomes of a diploid cell


def centerline(
    rng, center, length: float, chr1: float, closed=False, bend=0.9, step=5.0
) -> np.ndarray:
    """A centre line of ``length`` pixels around ``center``: bent and wobbling, or a closed
    loop (a ring). ``chr1`` (chromosome 1's length) sets how much a chromosome may bend;
    ``bend``, the sd of the bend in radians of a chromosome that long; ``step``, the
    pixels per segment (3-14 segments)."""
    n_seg = int(np.clip(length / step, 3, 14))
    angle = rng.uniform(0, 2 * np.pi)
    if closed:
        t = np.linspace(0, 2 * np.pi, n_seg * 2 + 1)
        rad = length / (2 * np.pi)
        pts = np.stack([rad * np.sin(t) * rng.uniform(0.8, 1), rad * np.cos(t)], 1)
    else:
        bend = rng.normal(0, bend) * min(1.0, length / (chr1 * 0.5))
        wobble = rng.normal(0, 0.12, n_seg + 1).cumsum() * 0.5
        headings = angle + np.linspace(-bend / 2, bend / 2, n_seg + 1)[:-1] + wobble[:-1]
        steps = np.stack([np.sin(headings), np.cos(headings)], 1) * (length / n_seg)
        pts = np.vstack([[0, 0], np.cumsum(steps, 0)])
        pts -= pts.mean(0)
        return pts + center
    c, s = np.cos(angle), np.sin(angle)
    return pts @ np.array([[c, -s], [s, c]]).T + center


def dicentric_cuts(rng, name_a: str, name_b: str, length1: float):
    """Two chromosomes broken in their long arms, centric pieces joined: (length, centromere
    positions along it, length of the acentric fragment left over)."""
    (rel_a, ci_a), (rel_b, ci_b) = TYPE[name_a], TYPE[name_b]
    la, lb = length1 * rel_a / LONGEST, length1 * rel_b / LONGEST
    cut_a, cut_b = rng.uniform(ci_a + 0.15, 0.95) * la, rng.uniform(ci_b + 0.15, 0.95) * lb
    cens = [ci_a * la, cut_a + (cut_b - ci_b * lb)]
    return cut_a + cut_b, cens, (la - cut_a) + (lb - cut_b)


def ring_cuts(rng, name: str, length1: float):
    """Both arms broken and the centric piece closed: (ring length, centromere position,
    length of the acentric fragment)."""
    rel, ci = TYPE[name]
    total = length1 * rel / LONGEST
    p_cut, q_cut = (
        rng.uniform(0.1, 0.8) * ci * total,
        (ci + rng.uniform(0.2, 0.9) * (1 - ci)) * total,
    )
    return q_cut - p_cut, ci * total - p_cut, total - (q_cut - p_cut)


def density(
    rr,
    cc,
    line,
    centromeres,
    name,
    *,
    width,
    sister_gap,
    band_contrast,
    ring,
    closed,
    splay=0.0,
    constriction=0.3,
    closure=0.75,
    coarse_bands=False,
):
    """A chromosome over the pixel grid ``rr, cc``: (its density, banded; its length; its body's
    density before banding, in [0, 1]). The bands multiply the body's density by 1 +- up to
    ``band_contrast`` (strong coarse bands: 0.14-1.94).

    Two chromatids, ``sister_gap`` (0-1; up to 2 in colcemid-arrested cells) apart, pinched at
    each centromere (positions along the line), and the type's band pattern at
    ``band_contrast``. ``splay`` > 0 opens the chromatids towards the arm ends (the X shape of
    a colcemid-arrested chromosome held only at its centromere). ``constriction``: how much
    thinner a chromatid is at the centromere; ``closure``, how far the two close there;
    ``coarse_bands``: the band pattern as a fluorescence frame resolves it (``COARSE_BANDS``).
    """
    half = width / 2
    s, across, beyond = project(rr, cc, line.astype(np.float32), closed)
    total = float(np.sum(np.hypot(*np.diff(line, axis=0).T)))
    pinch = np.zeros_like(s)
    for cen in centromeres:
        pinch += np.exp(-(((s - cen) / (0.45 * width)) ** 2))
    pinch = np.minimum(pinch, 1.0)
    offset = half * (0.35 + 0.2 * sister_gap) * (1 - closure * pinch)
    radius = half * (0.62 - 0.1 * sister_gap) * (1 - constriction * pinch)
    if ring:
        offset, radius = offset * 0.3, radius * 0.8
    if splay > 0 and centromeres:
        to_centromere = np.min([np.abs(s - cen) for cen in centromeres], axis=0)
        offset = offset * (1 + splay * np.minimum(to_centromere / (0.35 * total + 1e-3), 1))
    dens = np.zeros_like(s)
    for sign in (-1.0, 1.0):
        dist = np.sqrt(beyond**2 + (across - sign * offset) ** 2)
        chord = np.sqrt(np.clip(1 - (dist / radius) ** 2, 0, 1))
        edge = expit((radius - dist) / 0.45)
        dens = np.maximum(dens, np.maximum(chord, 0.35 * edge) * edge)
    body = dens.copy()
    patterns = COARSE_BANDS if coarse_bands else BANDS
    bands = np.interp(
        s / max(total, 1e-3), np.linspace(0, 1, 96), patterns.get(name, patterns["1"])
    )
    dens *= 1 - band_contrast * (bands - 0.5) * 2
    return dens, total, body

"""Count chromosomes and check the three rejection criteria directly from the picture.

No training: illumination correction, a grey top-hat (a cell's halo and faint nuclei out), a
threshold, connected components told apart by size and shape (specks, chromosomes, clusters of
touching chromosomes, round textured nuclei, compact dark clumps), chromosomes lying on a
nucleus found by a finer top-hat inside it, in fluorescent pictures the glow between
chromosomes cut where the picture curves up across a gap, touching chromosomes split by a
watershed on the distance transform, round objects thicker than a chromosome (particles) and
objects alone far from every other left uncounted, chromosomes grouped into spreads by
single-linkage clustering of their positions. Every length is in units of the chromosome
width and area measured on the picture itself, so the same defaults serve 645 x 517 DAPI and
1440 x 1024 Giemsa pictures.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..criteria import in_words, spreads, verdicts
from ..objects import Chromosome, Debris, Findings, Nucleus, Spread
from ._config import CountConfig


def count_chromosomes(
    image: np.ndarray,
    *,
    config: CountConfig | None = None,
    fluorescent: bool = False,
    min_chromosomes: int | None = None,
) -> Findings:
    """Count the chromosomes of a canonical picture (dark on light, [0, 1]). ``fluorescent``:
    the picture was bright on dark (``ImageInfo.polarity == "bright"``), so glow joins
    neighbouring chromosomes and they are also cut apart by curvature. ``min_chromosomes``
    overrides the config's."""
    cfg = config or CountConfig()
    if min_chromosomes is not None:
        cfg = CountConfig(**{**cfg.__dict__, "min_chromosomes": min_chromosomes})
    min_chromosomes = cfg.min_chromosomes
    result = Findings(min_chromosomes=min_chromosomes)
    darkness = _darkness(image)
    mask = _foreground(darkness)
    half = _half_width(mask)
    if half is None:  # nothing to count is fewer than any minimum: criterion (c)
        result.nuclei = _nuclei_alone(mask, darkness)
        seen = f", {result.nuclei_count} nuclei" if result.nuclei else ""
        result.verdicts = verdicts([], 0, min_chromosomes=min_chromosomes)
        result.reason = f"no chromosome-sized objects{seen} (0 chromosomes < {min_chromosomes})"
        return result
    # Thick objects (nuclei, clumps, particles) are what survives an opening wider than any
    # chromosome; taking them out first keeps chromosomes that touch them countable.
    thick = _opening(mask, 1.8 * half)
    # Chromosomes are cut at a fixed share (half_max) of their own typical darkness, whatever
    # the nuclei did to the first, global threshold; faint small chromosomes stay in. Darkness
    # is measured against the local surroundings: a cell's halo or a faint nucleus under a
    # spread darkens everything there, gaps included, and would join neighbouring chromosomes
    # into one object (a grey top-hat takes them out).
    thin = mask & ~thick
    local, typical, chrom = darkness, 1.0, mask
    if thin.any():
        local = darkness - _grey_opening(darkness, cfg.tophat * half)
        typical = float(np.percentile(local[thin], 90))
        chrom = local > cfg.half_max * typical
        mask = chrom | thick
        half = _half_width(mask & ~thick) or half
        thick = _opening(mask, 1.8 * half)
        if fluorescent:
            chrom &= _not_in_gaps(local, chrom & ~thick, half, cfg)
    result.chromosome_width = round(2 * half, 2)
    # Large thick objects are nuclei; small ones are clumps of overlapping chromosomes or
    # particles, left in the chromosome mask and judged below.
    thick_labels, _ = ndi.label(thick)
    nucleus_area = np.pi * (5 * half) ** 2
    sizes = np.bincount(thick_labels.ravel())
    sizes[0] = 0
    # A nucleus is solid: a disc of four chromosome widths fits inside it. A dense clump of
    # chromosomes is as large but has gaps between its chromosomes, so no such disc fits.
    solid = _opening(mask, 4 * half)
    hits = np.bincount(thick_labels[solid], minlength=len(sizes))
    is_nucleus = (sizes > nucleus_area) & (hits > 0.5 * nucleus_area)
    is_nucleus[0] = False
    nuclei_mask = is_nucleus[thick_labels]
    # a margin of one half-width: the fuzzy rim of a nucleus is not a chromosome
    margin = max(2, round(half))
    chrom_mask = chrom & ~ndi.binary_dilation(nuclei_mask, iterations=margin)
    labels, n = ndi.label(chrom_mask)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float)
    dist = _inner_distance(labels)
    ridge = _label_max(dist, labels, n)
    single = (ridge > 0.6 * half) & (ridge < 1.6 * half) & (areas > 4 * half * half)
    unit = float(np.median(areas[single])) if single.any() else 8 * half * half
    counted_mask = np.zeros_like(chrom_mask)  # objects counted as chromosomes (strays too)
    particles = 0
    for k, sl in enumerate(ndi.find_objects(labels), 1):
        area = areas[k - 1]
        if area < 0.25 * unit:
            continue  # specks and slivers
        own = labels[sl] == k
        r0, c0 = sl[0].start, sl[1].start
        box = (r0, c0, sl[0].stop, sl[1].stop)
        if (
            area < cfg.split_area * unit
            and ridge[k - 1] > cfg.particle_thick * half
            and _elongation(own) < cfg.particle_round
        ):  # thicker than a chromosome and round: a particle, drawn with the debris
            result.debris_objects.append(_described(Debris, own, sl, local, typical, crossings=0))
            particles += 1
            continue
        counted_mask[sl] |= own
        pieces = [_centre(own, 0, 0)]
        if area > cfg.split_area * unit:  # a cluster of touching or crossing chromosomes
            pieces = _split(dist[sl] * own, own, half, unit, cfg)
            by_area = round(area / (cfg.area_per_chromosome * unit))
            pieces += pieces[:1] * max(0, by_area - len(pieces))
        at = [(pr + r0, pc + c0) for pr, pc in pieces]
        result.chromosomes.append(Chromosome(box, at))
    # Nuclei are left out above, but a chromosome lying on one still stands out of it (its
    # stain adds to the nucleus's): one chromosome per such piece.
    for box, centre in _on_nuclei(darkness, nuclei_mask, margin, half, typical, unit, cfg):
        result.chromosomes.append(Chromosome(box, [centre]))
    # An object alone in the field, far from every other, belongs to no spread: a particle or
    # a stray. It is drawn in the overlay but not counted.
    result.chromosomes, result.strays = _apart(result.chromosomes, cfg.stray)
    centres = [c for chrom in result.chromosomes for c in chrom.centres]

    # nuclei and debris: "over" chromosomes when chromosomes leave them in two or more places;
    # a small object must also be darker than chromosomes, or it is chromosomes overlapping
    over = []
    for k, sl in enumerate(ndi.find_objects(thick_labels), 1):
        own = thick_labels[sl] == k
        pad = tuple(slice(max(a.start - margin - 4, 0), a.stop + margin + 4) for a in sl)
        near = ndi.binary_dilation(thick_labels[pad] == k, iterations=margin)
        ring = ndi.binary_dilation(near, iterations=3) & ~near
        crossings = ndi.label(ring & counted_mask[pad])[1]
        if is_nucleus[k]:
            item = _described(Nucleus, own, sl, local, typical, crossings)
            result.nuclei.append(item)
        elif round(_darkness_of(own, sl, local, typical), 2) > cfg.debris_darkness:
            item = _described(Debris, own, sl, local, typical, crossings)
            result.debris_objects.append(item)
        else:
            continue
        if item.over_chromosomes:
            over.append(item)

    result.chromosome_count = len(centres)
    result.debris_over_chromosomes = len(over)
    if not centres:
        result.verdicts = verdicts([], 0, min_chromosomes=min_chromosomes)
        result.reason = f"no chromosomes found (0 < {min_chromosomes})"
        return result
    points = np.array(centres, float)
    result.spreads = [_spread(points, m, half, image.shape) for m in spreads(points, half)]
    main = result.chromosomes_per_spread
    result.verdicts = verdicts(main, len(over), min_chromosomes=min_chromosomes)
    result.reason = in_words(main, len(over), result.verdicts, min_chromosomes=min_chromosomes)
    if result.strays:
        result.reason += f" ({len(result.strays)} object(s) far from the spread not counted)"
    if particles:
        result.reason += f" ({particles} round particle(s) not counted)"
    return result


def _on_nuclei(darkness, nuclei_mask, margin, half, typical, unit, cfg) -> list:
    """Chromosomes lying on nuclei: inside a nucleus less its rim, what stands above a grey
    top-hat ``nucleus_tophat`` half-widths wide by ``half_max`` of the chromosomes' typical darkness,
    in pieces of at least half a chromosome's area (texture is finer; a chromosome is often
    partly hidden). (box, centre) of each."""
    pad = round(2 * cfg.nucleus_tophat * half)
    nuclei, _ = ndi.label(nuclei_mask)
    found = []
    for n, sl in enumerate(ndi.find_objects(nuclei), 1):
        r0, c0 = max(sl[0].start - pad, 0), max(sl[1].start - pad, 0)
        window = np.s_[r0 : sl[0].stop + pad, c0 : sl[1].stop + pad]
        inner = ndi.binary_erosion(nuclei[window] == n, iterations=margin)
        fine = darkness[window] - _grey_opening(darkness[window], cfg.nucleus_tophat * half)
        labels, _ = ndi.label(inner & (fine > cfg.half_max * typical))
        for k, piece in enumerate(ndi.find_objects(labels), 1):
            own = labels[piece] == k
            if own.sum() > 0.5 * unit:
                top, left = piece[0].start + r0, piece[1].start + c0
                box = (top, left, piece[0].stop + r0, piece[1].stop + c0)
                found.append((box, _centre(own, top, left)))
    return found


def _nuclei_alone(mask: np.ndarray, darkness: np.ndarray) -> list[Nucleus]:
    """Nuclei of a picture with no chromosome to measure a scale on: objects too large to be
    a chromosome (the bound `_half_width` uses), round and solid (less than twice as long as
    wide, filling most of the ellipse of that size)."""
    labels, _ = ndi.label(mask)
    found = []
    for k, sl in enumerate(ndi.find_objects(labels), 1):
        own = labels[sl] == k
        area = int(own.sum())
        if area < mask.size * 4e-3 or _elongation(own) > 2:
            continue
        rows, cols = np.nonzero(own)
        ellipse = 4 * np.pi * np.sqrt(np.linalg.det(np.cov(np.vstack([rows, cols]))))
        if area > 0.8 * ellipse:
            found.append(_described(Nucleus, own, sl, darkness, 1.0, crossings=0))
    return found


def _not_in_gaps(local: np.ndarray, thin: np.ndarray, half: float, cfg: CountConfig) -> np.ndarray:
    """Where the picture curves down like a chromosome rather than up like a gap between two.

    A fluorescent chromosome's glow fills the narrow gaps of a dense spread above any threshold
    that keeps its faint chromosomes. Across a chromosome the stain peaks (the Laplacian of
    Gaussian is negative there, whatever its bands and centromere do along it); across a gap
    it dips (positive). ``glow_sigma`` and ``glow_cut`` were chosen on synthetic DAPI pictures."""
    if not thin.any():
        return np.ones(local.shape, bool)
    curving = -ndi.gaussian_laplace(local, cfg.glow_sigma * half)
    return curving > cfg.glow_cut * float(np.percentile(curving[thin], 90))


def _half_width(mask: np.ndarray) -> float | None:
    """Half the chromosome width: the area-weighted median distance-transform ridge of
    chromosome-sized objects (so specks and texture fragments do not set the scale), leaving
    out objects much thicker than most."""
    labels, n = ndi.label(mask)
    if n == 0:
        return None
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float)  # pixels per label
    plausible = (areas > mask.size * 1e-5) & (areas < mask.size * 4e-3)
    if not plausible.any():
        return None
    # the chamfer distance is close enough for a width and several times faster than exact
    ridge = _label_max(
        ndi.distance_transform_cdt(mask, metric="chessboard").astype(np.float32), labels, n
    )
    ridge, areas = ridge[plausible], areas[plausible]
    # A few large thick objects (a clump of particles, a nucleus cut by the frame) can hold
    # more pixels than all the chromosomes together: a first guess with their weight capped,
    # then the median of the objects no more than twice that thick.
    rough = _weighted_median(ridge, np.minimum(areas, np.percentile(areas, 85)))
    thin = ridge <= 2 * rough
    return max(1.0, _weighted_median(ridge[thin], areas[thin]))


def _opening(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary opening with a disc, done on a reduced grid for speed, back at full size."""
    step = max(1, int(radius // 3))
    h, w = mask.shape
    small = mask[::step, ::step]
    r = max(1, round(radius / step))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = xx * xx + yy * yy <= r * r
    opened = ndi.binary_opening(small, structure=disc)
    if step > 1:
        opened = np.repeat(np.repeat(opened, step, 0), step, 1)[:h, :w]
    return opened & mask


def _grey_opening(values: np.ndarray, radius: float) -> np.ndarray:
    """Grey opening with a square of side 2 * radius on a reduced grid, back at full size:
    what is left of the picture once everything narrower than that is taken out."""
    h, w = values.shape
    step = max(1, min(int(radius // 4), h // 8, w // 8))
    size = max(3, 2 * round(radius / step) + 1)
    opened = ndi.grey_opening(_block_mean(values, step), size=(size, size))
    return np.minimum(_full_size(ndi.uniform_filter(opened, 3), values.shape), values)


def _block_mean(values: np.ndarray, step: int) -> np.ndarray:
    """The picture on a grid ``step`` times coarser (means of step x step blocks)."""
    h, w = values.shape
    return (
        values[: h - h % step, : w - w % step]
        .reshape(h // step, step, w // step, step)
        .mean((1, 3))
    )


def _full_size(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A coarse grid back at full size, interpolated linearly."""
    h, w = shape
    if small.shape == (h, w):
        return small  # already full size (a small window, worked on without a coarser grid)
    return _stretch(_stretch(small, h, 0), w, 1)


def _stretch(values: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``values`` stretched to n samples along ``axis`` by linear interpolation, first and last
    samples kept in place (as ndi.zoom with order=1 does, three to four times faster)."""
    m = values.shape[axis]
    if m == 1:
        return np.repeat(values, n, axis)
    pos = np.linspace(0, m - 1, n, dtype=np.float32)
    left = np.minimum(pos.astype(np.intp), m - 2)
    share = (
        (pos - left)
        .astype(values.dtype)
        .reshape([-1 if a == axis else 1 for a in range(values.ndim)])
    )
    lo, hi = np.take(values, left, axis), np.take(values, left + 1, axis)
    return lo + (hi - lo) * share


def _inner_distance(labels: np.ndarray) -> np.ndarray:
    """ndi.distance_transform_edt(labels > 0), worked out object by object on its own box
    and a one-pixel rim (objects are a small part of the picture: several times faster)."""
    dist = np.zeros(labels.shape)
    for k, sl in enumerate(ndi.find_objects(labels), 1):
        pad = tuple(slice(max(a.start - 1, 0), a.stop + 1) for a in sl)
        own = labels[pad] == k
        dist[pad][own] = ndi.distance_transform_edt(labels[pad] > 0)[own]
    return dist


def _label_max(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Largest value within each label 1..n (scipy's ndi.maximum sorts the whole picture)."""
    inside = labels > 0
    out = np.zeros(n + 1, values.dtype)
    np.maximum.at(out, labels[inside], values[inside])
    return out[1:]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def _darkness(image: np.ndarray) -> np.ndarray:
    """How much darker than the local background each pixel is (0 = background)."""
    h, w = image.shape
    step = max(1, min(h, w) // 128)
    small = _block_mean(image, step)
    size = max(3, int(min(small.shape) * 0.3))  # wider than any nucleus
    background = ndi.grey_closing(small, size=(size, size))
    background = ndi.gaussian_filter(background, size / 4)
    background = np.maximum(_full_size(background, image.shape), 1e-3)
    smooth = ndi.gaussian_filter(image, 1.0)
    return np.clip(1 - smooth / background, 0, 1).astype(np.float32)


def _foreground(darkness: np.ndarray) -> np.ndarray:
    from skimage.filters import threshold_otsu

    sample = darkness[::2, ::2]
    if float(sample.max()) - float(sample.min()) < 0.05:
        return np.zeros(darkness.shape, bool)  # a blank picture
    level = float(np.clip(threshold_otsu(sample), 0.06, 0.3))
    return darkness > level


def _split(
    dist: np.ndarray, own: np.ndarray, half: float, unit: float, cfg: CountConfig
) -> list[tuple[float, float]]:
    """Centres of the chromosomes in one cluster: watershed on the distance transform from its
    distinct maxima (plateaux lower than half a chromosome width count once)."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    smooth = ndi.gaussian_filter(dist, 1.0)
    peaks = h_maxima(smooth, cfg.split_h * half) & own
    markers, n = ndi.label(peaks)
    if n <= 1:
        return [_centre(own, 0, 0)]
    regions = watershed(-smooth, markers, mask=own)
    idx = np.arange(1, n + 1)
    areas = ndi.sum_labels(own, regions, idx)
    keep = idx[areas >= 0.4 * unit]
    if len(keep) <= 1:
        return [_centre(own, 0, 0)]
    return [tuple(c) for c in ndi.center_of_mass(own, regions, keep)]


def _centre(own: np.ndarray, r0: int, c0: int) -> tuple[float, float]:
    r, c = np.nonzero(own)  # ndi.center_of_mass, without its overhead on many small objects
    return (float(r.mean()) + r0, float(c.mean()) + c0)


def _darkness_of(own: np.ndarray, sl, local: np.ndarray, typical: float) -> float:
    """How dark an object is against the chromosomes' typical darkness."""
    return float(np.percentile(local[sl][own], 90)) / max(typical, 1e-6)


def _described(kind, own: np.ndarray, sl, local: np.ndarray, typical: float, crossings: int):
    """A nucleus or piece of debris (``kind``): where it lies, its size, how many places
    chromosomes leave it, and how dark it is against the chromosomes' typical darkness."""
    return kind(
        centre=_centre(own, sl[0].start, sl[1].start),
        area=int(own.sum()),
        box=(sl[0].start, sl[1].start, sl[0].stop, sl[1].stop),
        crossings=int(crossings),
        darkness=round(_darkness_of(own, sl, local, typical), 2),
    )


def _elongation(own: np.ndarray) -> float:
    """Length over width of an object, from the spread of its pixels (1 for a disc)."""
    rows, cols = np.nonzero(own)
    if len(rows) < 3:
        return 1.0
    small, large = np.linalg.eigvalsh(np.cov(np.vstack([rows, cols])))
    return float(np.sqrt(large / max(small, 1e-6)))


def _apart(objects: list[Chromosome], stray: float) -> tuple[list, list]:
    """(kept, strays): a stray's second-nearest neighbour (box centres) is more than ``stray``
    times the median nearest-neighbour distance away. Chosen on synthetic pictures, where
    background particles lie anywhere in the field."""
    if len(objects) <= 5:
        return objects, []
    from scipy.spatial import cKDTree

    middles = np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in (o.box for o in objects)])
    dist = cKDTree(middles).query(middles, k=3)[0]
    apart = dist[:, 2] > stray * float(np.median(dist[:, 1]))
    return [o for o, a in zip(objects, apart) if not a], [o for o, a in zip(objects, apart) if a]


def _spread(centres: np.ndarray, members: np.ndarray, half: float, shape) -> Spread:
    """A spread and the box around its chromosomes' centres, a chromosome's length wider."""
    pad = 6 * half
    (r0, c0), (r1, c1) = centres[members].min(0) - pad, centres[members].max(0) + pad
    r1, c1 = min(shape[0], int(np.ceil(r1)) + 1), min(shape[1], int(np.ceil(c1)) + 1)
    box = (max(0, int(r0)), max(0, int(c0)), r1, c1)
    return Spread(len(members), box)

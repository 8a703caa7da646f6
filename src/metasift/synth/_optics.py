"""Image formation: optical density to the pixels a camera records.

Bright-field Giemsa is ``illumination * exp(-OD)`` (Beer-Lambert), grey or in Giemsa's purple;
fluorescence (DAPI) is a dark background plus emission proportional to the dye. Both get
uneven staining, off-centre vignetting, the optics' blur and camera noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._shapes import smooth_noise


def render(od: np.ndarray, stain: str, rng) -> np.ndarray:
    """Pixels in [0, 1] (rows x columns, or x 3 for giemsa-color) from an OD map."""
    shape = (h, w) = od.shape
    uneven = np.float32(rng.uniform(0.0, 0.01))  # stain left unevenly on the slide
    od = od.copy()  # float32 kept: the stain's unevenness is added in place
    od += smooth_noise(shape, 160, rng) * uneven
    light = illumination(shape, rng)
    blur = rng.uniform(0.5, 1.6) * min(h, w) / 1024
    if stain == "dapi":
        image = (
            np.float32(rng.uniform(0.02, 0.1)) * light
            + od * np.float32(rng.uniform(0.55, 0.95)) * light
        )
        image = ndi.gaussian_filter(image, blur)
        shot = np.float32(rng.uniform(0.001, 0.005)) + 0.006 * np.sqrt(np.clip(image, 0, None))
        image += rng.standard_normal(shape, np.float32) * shot
        return np.clip(image, 0, 1)
    level = rng.uniform(0.3, 0.85)  # exposure: real Giemsa frames sit anywhere here
    if stain == "giemsa":
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
        ch += rng.standard_normal(shape, np.float32) * (
            noise_sd * (0.5 + np.sqrt(np.clip(ch, 0, None)))
        )
        channels.append(np.clip(ch, 0, 1))
    return channels[0] if len(channels) == 1 else np.stack(channels, -1)


def illumination(shape, rng, fall=(0.05, 0.3), tilt=0.1) -> np.ndarray:
    """Off-centre vignetting (``fall``: its depth at the far corner, a range) and a slight tilt,
    as in a real bright-field frame."""
    h, w = shape
    r0, c0 = rng.uniform([0.2, 0.2], [0.8, 0.8]).astype(np.float32)
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    cols = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    fall = np.float32(rng.uniform(*fall))
    tilt_r, tilt_c = (np.float32(v) for v in rng.uniform(-tilt, tilt, 2))
    return (1 - fall * (rows - r0) ** 2 + tilt_r * (rows - 0.5)) + (
        -fall * (cols - c0) ** 2 + tilt_c * (cols - 0.5)
    )


def render_dca(od: np.ndarray, stain: str, rng, *, randomise: bool) -> np.ndarray:
    """Pixels in [0, 1] as real DCA cameras store them (issue 20's measurements): a bright-field
    background at 0.86-0.90 of full scale with little vignetting, or a fluorescence background
    at 0.01-0.06 with the dye's glow. ``randomise`` widens every range (exposure, light, blur,
    glow, gamma, noise, colour) within what microscopes give. A negative OD is light
    refracted towards the objective (brighter than the background)."""
    shape = (h, w) = od.shape
    wide = randomise
    od = od + coarse_noise(shape, 200, rng) * np.float32(rng.uniform(0.0, 0.03 if wide else 0.02))
    light = illumination(
        shape, rng, fall=(0.01, 0.1 if wide else 0.05), tilt=0.04 if wide else 0.02
    )
    blur = rng.uniform(0.5, 2.4 if wide else 1.3) * min(h, w) / 1024
    gamma = rng.uniform(0.75, 1.35) if wide else 1.0
    if stain == "dapi":
        blur *= rng.uniform(0.8, 1.2)  # mfish-dev: as sharp as bright-field frames
        bright = rng.uniform(0.3, 0.7) if wide else rng.uniform(0.3, 0.52)
        # chromatin grain: a DAPI chromosome is not smooth inside (mfish-dev)
        grain = mottle(shape, rng.uniform(2.0, 4.0) * min(h, w) / 1024, rng)
        od = od * np.maximum(1 + grain * np.float32(rng.uniform(0.15, 0.35)), 0)
        dye = ndi.gaussian_filter(od * np.float32(bright), blur, truncate=3.0)
        # the glow of a fluorescent dye reaches across the gaps of a dense spread
        # (out-of-focus light: mfish-dev's objects are ringed by a halo that falls to half
        # 8 pixels of 645 out, 1.2% of the frame)
        near, far = min(h, w) * rng.uniform(0.006, 0.015), min(h, w) * rng.uniform(0.025, 0.05)
        glow = wide_blur(dye, near) * np.float32(rng.uniform(0.2, 0.5))
        glow += wide_blur(dye, far) * np.float32(rng.uniform(0.5, 1.2))
        back = rng.uniform(0.003, 0.05 if wide else 0.035)
        # out-of-focus fluorescence and autofluorescence: a background that varies slowly
        # (the exponential taken on the coarse grid, before it is interpolated back)
        haze = coarse_noise(shape, rng.uniform(120, 400), rng, then=_half_exp)
        haze *= np.float32(back * rng.uniform(0.1, 1.0))  # mfish-dev: background sd 0.04
        image = (np.float32(back) + haze + dye + glow) * light
        # mfish-dev's canonical noise: 0.0044 (0-0.011); issue 20's DCA DAPI: 0.0059 +- 0.001
        low, high = (0.0005, 0.008) if wide else (0.002, 0.007)
        shot = np.float32(rng.uniform(low, high)) + 0.004 * np.sqrt(np.clip(image, 0, None))
        image += normal(rng, shape) * shot
        return _finish(image, gamma)
    # the slide's own texture: Giemsa precipitate and an uneven mounting film, a few pixels
    # across (giemsa-dev: twice the background texture of a flat field with camera noise)
    od += mottle(shape, rng.uniform(1.0, 3.0), rng) * np.float32(
        rng.uniform(0.0, 0.03 if wide else 0.01)
    )
    target = rng.uniform(0.35, 0.95) if wide else rng.uniform(0.855, 0.905)
    level = target / float(np.median(light[::8, ::8]))
    if stain == "giemsa":
        absorb, tint = [1.0], [1.0]
    else:  # purple: Giemsa absorbs green most, blue least
        spread = 0.25 if wide else 0.1
        absorb = np.array([0.75, 1.0, 0.35]) * rng.uniform(1 - spread, 1 + spread, 3)
        tint = np.array([0.95, 0.92, 1.0]) * rng.uniform(0.97, 1.03, 3)
    # shot noise grows as the square root of the light (a dim exposure: less, in stored units)
    low, high = (0.003, 0.012) if wide else (0.005, 0.012)
    noise_sd = np.float32(rng.uniform(low, high) * np.sqrt(target / 0.88))
    channels = []
    for a, t in zip(absorb, tint):
        ch = od * np.float32(-a)
        np.exp(ch, out=ch)
        ch *= light
        ch *= np.float32(level * t)
        ch = ndi.gaussian_filter(ch, blur, truncate=3.0)  # 99.7% of the blur, 3/4 of the work
        ch += normal(rng, shape) * noise_sd
        channels.append(_finish(ch, gamma))
    return channels[0] if len(channels) == 1 else np.stack(channels, -1)


def normal(rng, shape) -> np.ndarray:
    """Standard normal camera noise, float32, three times as fast as ``standard_normal``: a
    fresh table of 65,536 normal values per call, picked by random 16-bit indices."""
    table = rng.standard_normal(1 << 16, np.float32)
    return table[rng.integers(0, 1 << 16, size=shape, dtype=np.uint16)]


def mottle(shape, sigma: float, rng) -> np.ndarray:
    """Unit-sd noise smoothed over ``sigma`` pixels (1-4), made at half resolution and
    interpolated back (repeated 2 x 2 blocks left a 2-pixel grid that the optics' blur did not
    hide from ``benchmarks/realism.py``: no real picture has one)."""
    h, w = shape
    small = ndi.gaussian_filter(normal(rng, (-(-h // 2), -(-w // 2))), sigma / 2, truncate=3.0)
    big = _upsample(_upsample(small, 2, h, 0), 2, w, 1)
    big *= np.float32(1 / (big[::2, ::2].std() + 1e-6))  # unit sd after the interpolation
    return big


def coarse_noise(shape, scale, rng, step=4, then=None) -> np.ndarray:
    """``smooth_noise`` computed on every ``step``-th pixel and interpolated back: for fields
    that vary over ``scale`` >> ``step`` pixels (stain, haze), at a sixteenth of the work.
    ``then``: a function of each value, applied before the interpolation (nearly the same
    result, a sixteenth of the work)."""
    h, w = shape
    small = smooth_noise((-(-h // step), -(-w // step)), scale / step, rng)
    if then is not None:
        small = then(small)
    return _upsample(_upsample(small, step, h, 0), step, w, 1)


def _half_exp(x: np.ndarray) -> np.ndarray:
    return np.exp(x * np.float32(0.5))


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of ``sigma`` pixels (a glow), computed on block means of about sigma/3
    pixels and interpolated back bilinearly: the same light at a small part of the work (the
    blocks and the interpolation blur by step/2 themselves, so the small blur is narrower)."""
    step = int(np.clip(sigma // 3, 1, 4))
    if step == 1:
        return ndi.gaussian_filter(image, sigma)
    h, w = image.shape
    small = ndi.gaussian_filter(_block_mean(image, step), np.sqrt(sigma**2 - step**2 / 4) / step)
    return _upsample(_upsample(small, step, h, 0), step, w, 1)


def _block_mean(image: np.ndarray, step: int) -> np.ndarray:
    """Means of ``step`` x ``step`` blocks, the last row and column of the picture repeated to
    fill the last blocks; summed a phase at a time (strided slices, float32): eight times as
    fast as the mean over a reshaped array's small axes."""

    def blocks(a: np.ndarray, axis: int) -> np.ndarray:
        n = -(-a.shape[axis] // step)
        total = None
        for phase in range(step):
            part = a[phase::step] if axis == 0 else a[:, phase::step]
            short = n - part.shape[axis]
            if short:  # the edge repeated
                edge = a[-1:] if axis == 0 else a[:, -1:]
                part = np.concatenate([part, edge], axis)
            total = part.astype(np.float32) if total is None else np.add(total, part, out=total)
        return total

    out = blocks(blocks(image, 1), 0)
    out *= np.float32(1 / step**2)
    return out


def _upsample(small: np.ndarray, step: int, n: int, axis: int) -> np.ndarray:
    """Linear interpolation along ``axis`` (0 or 1) from block centres (blocks of ``step``) to
    ``n`` pixel centres, one phase of the block at a time (rows stay rows: a pass over a
    transposed array is several times slower, and so is every sum with its result)."""
    lane = (lambda s: s) if axis == 0 else (lambda s: (slice(None), s))
    m = small.shape[axis]
    size = list(small.shape)
    size[axis] = m * step
    out = np.empty(size, np.float32)
    first, last = small[lane(slice(0, 1))], small[lane(slice(m - 1, m))]
    prev = np.concatenate([first, small[lane(slice(0, m - 1))]], axis)  # first: itself
    after = np.concatenate([small[lane(slice(1, m))], last], axis)  # last: itself
    for phase in range(step):
        frac = np.float32((phase + 0.5) / step - 0.5)
        if frac < 0:  # first half of a block: between the block before and this one
            out[lane(slice(phase, None, step))] = small * (1 + frac) - prev * frac
        else:
            out[lane(slice(phase, None, step))] = small * (1 - frac) + after * frac
    return out[lane(slice(0, n))]


def _finish(image, gamma) -> np.ndarray:
    image = np.ascontiguousarray(np.clip(image, 0, 1), np.float32)
    return image if gamma == 1.0 else image ** np.float32(gamma)


def burn_label(image: np.ndarray, rng, free: np.ndarray) -> None:
    """A frame number burned into a corner, as capture software stamps it; in place. Only
    where ``free`` (rows x columns, True where nothing annotated lies) holds the whole label."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = free.shape
    size = max(10, int(min(h, w) * rng.uniform(0.018, 0.035)))
    forms = [f"{rng.integers(1, 999)}", f"{rng.integers(1, 99):02d}.{rng.integers(1, 60)}"]
    text = str(rng.choice([*forms, f"A{rng.integers(1, 9999):04d}"]))
    font = ImageFont.load_default(size=size)
    _, _, right, bottom = font.getbbox(text)
    th, tw = bottom + 4, right + 4
    corner = int(rng.integers(4))
    r0 = 4 if corner < 2 else h - th - 4
    c0 = 4 if corner % 2 == 0 else w - tw - 4
    if r0 < 0 or c0 < 0 or not free[r0 : r0 + th, c0 : c0 + tw].all():
        return
    stamp = Image.new("L", (tw, th), 0)
    ImageDraw.Draw(stamp).text((2, 2), text, fill=255, font=font)
    ink = np.asarray(stamp, np.float32) / 255
    value = np.float32(1.0 if rng.random() < 0.6 else 0.0)
    patch = image[r0 : r0 + th, c0 : c0 + tw]
    if patch.ndim == 3:
        ink = ink[..., None]
    patch[...] = patch * (1 - ink) + value * ink


def jpeg_history(image: np.ndarray, quality: int) -> np.ndarray:
    """The picture after a round trip through 8-bit JPEG, as capture software saved it."""
    import imagecodecs

    stored = np.ascontiguousarray(np.round(np.clip(image, 0, 1) * 255), np.uint8)
    back = imagecodecs.jpeg8_decode(imagecodecs.jpeg8_encode(stored, level=int(quality)))
    return back.astype(np.float32) / 255

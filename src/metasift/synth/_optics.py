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


def illumination(shape, rng) -> np.ndarray:
    """Off-centre vignetting and a slight tilt, as in a real bright-field frame."""
    h, w = shape
    r0, c0 = rng.uniform([0.2, 0.2], [0.8, 0.8]).astype(np.float32)
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    cols = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    fall = np.float32(rng.uniform(0.05, 0.3))
    tilt_r, tilt_c = (np.float32(v) for v in rng.uniform(-0.1, 0.1, 2))
    return (1 - fall * (rows - r0) ** 2 + tilt_r * (rows - 0.5)) + (
        -fall * (cols - c0) ** 2 + tilt_c * (cols - 0.5)
    )

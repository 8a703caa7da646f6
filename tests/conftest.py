from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def spread_like():
    """A small grey picture: light background, a few dark bars, as uint8 and as [0, 1]."""
    rng = np.random.default_rng(0)
    image = np.full((96, 128), 0.8) + rng.normal(0, 0.01, (96, 128))
    image[20:26, 10:40] = 0.2
    image[50:80, 60:66] = 0.25
    image[70:74, 90:120] = 0.3
    return np.clip(image, 0, 1)


def bars_mask(shape=(96, 128)):
    mask = np.zeros(shape, bool)
    mask[20:26, 10:40] = mask[50:80, 60:66] = mask[70:74, 90:120] = True
    return mask

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from metasift import synth

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


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Six small synthetic pictures (each class, 480 x 384) and one damaged file."""
    root = tmp_path_factory.mktemp("pictures")
    config = synth.SynthConfig(height=384, width=480)
    for i, label in enumerate(synth.CLASSES + synth.CLASSES[:2]):
        image, _ = synth.generate(label, 300 + i, config)
        Image.fromarray(synth.to_stored(image, 8)).save(root / f"{i:02d}_{label}.png")
    (root / "07_damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return sorted(root.iterdir())

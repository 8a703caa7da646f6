"""The square the classifier looks at (metasift.crop): it holds every chromosome, it is smaller
than the frame when the spread is, and reading with the crop gives the same pixels however the
file is stored."""

import numpy as np
import pytest
import tifffile

from conftest import DATA
from metasift import crop, synth
from metasift.io import canonical, read_image


def _centres_inside(box, annotation) -> np.ndarray:
    left, top, right, bottom = box
    boxes = np.array([c["box"] for c in annotation["chromosomes"]], float)  # r0, c0, r1, c1
    rows, cols = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return (rows >= top) & (rows <= bottom) & (cols >= left) & (cols <= right)


@pytest.mark.parametrize("label, seed", [("available", 3), ("too_few", 5), ("debris", 8)])
def test_square_holds_every_chromosome_and_zooms_in(label, seed):
    image, annotation = synth.generate(label, seed)
    image = canonical(image)[0]  # as read from a file: stretched, dark on light
    box = crop.spread_box(image)
    assert box is not None
    left, top, right, bottom = box
    assert right - left == pytest.approx(bottom - top)  # square: chromosomes keep their shape
    assert 0 <= left < right <= image.shape[1] and 0 <= top < bottom <= image.shape[0]
    assert _centres_inside(box, annotation).all()
    assert right - left < 0.8 * image.shape[0]  # the spread is seen larger than in the frame


def test_two_spreads_apart_both_stay_in_view():
    seed = next(s for s in range(100) if synth.generate("mixed", s)[1]["spreads_layout"] == "apart")
    image, annotation = synth.generate("mixed", seed)
    assert _centres_inside(crop.spread_box(canonical(image)[0]), annotation).all()


def test_nothing_to_crop_shows_the_whole_picture():
    blank = np.full((300, 400), 0.9, np.float32)
    assert crop.spread_box(blank) is None
    nuclei = blank.copy()
    yy, xx = np.mgrid[:300, :400]
    for r, c in ((80, 100), (200, 300)):
        nuclei[(yy - r) ** 2 + (xx - c) ** 2 < 45**2] = 0.3  # round, wider than any chromosome
    assert crop.spread_box(nuclei) is None
    assert np.array_equal(crop.view(nuclei, 64, crop=True), crop.view(nuclei, 64))  # whole


def test_view_without_crop_is_the_plain_resize(spread_like):
    from PIL import Image

    plain = Image.fromarray(spread_like.astype(np.float32)).resize((48, 48), Image.BILINEAR)
    assert np.array_equal(crop.view(spread_like, 48), np.asarray(plain))
    assert crop.view(spread_like[:48, :48], 48).dtype == np.float32  # already that size


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_cropped_read_matches_the_cropped_full_picture(dtype, tmp_path):
    image, _ = synth.generate("available", 3, synth.SynthConfig(height=512, width=640))
    stored = synth.to_stored(image, 8 if dtype == np.uint8 else 16)
    path = tmp_path / "spread.tif"
    tifffile.imwrite(path, stored)
    full, _ = read_image(path)
    small, _ = read_image(path, size=96, crop=True)
    assert small.shape == (96, 96)
    assert np.allclose(small, crop.view(full, 96, crop=True), atol=1e-6)
    assert not np.allclose(small, crop.view(full, 96), atol=0.05)  # a crop, not the whole frame


def test_real_pictures_keep_their_chromosomes_in_view():
    """The committed real pictures: chromosome boxes (Giemsa) and every chromosome pixel of the
    expert mask (DAPI) inside the square."""
    from PIL import Image

    image, _ = read_image(DATA / "giemsa" / "1.png")
    h, w = image.shape
    left, top, right, bottom = crop.spread_box(image)
    x, y = np.loadtxt(DATA / "giemsa" / "1.txt", ndmin=2)[:, 1:3].T * [[w], [h]]  # box centres
    inside = (x >= left) & (x <= right) & (y >= top) & (y <= bottom)
    # 48 of 50: two strays lie beside the nuclei, ~260 pixels beyond the spread's edge
    assert inside.sum() == 48 and (right - left) < 0.7 * h

    image, _ = read_image(DATA / "mfish" / "V1301XY.png")
    left, top, right, bottom = crop.spread_box(image)
    rows, cols = np.nonzero(np.asarray(Image.open(DATA / "mfish" / "V1301XY_mask.png")) > 0)
    assert left <= cols.min() and cols.max() < right and top <= rows.min() and rows.max() < bottom

import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import DATA, bars_mask
from metasift import io
from metasift.crop import view


def _contrast(image):
    """Background minus bar brightness in a canonical picture: positive = dark chromosomes."""
    mask = bars_mask(image.shape)
    return float(np.median(image[~mask]) - np.median(image[mask]))


def _write(path, array, kind, **kw):
    if kind == "tif":
        tifffile.imwrite(path, array, **kw)
    else:
        Image.fromarray(array).save(path, **kw)
    return path


def _as(spread_like, dtype, rgb=False, bright=False, used_range=1.0):
    image = 1 - spread_like if bright else spread_like
    top = np.iinfo(dtype).max * used_range
    out = np.round(image * top).astype(dtype)
    if rgb:  # Giemsa-like purple: the stain absorbs green most
        out = np.stack([out, np.round(out * 0.6).astype(dtype), out], -1)
    return out


CASES = [
    ("grey8.tif", np.uint8, False, "tif", {}),
    ("grey16.tif", np.uint16, False, "tif", {}),
    ("rgb8.tif", np.uint8, True, "tif", {"photometric": "rgb"}),
    ("rgb16.tif", np.uint16, True, "tif", {"photometric": "rgb"}),
    ("lzw.tif", np.uint16, False, "tif", {"compression": "lzw"}),
    ("deflate.tif", np.uint8, True, "tif", {"compression": "zlib", "photometric": "rgb"}),
    ("planar.tif", np.uint8, True, "tif", {"photometric": "rgb", "planarconfig": "separate"}),
    ("grey8.png", np.uint8, False, "png", {}),
    ("grey16.png", np.uint16, False, "png", {}),
    ("rgb.png", np.uint8, True, "png", {}),
    ("grey.jpg", np.uint8, False, "jpg", {"quality": 95}),
    ("rgb.jpg", np.uint8, True, "jpg", {"quality": 95}),
    ("grey.bmp", np.uint8, False, "bmp", {}),
]


@pytest.mark.parametrize("name,dtype,rgb,kind,kw", CASES, ids=[c[0] for c in CASES])
def test_reads_every_format_as_dark_on_light(tmp_path, spread_like, name, dtype, rgb, kind, kw):
    array = _as(spread_like, dtype, rgb)
    if kw.get("planarconfig") == "separate":
        array = np.moveaxis(array, -1, 0)
    path = _write(tmp_path / name, array, kind, **kw)
    image, info = io.read_image(path)
    assert image.dtype == np.float32 and image.shape == (96, 128)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert info.dtype == np.dtype(dtype).name
    assert info.channels == (3 if rgb else 1)
    assert info.polarity == "dark" and not info.inverted
    assert _contrast(image) > 0.5  # stretched to most of the range, chromosomes dark


@pytest.mark.parametrize("name,dtype,rgb,kind,kw", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("bright", [False, True])
def test_resized_read_is_exactly_read_then_resize(
    tmp_path, spread_like, name, dtype, rgb, kind, kw, bright
):
    """Training and classification read with ``size``; its fast paths must change nothing."""
    array = _as(spread_like, dtype, rgb, bright=bright)
    if kw.get("planarconfig") == "separate":
        array = np.moveaxis(array, -1, 0)
    path = _write(tmp_path / name, array, kind, **kw)
    full, info = io.read_image(path)
    small, small_info = io.read_image(path, size=40)
    assert small.shape == (40, 40) and small.dtype == np.float32
    assert np.array_equal(small, view(full, 40))
    assert small_info == info


def test_histogram_percentiles_equal_numpy():
    rng = np.random.default_rng(0)
    q = (0.0, 0.5, 50.0, 99.8, 100.0)
    for dtype, top in [(np.uint8, 256), (np.uint16, 65536)] * 20:
        values = rng.integers(0, rng.integers(1, top), size=rng.integers(1, 3000)).astype(dtype)
        assert np.allclose(io._percentiles(values, q), np.percentile(values, q), rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_fluorescence_is_detected_and_inverted(tmp_path, spread_like, dtype):
    path = _write(tmp_path / "dapi.tif", _as(spread_like, dtype, bright=True), "tif")
    image, info = io.read_image(path)
    assert info.polarity == "bright" and info.inverted
    assert _contrast(image) > 0.5


def test_polarity_can_be_forced(tmp_path, spread_like):
    path = _write(tmp_path / "x.png", _as(spread_like, np.uint8), "png")
    forced, info = io.read_image(path, polarity="bright")
    auto, _ = io.read_image(path)
    assert info.inverted and np.allclose(forced, 1 - auto)
    with pytest.raises(ValueError, match="polarity"):
        io.read_image(path, polarity="sideways")


def test_16bit_with_small_used_range_is_stretched(tmp_path, spread_like):
    # a 12-bit camera stored in 16 bits: values use 1/16 of the range
    path = _write(tmp_path / "12bit.tif", _as(spread_like, np.uint16, used_range=1 / 16), "tif")
    image, info = io.read_image(path)
    assert info.black_white[1] < 4096
    assert _contrast(image) > 0.5


def test_rgb_grey_keeps_the_stain_contrast():
    # purple stain: the green channel carries the contrast, red and blue barely change
    rgb = np.full((64, 64, 3), 200, np.uint8)
    rgb[20:40, 20:40] = (180, 60, 190)
    grey = io.to_grey(rgb)
    luminance = rgb.astype(float) @ [0.299, 0.587, 0.114]
    weighted = (grey[0, 0] - grey[30, 30]) / grey[0, 0]
    plain = (luminance[0, 0] - luminance[30, 30]) / luminance[0, 0]
    assert weighted > plain


def test_multipage_tiff_reads_first_page_with_warning(tmp_path, spread_like):
    first = _as(spread_like, np.uint8)
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(first)
        tif.write(255 - first)
    image, info = io.read_image(path)
    assert info.pages == 2 and "first page" in info.warnings[0]
    assert info.polarity == "dark" and _contrast(image) > 0.5


def test_rgba_and_palette_png(tmp_path, spread_like):
    grey = _as(spread_like, np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    _write(tmp_path / "rgba.png", rgba, "png")
    Image.fromarray(grey).convert("P").save(tmp_path / "pal.png")
    for name in ("rgba.png", "pal.png"):
        image, _ = io.read_image(tmp_path / name)
        assert _contrast(image) > 0.5, name


def test_real_giemsa_picture():
    image, info = io.read_image(DATA / "giemsa" / "1.png")
    assert (info.width, info.height, info.channels) == (1440, 1024, 3)
    assert info.polarity == "dark"
    boxes = np.loadtxt(DATA / "giemsa" / "1.txt")
    assert len(boxes) == 50
    # inside each chromosome box, the darkest pixels are far darker than the background
    darkest = []
    for _, x, y, w, h in boxes:
        r0, c0 = int((y - h / 2) * 1024), int((x - w / 2) * 1440)
        r1, c1 = int((y + h / 2) * 1024), int((x + w / 2) * 1440)
        darkest.append(np.percentile(image[r0:r1, c0:c1], 5))
    assert np.median(darkest) < np.median(image) - 0.3


def test_real_dapi_picture_is_inverted():
    image, info = io.read_image(DATA / "mfish" / "V1301XY.png")
    assert (info.width, info.height, info.channels) == (645, 517, 1)
    assert info.polarity == "bright" and info.inverted
    mask = np.asarray(Image.open(DATA / "mfish" / "V1301XY_mask.png"))
    chromosomes = (mask > 0) & (mask < 255)
    assert np.median(image[chromosomes]) < np.median(image[mask == 0]) - 0.3


# ---- bad input: a specific error that names the file --------------------------------------
def _bad(path, error, words):
    with pytest.raises(error) as caught:
        io.read_image(path)
    assert str(path) in str(caught.value) and words in str(caught.value)
    assert isinstance(caught.value, io.ImageReadError)


def test_missing_file(tmp_path):
    _bad(tmp_path / "nope.tif", io.MissingFileError, "no such file")


def test_folder_instead_of_file(tmp_path):
    _bad(tmp_path, io.MissingFileError, "folder")


def test_empty_file(tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    _bad(tmp_path / "empty.tif", io.EmptyFileError, "empty")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("slide 12, donor 4\n")
    _bad(tmp_path / "notes.png", io.NotAnImageError, "not a TIFF, PNG, JPEG or BMP")


@pytest.mark.parametrize("kind", ["png", "tif", "jpg"])
def test_truncated_file(tmp_path, spread_like, kind):
    path = _write(tmp_path / f"full.{kind}", _as(spread_like, np.uint8), kind)
    data = path.read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 3])
    _bad(cut, io.CorruptImageError, "damaged or truncated")


def test_too_many_pixels_is_refused_before_decoding(tmp_path, spread_like):
    path = _write(tmp_path / "big.tif", _as(spread_like, np.uint8), "tif")
    with pytest.raises(io.ImageTooLargeError, match="over the limit of 1,000 pixels"):
        io.read_image(path, max_pixels=1000)
    png = _write(tmp_path / "big.png", _as(spread_like, np.uint8), "png")
    with pytest.raises(io.ImageTooLargeError, match=str(png)):
        io.read_image(png, max_pixels=1000)


def test_stack_that_cannot_be_reduced(tmp_path):
    stack = np.zeros((5, 32, 32), np.uint8)  # five channels in one page
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, planarconfig="separate", photometric="minisblack")
    _bad(path, io.UnsupportedImageError, "cannot be reduced")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_permissions(tmp_path, spread_like):
    path = _write(tmp_path / "locked.png", _as(spread_like, np.uint8), "png")
    path.chmod(0)
    _bad(path, io.MissingFileError, "permission denied")


def test_blank_pictures_do_not_crash(tmp_path):
    for value in (0, 128, 255):
        path = _write(tmp_path / f"blank{value}.png", np.full((32, 32), value, np.uint8), "png")
        image, _ = io.read_image(path)
        assert np.isfinite(image).all() and image.min() == image.max()


def test_float_picture_with_nan_or_infinite_pixels(tmp_path, spread_like):
    """Analysis software marks missing pixels NaN: they read as background, with a note;
    a picture holding no number at all is an error naming it."""
    holes = spread_like.astype(np.float32)
    holes[:8, :8], holes[-1, -1] = np.nan, np.inf
    image, info = io.read_image(_write(tmp_path / "holes.tif", holes, "tif"))
    clean, _ = io.read_image(_write(tmp_path / "clean.tif", spread_like.astype(np.float32), "tif"))
    assert np.isfinite(image).all() and "65 pixel values were NaN" in info.warnings[0]
    assert _contrast(image) > 0.3 and np.allclose(image[8:, 8:-1], clean[8:, 8:-1], atol=0.02)
    _bad(_write(tmp_path / "nan.tif", np.full((32, 32), np.nan, np.float32), "tif"),
         io.CorruptImageError, "no pixel value that is a number")  # fmt: skip


def test_reading_never_changes_the_file(tmp_path, spread_like):
    path = _write(tmp_path / "keep.tif", _as(spread_like, np.uint16), "tif")
    before, stat = path.read_bytes(), path.stat()
    io.read_image(path)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stat.st_mtime_ns

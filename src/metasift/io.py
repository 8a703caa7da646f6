"""Read any microscope picture into one canonical image.

The canonical image is a 2-D float32 array in [0, 1], rows x columns, with chromosomes
*dark on a light background* (as in bright-field Giemsa pictures), whatever the file held:
8/16/32-bit or float, grey or RGB(A), bright-field or fluorescence. Everything downstream
(counting, training, classification) works on that one form.

Files are opened read-only and never written. Every failure raises an :class:`ImageReadError`
subclass whose message names the file and the problem.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# metasift reports damaged files itself; without this, tifffile's warnings about them reach
# stderr through logging's last-resort handler (an application's own handlers still get them)
logging.getLogger("tifffile").addHandler(logging.NullHandler())

DEFAULT_MAX_PIXELS = 100_000_000  # refuse decompression bombs; a DCA camera gives ~1.5 MP
PERCENTILES = (0.5, 99.8)  # robust black and white points; 16-bit cameras use a small range
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
POLARITIES = ("auto", "dark", "bright")

_MAGIC = {  # first bytes -> format; the content decides, not the file name
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"II+\x00": "tiff",  # BigTIFF
    b"MM\x00+": "tiff",
    b"\x89PNG": "png",
    b"\xff\xd8\xff": "jpeg",
    b"BM": "bmp",
}


class ImageReadError(Exception):
    """A file could not be turned into a canonical image; the message says which and why."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MissingFileError(ImageReadError):
    """The path does not exist, is a folder, or cannot be opened."""


class EmptyFileError(ImageReadError):
    """The file has zero bytes."""


class NotAnImageError(ImageReadError):
    """The file is not in a supported image format."""


class CorruptImageError(ImageReadError):
    """The file is an image but is truncated or damaged."""


class UnsupportedImageError(ImageReadError):
    """The image has a mode or shape metasift cannot reduce to one grey picture."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the limit (a guard against decompression bombs)."""


@dataclass(frozen=True)
class ImageInfo:
    """What the file held, before it was made canonical."""

    path: str
    format: str  # tiff, png, jpeg or bmp
    dtype: str  # numpy dtype of the stored pixels, e.g. uint16
    shape: tuple[int, ...]  # stored array shape, e.g. (1024, 1280, 3)
    channels: int  # 1 for grey, 3 for RGB (alpha dropped)
    polarity: str  # "dark": objects darker than background as stored; "bright": fluorescence
    inverted: bool  # True when the picture was inverted to make chromosomes dark
    black_white: tuple[float, float]  # stored values mapped to 0 and 1 before any inversion
    pages: int = 1  # TIFF pages in the file; only the first is read
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]


def read_image(
    path: str | os.PathLike,
    *,
    polarity: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    size: int | None = None,
    crop: bool = False,
) -> tuple[np.ndarray, ImageInfo]:
    """Read ``path`` into a canonical float32 image (dark chromosomes on light) and its info.

    ``polarity`` says how the file shows chromosomes: ``"dark"`` (bright-field, Giemsa),
    ``"bright"`` (fluorescence, DAPI) or ``"auto"`` to decide from the picture. With ``size``,
    the image comes resized to ``size`` x ``size``: the same values as ``view(read_image(path), size)``,
    made faster (what training and classification use); with ``crop`` too, what is resized is
    the square around the chromosomes (:mod:`metasift.crop`).
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, not {polarity!r}")
    raw, fmt, pages, notes = decode(path, max_pixels=max_pixels)
    image, stored_polarity, black_white = canonical(raw, polarity=polarity, size=size, crop=crop)
    info = ImageInfo(
        path=str(path),
        format=fmt,
        dtype=str(raw.dtype),
        shape=tuple(raw.shape),
        channels=1 if raw.ndim == 2 else raw.shape[2],
        polarity=stored_polarity,
        inverted=stored_polarity == "bright",
        black_white=black_white,
        pages=pages,
        warnings=tuple(notes),
    )
    return image, info


def canonical(
    raw: np.ndarray, *, polarity: str = "auto", size: int | None = None, crop: bool = False
) -> tuple[np.ndarray, str, tuple]:
    """Grey, percentile-normalised, dark-on-light float32 image from a decoded array, resized
    to ``size`` x ``size`` when given (with ``crop``: its square around the chromosomes).

    Returns the image, the polarity the array had, and the (black, white) stored values.
    """
    from .crop import view

    grey = to_grey(raw)
    # Percentiles of a regular subsample: the same figures as the full image to well under
    # one grey level, at a fraction of the cost (the reader must stay under 10 ms per picture).
    step = max(1, int(np.sqrt(grey.size / 250_000)))
    lo, hi, median = _percentiles(grey[::step, ::step], (*PERCENTILES, 50.0))
    if hi <= lo:  # a blank picture: no contrast to stretch
        lo, hi = (0.0, 1.0) if np.issubdtype(raw.dtype, np.floating) else (0.0, _full_scale(raw))
        if hi <= lo:
            hi = lo + 1.0
    if polarity == "auto":
        # Most of a metaphase picture is background: light in bright-field, dark in fluorescence.
        polarity = "bright" if (median - lo) / (hi - lo) < 0.5 else "dark"
    if grey.dtype in (np.uint8, np.uint16):
        # The stretch as a table of the same float32 arithmetic: bit-identical, one pass.
        table = _stretch(np.arange(2 ** (8 * grey.itemsize), dtype=np.float32), lo, hi, polarity)
        if size and grey.dtype == np.uint8 and (crop or grey.shape != (size, size)):
            # 8-bit: Pillow looks the table up on its way to the resize (3x faster than
            # making the full-size float picture first; same values, tested)
            from PIL import Image

            grey = np.ascontiguousarray(grey)
            picture = Image.frombuffer("L", grey.shape[::-1], grey, "raw", "L", 0, 1)
            return view(picture.point(table.tolist(), "F"), size, crop), polarity, (lo, hi)
        image = table.take(grey)
    else:
        image = _stretch(grey.astype(np.float32), lo, hi, polarity)
    return (view(image, size, crop) if size else image), polarity, (lo, hi)


def _stretch(values: np.ndarray, lo: float, hi: float, polarity: str) -> np.ndarray:
    """(values - lo) / (hi - lo) clipped to [0, 1], inverted for bright-on-dark; in place."""
    values -= np.float32(lo)
    values *= np.float32(1.0 / (hi - lo))
    np.clip(values, 0.0, 1.0, out=values)
    if polarity == "bright":
        np.subtract(np.float32(1.0), values, out=values)
    return values


def _percentiles(values: np.ndarray, q) -> list[float]:
    """``np.percentile(values, q)`` (linear interpolation); from a histogram for 8/16-bit
    pictures, which is several times faster than sorting and gives the same figures."""
    if values.dtype == np.uint8:  # Pillow counts 8-bit values twice as fast as numpy
        from PIL import Image

        flat = np.ascontiguousarray(values).reshape(1, -1)
        counts = Image.frombuffer("L", flat.shape[::-1], flat, "raw", "L", 0, 1).histogram()
    elif values.dtype == np.uint16:
        counts = np.bincount(values.ravel())
    else:
        return [float(v) for v in np.percentile(values, q)]
    cumulative = np.cumsum(counts)
    rank = np.asarray(q, np.float64) / 100 * (values.size - 1)
    below = np.floor(rank)
    at = np.searchsorted(cumulative, below, side="right")  # the value of sorted[below]
    after = np.searchsorted(cumulative, np.minimum(below + 1, values.size - 1), side="right")
    return [float(v) for v in at + (rank - below) * (after - at)]


def to_grey(raw: np.ndarray) -> np.ndarray:
    """One grey channel from a 2-D or H x W x C array (C = 1-4), keeping stain contrast.

    Each colour channel is weighted by its contrast (spread between its 1st and 99th
    percentile), so a stain that absorbs mostly in one band keeps its contrast: Giemsa's purple
    absorbs green, a DAPI picture stored as RGB is all blue. Plain luminance would dilute both.
    """
    if raw.ndim == 2:
        return raw
    channels = raw[..., :3] if raw.shape[2] in (3, 4) else raw[..., :1]  # drop alpha
    if channels.shape[2] == 1:
        return channels[..., 0]
    step = max(1, int(np.sqrt(raw.shape[0] * raw.shape[1] / 100_000)))
    sample = channels[::step, ::step].reshape(-1, 3).astype(np.float32)
    spread = np.percentile(sample, 99, axis=0) - np.percentile(sample, 1, axis=0)
    weights = spread**2
    if weights.sum() <= 0:
        weights = np.ones(3)
    weights = (weights / weights.sum()).astype(np.float32)
    return channels.astype(np.float32) @ weights


def decode(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Stored pixels of ``path`` as (array H x W or H x W x C, format, pages, warnings)."""
    path = Path(path)
    fmt = sniff_format(path)
    if fmt == "tiff":
        raw, fmt, pages, notes = _decode_tiff(path, max_pixels)
    else:
        raw, fmt, pages, notes = _decode_pillow(path, fmt, max_pixels)
    if raw.dtype.kind == "f":
        raw = _finite(path, raw, notes)
    return raw, fmt, pages, notes


def _finite(path: Path, raw: np.ndarray, notes: list) -> np.ndarray:
    """Float pictures may mark missing pixels NaN or infinite: they are read as the picture's
    median (its background) and noted; a picture holding no number cannot be read."""
    bad = ~np.isfinite(raw)
    if not bad.any():
        return raw
    if bad.all():
        raise CorruptImageError(path, "holds no pixel value that is a number (all NaN or infinite)")
    notes.append(f"{int(bad.sum())} pixel values were NaN or infinite: read as the median")
    return np.where(bad, np.median(raw[~bad]), raw).astype(raw.dtype)


def sniff_format(path: Path) -> str:
    """The image format from the file's first bytes; raises for missing/empty/non-images."""
    if path.is_dir():
        raise MissingFileError(path, "is a folder, not an image file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise MissingFileError(path, "no such file") from None
    except PermissionError:
        raise MissingFileError(path, "permission denied: the file cannot be read") from None
    except OSError as err:
        raise MissingFileError(path, f"cannot be opened ({err.strerror or err})") from None
    if not head:
        raise EmptyFileError(path, "the file is empty (0 bytes)")
    for magic, fmt in _MAGIC.items():
        if head.startswith(magic):
            return fmt
    raise NotAnImageError(
        path, "not a TIFF, PNG, JPEG or BMP image (its first bytes match none of them)"
    )


def _check_size(path: Path, height: int, width: int, max_pixels: int) -> None:
    if height * width > max_pixels:
        raise ImageTooLargeError(
            path,
            f"{width} x {height} pixels is over the limit of {max_pixels:,} pixels "
            "(raise max_pixels if this picture is genuine)",
        )
    if height < 1 or width < 1:
        raise CorruptImageError(path, f"has no pixels ({width} x {height})")


def _decode_tiff(path: Path, max_pixels: int):
    import tifffile

    notes = []
    try:
        with tifffile.TiffFile(path) as tif:
            pages = len(tif.pages)
            if pages == 0:
                raise CorruptImageError(path, "damaged or truncated TIFF (it holds no image)")
            page = tif.pages[0]
            if getattr(page, "imagedepth", 1) > 1:
                raise UnsupportedImageError(
                    path, f"the first page is a 3-D volume of depth {page.imagedepth}"
                )
            _check_size(path, page.imagelength, page.imagewidth, max_pixels)
            raw = page.asarray()
            if pages > 1:
                notes.append(f"multi-page TIFF with {pages} pages: only the first page was read")
    except ImageReadError:
        raise
    except Exception as err:  # tifffile raises many types for damaged files
        raise CorruptImageError(path, f"damaged or truncated TIFF ({_reason(err)})") from None
    separate = page.samplesperpixel > 1 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    return _reduce(path, raw, separate), "tiff", pages, notes


def _reduce(path: Path, raw: np.ndarray, planar_separate: bool) -> np.ndarray:
    """Bring one TIFF page to H x W or H x W x C."""
    if raw.ndim == 3 and planar_separate:  # channels stored as separate planes: C x H x W
        raw = np.moveaxis(raw, 0, -1)
    if raw.ndim == 3 and raw.shape[2] == 2:  # grey + alpha
        raw = raw[..., 0]
    if raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] in (1, 3, 4)):
        return raw
    raise UnsupportedImageError(
        path, f"pixel array of shape {raw.shape} cannot be reduced to one grey or RGB picture"
    )


def _decode_pillow(path: Path, fmt: str, max_pixels: int):
    from PIL import Image

    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # max_pixels is checked from the header, before decoding
    try:
        with Image.open(path) as im:
            _check_size(path, im.height, im.width, max_pixels)
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                im = im.convert("RGBA" if "A" in im.mode or im.mode == "P" else "RGB")
            elif im.mode in ("LA",):
                im = im.convert("L")
            elif im.mode not in ("L", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L", "F"):
                raise UnsupportedImageError(path, f"unsupported pixel mode {im.mode!r}")
            im.load()
            raw = np.asarray(im)
    except ImageReadError:
        raise
    except Exception as err:
        raise CorruptImageError(
            path, f"damaged or truncated {fmt.upper()} ({_reason(err)})"
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    if raw.dtype.byteorder == ">":
        raw = raw.astype(raw.dtype.newbyteorder("="))
    return raw, fmt, 1, []


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text and len(text[0]) > 3 else type(err).__name__


def _full_scale(raw: np.ndarray) -> float:
    return float(np.iinfo(raw.dtype).max) if np.issubdtype(raw.dtype, np.integer) else 1.0

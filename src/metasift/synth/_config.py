"""How synthetic pictures are made: one frozen config, written next to every data set."""

from __future__ import annotations

from dataclasses import dataclass

STAINS = ("giemsa", "giemsa-color", "dapi")
STYLES = ("legacy", "dca")


@dataclass(frozen=True)
class SynthConfig:
    """How pictures are made; every field is written next to the data set (synth.json)."""

    height: int = 1024  # rows; 1280 x 1024 is the common DCA camera frame
    width: int = 1280  # columns
    stain: str = "giemsa"  # giemsa (grey), giemsa-color (purple RGB) or dapi (bright on dark)
    dicentric_rate: float = 0.05  # dicentrics per cell (Poisson); ~1-2 Gy of X/gamma rays
    ring_rate: float = 0.005  # centric rings per cell; about a tenth of the dicentric yield
    # legacy: the pictures the bundled model was trained on (kept so its recipe reproduces);
    # dca: what real DCA labs' pictures show (issue 20: colcemid-arrested X-shaped chromosomes,
    # sharp granular and pyknotic nuclei, refractile dots, burned-in labels, real exposure)
    style: str = "legacy"
    randomise: bool = False  # domain randomisation: stain colour, blur, light, gamma, scale,
    # noise and JPEG compression drawn from wider ranges, all still within what microscopes give
    masks: bool = False  # write masks/<id>.tif (instances + class map) beside each picture
    jpeg_quality: int = 92  # for --format jpg; microscope software saves at about 85-95

    def __post_init__(self):
        if self.stain not in STAINS:
            raise ValueError(f"stain must be one of {STAINS}, not {self.stain!r}")
        if not (256 <= self.height <= 8192 and 256 <= self.width <= 8192):
            raise ValueError(
                f"image size {self.width} x {self.height} is outside 256-8192 pixels per side"
            )
        if not (0 <= self.dicentric_rate <= 3 and 0 <= self.ring_rate <= 3):
            raise ValueError("dicentric_rate and ring_rate must be between 0 and 3 per cell")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {self.style!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1-100, not {self.jpeg_quality}")

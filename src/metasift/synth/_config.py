"""How synthetic pictures are made: one frozen config, written next to every data set."""

from __future__ import annotations

from dataclasses import dataclass

STAINS = ("giemsa", "giemsa-color", "dapi")


@dataclass(frozen=True)
class SynthConfig:
    """How pictures are made; every field is written next to the data set (synth.json)."""

    height: int = 1024  # rows; 1280 x 1024 is the common DCA camera frame
    width: int = 1280  # columns
    stain: str = "giemsa"  # giemsa (grey), giemsa-color (purple RGB) or dapi (bright on dark)
    dicentric_rate: float = 0.05  # dicentrics per cell (Poisson); ~1-2 Gy of X/gamma rays
    ring_rate: float = 0.005  # centric rings per cell; about a tenth of the dicentric yield

    def __post_init__(self):
        if self.stain not in STAINS:
            raise ValueError(f"stain must be one of {STAINS}, not {self.stain!r}")
        if not (256 <= self.height <= 8192 and 256 <= self.width <= 8192):
            raise ValueError(
                f"image size {self.width} x {self.height} is outside 256-8192 pixels per side"
            )
        if not (0 <= self.dicentric_rate <= 3 and 0 <= self.ring_rate <= 3):
            raise ValueError("dicentric_rate and ring_rate must be between 0 and 3 per cell")

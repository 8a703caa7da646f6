"""The training-free counter's settings: what identifies a count run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .. import __version__
from ..criteria import MIN_CHROMOSOMES


@dataclass(frozen=True)
class CountConfig:
    """Every number the counter decides by. Lengths are in half chromosome widths and areas in
    median chromosome areas, both measured on each picture, so one setting serves pictures of
    any magnification. Chosen on synthetic pictures (see the README's count figures)."""

    min_chromosomes: int = MIN_CHROMOSOMES  # fewer: too_few (criterion (c))
    split_area: float = 1.6  # objects larger than this many median areas may hold several
    area_per_chromosome: float = 1.3  # a cluster holds at least its area / this many areas
    split_h: float = 0.6  # distance-transform peaks this many half-widths above their saddle
    half_max: float = 0.35  # chromosomes are cut at this share of their typical darkness
    debris_darkness: float = 1.3  # a particle is darker than chromosomes by this factor
    tophat: float = 6.0  # haze, halo and faint nuclei: what is wider than this many half-widths
    nucleus_tophat: float = 1.5  # a chromosome lying on a nucleus stands out at this scale
    stray: float = 4.0  # 2nd-nearest neighbour this many typical gaps away: not counted
    particle_thick: float = 1.4  # a lone object thicker than this many half-widths ...
    particle_round: float = 1.5  # ... and no longer than this many times its width: a particle
    glow_sigma: float = 0.5  # fluorescence: the Laplacian of Gaussian's scale, in half-widths
    glow_cut: float = 0.15  # ... a chromosome where -LoG exceeds this share of its typical value

    def __post_init__(self):
        if self.min_chromosomes < 0:
            raise ValueError(f"min_chromosomes must be 0 or more, not {self.min_chromosomes}")
        for f in fields(self):
            if f.name != "min_chromosomes" and not getattr(self, f.name) > 0:
                raise ValueError(f"{f.name} must be positive, not {getattr(self, f.name)}")

    @property
    def identity(self) -> str:
        """What made a row: the version and every setting that differs from the defaults
        (resume reuses a row only when this is the same)."""
        changed = [f"{k} {v}" for k, v in asdict(self).items() if v != getattr(CountConfig, k)]
        return f"metasift {__version__} count" + (f", {', '.join(changed)}" if changed else "")

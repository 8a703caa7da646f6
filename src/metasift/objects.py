"""What a picture shows: chromosomes, nuclei, debris and spreads, and the findings built on them.

One convention everywhere: coordinates are (row, column) in pixels of the full picture, and a
box is ``(top, left, bottom, right)`` with bottom and right exclusive, as in slicing
(``image[top:bottom, left:right]``). Every object turns into plain JSON with ``to_json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .criteria import MIN_CHROMOSOMES, REASONS

Point = tuple[float, float]  # (row, column)
Box = tuple[int, int, int, int]  # (top, left, bottom, right); bottom and right exclusive


@dataclass
class Chromosome:
    """A dark, thin object counted as ``len(centres)`` chromosomes: one, or several touching
    or crossing ones told apart by their shape."""

    box: Box
    centres: list[Point]
    # what the detector also says (the training-free counter leaves them empty / None):
    outline: list[Point] = field(default_factory=list)  # polygon around it, (row, column)
    centromeres: list[Point] = field(default_factory=list)  # where its centromere lies
    score: float | None = None  # how sure the detector is that it is a chromosome, 0-1

    @property
    def pieces(self) -> int:
        return len(self.centres)


@dataclass
class Blob:
    """A round object that is not a chromosome: where it lies, its size, how many places
    chromosomes leave it (two or more: it lies over them), and how dark it is against the
    chromosomes' typical darkness."""

    centre: Point
    area: int
    box: Box
    crossings: int = 0
    darkness: float = 1.0

    @property
    def over_chromosomes(self) -> bool:
        return self.crossings >= 2


class Nucleus(Blob):
    """An interphase nucleus: large, round and solid."""


class Debris(Blob):
    """A particle or clump darker or thicker than a chromosome."""


@dataclass
class Spread:
    """One metaphase spread: the chromosomes grouped together."""

    chromosome_count: int
    box: Box | None = None  # around its chromosomes' centres (where they lie, not their ends)


@dataclass
class Findings:
    """A picture's objects, and the verdicts of the three criteria on them (``criteria``)."""

    chromosome_count: int = 0
    spreads: list[Spread] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)  # from criteria.REASONS, in that order
    reason: str = ""  # the verdicts and what they rest on, in words
    min_chromosomes: int = MIN_CHROMOSOMES
    chromosome_width: float = 0.0  # pixels, measured on the picture
    chromosomes: list[Chromosome] = field(default_factory=list)
    strays: list[Chromosome] = field(default_factory=list)  # alone, far from any spread
    nuclei: list[Nucleus] = field(default_factory=list)
    debris_objects: list[Debris] = field(default_factory=list)
    debris_over_chromosomes: int = 0  # nuclei and particles lying over chromosomes

    @property
    def spread_count(self) -> int:
        return len(self.spreads)

    @property
    def chromosomes_per_spread(self) -> list[int]:
        return [s.chromosome_count for s in self.spreads]

    @property
    def nuclei_count(self) -> int:
        return len(self.nuclei)

    @property
    def mixed(self) -> bool:
        return "mixed" in self.verdicts

    @property
    def debris(self) -> bool:
        return "debris" in self.verdicts

    @property
    def too_few(self) -> bool:
        return "too_few" in self.verdicts

    def row(self) -> dict:
        """The findings' columns of a results row (``pipeline.schema.FINDINGS_COLUMNS``)."""
        flags = {name: int(name in self.verdicts) for name in REASONS}
        return dict(
            chromosome_count=self.chromosome_count,
            spread_count=self.spread_count,
            chromosomes_per_spread=";".join(map(str, self.chromosomes_per_spread)),
            nuclei_count=self.nuclei_count,
            debris_over_chromosomes=self.debris_over_chromosomes,
            **flags,
            count_reason=self.reason,
        )

    def to_json(self) -> dict:
        """Everything, as plain JSON (lists for points and boxes)."""
        data = asdict(self)
        data.update(spread_count=self.spread_count, nuclei_count=self.nuclei_count)
        return data

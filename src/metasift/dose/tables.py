"""Reading the count tables labs exchange (the formats of Biodose Tools) and the per-cell table.

- calibration: ``D,C0,C1,...,Ck`` (cells with 0, 1, ... k dicentrics at dose D, in Gy) or the
  aggregated ``D,N,X`` (cells, dicentrics);
- cases: ``ID,C0,C1,...,Ck`` (``ID`` optional; ``N,X`` also accepted, without a distribution);
- per cell: ``sample,picture,dicentrics,rings,fragments`` (one row per scored cell).

Whitespace around names and values is allowed. Every error is a :class:`DoseInputError` whose
message names the file, line and column.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path


class DoseInputError(ValueError):
    """Bad input: the message starts with ``FILE, line L, column C (NAME):``."""

    def __init__(
        self,
        path,
        message: str,
        line: int | None = None,
        column: int | None = None,
        name: str | None = None,
    ):
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}" + (f" ({name})" if name else "")
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.column = path, line, column


@dataclass(frozen=True)
class Sample:
    """One row of a count table: a calibration dose or a case."""

    label: str  # the case ID, or the dose as written
    cells: int  # N
    dicentrics: int  # X
    counts: tuple[int, ...] | None  # C0..Ck, None when the file gives only N and X
    line: int  # where it was read, for messages
    dose: float | None = None  # Gy, calibration rows only

    @property
    def yield_(self) -> float:
        return self.dicentrics / self.cells

    @property
    def variance(self) -> float:
        """Sample variance of dicentrics per cell (nan without a distribution or one cell)."""
        if self.counts is None or self.cells < 2:
            return math.nan
        squares = sum(k * k * c for k, c in enumerate(self.counts))
        return (squares - self.cells * self.yield_**2) / (self.cells - 1)

    @property
    def dispersion_index(self) -> float:
        """Variance / mean (1 for a Poisson distribution; nan without dicentrics)."""
        if self.dicentrics == 0:
            return math.nan
        return self.variance / self.yield_

    @property
    def u(self) -> float:
        """The u-test (Papworth; IAEA 2011 manual): normal(0, 1) under a Poisson distribution."""
        if self.dicentrics < 2 or self.cells < 2:
            return math.nan
        return (self.dispersion_index - 1) * math.sqrt(
            (self.cells - 1) / (2 * (1 - 1 / self.dicentrics))
        )

    @property
    def yield_se(self) -> float:
        """Standard error of the yield: sqrt(variance / N), or Poisson's sqrt(X) / N."""
        if math.isnan(self.variance):
            return math.sqrt(self.dicentrics) / self.cells
        return math.sqrt(max(self.variance, 0.0) / self.cells)


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (stripped) and data rows with their line numbers; blank lines skipped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [(n, row) for n, row in enumerate(csv.reader(fh), start=1)]
    except FileNotFoundError:
        raise DoseInputError(path, "no such file") from None
    except UnicodeDecodeError as error:
        raise DoseInputError(path, f"not a UTF-8 text file ({error.reason})") from None
    except csv.Error as error:
        raise DoseInputError(path, f"not a CSV file ({error})") from None
    rows = [(n, [v.strip() for v in row]) for n, row in rows if any(v.strip() for v in row)]
    if not rows:
        raise DoseInputError(path, "the file is empty")
    _, header = rows[0]
    data = rows[1:]
    for n, row in data:
        if len(row) != len(header):
            raise DoseInputError(
                path, f"{len(row)} fields, the header has {len(header)} ({','.join(header)})", n
            )
    if not data:
        raise DoseInputError(path, "a header but no data rows", rows[0][0])
    return header, data


def _count(path, text: str, line: int, column: int, name: str, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise DoseInputError(path, f"{text!r} is not a whole number of {what}", line, column, name)
    if value < 0:
        raise DoseInputError(path, f"{text!r}: a count cannot be negative", line, column, name)
    return int(value)


def _count_columns(path, header: list[str], first: int, line: int) -> str:
    """Check the count columns from index ``first``: C0..Ck, or N,X. Returns 'C' or 'NX'."""
    names = [h.upper() for h in header[first:]]
    if names == ["N", "X"]:
        return "NX"
    if not names or names[0] != "C0":
        found = header[first] if len(header) > first else "nothing"
        raise DoseInputError(
            path,
            f"expected C0 here (columns C0,C1,...,Ck: cells with 0, 1, ... k dicentrics; or N,X), "
            f"found {found!r}",
            line,
            first + 1,
        )
    for i, name in enumerate(names):
        if name != f"C{i}":
            raise DoseInputError(
                path,
                f"expected C{i} (columns C0..Ck in order), found {header[first + i]!r}",
                line,
                first + i + 1,
            )
    return "C"


def _sample(
    path, header, kind: str, first: int, n: int, row: list[str], label: str, dose: float | None
) -> Sample:
    values = [
        _count(
            path,
            row[j],
            n,
            j + 1,
            header[j],
            "cells" if kind == "C" or j == first else "dicentrics",
        )
        for j in range(first, len(row))
    ]
    if kind == "NX":
        cells, dicentrics, counts = values[0], values[1], None
    else:
        counts = tuple(values)
        cells = sum(counts)
        dicentrics = sum(k * c for k, c in enumerate(counts))
    if cells == 0:
        raise DoseInputError(path, f"{label!r} has no cells (N = 0)", n)
    return Sample(label, cells, dicentrics, counts, n, dose)


def read_calibration(path: str | os.PathLike) -> list[Sample]:
    """Read ``D,C0..Ck`` or ``D,N,X``; one :class:`Sample` per row, in file order."""
    path = Path(path)
    header, data = _read_rows(path)
    if header[0].upper() not in ("D", "DOSE"):
        raise DoseInputError(path, f"expected the dose column D first, found {header[0]!r}", 1, 1)
    kind = _count_columns(path, header, 1, 1)
    samples = []
    for n, row in data:
        try:
            dose = float(row[0])
        except ValueError:
            dose = math.nan
        if not math.isfinite(dose) or dose < 0:
            raise DoseInputError(
                path, f"dose {row[0]!r} is not a number of Gy (0 or more)", n, 1, header[0]
            )
        samples.append(_sample(path, header, kind, 1, n, row, row[0], dose))
    return samples


def read_cases(path: str | os.PathLike) -> list[Sample]:
    """Read ``ID,C0..Ck`` (or ``C0..Ck`` alone, or ``ID,N,X``); one :class:`Sample` per case."""
    path = Path(path)
    header, data = _read_rows(path)
    first = 0 if header[0].upper() in ("C0", "N") else 1
    kind = _count_columns(path, header, first, 1)
    samples = []
    for n, row in data:
        label = row[0] if first else f"line {n}"
        if first and not label:
            raise DoseInputError(path, "empty case ID", n, 1, header[0])
        samples.append(_sample(path, header, kind, first, n, row, label, None))
    return samples


PER_CELL_COLUMNS = ("sample", "picture", "dicentrics", "rings", "fragments")


def tabulate_cells(path: str | os.PathLike, *, count_rings: bool = False) -> list[Sample]:
    """Turn a per-cell table (one row per scored cell) into one :class:`Sample` per sample,
    samples in the order they first appear. ``count_rings`` adds centric rings to dicentrics."""
    path = Path(path)
    header, data = _read_rows(path)
    lower = [h.lower() for h in header]
    wanted = PER_CELL_COLUMNS[:4] if count_rings else (PER_CELL_COLUMNS[0], PER_CELL_COLUMNS[2])
    for name in wanted:
        if name not in lower:
            raise DoseInputError(
                path,
                f"no {name!r} column (header: {','.join(header)}; expected "
                f"{','.join(PER_CELL_COLUMNS)})",
                1,
            )
    where = {name: lower.index(name) for name in PER_CELL_COLUMNS if name in lower}
    per_sample: dict[str, list[int]] = {}
    first_line: dict[str, int] = {}
    for n, row in data:
        sample = row[where["sample"]]
        if not sample:
            raise DoseInputError(path, "empty sample name", n, where["sample"] + 1, "sample")
        count = 0
        for name in ("dicentrics", "rings") if count_rings else ("dicentrics",):
            j = where[name]
            count += _count(path, row[j], n, j + 1, header[j], name)
        if "fragments" in where and row[where["fragments"]]:  # checked, not used in the count
            j = where["fragments"]
            _count(path, row[j], n, j + 1, header[j], "fragments")
        per_sample.setdefault(sample, []).append(count)
        first_line.setdefault(sample, n)
    k = max(max(v) for v in per_sample.values())
    samples = []
    for name, cells in per_sample.items():
        counts = tuple(cells.count(i) for i in range(k + 1))
        samples.append(Sample(name, len(cells), sum(cells), counts, first_line[name]))
    return samples


def cases_csv(samples: list[Sample]) -> str:
    """``ID,C0..Ck`` text for samples with distributions (k: the largest count among them)."""
    k = max(len(s.counts) for s in samples) - 1
    lines = ["ID," + ",".join(f"C{i}" for i in range(k + 1))]
    for s in samples:
        counts = list(s.counts) + [0] * (k + 1 - len(s.counts))
        label = (
            s.label
            if not any(c in s.label for c in ',"\n')
            else '"' + s.label.replace('"', '""') + '"'
        )
        lines.append(label + "," + ",".join(str(c) for c in counts))
    return "\n".join(lines) + "\n"

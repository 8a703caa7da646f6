"""The run under review: its rows (from the ledger, or from the CSV/JSON alone), each picture's
id (its place in the results), where its file is, and whether that file is still the one the
run saw."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..pipeline import latest_rows, read_results
from ..pipeline.ledger import ledger_path

LEDGER_SUFFIX = ".ledger.sqlite"


def results_path(given: str | os.PathLike) -> Path:
    """The results file a user named, or the one a ledger belongs to."""
    path = Path(given)
    if path.name.endswith(LEDGER_SUFFIX):
        path = path.with_name(path.name[: -len(LEDGER_SUFFIX)])
    if path.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"{given}: give the results .csv or .json of metasift classify or count")
    return path


def number(value, kind=float):
    """A figure from a row: typed in the ledger, text in a CSV, blank when absent."""
    if value is None or value == "":
        return None
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Picture:
    """One row of the run. ``id``: its place in the results (what the page asks for)."""

    id: int
    row: dict
    base: str  # the results' folder: a relative path not found from here is looked up there
    decision: str = ""  # keep, reject, review, error; blank for a count run
    reasons: tuple[str, ...] = ()
    p_reject: float | None = None
    count: int | None = None
    agreement: str = ""
    name: str = ""

    @property
    def key(self) -> bytes:
        """What the review state is kept under: the path as the results hold it."""
        return os.fsencode(str(self.row.get("path", "")))

    @functools.cached_property
    def file(self) -> Path:
        """Where the picture is now: as the results say, relative paths from the current
        folder, else from the results' folder (found when first asked: a run of 20,000 opens
        without touching the disk)."""
        given = str(self.row.get("path", ""))
        if os.path.isabs(given):
            return Path(os.path.abspath(given))
        here = os.path.abspath(given)
        beside = os.path.abspath(os.path.join(self.base, given))
        return Path(beside if not os.path.exists(here) and os.path.exists(beside) else here)


class Run:
    """The rows of a classify or count run and where their pictures are."""

    def __init__(self, results: str | os.PathLike):
        self.results = results_path(results)
        self.ledger = ledger_path(self.results)
        rows = latest_rows(self.ledger) if self.ledger.is_file() else []
        self.source = str(self.ledger) if rows else str(self.results)
        if not rows:
            if not self.results.is_file():
                raise FileNotFoundError(
                    f"{self.results}: no such results file (nor its ledger {self.ledger.name}); "
                    "give the --out of a metasift classify or count run"
                )
            rows = read_results(self.results)
        self.columns = self._columns(rows)
        if "path" not in self.columns:
            raise ValueError(f"{self.source}: not metasift results (no path column)")
        self._base = str(self.results.parent.resolve())
        self.pictures = [self._picture(i, row) for i, row in enumerate(rows)]
        self.by_key = {p.key: p for p in self.pictures}
        self._state: dict[int, tuple] = {}

    @functools.cached_property
    def root(self) -> Path:
        """The folder that holds all the run's pictures (a link out of it is refused)."""
        folders = {os.path.dirname(p.file) for p in self.pictures}
        return Path(os.path.commonpath(folders)) if folders else self.results.parent

    def _columns(self, rows: list[dict]) -> list[str]:
        if self.ledger.is_file():
            db = sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True)
            try:
                found = db.execute("SELECT columns FROM runs ORDER BY run DESC LIMIT 1").fetchone()
            finally:
                db.close()
            if found and found[0]:
                return json.loads(found[0])
        return list(rows[0]) if rows else ["path"]

    def _picture(self, i: int, row: dict) -> Picture:
        given = str(row.get("path", ""))
        reasons = tuple(r for r in str(row.get("reasons") or "").split(";") if r)
        if not row.get("decision"):  # a count run: the counter's verdicts are its reasons
            reasons = tuple(r for r in ("mixed", "debris", "too_few") if number(row.get(r), int))
        return Picture(
            id=i,
            row=row,
            base=self._base,
            decision=str(row.get("decision") or ("error" if row.get("error") else "")),
            reasons=reasons,
            p_reject=number(row.get("p_reject")),
            count=number(row.get("chromosome_count"), int),
            agreement=str(row.get("agreement") or ""),
            name=os.path.basename(given),
        )

    def __len__(self) -> int:
        return len(self.pictures)

    def get(self, picture_id: int) -> Picture:
        if not 0 <= picture_id < len(self.pictures):
            raise KeyError(picture_id)
        return self.pictures[picture_id]

    def state(self, picture: Picture) -> str:
        """``ok``, ``missing``, ``changed`` (size, time or SHA-256 differ from the run's),
        ``outside`` (a link to a file outside the run's folders) or ``error`` (no picture
        was read in the run)."""
        try:
            st = picture.file.stat()
        except OSError:
            return "missing"
        known = self._state.get(picture.id)
        stamp = (st.st_size, st.st_mtime_ns)
        if known and known[0] == stamp:
            return known[1]
        self._state[picture.id] = (stamp, found := self._check(picture, st))
        return found

    def _check(self, picture: Picture, st: os.stat_result) -> str:
        real = Path(os.path.realpath(picture.file))
        if real != picture.file and not real.is_relative_to(os.path.realpath(self.root)):
            return "outside"
        if not picture.file.is_file():
            return "missing"
        row = picture.row
        size, mtime, digest = (str(row.get(k) or "") for k in ("file_size", "mtime_ns", "sha256"))
        if size and size != str(st.st_size):
            return "changed"
        if mtime and mtime == str(st.st_mtime_ns):
            return "ok"
        if digest:  # touched, copied or restored: the content decides
            sha = hashlib.sha256()
            with open(picture.file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
            if sha.hexdigest() != digest:
                return "changed"
        return "ok"

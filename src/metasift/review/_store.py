"""The review state: one SQLite file beside the results (``RESULTS.review.sqlite``), never in
the pictures.

- ``state``: each reviewed picture's decision, reasons, count and note, and who set them when.
- ``changes``: the audit, one row per field changed (who, when, old, new). Rows are only ever
  added: an undo is a change too, and nothing is deleted.

WAL mode and a short transaction per change let two people review the same run at once (two
servers on one file, or two pages on one server): each field keeps its last write, and every
write is in the audit.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

DECISIONS = ("keep", "reject")
REASONS = ("mixed", "debris", "too_few", "other")  # "other": rejected for a reason of its own
FIELDS = ("decision", "reasons", "count", "note")
MAX_COUNT = 1000  # no metaphase holds more; a typo is caught
MAX_NOTE = 2000  # characters


class ReviewConflict(RuntimeError):
    """A change that would overwrite someone else's later one."""


def review_db(results: Path) -> Path:
    """``slide.csv`` -> ``slide.csv.review.sqlite``."""
    return results.with_name(results.name + ".review.sqlite")


def validate(fields: dict) -> dict:
    """The fields of a change, checked and in their stored form; ValueError says what is wrong."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; a change sets {', '.join(FIELDS)}")
    out = {}
    if "decision" in fields:
        decision = fields["decision"]
        if decision not in (*DECISIONS, None):
            raise ValueError(f"decision must be keep or reject, not {decision!r}")
        reasons = fields.get("reasons") or []
        if isinstance(reasons, str):
            reasons = [r for r in reasons.split(";") if r]
        bad = [r for r in reasons if r not in REASONS]
        if bad:
            raise ValueError(f"unknown reasons {bad}; use {', '.join(REASONS)}")
        if decision == "reject" and not reasons:
            raise ValueError(f"a rejection needs a reason ({', '.join(REASONS)})")
        out["decision"] = decision
        out["reasons"] = ";".join(dict.fromkeys(reasons)) if decision == "reject" else None
    elif "reasons" in fields:
        raise ValueError("reasons are set with a decision")
    if "count" in fields:
        count = fields["count"]
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int | str):
                raise ValueError(f"count must be a whole number, not {count!r}")
            try:
                count = int(count)
            except ValueError:
                raise ValueError(f"count must be a whole number, not {count!r}") from None
            if not 0 <= count <= MAX_COUNT:
                raise ValueError(f"count must be between 0 and {MAX_COUNT}, not {count}")
        out["count"] = count
    if "note" in fields:
        note = fields["note"]
        if note is not None and not isinstance(note, str):
            raise ValueError("a note is text")
        if note and len(note) > MAX_NOTE:
            raise ValueError(f"a note holds at most {MAX_NOTE} characters")
        out["note"] = note or None
    return out


class Store:
    """The review state of one run. Thread-safe: the web server calls it from its workers."""

    def __init__(self, path: str | os.PathLike, *, results: str = ""):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers and a writer never block
        self._db.execute("PRAGMA busy_timeout=10000")  # a second server waits its turn
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process; fast commits
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS state(path BLOB PRIMARY KEY, decision TEXT,"
                " reasons TEXT, count INTEGER, note TEXT, reviewer TEXT, reviewed_at TEXT)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS changes(change INTEGER PRIMARY KEY, at TEXT,"
                " reviewer TEXT, path BLOB, field TEXT, old TEXT, new TEXT, undoes INTEGER)"
            )
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('results', ?), ('created', ?)",
                (results, _now()),
            )
        self._cache: dict[bytes, dict] | None = None
        self._version = None
        self.generation = 0  # grows with every change seen (for what is computed from all)

    def close(self) -> None:
        self._db.close()

    # -- reading ---------------------------------------------------------------------------
    def all(self) -> dict[bytes, dict]:
        """Every reviewed picture's state, by path; read again only when the file changed
        (another server's write included)."""
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if self._cache is None or version != self._version:
                self._cache = {
                    bytes(r[0]): _state(r)
                    for r in self._db.execute(
                        "SELECT path, decision, reasons, count, note, reviewer, reviewed_at"
                        " FROM state"
                    )
                }
                self._version = version
                self.generation += 1
            return self._cache

    def get(self, key: bytes) -> dict:
        return self.all().get(key) or _state((key, None, None, None, None, None, None))

    def history(self, key: bytes) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT change, at, reviewer, field, old, new, undoes FROM changes"
                " WHERE path = ? ORDER BY change",
                (key,),
            ).fetchall()
        names = ("change", "at", "reviewer", "field", "old", "new", "undoes")
        return [dict(zip(names, r)) for r in rows]

    def changes(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM changes").fetchone()[0]

    # -- writing ---------------------------------------------------------------------------
    def set(self, key: bytes, fields: dict, reviewer: str, *, undoes: int | None = None) -> list:
        """Change some fields of one picture's review; the audit ids of what changed."""
        fields = validate(fields)
        reviewer = (reviewer or "").strip()[:100] or "unknown"
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")  # read and write as one step among servers
            row = self._db.execute(
                "SELECT path, decision, reasons, count, note, reviewer, reviewed_at FROM state"
                " WHERE path = ?",
                (key,),
            ).fetchone()
            old = _state(row or (key, None, None, None, None, None, None))
            now, ids = _now(), []
            for name, new in fields.items():
                if old[name] == new:
                    continue
                cur = self._db.execute(
                    "INSERT INTO changes(at, reviewer, path, field, old, new, undoes)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (now, reviewer, key, name, _text(old[name]), _text(new), undoes),
                )
                ids.append(cur.lastrowid)
                old[name] = new
            if ids:
                self._db.execute(
                    "INSERT INTO state(path, decision, reasons, count, note, reviewer, reviewed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET"
                    " decision=excluded.decision, reasons=excluded.reasons, count=excluded.count,"
                    " note=excluded.note, reviewer=excluded.reviewer,"
                    " reviewed_at=excluded.reviewed_at",
                    (
                        key,
                        old["decision"],
                        old["reasons"],
                        old["count"],
                        old["note"],
                        reviewer,
                        now,
                    ),
                )
            self._cache = None
        return ids

    def undo(self, change: int, reviewer: str) -> tuple[bytes, list]:
        """Put back what change ``change`` replaced (a new change: the audit keeps both).
        Refused when the field no longer holds what that change set: someone changed it since."""
        with self._lock:
            found = self._db.execute(
                "SELECT path, field, old, new FROM changes WHERE change = ?", (change,)
            ).fetchone()
        if found is None:
            raise KeyError(change)
        current = _text(self.get(bytes(found[0]))[found[1]])
        if current != found[3]:
            with self._lock:
                later = self._db.execute(
                    "SELECT reviewer, at FROM changes WHERE path = ? AND field = ?"
                    " ORDER BY change DESC LIMIT 1",
                    (found[0], found[1]),
                ).fetchone()
            raise ReviewConflict(
                f"{found[1]} was changed again by {later[0]} at {later[1]}; nothing undone"
            )
        key, name, old = bytes(found[0]), found[1], found[2]
        fields = {name: None if old is None else (int(old) if name == "count" else old)}
        if name == "decision":  # a decision and its reasons go together
            fields["reasons"] = self._before(key, "reasons", change)
        elif name == "reasons":
            return key, []  # undone with its decision
        return key, self.set(key, fields, reviewer, undoes=change)

    def _before(self, key: bytes, name: str, change: int):
        """The value ``name`` had before change ``change``: a decision's reasons change in the
        same step, the very next change."""
        with self._lock:
            row = self._db.execute(
                "SELECT old FROM changes WHERE change = ? AND path = ? AND field = ?",
                (change + 1, key, name),
            ).fetchone()
        return row[0] if row is not None else self.get(key)[name]


def _state(row) -> dict:
    names = ("decision", "reasons", "count", "note", "reviewer", "reviewed_at")
    return dict(zip(names, row[1:]))


def _text(value) -> str | None:
    return None if value is None else str(value)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")

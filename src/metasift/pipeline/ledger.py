"""The results ledger: every row of every run, kept the moment it is made, in one SQLite file
beside the results file; the CSV or JSON results file is written from it.

- **Crash-safe.** Each row is committed as it comes (SQLite in WAL mode): a run killed at any
  point (kill -9 included) keeps every row done, and ``--resume`` does not redo them.
- **Append-only.** Rows are added, never changed or deleted: a rerun of the same results
  (``--resume`` or ``--overwrite``) is a new run in the same ledger, and the results file holds
  the latest run's rows, in its order. Resume takes rows back only as far as the last run that
  started afresh (a first run or ``--overwrite``). A resumed run rewrites the results file
  only when it finishes: until then the file stays as the earlier run left it, and a resume
  that fails loses nothing.
- **Linear.** The results file is rewritten atomically as the run goes, but only once it has
  grown by a quarter (and at most every ``every`` seconds), and once at the end: writing it
  costs a few times the final file, not the square of the rows.
- **One writer.** A lock held for the whole run (released by the system even when the process
  is killed) stops a second run writing the same results at once, with a clear message.

The review app reads the ledger (``latest_rows``) while a run writes it. Keep results on a
local disk: SQLite's write-ahead log needs one (not NFS or SMB).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import __version__
from ..atomic import atomic_write

SUFFIXES = (".csv", ".json")
GROWTH = 1.25  # the results file is rewritten when it would hold this many times the rows


class ResultsLockedError(RuntimeError):
    """Another run is writing the same results."""


def ledger_path(results: Path) -> Path:
    """The ledger of a results file: ``slide.csv`` -> ``slide.csv.ledger.sqlite``."""
    return results.with_name(results.name + ".ledger.sqlite")


def _lock_path(results: Path) -> Path:
    return results.with_name(f".{results.name}.lock")


class Ledger:
    """The results of one run, as they come: ``add(row)`` for each picture in order, then
    ``close()`` (or use it as a context manager). ``previous_rows()`` before the first
    ``add`` gives the rows an earlier run left (for resume)."""

    def __init__(
        self,
        results: str | os.PathLike,
        columns: Iterable[str],
        *,
        resume: bool = False,
        overwrite: bool = False,
        every: float = 2.0,
    ):
        self.path = Path(results)
        if self.path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{self.path}: the results file must end in .csv or .json")
        self.columns, self.every = list(columns), every
        self.path.parent.mkdir(parents=True, exist_ok=True)  # as --sort-into and --overlay do
        self._written, self._last = 0, time.monotonic()
        self._lock = _acquire(_lock_path(self.path), self.path)
        try:
            self.db_path = ledger_path(self.path)
            if not (resume or overwrite):
                for there in (self.path, self.db_path):
                    if there.exists():
                        raise FileExistsError(
                            f"{there} exists (an earlier run's results); pass --resume to "
                            "continue it or --overwrite to replace it"
                        )
            self._resume = resume
            self._db = _connect(self.db_path)
            if resume and not _has_rows(self._db) and self.path.is_file():
                # results made without a ledger: their rows go into it first, so nothing is lost
                self._start_run("imported")
                for row in read_results(self.path):
                    self.add(row)
            self._start_run("resume" if resume else "new")
        except BaseException:
            self._close_db()
            self._lock.close()
            raise

    def _start_run(self, mode: str) -> None:
        with self._db:
            cur = self._db.execute(
                "INSERT INTO runs(started, results, columns, version, mode) VALUES (?, ?, ?, ?, ?)",
                (_now(), str(self.path), json.dumps(self.columns), __version__, mode),
            )
        self.run, self.count = cur.lastrowid, 0

    # -- reading ------------------------------------------------------------------------
    def previous_rows(self) -> list[dict]:
        """The rows earlier runs left (latest per picture), back to the last run that started
        afresh; for results made without a ledger, the results file's rows."""
        return latest_rows(self.db_path, before_run=self.run)

    # -- writing ------------------------------------------------------------------------
    def add(self, row: dict) -> None:
        """Keep one picture's row (committed at once), and refresh the results file now and
        then."""
        data = json.dumps(row, ensure_ascii=True)  # a name that is not UTF-8 stays escaped
        with self._db:
            self._db.execute(
                "INSERT INTO rows(run, seq, path, row) VALUES (?, ?, ?, ?)",
                (self.run, self.count, os.fsencode(str(row.get("path", ""))), data),
            )
        self.count += 1
        grown = self.count >= GROWTH * self._written or self.count - self._written > 100_000
        if grown and not self._resume and time.monotonic() - self._last >= self.every:
            self.flush()

    def rows(self) -> Iterator[dict]:
        """This run's rows, in order (read back from the ledger: memory stays flat)."""
        for (data,) in self._db.execute(
            "SELECT row FROM rows WHERE run = ? ORDER BY seq", (self.run,)
        ):
            yield json.loads(data)

    def flush(self) -> None:
        """Write the results file from the ledger, atomically."""
        write_results(self.path, self.columns, self.rows())
        self._written, self._last = self.count, time.monotonic()

    def close(self, *, failed: bool = False) -> None:
        """Write the results file a last time and mark the run finished. ``failed``: the run
        stopped on an error; a resumed run then leaves the results file as it was (the ledger
        has every row), a new run writes the rows it did."""
        if self._db is None:
            return
        try:
            if not (failed and self._resume):
                self.flush()
            if not failed:
                with self._db:
                    self._db.execute(
                        "UPDATE runs SET finished = ?, rows = ? WHERE run = ?",
                        (_now(), self.count, self.run),
                    )
        finally:
            self._close_db()
            self._lock.close()

    def _close_db(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close(failed=kind is not None)


def latest_rows(db_path: str | os.PathLike, *, before_run: int | None = None) -> list[dict]:
    """The latest row of each picture in a ledger (the review app and resume read this), in
    the order of the run that made it last, from the last run that started afresh (a first
    run or --overwrite) on; ``before_run``: only runs before that one."""
    if not Path(db_path).is_file():
        return []
    # a URI, so that '#' or '%' in a folder name is a name, not a fragment or an escape
    db = sqlite3.connect(Path(db_path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        limit = before_run if before_run is not None else 2**62
        (since,) = db.execute(
            "SELECT coalesce(max(run), 0) FROM runs WHERE coalesce(mode, 'new') != 'resume'"
            " AND run < ?",
            (limit,),
        ).fetchone()
        latest: dict[bytes, dict] = {}
        for path, data in db.execute(
            "SELECT path, row FROM rows WHERE run >= ? AND run < ? ORDER BY run, seq",
            (since, limit),
        ):
            latest.pop(path, None)  # re-inserted: the order of its latest run
            latest[path] = json.loads(data)
        return list(latest.values())
    finally:
        db.close()


def _has_rows(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None


def write_results(path: Path, columns: list[str], rows: Iterable[dict]) -> None:
    """Results as CSV or JSON (by the suffix), atomically. Missing values are blank."""
    with atomic_write(path) as fh:  # a file name that is not UTF-8 is written as its own bytes
        if path.suffix.lower() == ".json":
            fh.write("[")  # as json.dumps(rows, indent=1), one row at a time
            n = 0
            for n, row in enumerate(rows, 1):
                item = json.dumps({k: row.get(k, "") for k in columns}, indent=1)
                fh.write((",\n" if n > 1 else "\n") + _indent(item))
            fh.write("\n]\n" if n else "]\n")
        else:
            writer = csv.DictWriter(
                fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n"
            )
            writer.writeheader()
            writer.writerows(rows)


def _indent(text: str) -> str:
    """json.dumps(list, indent=1) indents each item's lines by one more space."""
    return "\n".join(" " + line for line in text.splitlines())


def read_results(path: str | os.PathLike) -> list[dict]:
    """The rows of a results file (CSV or JSON); none when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    if path.suffix.lower() == ".json":
        return json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def still_valid(rows: list[dict], made_by: str | dict, by: str = "model") -> dict[str, dict]:
    """Earlier rows whose file is unchanged (same size and modification time, or same content)
    and that the same model or counter made (``made_by`` in column ``by``, or a dict of
    column -> value that must all match): those need no second look."""
    need = made_by if isinstance(made_by, dict) else {by: made_by}
    valid = {}
    for row in rows:
        path = Path(row["path"])
        if any(row.get(k) != v for k, v in need.items()):
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        same_stat = str(st.st_size) == str(row.get("file_size")) and str(st.st_mtime_ns) == str(
            row.get("mtime_ns")
        )
        if same_stat or hashlib.sha256(path.read_bytes()).hexdigest() == row.get("sha256"):
            valid[row["path"]] = dict(row)
    return valid


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")  # readers (the review app) never block the writer
    db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process; fast commits
    with db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs(run INTEGER PRIMARY KEY, started TEXT, finished TEXT,"
            " results TEXT, columns TEXT, version TEXT, rows INTEGER, mode TEXT)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS rows(run INTEGER, seq INTEGER, path BLOB, row TEXT,"
            " PRIMARY KEY(run, seq))"
        )
        if "mode" not in {c[1] for c in db.execute("PRAGMA table_info(runs)")}:
            db.execute("ALTER TABLE runs ADD COLUMN mode TEXT")  # ledgers of 0.1.0 dev builds
    return db


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class _Lock:
    """An exclusive lock on a file, held while open; the system releases it when the process
    ends, however it ends."""

    def __init__(self, fh):
        self._fh = fh

    def close(self) -> None:
        if self._fh is not None:
            if os.name == "nt":  # Windows releases a lock only "eventually" after a close
                import msvcrt

                self._fh.seek(0)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_UNLCK, 1)
            self._fh.close()  # closing releases the lock
            self._fh = None


def _acquire(lock: Path, results: Path) -> _Lock:
    fh = open(lock, "a+b")
    try:
        if os.name == "nt":
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise ResultsLockedError(
            f"{results} is being written by another metasift run (lock {lock}); wait for it to "
            "finish, or write to another results file"
        ) from None
    return _Lock(fh)

"""What a review gives: a training manifest (``path,label,reasons,group``, what ``metasift
train`` reads) and the results with the reviewed columns added."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write
from ..pipeline.ledger import write_results
from ._run import Picture, Run
from ._store import Store

KEEP_LABEL = "available"  # the bundled model's name for a usable picture (metasift.criteria)
MANIFEST_COLUMNS = ("path", "label", "reasons", "group")
REVIEWED_COLUMNS = (
    "reviewed_decision", "reviewed_reasons", "reviewed_count", "reviewed_note", "reviewer",
    "reviewed_at",
)  # fmt: skip
# folders named like this sort pictures (metasift synth, --sort-into, an ImageFolder): the
# slide is the folder above them
SORTING_FOLDERS = {"keep", "reject", "available", "mixed", "debris", "too_few", "other"}
SPLIT_FOLDERS = {"train", "val", "test"}
MIN_GROUPS = 3  # a split by slide fills train, val and test only from three slides on


@dataclass
class Exported:
    """What an export wrote, for the terminal and the page."""

    path: Path
    rows: int
    reviewed: int = 0
    machine: int = 0
    left_out: int = 0  # reviewed, but the picture is missing or changed since the run
    groups: int = 0
    note: str = ""

    def summary(self) -> str:
        text = f"{self.path}: {self.rows} pictures"
        if self.machine:
            text += f" ({self.reviewed} reviewed, {self.machine} the machine's confident calls)"
        else:
            text += f", {self.reviewed} reviewed"
        if self.left_out:
            text += f"; {self.left_out} left out: missing or changed since the run"
        return text + (f"; {self.note}" if self.note else "")


def label(decision: str, reasons) -> str:
    """A manifest label: the keep class, or the first reason of a rejection."""
    if decision == "keep":
        return KEEP_LABEL
    return next(iter(reasons), "other")


def slide_folder(file: Path) -> str:
    """The folder a picture's slide is in: its own folder, or the first one above it that is
    not a class or split folder (``slide12/mixed/x.png`` -> ``slide12``)."""
    for parent in file.parents:
        if parent.name.lower() not in SORTING_FOLDERS | SPLIT_FOLDERS:
            return parent.name
    return ""


def export_manifest(
    run: Run, store: Store, out: str | os.PathLike, *, confident: float | None = None
) -> Exported:
    """Write the training manifest: every reviewed picture with its reviewed label and, with
    ``confident`` (e.g. 0.95), the machine's decisions where p_reject is at least that far
    from 0.5 (p_reject <= 1 - confident: keep; >= confident: reject). Paths are relative to
    the manifest; ``group`` is the slide folder (blank, with a note, when the run has fewer
    than three: a split by slide could not fill train, val and test)."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise ValueError(f"{out}: a training manifest is a .csv file")
    if confident is not None and not 0.5 < confident <= 1:
        raise ValueError(f"confident must be above 0.5 and at most 1, not {confident}")
    states = store.all()
    result = Exported(out, 0)
    entries = []
    for picture in run.pictures:
        state = states.get(picture.key)
        if state and state["decision"]:
            if run.state(picture) != "ok":
                result.left_out += 1
                continue
            reasons = [r for r in (state["reasons"] or "").split(";") if r]
            entries.append((picture, label(state["decision"], reasons), reasons))
            result.reviewed += 1
        elif confident is not None and _confident(picture, confident):
            if run.state(picture) != "ok":
                continue
            entries.append((picture, label(picture.decision, picture.reasons), picture.reasons))
            result.machine += 1
    groups = {slide_folder(p.file) for p, _, _ in entries}
    result.groups = len(groups)
    with_groups = len(groups) >= MIN_GROUPS
    if entries and not with_groups:
        result.note = (
            f"group left blank: {len(groups)} slide folder(s), a split by slide needs "
            f"{MIN_GROUPS}; metasift train splits by picture"
        )
    with atomic_write(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for picture, name, reasons in entries:
            group = slide_folder(picture.file) if with_groups else ""
            writer.writerow([_relative(picture.file, out.parent), name, ";".join(reasons), group])
    result.rows = len(entries)
    return result


def export_results(run: Run, store: Store, out: str | os.PathLike) -> Exported:
    """The run's results (CSV or JSON, by the suffix) with the reviewed columns added; blank
    where a picture was not reviewed."""
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"{out}: reviewed results are written as .csv or .json")
    if out.resolve() in (run.results.resolve(), run.ledger.resolve()):
        raise ValueError(f"{out}: the run's own results are never replaced; name another file")
    states = store.all()
    columns = [*run.columns, *REVIEWED_COLUMNS]
    reviewed = 0

    def rows():
        nonlocal reviewed
        for picture in run.pictures:
            row = dict(picture.row)
            state = states.get(picture.key) or {}
            reviewed += bool(state.get("decision") or state.get("count") is not None)
            row.update(
                reviewed_decision=state.get("decision") or "",
                reviewed_reasons=state.get("reasons") or "",
                reviewed_count="" if state.get("count") is None else state["count"],
                reviewed_note=state.get("note") or "",
                reviewer=state.get("reviewer") or "",
                reviewed_at=state.get("reviewed_at") or "",
            )
            yield row

    write_results(out, columns, rows())
    return Exported(out, len(run), reviewed=reviewed)


def _confident(picture: Picture, confident: float) -> bool:
    p = picture.p_reject
    if p is None or picture.decision not in ("keep", "reject"):
        return False
    if picture.decision == "keep":
        return p <= 1 - confident
    return p >= confident and bool(picture.reasons)


def _relative(file: Path, folder: Path) -> str:
    """A path as the manifest holds it: relative to the manifest's folder where it can be."""
    try:
        return Path(os.path.relpath(file, folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return file.as_posix()

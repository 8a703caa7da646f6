"""The results row, defined once: the columns of a classify and a count run, and the row of
one picture's `Result`. The ledger, the CSV/JSON files, the report and the review app all read
rows of this shape."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..criteria import agreement
from ..objects import Findings

IDENTITY = ("file_size", "mtime_ns", "sha256")  # the file a row was made from
FINDINGS_COLUMNS = (
    "chromosome_count", "spread_count", "chromosomes_per_spread", "nuclei_count",
    "debris_over_chromosomes", "mixed", "debris", "too_few", "count_reason",
)  # fmt: skip


def columns(steps: Sequence[str], classes: Sequence[str] = ()) -> list[str]:
    """The columns of a run's results: ``classify`` (with ``count`` beside it, or not), or
    ``count`` alone. ``classes``: the classifier's, keep class first."""
    if "classify" in steps:
        count = [*FINDINGS_COLUMNS, "agreement", "counter"] if "count" in steps else []
        probs = [f"p_{c}" for c in classes[1:] if c != "reject"]  # keep/reject: p_reject only
        return ["path", "decision", "p_reject", *probs, "reasons", *count,
                "width", "height", "model", "error", *IDENTITY]  # fmt: skip
    return ["path", "width", "height", *FINDINGS_COLUMNS, "counter", "error", *IDENTITY]


@dataclass
class Classification:
    """The CNN's decision on one picture."""

    decision: str  # keep or reject
    p_reject: float
    probabilities: dict[str, float]  # of each reject class, by name
    reasons: list[str]  # the reject classes behind a rejection, most likely first


@dataclass
class Result:
    """One picture through the pipeline's steps. ``error``: it could not be read (or, in a
    count run, counted). ``count_error``: in a classify run, the count failed and the
    classification stands. ``ready_row``: a row made before (resume: an earlier run's, still
    valid) or elsewhere (by a cluster worker), given back as it is."""

    path: Path
    identity: tuple = ("", "", "")  # file size, modification time (ns), SHA-256
    width: int | str = ""
    height: int | str = ""
    error: str = ""
    classification: Classification | None = None
    findings: Findings | None = None
    count_error: str = ""
    model: str = ""  # what classified: name@hash of the weights run
    counter: str = ""  # what counted (CountConfig.identity)
    steps: tuple[str, ...] = ("classify", "count")
    ready_row: dict | None = field(default=None, repr=False)

    @property
    def decision(self) -> str:
        """keep, reject or error (classify), or "" (count alone)."""
        if self.ready_row is not None:
            return self.ready_row.get("decision", "")
        if self.error:
            return "error" if "classify" in self.steps else ""
        return self.classification.decision if self.classification else ""

    def row(self) -> dict:
        """This picture's results row (the columns of `columns`)."""
        if self.ready_row is not None:
            return self.ready_row
        if "classify" in self.steps:
            return self._classify_row()
        row = dict(path=str(self.path), width=self.width, height=self.height, error=self.error)
        row.update(zip(IDENTITY, self.identity))
        if not self.error:
            row.update(self.findings.row())
            row["counter"] = self.counter
        else:
            row["counter"] = self.counter
        return row

    def _classify_row(self) -> dict:
        c = self.classification
        row = dict(path=str(self.path), model=self.model)
        row.update(zip(IDENTITY, self.identity), width=self.width, height=self.height)
        row["error"] = self.error
        if self.error or c is None:
            row.update(decision="error", p_reject="", reasons="")
            return row
        if "count" in self.steps:
            row["counter"] = self.counter
            if self.findings is not None:
                row.update(self.findings.row())
                verdicts = self.findings.verdicts
            else:  # the count failed: the classification stands, the row says why
                row["count_reason"] = self.count_error
                verdicts = None
        row.update(decision=c.decision, p_reject=c.p_reject, reasons=";".join(c.reasons))
        row.update({f"p_{name}": p for name, p in c.probabilities.items()})
        if "count" in self.steps:
            row["agreement"] = agreement(
                c.decision, row["reasons"], verdicts, row.get("count_reason", "")
            )
        return row

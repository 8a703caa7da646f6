"""Review a classify or count run in the browser: a person confirms or corrects each decision
and count with the keyboard, and the corrections become a training manifest.

    from metasift.review import open_review, export_manifest
    review = open_review("slide12.csv")          # the ledger, or the CSV/JSON alone
    export_manifest(review.run, review.store, "labels.csv")

The review state lives in ``RESULTS.review.sqlite`` beside the results (state and an
append-only audit of every change); pictures are only read. The web app (`make_app`) needs
the ``[review]`` extra (FastAPI, uvicorn, Jinja2); the rest does not.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from ._app import Review, make_app, new_token
from ._export import export_manifest, export_results, label, slide_folder
from ._images import Views
from ._run import Picture, Run, results_path
from ._store import REASONS, ReviewConflict, Store, review_db


def cache_folder(results: Path) -> Path:
    """Where a review keeps the pictures it makes: ``slide.csv`` -> ``slide.csv.review-cache/``,
    beside the results, never beside the pictures."""
    return results.with_name(results.name + ".review-cache")


def open_review(
    results: str | os.PathLike,
    *,
    db: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    overlays: str | os.PathLike | None = None,
    explanations: str | os.PathLike | None = None,
    model: str | None = None,
    reviewer: str | None = None,
) -> Review:
    """A run and its review state, ready to serve or export."""
    run = Run(results)
    for name, folder in (("--overlay", overlays), ("--explain", explanations)):
        if folder is not None and not Path(folder).is_dir():
            raise FileNotFoundError(f"{folder}: no such folder ({name} DIR of the run)")
    store = Store(db or review_db(run.results), results=str(run.results))
    views = Views(
        Path(cache) if cache else cache_folder(run.results),
        overlays=Path(overlays) if overlays else None,
        explanations=Path(explanations) if explanations else None,
        model=model,
    )
    return Review(run, store, views, reviewer=reviewer or _user())


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this user id (a container)
        return "unknown"


__all__ = [
    "REASONS",
    "Picture",
    "Review",
    "ReviewConflict",
    "Run",
    "Store",
    "Views",
    "cache_folder",
    "export_manifest",
    "export_results",
    "label",
    "make_app",
    "new_token",
    "open_review",
    "results_path",
    "review_db",
    "slide_folder",
]

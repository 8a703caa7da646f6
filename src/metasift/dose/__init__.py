"""Dose estimation from dicentric counts: calibration curves, doses with confidence intervals,
partial-body and protracted exposure, characteristic limits, triage, plots and reports.

The public names load their module (and scipy) on first use, so ``metasift --help`` stays fast.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "DoseInputError": "tables",
    "Sample": "tables",
    "read_calibration": "tables",
    "read_cases": "tables",
    "tabulate_cells": "tables",
    "Curve": "fit",
    "fit_curve": "fit",
    "load_curve": "fit",
    "save_curve": "fit",
    "EstimateConfig": "estimate",
    "ScorerError": "estimate",
    "estimate": "estimate",
    "estimate_all": "estimate",
    "characteristic_limits": "estimate",
    "protraction_factor": "estimate",
    "poisson_interval": "estimate",
    "fit_mixture": "estimate",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)

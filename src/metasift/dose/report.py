"""What a person checks: the curve with its band, the data and each case on it (PNG), and one
self-contained HTML page per run (inputs' SHA-256, metasift version, settings, every figure)."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import write_bytes, write_text
from .estimate import COLUMNS, _chi2
from .fit import Curve


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "inf" if math.isinf(value) else "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else str(value)


def estimates_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def plot_png(
    curve: Curve, rows: list[dict] | None = None, *, g: float = 1.0, confidence: float = 0.95
) -> bytes:
    """The curve, its confidence band (Merkle's, at ``confidence``), the calibration yields
    (+-1.96 standard errors) and each case's yield with its dose interval, as PNG bytes."""
    from matplotlib.figure import Figure

    rows = [r for r in rows or [] if "" not in (r["dose"], r["dose_lower"], r["dose_upper"])]
    top = max(
        [curve.dose_range[1]]
        + [
            float(r["dose_upper"])
            for r in rows
            if r["dose_upper"] != "" and math.isfinite(r["dose_upper"])
        ]
    )
    d = np.linspace(0, top * 1.05 + 1e-9, 300)
    y = curve.yield_at(d, g)
    r = math.sqrt(_chi2(confidence, len(curve.coef)))
    se = curve.yield_se(d, g)
    fig = Figure(figsize=(7.5, 5), dpi=110)
    ax = fig.add_subplot()
    label = "fitted curve" + (f" (protracted, G = {g:.3f})" if g != 1 else "")
    ax.plot(d, y, color="k", lw=1.5, label=label)
    ax.fill_between(
        d,
        y - r * se,
        y + r * se,
        color="0.6",
        alpha=0.35,
        label=f"{confidence:.0%} confidence band",
    )
    pts = curve.points
    ax.errorbar(
        [p["dose"] for p in pts],
        [p["yield"] for p in pts],
        yerr=[1.96 * p["yield_se"] for p in pts],
        fmt="o",
        color="tab:blue",
        ms=4,
        capsize=2,
        label="calibration data (±1.96 se)",
    )
    flagged = [p for p in pts if p["u_flag"]]
    if flagged:
        ax.plot(
            [p["dose"] for p in flagged],
            [p["yield"] for p in flagged],
            "s",
            mfc="none",
            mec="tab:red",
            ms=9,
            label="|u| > 1.96 (not Poisson)",
        )
    colours: dict[str, str] = {}
    for row in rows:
        first = row["method"] not in colours
        c = colours.setdefault(row["method"], f"C{(len(colours) + 1) % 10}")
        lo, hi = float(row["dose_lower"]), min(float(row["dose_upper"]), top * 1.05)
        ax.errorbar(
            [row["dose"]],
            [row["yield"]],
            xerr=[[row["dose"] - lo], [hi - row["dose"]]],
            fmt="D",
            color=c,
            ms=5,
            capsize=3,
            label=row["method"] if first else None,
        )
        if len(rows) <= 30:
            ax.annotate(
                str(row["id"]),
                (row["dose"], row["yield"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color=c,
            )
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("dicentrics per cell")
    ax.set_xlim(0, top * 1.05)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def curve_html(curve: Curve) -> str:
    names = list(curve.names)
    coef = [[n, curve.coef[i], math.sqrt(max(curve.cov[i, i], 0))] for i, n in enumerate(names)]
    cov = [[n, *curve.cov[i]] for i, n in enumerate(names)]
    formula = "Y = C + alpha·D" + (" + beta·D²" if curve.model == "linear-quadratic" else "")
    stats = [
        ["model", f"{curve.model}: {formula}"],
        ["family", f"{curve.family} (asked: {curve.requested_family})"],
        ["algorithm", curve.algorithm],
        ["dispersion (Pearson chi² / df)", curve.dispersion],
        ["log-likelihood", curve.loglik],
        ["AIC", curve.aic],
    ]
    if curve.theta is not None:
        stats.append(["negative binomial theta", curve.theta])
    pts = [
        [
            p["dose"],
            p["cells"],
            p["dicentrics"],
            p["yield"],
            p["yield_se"],
            p["dispersion_index"],
            p["u"],
            "yes" if p["u_flag"] else "",
            p["fitted_yield"],
        ]
        for p in curve.points
    ]
    parts = [
        _table(["", ""], stats),
        "<h3>Coefficients</h3>",
        _table(["coefficient", "estimate", "standard error"], coef),
        "<h3>Covariance</h3>",
        _table(["", *names], cov),
        "<h3>Calibration data</h3>",
        _table(
            [
                "dose (Gy)",
                "cells N",
                "dicentrics X",
                "yield",
                "se",
                "dispersion index",
                "u",
                "|u| > 1.96",
                "fitted yield",
            ],
            pts,
        ),
    ]
    if curve.warnings:
        parts.append(
            "<h3>Warnings</h3><ul>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in curve.warnings)
            + "</ul>"
        )
    return "\n".join(parts)


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0;font-size:0.85em}
td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}th{background:#eee}
pre{background:#f6f6f6;padding:0.5em}.wide{overflow-x:auto}"""


def write_report(
    path: str | os.PathLike,
    *,
    title: str,
    inputs: dict[str, str | Path],
    settings: dict,
    curve: Curve,
    rows: list[dict] | None,
    png: bytes,
    explain: str = "",
) -> None:
    """One self-contained HTML page: inputs with SHA-256, version, settings, curve, estimates
    and the plot (embedded)."""
    files = [[role, str(p), sha256(p)] for role, p in inputs.items()]
    if curve.source:
        files.append(
            [
                "calibration data of the curve",
                curve.source.get("path", ""),
                curve.source.get("sha256", ""),
            ]
        )
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>metasift {html.escape(__version__)}, {now}</p>",
        "<h2>Inputs</h2>",
        _table(["role", "file", "SHA-256"], files),
        "<h2>Settings</h2>",
        f"<pre>{html.escape(json.dumps(settings, indent=2, default=str))}</pre>",
        f"<h2>Plot</h2><img alt='calibration curve' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'>",
    ]
    if rows:
        parts += [
            "<h2>Estimates</h2>",
            explain,
            "<div class='wide'>"
            + _table(list(COLUMNS), [[r[c] for c in COLUMNS] for r in rows])
            + "</div>",
        ]
    parts += ["<h2>Calibration curve</h2>", curve_html(curve), "</body></html>"]
    write_text(path, "\n".join(parts) + "\n")


def write_png(path: str | os.PathLike, png: bytes) -> None:
    write_bytes(path, png)

"""Calibration curve: yield = C + alpha*D + beta*D^2 (or C + alpha*D) fitted to dicentric counts.

Poisson regression with identity link by iteratively reweighted least squares (Edwards et al.
1979; IAEA EPR-Biodosimetry 2011, section 8): the counts X_i at dose D_i are Poisson with mean
N_i * yield(D_i). ``quasipoisson`` keeps those estimates and scales the covariance by the
Pearson dispersion; ``auto`` takes quasi-Poisson when that dispersion exceeds 1, Poisson
otherwise (as Biodose Tools does); ``negbin`` is the negative binomial (NB2: per-cell variance
mu + mu^2/theta, theta by maximum likelihood). When the identity-link fit fails or gives a
yield of 0 or less, the curve is fitted by maximum likelihood with every coefficient held
positive, and the curve says so in its warnings.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .tables import DoseInputError, Sample

FORMAT = "metasift-dose-curve"
FORMAT_VERSION = 1
MODELS = {"linear-quadratic": ("C", "alpha", "beta"), "linear": ("C", "alpha")}
FAMILIES = ("auto", "poisson", "quasipoisson", "negbin")
U_LIMIT = 1.96  # |u| above this: the distribution is not Poisson at the 5% level (two-sided)


class CurveWarning(UserWarning):
    """A fit that needed the constrained fallback, or a point worth a look."""


@dataclass
class Curve:
    """A fitted calibration curve, as written to and read from CURVE.json."""

    model: str  # "linear-quadratic" or "linear"
    family: str  # the family used: "poisson", "quasipoisson" or "negbin" (never "auto")
    coef: np.ndarray  # C, alpha[, beta]: yield per cell = C + alpha*D + beta*D^2
    cov: np.ndarray  # covariance of coef, dispersion included
    dispersion: float  # Pearson chi-square / degrees of freedom of the Poisson fit
    loglik: float  # Poisson (or NB) log-likelihood of the per-dose counts
    algorithm: str = "irls"  # or "constrained-ml"
    theta: float | None = None  # negbin only: per-cell variance is mu + mu^2 / theta
    points: list[dict] = field(default_factory=list)  # per-dose data and checks
    warnings: list[str] = field(default_factory=list)
    source: dict = field(default_factory=dict)  # calibration file name and SHA-256
    requested_family: str = "auto"

    @property
    def names(self) -> tuple[str, ...]:
        return MODELS[self.model]

    @property
    def aic(self) -> float:
        parameters = len(self.coef) + (self.theta is not None)  # theta counts for negbin
        return 2 * parameters - 2 * self.loglik

    @property
    def loglik_basis(self) -> str:
        """What the log-likelihood counts: the per-dose totals X_i (Poisson, quasi-Poisson; the
        IAEA's -35.71), or each cell (negative binomial with distributions)."""
        if self.family == "negbin" and all(p.get("counts") for p in self.points):
            return "cells"
        return "per-dose totals"

    @property
    def dose_range(self) -> tuple[float, float]:
        doses = [p["dose"] for p in self.points]
        return (min(doses), max(doses)) if doses else (0.0, math.inf)

    @property
    def background(self) -> tuple[int, int] | None:
        """(dicentrics, cells) scored at 0 Gy, summed over 0 Gy rows; None without them."""
        zero = [p for p in self.points if p["dose"] == 0]
        if not zero:
            return None
        return sum(p["dicentrics"] for p in zero), sum(p["cells"] for p in zero)

    def full_coef(self, g: float = 1.0) -> tuple[float, float, float]:
        """C, alpha, beta*G (beta 0 for a linear curve): G is the protraction factor."""
        c = list(self.coef) + [0.0] * (3 - len(self.coef))
        return c[0], c[1], c[2] * g

    def yield_at(self, dose, g: float = 1.0):
        c, a, b = self.full_coef(g)
        return c + a * np.asarray(dose, float) + b * np.asarray(dose, float) ** 2

    def gradient(self, dose, g: float = 1.0) -> np.ndarray:
        """d yield / d coef at each dose: rows of [1, D, G*D^2][: len(coef)]."""
        d = np.atleast_1d(np.asarray(dose, float))
        return np.stack([np.ones_like(d), d, g * d**2], axis=-1)[..., : len(self.coef)]

    def yield_se(self, dose, g: float = 1.0):
        """Standard error of the fitted yield at each dose (from the covariance)."""
        grad = self.gradient(dose, g)
        var = np.einsum("...i,ij,...j->...", grad, self.cov, grad)
        out = np.sqrt(np.clip(var, 0, None))
        return out if np.ndim(dose) else float(out[0])

    def dose_at(self, yield_, g: float = 1.0) -> float:
        """The dose whose fitted yield is ``yield_`` (0 below the curve's background)."""
        c, a, b = self.full_coef(g)
        if yield_ <= c:
            return 0.0
        if b == 0:
            return (yield_ - c) / a
        return (-a + math.sqrt(a * a + 4 * b * (yield_ - c))) / (2 * b)

    def to_dict(self) -> dict:
        coefficients = {
            name: [float(v), float(math.sqrt(max(self.cov[i, i], 0.0)))]
            for i, (name, v) in enumerate(zip(self.names, self.coef))
        }
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "metasift_version": __version__,
            "model": self.model,
            "family": self.family,
            "requested_family": self.requested_family,
            "algorithm": self.algorithm,
            "coefficients": coefficients,
            "covariance": [[float(v) for v in row] for row in self.cov],
            "dispersion": float(self.dispersion),
            "theta": self.theta,
            "loglik": float(self.loglik),
            "loglik_basis": self.loglik_basis,
            "aic": float(self.aic),
            "warnings": list(self.warnings),
            "source": self.source,
            "data": self.points,
        }

    @classmethod
    def from_dict(cls, d: dict, path="curve") -> Curve:
        if d.get("format") != FORMAT:
            raise DoseInputError(
                path,
                f"not a metasift dose curve (format {d.get('format')!r}); make one with "
                "`metasift dose fit`",
            )
        if d.get("format_version") != FORMAT_VERSION:
            raise DoseInputError(
                path,
                f"curve format version {d.get('format_version')!r}, this metasift "
                f"({__version__}) reads version {FORMAT_VERSION}; refit with `metasift dose fit`",
            )
        try:
            names = MODELS[d["model"]]
            coef = np.array([d["coefficients"][n][0] for n in names], float)
            cov = np.array(d["covariance"], float)
            if cov.shape != (len(names), len(names)):
                raise ValueError(f"covariance is {cov.shape}, expected {len(names)}x{len(names)}")
            return cls(
                model=d["model"],
                family=d["family"],
                coef=coef,
                cov=cov,
                dispersion=float(d["dispersion"]),
                loglik=float(d["loglik"]),
                algorithm=d.get("algorithm", "irls"),
                theta=d.get("theta"),
                points=list(d.get("data", [])),
                warnings=list(d.get("warnings", [])),
                source=dict(d.get("source", {})),
                requested_family=d.get("requested_family", ""),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise DoseInputError(path, f"damaged curve file: {error!r}") from None


def save_curve(curve: Curve, path: str | os.PathLike) -> None:
    from ..atomic import write_text

    write_text(path, json.dumps(curve.to_dict(), indent=2) + "\n")


def load_curve(path: str | os.PathLike) -> Curve:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DoseInputError(path, "no such file") from None
    except UnicodeDecodeError:
        raise DoseInputError(path, "not a metasift curve (not UTF-8 text)") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as error:
        raise DoseInputError(
            path, f"not a metasift curve (not JSON: {error.msg})", error.lineno, error.colno
        ) from None
    if not isinstance(d, dict):
        raise DoseInputError(path, "not a metasift curve (JSON, but not an object)")
    return Curve.from_dict(d, path)


# --- fitting -------------------------------------------------------------------------------


def _poisson_loglik(x, mu) -> float:
    from scipy.special import gammaln

    return float(np.sum(x * np.log(mu) - mu - gammaln(x + 1)))


def _nb_loglik(samples: list[Sample], y: np.ndarray, theta: float) -> float:
    """NB2 log-likelihood: per cell where distributions are known, else of the totals
    (N cells of NB(mu, theta) sum to NB(N*mu, N*theta))."""
    from scipy.special import gammaln

    total = 0.0
    for s, mu in zip(samples, y):
        if s.counts is not None:
            k = np.arange(len(s.counts))
            w, m, t = np.asarray(s.counts, float), mu, theta
        else:
            k, w, m, t = np.array([s.dicentrics]), np.ones(1), s.cells * mu, s.cells * theta
        ll = (
            gammaln(k + t)
            - gammaln(t)
            - gammaln(k + 1)
            + t * np.log(t / (t + m))
            + k * np.log(m / (t + m))
        )
        total += float(np.sum(w * ll))
    return total


def _irls(a: np.ndarray, x: np.ndarray, var_of_mu) -> np.ndarray | None:
    """Identity-link IRLS: coefficients b with mean a @ b; None when a mean leaves (0, inf)."""
    mu = x + 0.1  # R's starting means for the Poisson family
    b = None
    for _ in range(100):
        w = 1 / var_of_mu(mu)
        b_new = np.linalg.solve(a.T @ (w[:, None] * a), a.T @ (w * x))
        mu = a @ b_new
        if not np.all(np.isfinite(mu)) or np.any(mu <= 0):
            return None
        if b is not None and np.allclose(b_new, b, rtol=1e-12, atol=1e-15):
            return b_new
        b = b_new
    return b


def _constrained(a, x, negloglik) -> np.ndarray:
    """Maximum likelihood with every coefficient > 0 (so every yield is positive)."""
    from scipy.optimize import minimize

    start, *_ = np.linalg.lstsq(a, x, rcond=None)
    start = np.clip(np.abs(start), 1e-6, None)
    scale = start.copy()  # optimise in units of the start, so C and beta weigh alike
    result = minimize(
        lambda z: negloglik(z * scale),
        np.ones_like(start),
        method="L-BFGS-B",
        bounds=[(1e-9, None)] * len(start),
    )
    return result.x * scale


def fit_curve(
    samples: list[Sample],
    *,
    model: str = "linear-quadratic",
    family: str = "auto",
    path="calibration",
) -> Curve:
    """Fit a calibration curve to per-dose counts (see the module docstring)."""
    if model not in MODELS:
        raise ValueError(f"model {model!r}: choose one of {', '.join(MODELS)}")
    if family not in FAMILIES:
        raise ValueError(f"family {family!r}: choose one of {', '.join(FAMILIES)}")
    p = len(MODELS[model])
    doses = np.array([s.dose for s in samples], float)
    distinct = sorted(set(doses.tolist()))
    if len(distinct) < p:
        raise DoseInputError(
            path,
            f"a {model} fit needs at least {p} different doses; found {len(distinct)} "
            f"({', '.join(f'{d:g}' for d in distinct)} Gy)",
        )
    x = np.array([s.dicentrics for s in samples], float)
    n = np.array([s.cells for s in samples], float)
    if x.sum() == 0:
        raise DoseInputError(path, "no dicentrics at any dose: nothing to fit")
    a = n[:, None] * np.vander(doses, p, increasing=True)
    notes = []

    def poisson_nll(b):
        mu = a @ b
        return -_poisson_loglik(x, mu) if np.all(mu > 0) else math.inf

    b = _irls(a, x, lambda mu: mu)
    algorithm = "irls"
    if b is None or np.any(a @ b <= 0):
        b = _constrained(a, x, poisson_nll)
        algorithm = "constrained-ml"
        notes.append(
            "the identity-link Poisson fit failed or gave a yield of 0 or less at some dose; "
            "fitted by maximum likelihood with every coefficient held positive"
        )
    mu = a @ b
    df = len(samples) - p
    dispersion = float(np.sum((x - mu) ** 2 / mu) / df) if df > 0 else math.nan
    cov = np.linalg.inv(a.T @ (a / mu[:, None]))
    loglik = _poisson_loglik(x, mu)
    theta = None
    used = family
    if family == "auto":
        used = "quasipoisson" if dispersion > 1 else "poisson"
    if used == "quasipoisson":
        if df <= 0:
            raise DoseInputError(path, "quasi-Poisson needs more doses than coefficients")
        cov = cov * dispersion
    elif used == "negbin":
        b, cov, theta, loglik, nb_algorithm = _fit_negbin(samples, a, x, n, b)
        if nb_algorithm != "irls":
            algorithm = nb_algorithm
        mu = a @ b
    curve = Curve(
        model=model,
        family=used,
        coef=b,
        cov=cov,
        dispersion=dispersion,
        loglik=loglik,
        algorithm=algorithm,
        theta=theta,
        requested_family=family,
    )
    curve.points = [_point(s, curve) for s in samples]
    flagged = [p["dose"] for p in curve.points if p["u_flag"]]
    if flagged:
        notes.append(
            "not Poisson-distributed (|u| > 1.96) at "
            + ", ".join(f"{d:g}" for d in flagged)
            + " Gy"
        )
    curve.warnings = notes
    for note in notes[:1] if algorithm != "irls" else []:
        warnings.warn(note, CurveWarning, stacklevel=2)
    return curve


def _fit_negbin(samples, a, x, n, b_poisson):
    """NB2: theta by maximising the profile likelihood; coefficients by IRLS at that theta."""
    from scipy.optimize import minimize_scalar

    def coefficients(theta):
        b = _irls(a, x, lambda mu: mu + mu**2 / (n * theta))
        return b if b is not None and np.all(a @ b > 0) else None

    def profile(log_theta):
        b = coefficients(math.exp(log_theta))
        if b is None:
            return math.inf
        return -_nb_loglik(samples, (a @ b) / n, math.exp(log_theta))

    best = minimize_scalar(profile, bounds=(math.log(1e-3), math.log(1e8)), method="bounded")
    theta = math.exp(best.x)
    b = coefficients(theta)
    algorithm = "irls"
    if b is None:
        from scipy.optimize import minimize

        def nll(z):
            bb, t = z[:-1], math.exp(z[-1])
            mu = a @ bb
            return -_nb_loglik(samples, mu / n, t) if np.all(mu > 0) else math.inf

        start = np.append(np.clip(b_poisson, 1e-9, None), math.log(theta))
        scale = np.append(np.abs(start[:-1]), 1.0)
        res = minimize(
            lambda z: nll(z * scale),
            start / scale,
            method="L-BFGS-B",
            bounds=[(1e-9, None)] * len(b_poisson) + [(None, None)],
        )
        b, theta = (res.x * scale)[:-1], math.exp((res.x * scale)[-1])
        algorithm = "constrained-ml"
    mu = a @ b
    cov = np.linalg.inv(a.T @ (a / (mu + mu**2 / (n * theta))[:, None]))
    return b, cov, theta, _nb_loglik(samples, mu / n, theta), algorithm


def _point(s: Sample, curve: Curve) -> dict:
    u = s.u
    fitted = float(curve.yield_at(s.dose))
    return {
        "dose": s.dose,
        "cells": s.cells,
        "dicentrics": s.dicentrics,
        "counts": list(s.counts) if s.counts is not None else None,
        "yield": s.yield_,
        "yield_se": s.yield_se,
        "dispersion_index": None if math.isnan(s.dispersion_index) else s.dispersion_index,
        "u": None if math.isnan(u) else u,
        "u_flag": bool(not math.isnan(u) and abs(u) > U_LIMIT),
        "fitted_yield": fitted,
        "line": s.line,
    }

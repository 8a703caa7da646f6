"""Dose estimates for cases, with confidence intervals (IAEA EPR-Biodosimetry 2011, section 9).

- ``merkle-83`` / ``merkle-95``: whole body. The yield's exact Poisson interval (83% or 95%)
  crossed with the curve's confidence band at the same level, the band being
  yield(D) +- R * se(D) with R^2 the chi-square quantile for as many degrees of freedom as the
  curve has coefficients (Merkle 1983, Radiat. Environ. Biophys. 21:217). When the case is
  overdispersed (dispersion index > 1) the yield interval is widened (``widening``).
- ``delta``: whole body, dose +- 1.96 standard errors, the variance of the yield (Poisson, or
  var/N when overdispersed) and of the curve's coefficients carried by the delta method.
- ``dolphin``: partial body (Dolphin 1969): the zero-inflated Poisson gives the yield in the
  irradiated cells (lambda / (1 - exp(-lambda)) = X / (N - C0)) and their share of the cells
  scored; the fraction of the body irradiated corrects that share for the cells that died
  (survival exp(-gamma * D), gamma = 1 / D0).
- ``mixed``: two-component mixed Poisson fitted by maximum likelihood (Pujol et al. 2016,
  Radiat. Res. 185:151): the more irradiated component's dose is ``dose``, the other ``dose2``.
- ``triage``: the IAEA triage mode: from as few as 50 cells (stop at 50 cells or 30 dicentrics)
  a dose category, 0-1, 1-2 or more than 2 Gy, from the Merkle 95%/95% estimate.

Protracted exposure multiplies beta by the Lea-Catcheside factor G(x) = 2/x^2 (x - 1 + e^-x),
x = exposure time / 2 h (the mean lifetime of breaks). An automated scorer's own error (its
sensitivity and false-positive rate per cell, measured on counted sets) corrects the yield,
y = (y_observed - f) / s, and its variance is added to the interval; ``share_counting``,
``share_scoring`` and ``share_curve`` say what part of the dose variance comes from the cells
counted, from the scorer's error and from the calibration curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .fit import Curve
from .tables import Sample

METHODS = ("merkle-83", "merkle-95", "delta", "dolphin", "mixed", "triage")
WIDENINGS = ("sqrt", "biodose-tools", "none")
TRIAGE_CELLS, TRIAGE_DICENTRICS = 50, 30  # IAEA 2011 triage stopping rule, section 10.4
COLUMNS = (
    "id",
    "method",
    "confidence",
    "exposure",
    "cells",
    "dicentrics",
    "yield_observed",
    "yield",
    "yield_lower",
    "yield_upper",
    "dispersion_index",
    "u",
    "dose",
    "dose_lower",
    "dose_upper",
    "fraction_irradiated",
    "cell_fraction",
    "dose2",
    "dose2_lower",
    "dose2_upper",
    "fraction",
    "fraction2",
    "fraction_se",
    "share_counting",
    "share_scoring",
    "share_curve",
    "decision_threshold",
    "detection_limit",
    "decision_dose",
    "detection_dose",
    "p_background",
    "above_background",
    "triage",
    "note",
)


@dataclass(frozen=True)
class ScorerError:
    """An automated scorer's error, measured against an expert on cells of known content."""

    found: int  # true dicentrics the scorer found
    true: int  # true dicentrics in the check set (the sensitivity's denominator)
    false_positives: int  # dicentrics the scorer reported that were not there
    cells: int  # cells in the set the false positives were counted on

    def __post_init__(self):
        if self.true <= 0 or self.cells <= 0:
            raise ValueError("the scorer's check needs at least one true dicentric and one cell")
        if not 0 < self.found <= self.true:
            raise ValueError(
                f"sensitivity {self.found}/{self.true}: found must be between 1 and true"
            )
        if self.false_positives < 0:
            raise ValueError("false positives cannot be negative")

    @property
    def sensitivity(self) -> float:
        return self.found / self.true

    @property
    def false_positive_rate(self) -> float:
        return self.false_positives / self.cells

    @property
    def sensitivity_var(self) -> float:  # binomial
        s = self.sensitivity
        return s * (1 - s) / self.true

    @property
    def false_positive_var(self) -> float:  # Poisson count over the cells checked
        return self.false_positives / self.cells**2


@dataclass(frozen=True)
class EstimateConfig:
    """How to estimate; one config per method."""

    method: str = "merkle-83"
    gamma: float = 1 / 2.7  # 1/D0, survival of irradiated lymphocytes (D0 = 2.7 Gy, IAEA 2011)
    exposure: str = "acute"  # or "protracted" (needs hours)
    hours: float = 0.0  # duration of a protracted exposure
    rejoining_hours: float = 2.0  # mean lifetime of breaks, for G(x) (IAEA 2011, section 9.5)
    widening: str = "sqrt"  # overdispersed Merkle yield bounds: y*(b/y)^sqrt(DI); see README
    alpha: float = 0.05  # characteristic limits: chance of calling background exposed
    beta: float = 0.10  # characteristic limits: chance of missing the detection limit
    scorer: ScorerError | None = None  # automated scorer's error; None: counts are exact

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.widening not in WIDENINGS:
            raise ValueError(f"widening {self.widening!r}: choose one of {', '.join(WIDENINGS)}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be positive (1/D0, e.g. 1/2.7), got {self.gamma}")
        if self.exposure not in ("acute", "protracted"):
            raise ValueError(f"exposure {self.exposure!r}: acute or protracted")
        if self.exposure == "protracted" and not self.hours > 0:
            raise ValueError("a protracted exposure needs its duration in hours (> 0)")
        if not self.rejoining_hours > 0:
            raise ValueError("rejoining time must be positive")
        if not (0 < self.alpha < 1 and 0 < self.beta < 1):
            raise ValueError("alpha and beta are probabilities between 0 and 1")

    @property
    def g(self) -> float:
        if self.exposure == "acute":
            return 1.0
        return protraction_factor(self.hours, self.rejoining_hours)


def protraction_factor(hours: float, rejoining_hours: float = 2.0) -> float:
    """Lea-Catcheside G(x) = 2/x^2 (x - 1 + exp(-x)), x = hours / rejoining time; 1 at x = 0."""
    x = hours / rejoining_hours
    if x < 1e-6:
        return 1.0
    return 2 / x**2 * (x - 1 + math.exp(-x))


def poisson_interval(count: int, confidence: float) -> tuple[float, float]:
    """Exact (Garwood) two-sided interval of a Poisson count; one-sided (0, upper) for 0."""
    if count == 0:
        return 0.0, _chi2(confidence, 2) / 2
    tail = (1 - confidence) / 2
    return _chi2(tail, 2 * count) / 2, _chi2(1 - tail, 2 * count + 2) / 2


def _chi2(q: float, df: float) -> float:
    """Chi-square quantile (scipy.special: scipy.stats alone takes 2 s to import)."""
    from scipy.special import gammaincinv

    return float(2 * gammaincinv(df / 2, q))


def _z(confidence: float) -> float:
    """Two-sided normal quantile: 1.96 for 0.95."""
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2))


def binomial_p_two_sided(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial p-value as R's binom.test: the probability of every outcome no
    more likely than k."""
    from scipy.special import gammaln

    i = np.arange(n + 1)
    logpmf = gammaln(n + 1) - gammaln(i + 1) - gammaln(n - i + 1)
    with np.errstate(divide="ignore"):
        logpmf = logpmf + i * math.log(p) + (n - i) * math.log1p(-p)
    pmf = np.exp(logpmf)
    return float(min(1.0, pmf[pmf <= pmf[k] * (1 + 1e-7)].sum()))


@lru_cache(maxsize=4096)
def characteristic_limits(
    cells: int,
    background_dicentrics: int,
    background_cells: int,
    alpha: float = 0.05,
    beta: float = 0.10,
) -> tuple[int, float]:
    """ISO 19238 decision threshold and detection limit, in dicentrics, for a case of ``cells``.

    The case is compared with the background (dicentrics in cells scored at 0 Gy) by the exact
    conditional test (the case's share of all dicentrics is binomial, two-sided, as Biodose
    Tools does). Decision threshold: the largest count still not above background at level
    alpha. Detection limit: the mean count that exceeds the threshold with probability 1-beta.
    """
    share = cells / (cells + background_cells)
    x = max(1, math.floor(cells * background_dicentrics / background_cells) + 1)
    while binomial_p_two_sided(x, x + background_dicentrics, share) >= alpha:
        x += 1  # from the first count above the background's rate
    threshold = x - 1
    return threshold, _chi2(1 - beta, 2 * (threshold + 1)) / 2


def p_background(sample: Sample, background: tuple[int, int]) -> float:
    """Two-sided p-value of the case's dicentrics against the background's (conditional test)."""
    y0, n0 = background
    if sample.dicentrics + y0 == 0:
        return 1.0
    share = sample.cells / (sample.cells + n0)
    return binomial_p_two_sided(sample.dicentrics, sample.dicentrics + y0, share)


# --- helpers ---------------------------------------------------------------------------------


def _slope(curve: Curve, dose: float, g: float) -> float:
    _, a, b = curve.full_coef(g)
    return a + 2 * b * dose


def _curve_var(curve: Curve, dose: float, g: float) -> float:
    """Variance of the dose from the curve's coefficients (implicit differentiation)."""
    grad = -curve.gradient(dose, g)[0] / _slope(curve, dose, g)
    return float(grad @ curve.cov @ grad)


def _band_dose(curve: Curve, target: float, side: int, r: float, g: float) -> float:
    """Dose where the band yield(D) + side*r*se(D) reaches ``target`` (0 if it starts above)."""
    from scipy.optimize import brentq

    def f(d):
        return float(curve.yield_at(d, g)) + side * r * curve.yield_se(d, g) - target

    if f(0.0) >= 0:
        return 0.0
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
        if hi > 1e4:
            return math.inf
    return float(brentq(f, 0.0, hi, xtol=1e-10))


def _correct(y_obs: float, var_count: float, scorer: ScorerError | None):
    """Scorer-corrected yield and the variances of counting and scoring, on the true yield."""
    if scorer is None:
        return y_obs, var_count, 0.0
    s, f = scorer.sensitivity, scorer.false_positive_rate
    y = max(y_obs - f, 0.0) / s
    var_scoring = (y**2 * scorer.sensitivity_var + scorer.false_positive_var) / s**2
    return y, var_count / s**2, var_scoring


def _widen(y_obs: float, bound_count: float, sample: Sample, widening: str) -> float:
    """A yield bound from the exact Poisson bound of the count, widened when overdispersed."""
    n, x, di = sample.cells, sample.dicentrics, sample.dispersion_index
    plain = bound_count / n
    if widening == "none" or math.isnan(di) or x == 0:
        return plain
    if widening == "sqrt" and di > 1:  # the log-distance to the bound grows as sqrt(DI)
        return y_obs * (bound_count / x) ** math.sqrt(di)
    if widening == "biodose-tools" and di >= 1:  # Biodose Tools 3.x estimate_whole_body_merkle
        return plain * (bound_count / x) ** math.sqrt(di)
    return plain


def _row(sample: Sample, cfg: EstimateConfig, confidence: str) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    di, u = sample.dispersion_index, sample.u
    row.update(
        id=sample.label,
        method=cfg.method,
        confidence=confidence,
        cells=sample.cells,
        dicentrics=sample.dicentrics,
        yield_observed=sample.yield_,
        dispersion_index="" if math.isnan(di) else di,
        u="" if math.isnan(u) else u,
        exposure="acute"
        if cfg.exposure == "acute"
        else f"protracted {cfg.hours:g} h (G = {cfg.g:.4f})",
    )
    row["notes"] = []
    return row


def _shares(row: dict, parts: dict) -> None:
    total = sum(parts.values())
    if total > 0 and math.isfinite(total):
        for name, value in parts.items():
            row[f"share_{name}"] = value / total


# --- methods ---------------------------------------------------------------------------------


def _whole_body(
    sample: Sample,
    curve: Curve,
    cfg: EstimateConfig,
    row: dict,
    conf_yield: float,
    conf_curve: float,
    delta: bool,
) -> None:
    g, y_obs = cfg.g, sample.yield_
    di = sample.dispersion_index
    # the delta method always takes var/N when overdispersed (as Biodose Tools); Merkle's
    # bounds only when widened
    overdispersed = not math.isnan(di) and di > 1 and (delta or cfg.widening != "none")
    var_count = (di if overdispersed else 1.0) * y_obs / sample.cells
    y, v_count, v_scoring = _correct(y_obs, var_count, cfg.scorer)
    row["yield"] = y
    dose = curve.dose_at(y, g)
    row["dose"] = dose
    if sample.dicentrics == 0:
        row["notes"].append("no dicentric: one-sided interval (upper bound only)")
        delta = False  # a variance of 0 says nothing; the exact Poisson bound does
    if delta:
        z = _z(conf_yield)
        sd_y = math.sqrt(v_count + v_scoring)
        row["yield_lower"], row["yield_upper"] = max(y - z * sd_y, 0.0), y + z * sd_y
        if dose > 0:
            slope = _slope(curve, dose, g)
            sd_d = math.sqrt(_curve_var(curve, dose, g) + (v_count + v_scoring) / slope**2)
            row["dose_lower"], row["dose_upper"] = max(dose - z * sd_d, 0.0), dose + z * sd_d
        else:
            row["dose_lower"] = 0.0
            row["dose_upper"] = curve.dose_at(row["yield_upper"], g)
    else:
        lo_count, hi_count = poisson_interval(sample.dicentrics, conf_yield)
        lo = _widen(y_obs, lo_count, sample, cfg.widening)
        hi = _widen(y_obs, hi_count, sample, cfg.widening)
        if cfg.scorer is not None:  # correct, then add the scorer's half-width in quadrature
            s, z = cfg.scorer.sensitivity, _z(conf_yield)
            lo = y - math.sqrt(((y_obs - lo) / s) ** 2 + z * z * v_scoring)
            hi = y + math.sqrt(((hi - y_obs) / s) ** 2 + z * z * v_scoring)
        row["yield_lower"], row["yield_upper"] = max(lo, 0.0), hi
        r = math.sqrt(_chi2(conf_curve, len(curve.coef)))
        row["dose_lower"] = _band_dose(curve, row["yield_lower"], +1, r, g)
        row["dose_upper"] = _band_dose(curve, row["yield_upper"], -1, r, g)
        row["dose_lower"] = min(row["dose_lower"], dose)
    if dose > 0:
        slope = _slope(curve, dose, g)
        _shares(
            row,
            {
                "counting": v_count / slope**2,
                "scoring": v_scoring / slope**2,
                "curve": _curve_var(curve, dose, g),
            },
        )


def _dolphin(sample: Sample, curve: Curve, cfg: EstimateConfig, row: dict) -> None:
    from scipy.optimize import brentq

    if sample.counts is None:
        row["notes"].append("Dolphin's method needs the distribution C0..Ck, not just N and X")
        return
    n, x, c0 = sample.cells, sample.dicentrics, sample.counts[0]
    if x == 0 or x <= n - c0:
        row["notes"].append("Dolphin's method needs cells with 2 or more dicentrics (none here)")
        return
    ratio = x / (n - c0)
    lam = brentq(lambda v: v / -math.expm1(-v) - ratio, 1e-9, ratio + 1, xtol=1e-14)
    pi = x / (lam * n)
    e = math.exp(-lam)
    p0 = 1 - pi + pi * e
    info = n * np.array(
        [
            [pi * ((pi - 1) * e / p0 + 1 / lam), e / p0],
            [e / p0, (1 - e) / (pi * p0)],
        ]
    )  # Fisher information of (lambda, pi) for the zero-inflated Poisson
    cov_zip = np.linalg.inv(info)
    y, v_count, v_scoring = _correct(lam, float(cov_zip[0, 0]), cfg.scorer)
    z, g = _z(0.95), cfg.g
    sd_y = math.sqrt(v_count + v_scoring)
    row["yield"], row["yield_lower"], row["yield_upper"] = y, max(y - z * sd_y, 0), y + z * sd_y
    dose = curve.dose_at(y, g)
    row["dose"], row["cell_fraction"] = dose, pi
    if dose <= 0:
        row["notes"].append("the irradiated cells' yield is at the curve's background")
        return
    slope = _slope(curve, dose, g)
    v_curve = _curve_var(curve, dose, g)
    sd_d = math.sqrt(v_curve + (v_count + v_scoring) / slope**2)
    row["dose_lower"], row["dose_upper"] = max(dose - z * sd_d, 0.0), dose + z * sd_d
    _shares(
        row, {"counting": v_count / slope**2, "scoring": v_scoring / slope**2, "curve": v_curve}
    )

    def fraction(theta):  # theta: curve coefficients, lambda, pi
        k = len(curve.coef)
        d = _dose_from(theta[:k], theta[k], g, curve)
        w = theta[k + 1] * math.exp(cfg.gamma * d)
        return w / (1 - theta[k + 1] + w)

    theta = np.concatenate([curve.coef, [y, pi]])
    cov = _block(curve.cov, _scale_cov(cov_zip, cfg.scorer, v_scoring))
    f_est, f_se = fraction(theta), _delta_se(fraction, theta, cov)
    row["fraction_irradiated"], row["fraction_se"] = min(max(f_est, 0.0), 1.0), f_se


def _scale_cov(cov_zip: np.ndarray, scorer: ScorerError | None, v_scoring: float) -> np.ndarray:
    """Covariance of (lambda, pi) on the corrected yield's scale."""
    if scorer is None:
        return cov_zip
    out = cov_zip.copy()
    s = scorer.sensitivity
    out[0, :] /= s
    out[:, 0] /= s
    out[0, 0] += v_scoring
    return out


def _dose_from(coef, y: float, g: float, curve: Curve) -> float:
    c = list(coef) + [0.0] * (3 - len(coef))
    a, b = c[1], c[2] * g
    if y <= c[0]:
        return 0.0
    if b == 0:
        return (y - c[0]) / a
    return (-a + math.sqrt(a * a + 4 * b * (y - c[0]))) / (2 * b)


def _block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((len(a) + len(b),) * 2)
    out[: len(a), : len(a)] = a
    out[len(a) :, len(a) :] = b
    return out


def _delta_se(func, theta: np.ndarray, cov: np.ndarray) -> float:
    """Delta-method standard error of func(theta), central differences."""
    grad = np.zeros(len(theta))
    for i in range(len(theta)):
        h = 1e-6 * max(abs(theta[i]), 1e-6)
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (func(up) - func(down)) / (2 * h)
    return float(math.sqrt(max(grad @ cov @ grad, 0.0)))


def fit_mixture(counts) -> tuple[np.ndarray, np.ndarray]:
    """Two-component Poisson mixture by maximum likelihood: (f, y1, y2) with y1 >= y2, f the
    share of cells in component 1, and their covariance (inverse observed information).

    Bounds as Biodose Tools: 0.01 <= f <= 0.99, yields >= 0.01 (a component at the bound is
    a component with no dicentrics to speak of)."""
    from scipy.optimize import minimize
    from scipy.special import gammaln

    w = np.asarray(counts, float)
    k = np.arange(len(w))
    lk = gammaln(k + 1)

    def parts(p):
        f, a, b = p
        pa = np.exp(k * math.log(a) - a - lk)
        pb = np.exp(k * math.log(b) - b - lk)
        return f, a, b, pa, pb, f * pa + (1 - f) * pb + 1e-300

    def nll(p):
        *_, m = parts(p)
        return -float(np.sum(w * np.log(m)))

    def grad(p):
        f, a, b, pa, pb, m = parts(p)
        return -np.array(
            [
                np.sum(w * (pa - pb) / m),
                np.sum(w * f * pa * (k / a - 1) / m),
                np.sum(w * (1 - f) * pb * (k / b - 1) / m),
            ]
        )

    mean = float((w * k).sum() / w.sum())
    f, a, b = 0.5, max(1.5 * mean, 0.02), max(0.25 * mean, 0.01)
    for _ in range(30):  # a few EM steps: a start in the right basin
        la = f * np.exp(k * math.log(a) - a - lk)
        lb = (1 - f) * np.exp(k * math.log(b) - b - lk)
        r = la / (la + lb)
        f = float((w * r).sum() / w.sum())
        a = max(float((w * r * k).sum() / max((w * r).sum(), 1e-12)), 1e-6)
        b = max(float((w * (1 - r) * k).sum() / max((w * (1 - r)).sum(), 1e-12)), 1e-6)
    bounds = [(0.01, 0.99), (0.01, None), (0.01, None)]
    start = np.clip([f, a, b], [0.01, 0.01, 0.01], [0.99, np.inf, np.inf])
    # TNC, not L-BFGS-B: L-BFGS-B calls BLAS, whose threads made it 6-9x slower (2 -> 13-18 ms
    # a case) on a busy 2-core machine; TNC stays at 3.6-4 ms
    best = minimize(nll, start, jac=grad, method="TNC", bounds=bounds).x
    hess = _jacobian(grad, best)
    try:
        cov = np.linalg.inv((hess + hess.T) / 2)
    except np.linalg.LinAlgError:
        cov = np.full((3, 3), np.nan)
    if best[1] < best[2]:
        order = [0, 2, 1]
        best, cov = best[order], cov[np.ix_(order, order)]
        best[0] = 1 - best[0]
        cov[0, 1:] *= -1
        cov[1:, 0] *= -1
    return best, cov


def _jacobian(func, p: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of a vector function (the Hessian, given a gradient)."""
    h = 1e-5 * np.maximum(np.abs(p), 1e-3)
    columns = []
    for i in range(len(p)):
        up, down = p.copy(), p.copy()
        up[i] += h[i]
        down[i] -= h[i]
        columns.append((func(up) - func(down)) / (2 * h[i]))
    return np.stack(columns, axis=1)


def _mixed(sample: Sample, curve: Curve, cfg: EstimateConfig, row: dict) -> None:
    if sample.counts is None:
        row["notes"].append("the mixed Poisson needs the distribution C0..Ck, not just N and X")
        return
    if sample.dicentrics <= sample.cells - sample.counts[0]:
        row["notes"].append("the mixed Poisson needs cells with 2 or more dicentrics (none here)")
        return
    (f, y1_obs, y2_obs), cov_mix = fit_mixture(sample.counts)
    g, z = cfg.g, _z(0.95)
    y1, v1, vs1 = _correct(y1_obs, float(cov_mix[1, 1]), cfg.scorer)
    y2, v2, vs2 = _correct(y2_obs, float(cov_mix[2, 2]), cfg.scorer)
    row["yield"], row["dose"], row["dose2"] = y1, curve.dose_at(y1, g), curve.dose_at(y2, g)
    row["cell_fraction"] = f
    diagonal = np.diag(cov_mix)
    if not np.all(np.isfinite(diagonal)) or np.any(diagonal <= 0):
        row["notes"].append(
            "the two components cannot be told apart (their information matrix is not "
            "positive definite): point estimates only, no interval"
        )
        return
    sd1 = math.sqrt(v1 + vs1)
    row["yield_lower"], row["yield_upper"] = max(y1 - z * sd1, 0), y1 + z * sd1
    for key, v, vs in (("dose", v1, vs1), ("dose2", v2, vs2)):
        d = row[key]
        if d > 0:
            slope = _slope(curve, d, g)
            v_curve = _curve_var(curve, d, g)
            sd = math.sqrt(v_curve + (v + vs) / slope**2)
            if key == "dose":
                _shares(row, {"counting": v / slope**2, "scoring": vs / slope**2, "curve": v_curve})
        else:
            sd = math.sqrt(v + vs) / max(_slope(curve, 0.0, g), 1e-12)
        row[f"{key}_lower"], row[f"{key}_upper"] = max(d - z * sd, 0.0), d + z * sd
    k = len(curve.coef)
    s = cfg.scorer.sensitivity if cfg.scorer else 1.0
    cov_y = cov_mix.copy()
    cov_y[1:, :] /= s
    cov_y[:, 1:] /= s
    cov_y[1, 1] += vs1
    cov_y[2, 2] += vs2

    def fraction(theta):  # theta: curve coefficients, f, y1, y2
        d1 = _dose_from(theta[:k], theta[k + 1], g, curve)
        d2 = _dose_from(theta[:k], theta[k + 2], g, curve)
        ff = theta[k]
        return ff / (ff + (1 - ff) * math.exp(cfg.gamma * (d2 - d1)))

    theta = np.concatenate([curve.coef, [f, y1, y2]])
    f1 = fraction(theta)
    row["fraction"], row["fraction2"] = f1, 1 - f1
    row["fraction_se"] = _delta_se(fraction, theta, _block(curve.cov, cov_y))


def estimate(sample: Sample, curve: Curve, cfg: EstimateConfig | None = None) -> dict:
    """One row of ESTIMATES.csv (see COLUMNS) for one case and one method."""
    cfg = cfg or EstimateConfig()
    m = cfg.method
    if m in ("merkle-83", "merkle-95", "triage"):
        level = 0.83 if m == "merkle-83" else 0.95
        row = _row(sample, cfg, f"{level:.0%}/{level:.0%}")
        _whole_body(sample, curve, cfg, row, level, level, delta=False)
    elif m == "delta":
        row = _row(sample, cfg, "95%")
        _whole_body(sample, curve, cfg, row, 0.95, 0.95, delta=True)
    elif m == "dolphin":
        row = _row(sample, cfg, "95%")
        _dolphin(sample, curve, cfg, row)
    else:
        row = _row(sample, cfg, "95%")
        _mixed(sample, curve, cfg, row)
    notes = row.pop("notes")
    if (
        cfg.scorer is not None
        and row["yield"] != ""
        and sample.yield_ < (cfg.scorer.false_positive_rate)
    ):
        notes.append("observed yield below the scorer's false-positive rate: corrected to 0")
    if m == "triage":
        _triage(sample, row, notes)
    _limits(sample, curve, cfg, row)
    if row["dose"] != "" and row["yield"] != "":
        if row["yield"] < curve.full_coef(cfg.g)[0]:
            notes.append("yield at or below the curve's background (C): dose 0")
        top = curve.dose_range[1]
        for key in ("dose", "dose_upper"):
            if row[key] != "" and row[key] > top:
                what = "dose" if key == "dose" else "upper bound"
                notes.append(
                    f"{what} {row[key]:.2f} Gy is above the calibration range (0-{top:g} Gy): "
                    "extrapolated by the fitted curve"
                )
                break
    if cfg.scorer is not None:
        notes.append(
            f"corrected for the scorer (sensitivity {cfg.scorer.found}/{cfg.scorer.true}, "
            f"false positives {cfg.scorer.false_positives}/{cfg.scorer.cells} cells)"
        )
    row["note"] = "; ".join(notes)
    return row


def _triage(sample: Sample, row: dict, notes: list) -> None:
    def category(d):
        return "0-1 Gy" if d < 1 else "1-2 Gy" if d < 2 else "> 2 Gy"

    row["triage"] = category(row["dose"])
    if sample.cells < TRIAGE_CELLS and sample.dicentrics < TRIAGE_DICENTRICS:
        notes.append(
            f"triage stopping rule not reached ({sample.cells} cells, {sample.dicentrics} "
            f"dicentrics; score to {TRIAGE_CELLS} cells or {TRIAGE_DICENTRICS} dicentrics)"
        )
    lo, hi = category(row["dose_lower"]), category(row["dose_upper"])
    if lo != hi:
        notes.append(f"the 95% interval spans {lo} to {hi}")


def _limits(sample: Sample, curve: Curve, cfg: EstimateConfig, row: dict) -> None:
    background = curve.background
    if background is None:
        return
    threshold, detection = characteristic_limits(
        sample.cells, background[0], background[1], cfg.alpha, cfg.beta
    )
    row["decision_threshold"], row["detection_limit"] = threshold, detection
    row["decision_dose"] = curve.dose_at((threshold + 1) / sample.cells, cfg.g)
    row["detection_dose"] = curve.dose_at(detection / sample.cells, cfg.g)
    row["p_background"] = p_background(sample, background)
    row["above_background"] = "yes" if sample.dicentrics > threshold else "no"


def estimate_all(samples: list[Sample], curve: Curve, configs: list[EstimateConfig]) -> list[dict]:
    """Rows for every case and every method, cases in file order, methods in the given order."""
    return [estimate(s, curve, cfg) for s in samples for cfg in configs]

"""How fast `metasift.dose` fits a calibration curve and estimates cases.

Target (issue 22): fitting a curve and estimating 1,000 cases in under 10 s. The curve is the
IAEA 2011 manual's (Barquinero et al. 1995, tests/data/dose); the cases are drawn with a fixed
seed: whole-body doses 0-5 Gy, some partial-body (30-90% of the cells irradiated), 50-1,000
cells each. Prints the fit time, then for each method the time for all cases (characteristic
limits included) and the total of the fit plus the default method (merkle-83).

    python benchmarks/dose_speed.py [--cases 1000] [--seed 0]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from metasift.dose.estimate import METHODS, EstimateConfig, estimate_all
from metasift.dose.fit import fit_curve
from metasift.dose.tables import Sample, read_calibration

CALIBRATION = Path(__file__).parents[1] / "tests" / "data" / "dose" / "barquinero_1995.csv"


def draw_cases(curve, n: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        cells = int(rng.integers(50, 1001))
        dose = rng.uniform(0, 5)
        irradiated = 1.0 if rng.random() < 0.7 else rng.uniform(0.3, 0.9)
        hit = rng.random(cells) < irradiated
        counts = rng.poisson(np.where(hit, float(curve.yield_at(dose)), curve.coef[0]))
        table = tuple(int(c) for c in np.bincount(counts))
        cases.append(Sample(f"case{i}", cells, int(counts.sum()), table, i + 2))
    return cases


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    samples = read_calibration(CALIBRATION)
    curve = fit_curve(samples)
    fit_s = time.perf_counter() - start
    print(f"fit ({curve.model}, {curve.family}, {len(samples)} doses): {fit_s * 1000:.1f} ms")
    cases = draw_cases(curve, args.cases, args.seed)
    times = {}
    for method in METHODS:
        start = time.perf_counter()
        rows = estimate_all(cases, curve, [EstimateConfig(method)])
        times[method] = time.perf_counter() - start
        done = sum(1 for r in rows if r["dose"] != "")
        print(
            f"{method:>10}: {args.cases} cases in {times[method]:.2f} s "
            f"({times[method] / args.cases * 1000:.2f} ms per case; {done} with a dose)"
        )
    total = fit_s + times["merkle-83"]
    print(
        f"fit + {args.cases} cases (merkle-83): {total:.2f} s (target < 10 s: "
        f"{'met' if total < 10 else 'NOT met'}); every method: {fit_s + sum(times.values()):.2f} s"
    )


if __name__ == "__main__":
    main()

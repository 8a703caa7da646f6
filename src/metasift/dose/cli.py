"""``metasift dose``: fit a calibration curve, estimate doses, tabulate per-cell scores.

``add_parser(subparsers)`` registers the ``dose`` command on the main parser; ``main(argv)``
runs it alone (tests call it in-process). Handlers return 0 when done, 2 on bad input (the
message, on stderr, names the file, line and column). scipy and matplotlib load inside them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

FAMILIES = ("auto", "poisson", "quasipoisson", "negbin")
METHODS = ("merkle-83", "merkle-95", "delta", "dolphin", "mixed", "triage")  # estimate.METHODS


def _ratio(text: str) -> tuple[int, int]:
    """'180/200' -> (180, 200)."""
    try:
        a, b = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected COUNT/TOTAL such as 180/200, not {text!r}"
        ) from None
    return a, b


def _number(text: str) -> float:
    """A number or a fraction such as 1/2.7."""
    try:
        if "/" in text:
            a, b = text.split("/")
            return float(a) / float(b)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"expected a number such as 0.37 or 1/2.7, not {text!r}"
        ) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``dose`` (with ``fit``, ``estimate``, ``tabulate``) to an argparse subparsers object."""
    from ..cli._common import HelpFormatter as fmt  # each default once, as every command

    dose = subparsers.add_parser(
        "dose",
        help="calibration curves and doses from dicentric counts",
        formatter_class=fmt,
        description="From dicentric counts to a dose with its confidence interval (IAEA "
        "EPR-Biodosimetry 2011, ISO 19238).",
    )
    sub = dose.add_subparsers(dest="dose_command", metavar="STEP")
    dose.set_defaults(func=_no_step, handler=_no_step, dose_parser=dose)

    p = sub.add_parser(
        "fit",
        help="fit a calibration curve",
        formatter_class=fmt,
        description="Fit yield = C + alpha*D (+ beta*D^2) to D,C0..Ck or D,N,X counts "
        "(Poisson GLM, identity link) and write CURVE.json, a plot and an HTML report.",
    )
    p.add_argument(
        "calibration",
        type=Path,
        metavar="CALIBRATION.csv",
        help="D,C0,C1,...,Ck (cells with 0..k dicentrics at dose D, Gy) or D,N,X",
    )
    p.add_argument("--out", type=Path, required=True, metavar="CURVE.json", help="curve file")
    p.add_argument("--model", default="linear-quadratic", choices=("linear-quadratic", "linear"))
    p.add_argument(
        "--family",
        default="auto",
        choices=FAMILIES,
        help="auto: quasi-Poisson when the dispersion exceeds 1, else Poisson",
    )
    _outputs(p)
    p.set_defaults(func=_fit, handler=_fit)

    p = sub.add_parser(
        "estimate",
        help="estimate each case's dose",
        formatter_class=fmt,
        description="One row per case and method: yield, dose and their intervals, "
        "characteristic limits (ISO 19238), with a plot and an HTML report.",
    )
    p.add_argument("cases", type=Path, metavar="CASES.csv", help="ID,C0,C1,...,Ck (or ID,N,X)")
    p.add_argument(
        "--curve",
        type=Path,
        required=True,
        metavar="CURVE.json",
        help="made by `metasift dose fit`",
    )
    p.add_argument("--out", type=Path, required=True, metavar="ESTIMATES.csv", help="results")
    p.add_argument(
        "--method",
        nargs="+",
        default=["merkle-83"],
        choices=METHODS,
        metavar="METHOD",
        help=f"one or more of {', '.join(METHODS)}",
    )
    p.add_argument(
        "--gamma",
        type=_number,
        default=1 / 2.7,
        help="survival coefficient 1/D0 of irradiated cells (dolphin, mixed); "
        "a fraction such as 1/2.7 is fine",
    )
    p.add_argument("--exposure", default="acute", choices=("acute", "protracted"))
    p.add_argument(
        "--hours",
        type=float,
        default=None,
        help="duration of a protracted exposure (required with --exposure protracted)",
    )
    p.add_argument(
        "--widening",
        default="sqrt",
        choices=("sqrt", "biodose-tools", "none"),
        help="Merkle yield bounds of an overdispersed case: sqrt scales their "
        "log-distance from the yield by sqrt(dispersion index); biodose-tools "
        "reproduces Biodose Tools 3.x",
    )
    scorer = p.add_argument_group("automated scorer's error (both or neither)")
    scorer.add_argument(
        "--sensitivity",
        type=_ratio,
        default=None,
        metavar="FOUND/TRUE",
        help="true dicentrics the scorer found, out of those present",
    )
    scorer.add_argument(
        "--false-positives",
        type=_ratio,
        default=None,
        metavar="FP/CELLS",
        help="dicentrics reported that were not there, out of cells checked",
    )
    _outputs(p)
    p.set_defaults(func=_estimate, handler=_estimate)

    p = sub.add_parser(
        "tabulate",
        help="per-cell scores to ID,C0..Ck",
        formatter_class=fmt,
        description="Turn a per-cell table (sample,picture,dicentrics,rings,fragments; one "
        "row per scored cell) into the cases file ID,C0..Ck that `dose estimate` reads.",
    )
    p.add_argument("cells", type=Path, metavar="CELLS.csv", help="one row per scored cell")
    p.add_argument("--out", type=Path, required=True, metavar="CASES.csv", help="cases file")
    p.add_argument(
        "--count-rings", action="store_true", help="count centric rings with the dicentrics"
    )
    p.set_defaults(func=_tabulate, handler=_tabulate)
    return dose


def _outputs(p) -> None:
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PNG",
        help="the plot (default: OUT with the suffix .png)",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="HTML",
        help="the report (default: OUT with the suffix .html)",
    )


def _no_step(args) -> int:
    args.dose_parser.print_help(sys.stderr)
    return 2


def _fail(args, error) -> int:
    print(f"metasift dose {args.dose_command}: error: {error}", file=sys.stderr)
    return 2


def _warn(caught) -> None:
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


def _fit(args) -> int:
    from .fit import fit_curve, save_curve
    from .report import plot_png, sha256, write_png, write_report
    from .tables import read_calibration

    try:
        samples = read_calibration(args.calibration)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            curve = fit_curve(samples, model=args.model, family=args.family, path=args.calibration)
    except ValueError as error:
        return _fail(args, error)
    _warn(caught)
    curve.source = {"path": str(args.calibration), "sha256": sha256(args.calibration)}
    save_curve(curve, args.out)
    png = plot_png(curve)
    plot, report = _paths(args)
    write_png(plot, png)
    settings = {"model": args.model, "family": args.family}
    write_report(
        report,
        title=f"Calibration curve: {args.calibration.name}",
        inputs={"calibration": args.calibration},
        settings=settings,
        curve=curve,
        rows=None,
        png=png,
    )
    names = ", ".join(
        f"{n} = {v:.4f} ({curve.cov[i, i] ** 0.5:.4f})"
        for i, (n, v) in enumerate(zip(curve.names, curve.coef))
    )
    print(f"{curve.model}, {curve.family}: {names}; log-likelihood {curve.loglik:.2f}")
    warned = {str(w.message) for w in caught}
    for note in curve.warnings:
        if note not in warned:
            print(f"note: {note}", file=sys.stderr)
    print(f"wrote {args.out}, {plot}, {report}")
    return 0


def _paths(args) -> tuple[Path, Path]:
    return (args.plot or args.out.with_suffix(".png"), args.report or args.out.with_suffix(".html"))


def _estimate(args) -> int:
    from ..atomic import write_text
    from .estimate import EstimateConfig, ScorerError, estimate_all
    from .fit import load_curve
    from .report import estimates_csv, plot_png, write_png, write_report
    from .tables import read_cases

    try:
        if (args.sensitivity is None) != (args.false_positives is None):
            raise ValueError("give both --sensitivity and --false-positives, or neither")
        if args.hours is not None and args.exposure != "protracted":
            raise ValueError("--hours applies to --exposure protracted")
        scorer = None
        if args.sensitivity is not None:
            scorer = ScorerError(*args.sensitivity, *args.false_positives)
        configs = [
            EstimateConfig(
                method=m,
                gamma=args.gamma,
                exposure=args.exposure,
                hours=args.hours or 0.0,
                widening=args.widening,
                scorer=scorer,
            )
            for m in dict.fromkeys(args.method)
        ]
        curve = load_curve(args.curve)
        cases = read_cases(args.cases)
        rows = estimate_all(cases, curve, configs)
    except ValueError as error:
        return _fail(args, error)
    write_text(args.out, estimates_csv(rows))
    merkle = [c for c in configs if c.method == "merkle-83"]
    png = plot_png(curve, rows, g=configs[0].g, confidence=0.83 if merkle else 0.95)
    plot, report = _paths(args)
    write_png(plot, png)
    settings = {
        "methods": [c.method for c in configs],
        "gamma": args.gamma,
        "exposure": args.exposure,
        "hours": args.hours,
        "protraction_G": configs[0].g,
        "widening": args.widening,
        "scorer": None
        if scorer is None
        else {
            "sensitivity": f"{scorer.found}/{scorer.true}",
            "false_positives": f"{scorer.false_positives}/{scorer.cells} cells",
        },
        "curve": {"model": curve.model, "family": curve.family, "algorithm": curve.algorithm},
    }
    write_report(
        report,
        title=f"Dose estimates: {args.cases.name}",
        inputs={"cases": args.cases, "curve": args.curve},
        settings=settings,
        curve=curve,
        rows=rows,
        png=png,
        explain=EXPLAIN,
    )
    for row in rows:
        if row["note"]:
            print(f"note: {row['id']} ({row['method']}): {row['note']}", file=sys.stderr)
    print(f"{len(cases)} cases x {len(configs)} methods: wrote {args.out}, {plot}, {report}")
    return 0


EXPLAIN = (
    "<p><b>Where the interval comes from.</b> share_counting, share_scoring and share_curve "
    "split the variance of the dose (delta method, at the point dose) between the cells "
    "counted, the automated scorer's error (sensitivity and false positives) and the "
    "calibration curve's coefficients. For Dolphin, yield and dose are those of the irradiated "
    "part; for the mixed Poisson, of the more irradiated component (dose2: the other). "
    "decision_threshold: the most dicentrics still not above background (ISO 19238, alpha "
    "0.05); detection_limit: the mean count detected with probability 0.9.</p>"
)


def _tabulate(args) -> int:
    from ..atomic import write_text
    from .tables import cases_csv, tabulate_cells

    try:
        samples = tabulate_cells(args.cells, count_rings=args.count_rings)
    except ValueError as error:
        return _fail(args, error)
    write_text(args.out, cases_csv(samples))
    cells = sum(s.cells for s in samples)
    print(f"{len(samples)} samples, {cells} cells: wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``dose`` alone: ``main(["fit", "cal.csv", "--out", "curve.json"])``."""
    parser = argparse.ArgumentParser(prog="metasift", add_help=False)
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["dose", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

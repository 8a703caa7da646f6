"""The one ``metasift`` command: each family of subcommands in its own module, its parser
beside its handler.

Heavy imports (scipy, scikit-image, torch) happen inside the handlers, so ``metasift --help``
answers at once. ``main(argv)`` returns the exit code: 0 done, 1 some input failed, 2 usage.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..dose.cli import add_parser as add_dose_parser
from . import classify, count, demo, detect, info, review, synth, train
from ._common import HelpFormatter

FAMILIES = (
    synth,
    train,
    detect,
    classify,
    count,
    review,
    info,
    demo,
)  # in the order --help lists them


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metasift",
        description="Sift metaphase pictures for the dicentric chromosome assay.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"metasift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in FAMILIES:
        family.add_parsers(sub)
    add_dose_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is still printed
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = get_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if args.command is None or handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as err:
        print(f"metasift {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"metasift {args.command}: interrupted", file=sys.stderr)
        return 130

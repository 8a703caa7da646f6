"""What the picture commands share: their inputs, progress line and cluster option."""

from __future__ import annotations

import argparse
import sys
import time


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default, once: not for required options, flags, options whose default is
    decided later (None: their help says what decides it), or help that already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        quiet = action.default in (None, False, argparse.SUPPRESS) or action.required
        if quiet or "default" in text or "unset" in text:
            return text
        return super()._get_help_string(action)


def list_inputs_or_fail(inputs, verb: str) -> list:
    """The picture files named by ``inputs``; notes about the others go to stderr."""
    from ..pipeline import list_inputs

    files, notes = list_inputs(inputs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not files:
        raise ValueError(f"no pictures to {verb}")
    return files


def progress(n: int, total: int, start: float) -> None:
    """Every 50 pictures, how far the run is, on stderr (one line, rewritten)."""
    if n % 50 == 0:
        rate = n / (time.perf_counter() - start)
        print(f"\r  {n}/{total} ({rate:.1f} images/s)", end="", file=sys.stderr, flush=True)


def add_scheduler(p) -> None:
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster (tcp://host:8786; needs the [cluster] extra and a folder "
        "every worker sees); unset: this machine's cores",
    )

"""``metasift info``: what metasift sees in each picture file."""

from __future__ import annotations

import sys

from ._common import HelpFormatter


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "info",
        help="read pictures and report what they hold",
        formatter_class=HelpFormatter,
        description="Read each picture as metasift sees it and print its format, "
        "bit depth, channels and polarity, or the reason it cannot be read.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or globs")
    p.add_argument("--polarity", default="auto", choices=("auto", "dark", "bright"))
    p.set_defaults(handler=_info)


def _info(args) -> int:
    from ..io import ImageReadError, read_image
    from ..pipeline import list_inputs

    files, notes = list_inputs(args.inputs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not files:
        print("metasift info: error: no image files found", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        try:
            _, info = read_image(path, polarity=args.polarity)
        except ImageReadError as err:
            print(f"ERROR  {err}")
            failed += 1
            continue
        notes = "; ".join(info.warnings)
        print(
            f"ok     {path}: {info.format} {info.dtype} {info.width}x{info.height} "
            f"{info.channels}ch polarity={info.polarity}" + (f"  ({notes})" if notes else "")
        )
    print(f"{len(files) - failed} read, {failed} could not be read")
    return 1 if failed else 0

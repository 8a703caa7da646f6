"""``metasift review``: check and correct a run's decisions in the browser, and export the
corrections as a training manifest. Needs the ``[review]`` extra."""

from __future__ import annotations

import argparse
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "review",
        help="review a run's decisions in the browser; export a training manifest",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve a page over the results of metasift classify or count (their ledger, "
        "or the CSV/JSON alone) where a person keeps or rejects each picture and corrects its "
        "count with the keyboard. The review is kept in RESULTS.review.sqlite (every change "
        "in an audit table; nothing is deleted); the pictures are only read. With --export "
        "or --export-results it writes those files and exits.",
    )
    p.add_argument("results", type=Path, metavar="RESULTS", help="results .csv or .json of a run")
    p.add_argument("--port", type=int, default=8765, help="port to serve on")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on; any other than this machine's asks for a token printed at start",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--db", type=Path, help="review state file; unset: RESULTS.review.sqlite")
    p.add_argument(
        "--reviewer", help="name in the audit; unset: the login name (the page can set its own)"
    )
    views = p.add_argument_group("pictures")
    views.add_argument(
        "--cache", type=Path, help="folder for thumbnails and views; unset: RESULTS.review-cache"
    )
    views.add_argument(
        "--overlay", type=Path, metavar="DIR", help="the run's --overlay DIR (else drawn here)"
    )
    views.add_argument(
        "--explain", type=Path, metavar="DIR", help="the run's --explain DIR (else made here)"
    )
    views.add_argument(
        "--model",
        help="model for heat maps made here (unset: the bundled one); must be the run's",
    )
    out = p.add_argument_group("export")
    out.add_argument(
        "--export",
        type=Path,
        metavar="MANIFEST",
        help="write the training manifest (path,label,reasons,group) and exit; the page's "
        "Export writes RESULTS.labels.csv",
    )
    out.add_argument(
        "--export-results",
        type=Path,
        metavar="FILE",
        help="write the results with the reviewed columns (.csv or .json) and exit",
    )
    out.add_argument(
        "--confident",
        type=float,
        metavar="P",
        help="add the machine's unreviewed decisions with p_reject >= P or <= 1-P to the "
        "manifest (unset: reviewed pictures only)",
    )
    p.set_defaults(handler=_review)


def _review(args) -> int:
    from ..review import open_review

    review = open_review(
        args.results,
        db=args.db,
        cache=args.cache,
        overlays=args.overlay,
        explanations=args.explain,
        model=args.model,
        reviewer=args.reviewer,
    )
    try:
        if args.export or args.export_results:
            return _export(review, args)
        return _serve(review, args)
    finally:
        review.store.close()


def _export(review, args) -> int:
    from ..review import export_manifest, export_results

    if args.export:
        print(
            export_manifest(
                review.run, review.store, args.export, confident=args.confident
            ).summary()
        )
    if args.export_results:
        print(export_results(review.run, review.store, args.export_results).summary())
    return 0


def _serve(review, args) -> int:
    try:
        import uvicorn

        from ..review import make_app, new_token
    except ImportError as err:
        raise RuntimeError(
            f"the review page needs the [review] extra ({err.name} is missing): "
            "pip install -c constraints.txt '.[review]'"
        ) from None
    results = review.run.results
    review.manifest = results.with_name(results.stem + ".labels.csv")
    review.reviewed_results = results.with_name(results.stem + ".reviewed" + results.suffix)
    review.confident = args.confident
    token = None if args.host in LOOPBACK else new_token()
    app = make_app(review, token=token)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    progress = review.progress(review.store.all())
    print(
        f"reviewing {len(review.run):,} pictures of {review.run.source} ({progress['text']})\n"
        f"review state: {review.store.path}\n"
        f"Export on the page writes {review.manifest} and {review.reviewed_results}\n"
        f"open {url}" + ("  (the token is needed from other machines)" if token else "") + "\n"
        "stop with Ctrl+C"
    )
    if not args.no_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (url,)).start()  # once the server listens
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

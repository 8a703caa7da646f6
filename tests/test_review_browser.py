"""The review page in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
a person opens it, reviews three pictures with the keyboard, undoes one, exports, and the
manifest says what they decided. ``make test`` installs Chromium where it can (root on
Debian); in CI (CI set) a missing browser fails the test instead of skipping it."""

import csv
import os
import shutil
import socket
import threading
import time

import pytest

from metasift.data import discover

CHROMIUM = os.environ.get("METASIFT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _need(what: str) -> None:
    message = f"the browser test needs {what}: make test installs it (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)  # never skipped in CI
    pytest.skip(message)


@pytest.fixture
def served(tmp_path):
    """A review server on a free port of this machine, as `metasift review` runs it."""
    try:
        import uvicorn
    except ImportError:
        _need("the [review] extra")
    from metasift.review import make_app, open_review
    from test_review import make_run

    results = make_run(tmp_path)
    review = open_review(results, reviewer="ann")
    review.manifest = tmp_path / "labels.csv"
    review.reviewed_results = tmp_path / "reviewed.csv"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(make_app(review), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the review server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/", review
    server.should_exit = True
    thread.join(10)
    sock.close()
    review.store.close()


def test_review_three_pictures_with_the_keyboard_and_export(served, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        _need(f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("Playwright's Python package")
    url, review = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            # the page forbids eval (its CSP); the test evaluates its checks as strings
            page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(url)
            current = "document.querySelector('#cell-{}')?.classList.contains('current')"
            page.wait_for_function(current.format(0))
            page.wait_for_function("document.querySelector('#big').naturalWidth > 0")
            assert page.inner_text("#progress") == "0 of 9 reviewed, 0 changed"
            assert "9" in page.inner_text("#range")

            page.keyboard.press("y")  # keep p000
            page.wait_for_function(current.format(1))
            page.keyboard.press("2")  # reject p001: debris
            page.wait_for_function(current.format(2))
            page.keyboard.press("c")  # p002: correct the count, then reject as too_few
            page.keyboard.type("37")
            page.keyboard.press("Enter")
            page.wait_for_function("document.querySelector('#figures').innerText.includes('37')")
            page.keyboard.press("4")  # reject p002 as other, then undo that and say too_few
            page.wait_for_function(current.format(3))
            page.keyboard.press("u")
            page.wait_for_function(current.format(2))
            page.keyboard.press("3")
            page.wait_for_function(current.format(3))
            page.wait_for_function(
                "document.querySelector('#progress').innerText === '3 of 9 reviewed, 2 changed'"
            )
            thumbs = page.eval_on_selector_all(
                ".cell img", "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length"
            )
            assert thumbs == 9  # every thumbnail of the page was made and shown
            page.keyboard.press("x")  # export
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('exported')"
            )
            page.screenshot(path=str(tmp_path / "review.png"))
            assert not errors, errors
        finally:
            browser.close()

    with open(tmp_path / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["path"], r["label"], r["reasons"]) for r in rows] == [
        ("scans/slide0/p000.png", "available", ""),
        ("scans/slide1/p001.png", "debris", "debris"),
        ("scans/slide2/p002.png", "too_few", "too_few"),
    ]
    assert {r["group"] for r in rows} == {"slide0", "slide1", "slide2"}
    assert discover(tmp_path / "labels.csv").classes == ("available", "debris", "too_few")
    with open(tmp_path / "reviewed.csv", newline="") as fh:
        reviewed = list(csv.DictReader(fh))
    assert reviewed[2]["reviewed_count"] == "37" and reviewed[2]["reviewer"] == "ann"
    history = review.store.history(review.run.pictures[2].key)
    assert [(h["field"], h["new"]) for h in history] == [
        ("count", "37"), ("decision", "reject"), ("reasons", "other"),
        ("decision", None), ("reasons", None),
        ("decision", "reject"), ("reasons", "too_few"),
    ]  # fmt: skip

"""The review app as a person and a script use it: the API in-process (FastAPI's TestClient),
the review state and its audit, the exports, and every way of asking for a file that is not
one of the run's pictures."""

import csv
import json
import os
import socket
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from metasift.cli import main
from metasift.data import discover
from metasift.pipeline import Ledger, columns, file_identity, overlay_name

pytest.importorskip("fastapi", reason="the [review] extra is not installed")
from fastapi.testclient import TestClient

from metasift.review import make_app, open_review

ORIGIN = "http://127.0.0.1:8765"
SAME = {"Origin": ORIGIN}
CLASSES = ("available", "debris", "mixed", "too_few")


def make_run(root: Path, n: int = 9, *, ledger: bool = True, suffix: str = ".csv") -> Path:
    """A classify + count run over ``n`` small pictures on three slides, written as
    metasift writes results (the ledger, and the CSV/JSON from it)."""
    rows = []
    for i in range(n):
        slide = root / "scans" / f"slide{i % 3}"
        slide.mkdir(parents=True, exist_ok=True)
        picture = slide / f"p{i:03d}.png"
        pixels = np.full((96, 128), 210, np.uint8)
        pixels[10 + i : 30 + i, 20 + 5 * i : 26 + 5 * i] = 40  # every picture differs
        Image.fromarray(pixels).save(picture)
        size, mtime, sha = file_identity(picture)
        p = (i + 0.5) / n
        reject = p > 0.5
        rows.append(
            dict(
                path=str(picture), decision="reject" if reject else "keep", p_reject=p,
                p_debris=p / 2, p_mixed=p / 4, p_too_few=p / 4,
                reasons="debris" if reject else "", chromosome_count=38 + i,
                spread_count=1, chromosomes_per_spread=38 + i, nuclei_count=0,
                debris_over_chromosomes=0, mixed=0, debris=0, too_few=int(38 + i < 40),
                count_reason="ok", agreement="agree" if i % 2 else "disagree",
                width=128, height=96, model="default_model@000000000000", error="",
                file_size=size, mtime_ns=mtime, sha256=sha,
            )
        )  # fmt: skip
    results = root / f"results{suffix}"
    with Ledger(results, columns(("classify", "count"), CLASSES)) as writer:
        for row in rows:
            writer.add(row)
    if not ledger:
        writer.db_path.unlink()
    return results


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path)


@pytest.fixture
def client(run_dir):
    review = open_review(run_dir, reviewer="ann")
    review.manifest = run_dir.with_name("labels.csv")
    review.reviewed_results = run_dir.with_name("reviewed.csv")
    with TestClient(make_app(review), base_url=ORIGIN) as c:
        yield c
    review.store.close()


def post(client, url, body, headers=SAME):
    return client.post(url, json=body, headers=headers)


# -- the page and reading a run ------------------------------------------------------------
def test_page_and_first_page_of_pictures(client):
    page = client.get("/")
    assert page.status_code == 200 and "metasift review" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    data = client.get("/api/pictures?limit=4").json()
    assert data["total"] == 9 and [i["id"] for i in data["items"]] == [0, 1, 2, 3]
    assert data["items"][0]["file"] == "ok" and data["items"][0]["count"] == 38
    assert data["progress"]["text"] == "0 of 9 reviewed, 0 changed"


@pytest.mark.parametrize("ledger,suffix", [(True, ".csv"), (False, ".csv"), (False, ".json")])
def test_reads_the_ledger_or_the_results_file_alone(tmp_path, ledger, suffix):
    results = make_run(tmp_path, 5, ledger=ledger, suffix=suffix)
    review = open_review(results)
    assert len(review.run) == 5
    assert review.run.source.endswith(".ledger.sqlite") == ledger
    assert [p.count for p in review.run.pictures] == [38, 39, 40, 41, 42]
    assert review.run.pictures[4].decision == "reject" and review.run.pictures[4].p_reject == 0.9
    review.store.close()


def test_filters_and_sorting(client):
    def ids(query):
        return [i["id"] for i in client.get("/api/pictures?" + query).json()["items"]]

    assert ids("decision=reject") == [5, 6, 7, 8]
    assert ids("reason=debris&sort=p_reject_asc") == [5, 6, 7, 8]
    assert ids("agreement=disagree") == [0, 2, 4, 6, 8]
    assert ids("min_count=40&max_count=41") == [2, 3]
    assert ids("sort=count_desc")[:2] == [8, 7]
    post(client, "/api/pictures/3", {"decision": "keep"})
    post(client, "/api/pictures/4", {"decision": "reject", "reasons": ["mixed"]})
    assert ids("status=reviewed") == [3, 4]
    assert ids("status=changed") == [4]
    assert 3 not in ids("status=unreviewed")
    assert client.get("/api/pictures?sort=name").status_code == 400


def test_paging_walks_every_picture_once(client):
    seen = []
    for offset in range(0, 9, 4):
        seen += [
            i["id"] for i in client.get(f"/api/pictures?offset={offset}&limit=4").json()["items"]
        ]
    assert seen == list(range(9))


# -- reviewing -----------------------------------------------------------------------------
def test_keep_reject_count_note_and_progress(client):
    r = post(client, "/api/pictures/0", {"decision": "keep"})
    assert r.status_code == 200 and r.json()["progress"]["text"] == "1 of 9 reviewed, 0 changed"
    r = post(client, "/api/pictures/1", {"decision": "reject", "reasons": ["too_few"], "count": 37})
    assert r.json()["progress"]["text"] == "2 of 9 reviewed, 1 changed"
    post(client, "/api/pictures/2", {"note": "chromosomes overlap at the top"})
    detail = client.get("/api/pictures/1").json()
    assert detail["review"] == {
        "decision": "reject",
        "reasons": "too_few",
        "count": 37,
        "note": None,
    }
    assert detail["reviewed"]["reviewer"] == "ann"
    assert (
        client.get("/api/pictures/2").json()["review"]["note"] == "chromosomes overlap at the top"
    )


@pytest.mark.parametrize(
    "body,message",
    [
        ({"decision": "reject"}, "needs a reason"),
        ({"decision": "maybe"}, "keep or reject"),
        ({"decision": "reject", "reasons": ["blurry"]}, "unknown reasons"),
        ({"count": -1}, "between 0 and"),
        ({"count": "forty"}, "whole number"),
        ({"path": "/etc/passwd"}, "unknown fields"),
    ],
)
def test_bad_changes_say_what_is_wrong(client, body, message):
    r = post(client, "/api/pictures/0", body)
    assert r.status_code == 400 and message in r.json()["error"]
    assert client.get("/api/pictures/0").json()["history"] == []


def test_undo_puts_back_and_the_audit_keeps_everything(client, run_dir):
    first = post(client, "/api/pictures/0", {"decision": "reject", "reasons": ["mixed"]}).json()
    second = post(client, "/api/pictures/0", {"decision": "keep"}).json()
    r = post(client, "/api/undo", {"change": second["changes"][0]})
    assert r.json()["item"]["review"]["decision"] == "reject"
    assert r.json()["item"]["review"]["reasons"] == "mixed"
    post(client, "/api/undo", {"change": first["changes"][0]})
    assert client.get("/api/pictures/0").json()["review"]["decision"] is None
    db = sqlite3.connect(run_dir.with_name(run_dir.name + ".review.sqlite"))
    fields = db.execute("SELECT field, old, new, undoes FROM changes ORDER BY change").fetchall()
    db.close()
    assert [f[:3] for f in fields] == [
        ("decision", None, "reject"), ("reasons", None, "mixed"),
        ("decision", "reject", "keep"), ("reasons", "mixed", None),
        ("decision", "keep", "reject"), ("reasons", None, "mixed"),
        ("decision", "reject", None), ("reasons", "mixed", None),
    ]  # fmt: skip
    assert fields[4][3] == second["changes"][0]


def test_undo_refuses_to_overwrite_a_later_change(client):
    mine = post(client, "/api/pictures/0", {"count": 41}).json()
    post(client, "/api/pictures/0", {"count": 42, "reviewer": "bob"})
    r = post(client, "/api/undo", {"change": mine["changes"][0]})
    assert r.status_code == 409 and "bob" in r.json()["error"]
    assert client.get("/api/pictures/0").json()["review"]["count"] == 42


def test_two_servers_on_one_review_lose_nothing(run_dir):
    """Two people, each with a server over the same results: every write lands, each field
    keeps its last value, and the audit has them all."""
    apps = [open_review(run_dir, reviewer=name) for name in ("ann", "bob")]
    clients = [TestClient(make_app(r), base_url=ORIGIN) for r in apps]

    def work(c, start):
        for i in range(start, 9, 2):
            for k in range(5):
                assert post(c, f"/api/pictures/{i}", {"count": 30 + k}).status_code == 200
            assert post(c, f"/api/pictures/{i}", {"decision": "keep"}).status_code == 200

    threads = [threading.Thread(target=work, args=(c, s)) for c, s in zip(clients, (0, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r = clients[0].get("/api/pictures").json()
    assert r["progress"]["reviewed"] == 9
    assert all(i["review"]["count"] == 34 for i in r["items"])
    assert apps[1].store.changes() == 9 * 6
    for c, r in zip(clients, apps):
        c.close()
        r.store.close()


# -- pictures and safety -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["thumb", "large", "overlay"])
def test_views_are_images_made_outside_the_pictures_folders(client, run_dir, kind):
    r = client.get(f"/pictures/3/{kind}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8"
    made = [p for p in (run_dir.parent / "scans").rglob("*") if p.is_file()]
    assert all(p.suffix == ".png" and p.name.startswith("p") for p in made)  # nothing added
    assert list(run_dir.with_name(run_dir.name + ".review-cache").rglob("*.jpg"))


def test_heat_map_from_the_runs_explain_folder(tmp_path):
    results = make_run(tmp_path, 3)
    explain = tmp_path / "explain"
    explain.mkdir()
    name = overlay_name(str(tmp_path / "scans" / "slide1" / "p001.png"))  # classify's name
    Image.new("RGB", (20, 10), (255, 0, 0)).save(explain / name)
    review = open_review(results, explanations=explain)
    with TestClient(make_app(review), base_url=ORIGIN) as c:
        assert c.get("/pictures/1/heat").headers["content-type"] == "image/png"
        missing = c.get("/pictures/0/heat")  # another model classified it: said so
        assert (
            missing.status_code == 404 and "default_model@000000000000" in missing.json()["error"]
        )
    review.store.close()


TRAVERSALS = [
    "/pictures/../../etc/passwd",
    "/pictures/..%2F..%2Fetc%2Fpasswd/thumb",
    "/pictures/%2e%2e%2f%2e%2e%2fetc%2fpasswd/large",
    "/pictures/%252e%252e%252fetc%252fpasswd/thumb",
    "/pictures//etc/passwd/thumb",
    "/pictures/%2Fetc%2Fpasswd/thumb",
    "/pictures/0/..%2F..%2F..%2Fetc%2Fpasswd",
    "/pictures/0/../../results.csv",
    "/pictures/-1/thumb",
    "/pictures/9/thumb",
    "/pictures/99999999999999999999999/thumb",
    "/pictures/0x1/thumb",
    "/pictures/1.0/thumb",
    "/pictures/0/thumb%00.png",
    "/pictures/0/..",
    "/pictures/0/%2e%2e",
    "/pictures/C:%5Cwindows%5Cwin.ini/thumb",
    "/pictures/..%5C..%5Cresults.csv/thumb",
    "/results.csv",
    "/scans/slide0/p000.png",
    "/static/../results.csv",
    "/api/pictures/..%2F..%2Fresults.csv",
    "/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_every_path_traversal_is_refused(client, url):
    r = client.get(url)
    assert r.status_code in (400, 404, 405, 422)
    assert b"root:" not in r.content and b"decision" not in r.content[:200]
    assert not r.headers.get("content-type", "").startswith("image/")


def test_a_link_out_of_the_run_is_refused(tmp_path):
    results = make_run(tmp_path, 3)
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    (tmp_path / "scans" / "slide0" / "p000.png").rename(secret)
    os.symlink(secret, tmp_path / "scans" / "slide0" / "p000.png")
    review = open_review(results)
    with TestClient(make_app(review), base_url=ORIGIN) as c:
        assert c.get("/api/pictures/0").json()["file"] == "outside"
        assert c.get("/pictures/0/thumb").status_code == 409
        assert c.get("/pictures/1/thumb").status_code == 200
    review.store.close()


def test_missing_and_changed_pictures_are_shown_as_such(client, run_dir):
    scans = run_dir.parent / "scans"
    (scans / "slide1" / "p001.png").unlink()
    Image.new("L", (128, 96), 90).save(scans / "slide2" / "p002.png")  # another picture
    stat = (scans / "slide0" / "p003.png").stat()  # touched only: the same content
    os.utime(scans / "slide0" / "p003.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    items = client.get("/api/pictures").json()["items"]
    assert [i["file"] for i in items[:4]] == ["ok", "missing", "changed", "ok"]
    for i in (1, 2):
        assert client.get(f"/pictures/{i}/large").status_code == 409
        r = post(client, f"/api/pictures/{i}", {"decision": "keep"})
        assert r.status_code == 409 and ("missing" in r.text or "changed" in r.text)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},
        {"Referer": "http://evil.example/page"},
    ],
)
def test_changes_only_from_the_same_origin(client, headers):
    r = post(client, "/api/pictures/0", {"decision": "keep"}, headers=headers)
    assert r.status_code == 403
    assert client.get("/api/pictures/0").json()["review"]["decision"] is None


def test_changes_only_by_post_as_json(client):
    assert client.get("/api/pictures/0?decision=keep").json()["review"]["decision"] is None
    form = client.post("/api/pictures/0", data={"decision": "keep"}, headers=SAME)
    assert form.status_code == 403
    assert client.put("/api/pictures/0", json={"decision": "keep"}, headers=SAME).status_code in (
        403,
        405,
    )


def test_only_requests_to_this_machine_are_answered(run_dir):
    """DNS rebinding: a page elsewhere whose name points at 127.0.0.1 is refused."""
    review = open_review(run_dir)
    with TestClient(make_app(review), base_url="http://attacker.example:8765") as c:
        assert c.get("/api/pictures").status_code == 403
    review.store.close()


def test_another_host_asks_for_the_token(run_dir):
    review = open_review(run_dir)
    with TestClient(make_app(review, token="s3cret"), base_url="http://10.1.2.3:8765") as c:
        assert c.get("/").status_code == 401
        assert c.get("/api/pictures").status_code == 401
        assert c.get("/api/pictures", headers={"X-Review-Token": "wrong"}).status_code == 401
        assert c.get("/?token=s3cret").status_code == 200  # sets the cookie
        assert c.get("/api/pictures").status_code == 200
        r = c.post(
            "/api/pictures/0", json={"decision": "keep"}, headers={"Origin": "http://10.1.2.3:8765"}
        )
        assert r.status_code == 200
    review.store.close()


# -- exports -------------------------------------------------------------------------------
def test_export_manifest_trains_as_metasift_train_reads_it(client, run_dir):
    post(client, "/api/pictures/0", {"decision": "keep"})
    post(client, "/api/pictures/1", {"decision": "reject", "reasons": ["mixed"]})
    post(client, "/api/pictures/2", {"decision": "reject", "reasons": ["too_few", "debris"]})
    post(client, "/api/pictures/3", {"count": 44})  # a count alone is no label
    r = post(client, "/api/export", {})
    assert r.status_code == 200 and "3 pictures" in r.json()["text"]
    manifest = run_dir.with_name("labels.csv")
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["path"], r["label"], r["reasons"], r["group"]) for r in rows] == [
        ("scans/slide0/p000.png", "available", "", "slide0"),
        ("scans/slide1/p001.png", "mixed", "mixed", "slide1"),
        ("scans/slide2/p002.png", "too_few", "too_few;debris", "slide2"),
    ]
    data = discover(manifest)
    assert data.classes == ("available", "mixed", "too_few")
    assert sorted(s.path for split in data.splits.values() for s in split) == sorted(
        run_dir.parent / r["path"] for r in rows
    )
    with open(run_dir.with_name("reviewed.csv"), newline="") as fh:
        reviewed = list(csv.DictReader(fh))
    assert len(reviewed) == 9 and reviewed[3]["reviewed_count"] == "44"
    assert reviewed[1]["reviewed_decision"] == "reject" and reviewed[1]["reviewer"] == "ann"
    assert reviewed[5]["reviewed_decision"] == "" and reviewed[5]["decision"] == "reject"


def test_cli_export_with_the_machines_confident_calls(run_dir, capsys):
    review = open_review(run_dir, reviewer="ann")
    review.store.set(os.fsencode(review.run.pictures[4].row["path"]), {"decision": "keep"}, "ann")
    review.store.close()
    out = run_dir.parent / "out" / "labels.csv"
    code = main(["review", str(run_dir), "--export", str(out), "--confident", "0.8",
                 "--export-results", str(run_dir.parent / "reviewed.json")])  # fmt: skip
    assert code == 0
    assert "1 reviewed, 4 the machine's confident calls" in capsys.readouterr().out
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels = {Path(r["path"]).name: r["label"] for r in rows}
    assert labels == {"p000.png": "available", "p001.png": "available", "p004.png": "available",
                      "p007.png": "debris", "p008.png": "debris"}  # fmt: skip
    assert rows[0]["path"] == "../scans/slide0/p000.png"
    reviewed = json.loads((run_dir.parent / "reviewed.json").read_text())
    assert reviewed[4]["reviewed_decision"] == "keep" and "reviewed_at" in reviewed[0]


def test_export_never_replaces_the_runs_results(run_dir):
    assert main(["review", str(run_dir), "--export-results", str(run_dir)]) == 2


def test_cli_names_a_missing_results_file(tmp_path, capsys):
    assert main(["review", str(tmp_path / "nothing.csv"), "--export", "x.csv"]) == 2
    assert "no such results file" in capsys.readouterr().err


def test_one_slide_leaves_group_blank_so_train_can_split(tmp_path):
    from metasift.review import export_manifest

    results = make_run(tmp_path, 4)
    review = open_review(results)
    for p in review.run.pictures:
        if p.file.parent.name == "slide0":
            review.store.set(p.key, {"decision": "keep"}, "ann")
    done = export_manifest(review.run, review.store, tmp_path / "labels.csv")
    assert done.rows == 2 and "group left blank" in done.summary()
    review.store.close()


def test_a_count_run_is_reviewed_against_its_verdicts(tmp_path):
    """A `metasift count` run has no decision: its verdicts are the machine's reasons."""
    picture = tmp_path / "slide" / "a.png"
    picture.parent.mkdir()
    Image.new("L", (64, 48), 200).save(picture)
    size, mtime, sha = file_identity(picture)
    row = dict(path=str(picture), width=64, height=48, chromosome_count=12, spread_count=1,
               chromosomes_per_spread=12, nuclei_count=0, debris_over_chromosomes=0, mixed=0,
               debris=0, too_few=1, count_reason="12 chromosomes", counter="metasift 0.1.0 count",
               error="", file_size=size, mtime_ns=mtime, sha256=sha)  # fmt: skip
    with Ledger(tmp_path / "counts.csv", columns(("count",))) as writer:
        writer.add(row)
    review = open_review(tmp_path / "counts.csv")
    with TestClient(make_app(review), base_url=ORIGIN) as c:
        item = c.get("/api/pictures").json()["items"][0]
        assert item["reasons"] == ["too_few"] and item["count"] == 12
        done = post(
            c, "/api/pictures/0", {"decision": "reject", "reasons": ["too_few"], "count": 13}
        )
        assert done.json()["progress"]["text"] == "1 of 1 reviewed, 1 changed"  # the count
        assert c.get("/pictures/0/heat").status_code == 404  # nothing classified it
    review.store.close()


def test_review_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["review", "--help"])
    assert done.value.code == 0
    assert "usage: metasift review" in capsys.readouterr().out


def test_the_command_serves_on_this_machine(run_dir):
    """`metasift review RESULTS --no-browser` starts, says where, and answers there."""
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "metasift", "review", str(run_dir), "--no-browser",
               "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        lines = [server.stdout.readline() for _ in range(4)]
        assert f"open http://127.0.0.1:{port}/\n" in lines, lines
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/summary") as r:
                    summary = json.load(r)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        assert summary["progress"]["text"] == "0 of 9 reviewed, 0 changed"
    finally:
        server.terminate()
        server.wait(10)


def test_a_review_row_is_changed_only_against_what_it_leaned_to():
    """A picture the run sent to review: the person's keep or reject is a change only when it
    goes against what the row leaned to."""
    from metasift.review._app import changed
    from metasift.review._run import Picture

    leans_reject = Picture(0, {}, "", decision="review", reasons=("too_few",))
    leans_keep = Picture(1, {}, "", decision="review")
    assert not changed(leans_reject, {"decision": "reject", "reasons": "too_few"})
    assert changed(leans_reject, {"decision": "keep"})
    assert not changed(leans_keep, {"decision": "keep"})
    assert changed(leans_keep, {"decision": "reject", "reasons": "mixed"})

"""`metasift classify` in-process on small synthetic folders, with the bundled model."""

import csv
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from metasift import classify, models, synth
from metasift.cli import main
from metasift.pipeline import Ledger

MODEL = models.default_model_dir()
pytestmark = pytest.mark.skipif(not (MODEL / "model.onnx").is_file(), reason="no bundled model")


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    """A small slide: two pictures per class, plus the formats a lab meets."""
    root = tmp_path_factory.mktemp("slide")
    config = synth.SynthConfig(height=512, width=640)
    for i, label in enumerate(synth.CLASSES * 2):
        image, _ = synth.generate(label, 100 + i, config)
        (root / label).mkdir(exist_ok=True)
        Image.fromarray(synth.to_stored(image, 8)).save(root / label / f"{i:02d}.png")
    grey, _ = synth.generate("available", 7, config)
    rgb, _ = synth.generate(
        "available", 7, synth.SynthConfig(height=512, width=640, stain="giemsa-color")
    )
    dapi, _ = synth.generate("available", 7, synth.SynthConfig(height=512, width=640, stain="dapi"))
    odd = root / "formats"
    odd.mkdir()
    tifffile.imwrite(odd / "sixteen bit.tif", synth.to_stored(grey, 16))
    tifffile.imwrite(odd / "rgb.tif", synth.to_stored(rgb, 8), photometric="rgb")
    tifffile.imwrite(odd / "dapi.tif", synth.to_stored(dapi, 16))
    with tifffile.TiffWriter(odd / "pages.tif") as tif:
        tif.write(synth.to_stored(grey, 8))
        tif.write(synth.to_stored(grey, 8))
    Image.fromarray(synth.to_stored(grey, 8)).save(odd / "métaphase ß.jpg", quality=92)
    return root


def _rows(path: Path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _hashes(root: Path):
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_every_picture_gets_a_row_and_originals_stay_untouched(slide, tmp_path):
    before = _hashes(slide)
    out = tmp_path / "results.csv"
    code = main(
        [
            "classify",
            str(slide),
            "--out",
            str(out),
            "--sort-into",
            str(tmp_path / "sorted"),
            "--explain",
            str(tmp_path / "why"),
            "--report",
            str(tmp_path / "report.html"),
        ]
    )
    assert code == 0
    rows = _rows(out)
    assert len(rows) == 13 and [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    for row in rows:
        assert row["decision"] in ("keep", "reject") and row["error"] == ""
        assert 0 <= float(row["p_reject"]) <= 1
        assert {f"p_{c}" for c in ("debris", "mixed", "too_few")} <= set(row)
        assert row["model"].startswith("default_model@")
        if row["decision"] == "reject":
            assert row["reasons"]
    sizes = {Path(r["path"]).name: (r["width"], r["height"]) for r in rows}
    assert sizes["sixteen bit.tif"] == ("640", "512")
    assert _hashes(slide) == before  # not one byte of the originals changed
    sorted_files = list((tmp_path / "sorted").rglob("*.*"))
    assert len(sorted_files) == 13
    threshold = classify.Classifier().threshold  # heat maps: where the CNN rejects too
    assert len(list((tmp_path / "why").glob("*.png"))) == sum(
        r["decision"] == "reject" and float(r["p_reject"]) >= threshold for r in rows
    )
    page = (tmp_path / "report.html").read_text()
    assert page.count("<figure>") == 13 and "data:image" in page


def test_bad_files_get_error_rows_and_the_run_goes_on(slide, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(slide / "mixed", bad)
    (bad / "empty.tif").write_bytes(b"")
    (bad / "notes.png").write_text("not a picture")
    data = (slide / "available" / "00.png").read_bytes()
    (bad / "truncated.png").write_bytes(data[: len(data) // 2])
    (bad / "huge.png").write_bytes(_png_header(30000, 30000))
    out = tmp_path / "r.json"
    assert main(["classify", str(bad), "--out", str(out)]) == 1
    rows = {Path(r["path"]).name: r for r in json.loads(out.read_text())}
    assert len(rows) == 6
    assert "empty" in rows["empty.tif"]["error"] and rows["empty.tif"]["decision"] == "error"
    assert "not a TIFF" in rows["notes.png"]["error"]
    assert "truncated" in rows["truncated.png"]["error"]
    assert "over the limit" in rows["huge.png"]["error"]
    assert sum(r["decision"] != "error" for r in rows.values()) == 2


def test_a_file_name_that_is_not_utf8_gets_its_row(slide, tmp_path, capsys):
    """Linux allows any bytes in a name; such a picture is classified, copied, reported and
    resumed like the others, its name kept byte for byte in the CSV."""
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"lame_\xff.png")  # Latin-1 'y with diaeresis' written by an old PC
    try:
        shutil.copy(slide / "mixed" / "01.png", folder / name)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    shutil.copy(slide / "mixed" / "05.png", folder / "plain.png")
    out = tmp_path / "r.csv"
    args = ["classify", str(folder), "--out", str(out), "--no-count"]
    report, copies = tmp_path / "r.html", tmp_path / "s"
    assert main([*args, "--report", str(report), "--sort-into", str(copies)]) == 0
    assert b"lame_\xff.png" in out.read_bytes() and "lame_\\udcff" in report.read_text()
    with open(out, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["path"]).name for r in rows] == [name, "plain.png"]
    assert all(r["decision"] in ("keep", "reject") for r in rows)
    assert len(list(copies.rglob("lame_*"))) == 1
    before = out.read_bytes()
    assert main([*args, "--resume"]) == 0 and out.read_bytes() == before
    capsys.readouterr()
    assert main(["info", str(folder / name)]) == 0  # printed, not a crash
    assert "lame_\\udcff.png" in capsys.readouterr().out


def _png_header(width, height):
    """A PNG whose header claims a huge picture: refused before any pixel is decoded."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def test_usage_errors_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["classify", str(empty), "--out", str(tmp_path / "r.csv")]) == 2
    assert "no pictures" in capsys.readouterr().err
    assert main(["classify", str(empty), "--out", str(tmp_path / "r.txt")]) == 2
    (tmp_path / "r.csv").write_text("keep me")
    assert main(["classify", str(empty), "--out", str(tmp_path / "r.csv")]) == 2
    assert (tmp_path / "r.csv").read_text() == "keep me"


def test_broken_model_folder_is_a_clear_error(slide, tmp_path, capsys):
    broken = tmp_path / "model"
    shutil.copytree(MODEL, broken)
    args = [
        "classify",
        str(slide / "mixed"),
        "--model",
        str(broken),
        "--out",
        str(tmp_path / "r.csv"),
    ]
    (broken / "model.onnx").unlink()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "model.onnx is missing" in err and "Traceback" not in err
    shutil.copy(MODEL / "model.onnx", broken / "model.onnx")
    config = json.loads((broken / "config.json").read_text())
    config["input_size"] = 128
    (broken / "config.json").write_text(json.dumps(config))
    assert main(args) == 2
    assert "config.json says" in capsys.readouterr().err


def test_same_picture_twice_and_same_names_in_two_folders(slide, tmp_path, capsys):
    picture = slide / "mixed" / "01.png"
    out = tmp_path / "r.csv"
    assert (
        main(
            [
                "classify",
                str(picture),
                str(picture),
                str(slide / "debris"),
                "--out",
                str(out),
                "--sort-into",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    rows = _rows(out)
    assert [Path(r["path"]).name for r in rows].count("01.png") == 1
    assert "given more than once" in capsys.readouterr().err
    # same file name in two folders: two rows, two sorted copies
    assert (
        main(
            [
                "classify",
                str(slide / "available"),
                str(slide / "too_few"),
                "--out",
                str(tmp_path / "b.csv"),
                "--sort-into",
                str(tmp_path / "t"),
            ]
        )
        == 0
    )
    assert len(_rows(tmp_path / "b.csv")) == 4
    assert len(list((tmp_path / "t").rglob("*.png"))) == 4


def test_sort_into_never_overwrites(slide, tmp_path):
    target = tmp_path / "sorted"
    out = tmp_path / "r.csv"
    assert (
        main(["classify", str(slide / "available"), "--out", str(out), "--sort-into", str(target)])
        == 0
    )
    rows = _rows(out)
    placed = sorted(p for p in target.rglob("*.png"))
    lab_file = placed[0]
    lab_file.write_bytes(b"a lab's own file that happens to have this name")
    assert (
        main(
            [
                "classify",
                str(slide / "available"),
                "--out",
                str(out),
                "--overwrite",
                "--sort-into",
                str(target),
                "--link",
            ]
        )
        == 0
    )
    assert lab_file.read_bytes() == b"a lab's own file that happens to have this name"
    assert len(list(target.rglob("*.png"))) == len(placed) + 1  # the new copy got a numbered name
    assert len(rows) == 2


def test_resume_after_interruption_gives_the_same_file(slide, tmp_path):
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    assert main(["classify", str(slide), "--out", str(full)]) == 0
    lines = full.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:6]))  # what an interrupted run leaves: the rows done so far
    assert main(["classify", str(slide), "--out", str(part), "--resume"]) == 0
    assert part.read_bytes() == full.read_bytes()


def test_onnx_and_torch_backends_agree(slide, tmp_path):
    pytest.importorskip("torch")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["classify", str(slide / "debris"), str(slide / "formats"), "--out", str(a)]) == 0
    assert (
        main(
            [
                "classify",
                str(slide / "debris"),
                str(slide / "formats"),
                "--out",
                str(b),
                "--backend",
                "torch",
            ]
        )
        == 0
    )
    for ra, rb in zip(_rows(a), _rows(b)):
        assert ra["path"] == rb["path"] and ra["decision"] == rb["decision"]
        # the ONNX model is exported from the bundled (float16-stored) weights themselves
        assert abs(float(ra["p_reject"]) - float(rb["p_reject"])) < 5e-3


def test_classifies_without_pytorch(slide, tmp_path):
    """The core install classifies: here importing torch fails outright."""
    out = tmp_path / "r.csv"
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from metasift.cli import main\n"
        f"code = main(['classify', {str(slide / 'mixed')!r}, '--out', {str(out)!r}])\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
        "sys.exit(code)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}
    )
    assert run.returncode == 0, run.stderr
    assert len(_rows(out)) == 2


def test_results_and_report_go_into_new_folders(slide, tmp_path):
    out, page = tmp_path / "new" / "r.csv", tmp_path / "other" / "deep" / "r.html"
    args = ["classify", str(slide / "mixed"), "--out", str(out), "--report", str(page)]
    assert main([*args, "--no-count"]) == 0
    assert len(_rows(out)) == 2 and page.is_file()
    counts = tmp_path / "third" / "c.csv"
    assert main(["count", str(slide / "mixed"), "--out", str(counts)]) == 0
    assert len(_rows(counts)) == 2


def test_a_failed_count_leaves_the_classification_standing(slide, tmp_path, monkeypatch, capsys):
    from metasift import count

    def failing(image, info, **kw):  # a fault injected, as a bug in the counter would be
        raise FloatingPointError("injected")

    monkeypatch.setattr(count, "count_read", failing)
    out = tmp_path / "r.csv"
    args = ["classify", str(slide / "mixed"), "--out", str(out), "--workers", "1"]
    assert main([*args, "--counter", "classic"]) == 0
    for row in _rows(out):
        assert row["decision"] in ("keep", "reject") and row["chromosome_count"] == ""
        assert row["count_reason"] == "counting failed (FloatingPointError: injected)"
        assert row["agreement"] == "no count"
    said = capsys.readouterr().out  # the terminal says so too, not only the results file
    assert "2 classified but not counted" in said
    assert said.count("not counted: ") == 2 and "FloatingPointError: injected" in said


def test_results_are_valid_while_the_run_goes_on(tmp_path):
    writer = Ledger(tmp_path / "r.csv", ["path", "decision"], every=0.0)
    writer.add({"path": "a.png", "decision": "keep"})
    assert _rows(tmp_path / "r.csv") == [{"path": "a.png", "decision": "keep"}]
    writer.add({"path": "b.png", "decision": "reject"})
    assert len(_rows(tmp_path / "r.csv")) == 2
    assert not list(tmp_path.glob(".*tmp"))
    writer.close()


def test_decide_names_reasons():
    classes = ["available", "debris", "mixed", "too_few"]
    row = classify.decide(np.array([0.1, 0.6, 0.25, 0.05]), classes, 0.5)
    assert row["decision"] == "reject" and row["reasons"] == "debris"
    row = classify.decide(np.array([0.1, 0.45, 0.4, 0.05]), classes, 0.5)
    assert row["reasons"] == "debris;mixed"
    assert classify.decide(np.array([0.8, 0.1, 0.05, 0.05]), classes, 0.5)["reasons"] == ""


def test_demo_runs_the_whole_job(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n", "8"]) == 0
    rows = _rows(out / "results.csv")
    assert len(rows) == 9 and sum(r["decision"] == "error" for r in rows) == 1
    assert (out / "report.html").is_file() and any((out / "sorted").rglob("*.png"))
    assert "keep/reject decisions right" in capsys.readouterr().out


def test_agreement_says_when_both_reject_for_different_reasons():
    from metasift.criteria import agreement

    assert agreement("reject", "debris", ["debris", "too_few"], "2 over") == "agree"
    assert agreement("keep", "", [], "46 chromosomes") == "agree"
    differ = agreement("reject", "debris", ["too_few"], "31 chromosomes (< 40)")
    assert differ == (
        "both reject, for different reasons (CNN: debris; count: too_few: 31 chromosomes (< 40))"
    )
    assert agreement("reject", "", ["too_few"], "31") == "agree"  # a keep/reject model names none
    assert agreement("keep", "", ["mixed"], "2 spreads").startswith("disagree: CNN keeps")
    assert agreement("reject", "mixed", [], "46").startswith("disagree: CNN rejects (mixed)")
    assert agreement("reject", "mixed", None, "counting failed") == "no count"


def test_the_summary_counts_disagreements(slide, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["classify", str(slide / "too_few"), str(slide / "debris"), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    rows = _rows(out)
    disagree = sum(r["agreement"].startswith("disagree") for r in rows)
    assert f"the CNN and the count disagree on {disagree}" in said


def test_classify_takes_the_counts_minimum(slide, tmp_path):
    out = tmp_path / "r.csv"
    folder = str(slide / "available")
    assert main(["classify", folder, "--out", str(out), "--min-chromosomes", "100"]) == 0
    rows = _rows(out)
    assert all(r["too_few"] == "1" and "(< 100)" in r["count_reason"] for r in rows)


def test_resume_recounts_with_other_count_settings(slide, tmp_path):
    out = tmp_path / "r.csv"
    folder = str(slide / "available")
    assert main(["classify", folder, "--out", str(out)]) == 0
    assert (
        main(["classify", folder, "--out", str(out), "--resume", "--min-chromosomes", "100"]) == 0
    )
    assert all(r["too_few"] == "1" for r in _rows(out))


def test_settle_sends_what_the_evidence_cannot_settle_to_review():
    row = dict(path="a.png", decision="keep", p_reject="0.45", reasons="", p_mixed="0.4",
               p_debris="0.05", agreement="agree", too_few="0", mixed="0", debris="0")  # fmt: skip
    assert classify.settle(row, 0.5)["decision"] == "keep"
    again = classify.settle(row, 0.4)  # a new threshold decides again, with the reasons
    assert (again["decision"], again["reasons"]) == ("reject", "mixed")
    assert classify.settle(row, 0.5, band=0.1)["decision"] == "review"
    assert classify.settle(row, 0.5, band=0.1)["reasons"] == ""  # it leans to keep
    leaning = classify.settle({**row, "p_reject": "0.55", "p_mixed": "0.5"}, 0.5, band=0.1)
    assert (leaning["decision"], leaning["reasons"]) == ("review", "mixed")
    assert classify.settle(row, 0.5, band=0.01)["decision"] == "keep"
    split = {**row, "agreement": "disagree: CNN keeps, count finds too_few (31 chromosomes)",
             "too_few": "1", "count_reason": "31 chromosomes"}  # fmt: skip
    assert classify.settle(split, 0.5)["decision"] == "keep"
    assert classify.settle(split, 0.5, disagreements=True)["decision"] == "review"
    # a new threshold makes the CNN reject too: the agreement is taken again with it
    lower = classify.settle(split, 0.3, disagreements=True)
    assert lower["agreement"].startswith("both reject, for different reasons")
    assert lower["decision"] == "reject"
    by_count = classify.settle(split, 0.5, by="count")
    assert (by_count["decision"], by_count["reasons"]) == ("reject", "too_few")
    assert classify.settle(row, 0.5, by="count")["decision"] == "keep"
    uncounted = {**row, "p_reject": "0.9", "agreement": "no count"}  # the CNN decides then
    assert classify.settle(uncounted, 0.5, by="count")["decision"] == "reject"
    assert classify.settle(uncounted, 0.85, by="count", band=0.1)["decision"] == "review"
    for count, sent in ((37, False), (38, True), (41, True), (42, False)):
        counted = {**row, "chromosome_count": str(count), "too_few": str(int(count < 40))}
        got = classify.settle(counted, 0.5, by="count", near=2)
        assert (got["decision"] == "review") == sent, count
    crowded = {**row, "chromosome_count": "39", "mixed": "1"}  # two spreads: not near anything
    assert classify.settle(crowded, 0.5, by="count", near=2)["decision"] == "reject"
    dirty = {**row, "chromosome_count": "41", "debris": "1"}  # rejected whatever the count
    assert classify.settle(dirty, 0.5, by="count", near=2)["decision"] == "reject"
    error = dict(path="b.png", decision="error", p_reject="", reasons="")
    assert classify.settle(error, 0.5, band=0.2) == error
    with pytest.raises(ValueError, match="review band"):
        classify.settle(row, 0.5, band=0.7)
    with pytest.raises(ValueError, match="decide by"):
        classify.settle(row, 0.5, by="coin")


def test_review_decisions_are_counted_sorted_and_undone_on_resume(slide, tmp_path, capsys):
    """--review-band: pictures near the threshold go to review/ and the summary says how many;
    a resume without the band decides them again from their p_reject."""
    out, sorted_dir = tmp_path / "r.csv", tmp_path / "sorted"
    folders = [str(slide / "available"), str(slide / "too_few")]
    args = ["classify", *folders, "--out", str(out), "--no-count"]
    assert main([*args, "--review-band", "0.49", "--sort-into", str(sorted_dir)]) == 0
    rows = _rows(out)
    threshold = classify.Classifier().threshold
    near = [r for r in rows if abs(float(r["p_reject"]) - threshold) < 0.49]
    assert near and all(r["decision"] == "review" for r in near)
    assert f"{len(near)} sent to review" in capsys.readouterr().out
    assert len(list((sorted_dir / "review").iterdir())) == len(near)
    assert main([*args, "--resume"]) == 0
    again = _rows(out)
    assert all(r["decision"] in ("keep", "reject") for r in again)
    assert [r["p_reject"] for r in again] == [r["p_reject"] for r in rows]


def test_the_count_can_take_the_decision(slide, tmp_path, capsys):
    out = tmp_path / "r.csv"
    folders = [str(slide / "available"), str(slide / "too_few"), str(slide / "mixed")]
    assert main(["classify", *folders, "--out", str(out), "--decide-by", "count"]) == 0
    for r in _rows(out):
        found = [v for v in ("too_few", "mixed", "debris") if r[v] == "1"]
        assert r["decision"] == ("reject" if found else "keep") and r["reasons"] == ";".join(found)
        assert 0 <= float(r["p_reject"]) <= 1  # the CNN's evidence stays beside it
    code = main(["classify", folders[0], "--out", str(tmp_path / "n.csv"), "--no-count",
                 "--decide-by", "count"])  # fmt: skip
    assert code == 2 and "needs the count" in capsys.readouterr().err
    # the band is about the CNN's p_reject: with the count deciding it would do nothing
    code = main(["classify", folders[0], "--out", str(tmp_path / "b.csv"), "--review-band", "0.1"])
    assert code == 2 and "--review-band is about the CNN" in capsys.readouterr().err

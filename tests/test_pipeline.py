"""The pipeline as a Python user and a lab meet it: typed results, the results ledger (crash
safety, the lock, resume), and the same rows on a real Dask cluster on this machine."""

import csv
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import metasift
from conftest import DATA
from metasift.cli import main
from metasift.count import CountConfig
from metasift.pipeline import Ledger, latest_rows, run
from metasift.pipeline.ledger import ledger_path, write_results


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_run_gives_typed_results_in_order(pictures):
    results = list(metasift.run(pictures, steps=("count",), workers=1))
    assert [r.path for r in results] == pictures
    bad = results[-1]
    assert "07_damaged.png" in bad.error and bad.findings is None
    for result in results[:-1]:
        found = result.findings
        assert not result.error and found.chromosome_count > 0
        assert found.chromosome_count == sum(c.pieces for c in found.chromosomes)
        top, left, bottom, right = found.chromosomes[0].box
        assert 0 <= top < bottom <= result.height and 0 <= left < right <= result.width
        json.dumps(found.to_json())  # plain JSON, for the review app and the detector
        assert result.row()["chromosome_count"] == found.chromosome_count
    with pytest.raises(ValueError, match="steps"):
        next(run(pictures, steps=("sift",)))


def test_count_config_names_a_run_and_checks_its_values():
    assert CountConfig().identity == f"metasift {metasift.__version__} count"
    assert CountConfig(min_chromosomes=45).identity.endswith("count, min_chromosomes 45")
    with pytest.raises(ValueError, match="half_max"):
        CountConfig(half_max=0)


def test_json_results_are_written_as_json_dumps_writes_them(tmp_path):
    rows = [{"path": "a.png", "n": 3, "p": 0.25}, {"path": "b\udcff.png", "n": "", "p": 1.0}]
    for some in (rows, rows[:1], []):
        write_results(tmp_path / "r.json", ["path", "n", "p"], some)
        assert (tmp_path / "r.json").read_text(errors="surrogateescape") == json.dumps(
            some, indent=1
        ) + "\n"


def test_a_second_run_on_the_same_results_stops_with_a_clear_message(pictures, tmp_path, capsys):
    out = tmp_path / "c.csv"
    with Ledger(out, ["path"]):  # a run in progress
        code = main(["count", str(pictures[0]), "--out", str(out), "--overwrite"])
        assert code == 2
        assert "being written by another metasift run" in capsys.readouterr().err
    # once it is over, the lock is gone
    assert (
        main(["count", str(pictures[0]), "--out", str(out), "--overwrite", "--workers", "1"]) == 0
    )


def test_a_killed_run_keeps_every_row_done_and_resume_gives_the_same_file(tmp_path):
    """kill -9 in the middle of `metasift count`: the ledger has the rows done; --resume
    counts only the rest and writes the same file as an uninterrupted run."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(30):  # about 5 s of counting: time to kill it in the middle
        shutil.copy(DATA / "mfish" / "V1301XY.png", folder / f"{i:02d}.png")
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    args = ["count", str(folder), "--workers", "1"]
    assert main([*args, "--out", str(full)]) == 0
    # killed with worker processes running: they must not keep the results locked
    killed = ["count", str(folder), "--workers", "2", "--out", str(part)]
    code = f"import sys; from metasift.cli import main; sys.exit(main({killed!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    done = 0
    deadline = time.monotonic() + 120
    while done < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if ledger_path(part).exists():
            try:
                done = len(latest_rows(ledger_path(part)))
            except sqlite3.OperationalError:  # the schema is being created
                pass
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = latest_rows(ledger_path(part))
    assert 2 <= len(kept) < 30
    assert main([*args, "--out", str(part)]) == 2  # never replaced without asking
    assert main([*args, "--out", str(part), "--resume"]) == 0
    assert part.read_bytes() == full.read_bytes()


def test_a_synthetic_set_with_masks_is_listed_as_its_pictures_only(tmp_path):
    from metasift.data import discover
    from metasift.pipeline import list_inputs

    out = tmp_path / "set"
    args = ["synth", str(out), "--n", "4", "--size", "384x320", "--style", "dca", "--masks"]
    assert main([*args, "--workers", "1"]) == 0
    assert len(list((out / "masks").glob("*.tif"))) == 4
    files, _ = list_inputs([out])
    assert len(files) == 4 and not any(p.parent.name == "masks" for p in files)
    dataset = discover(out)
    assert sum(len(v) for v in dataset.splits.values()) == 4 and "masks" not in dataset.classes


def test_a_resume_that_fails_loses_nothing(pictures, tmp_path, monkeypatch):
    """Results made without a ledger, a resume that fails before its first picture: the file
    is as it was, its rows are in the ledger, and the next resume finishes the same file."""
    from metasift.pipeline import _runner

    folder = tmp_path / "slide #2 (100%)"  # '#' and '%' are names, not URI syntax
    folder.mkdir()
    for p in pictures[:3]:
        shutil.copy(p, folder / p.name)
    out = folder / "r.csv"
    args = ["count", str(folder), "--out", str(out), "--workers", "1"]
    assert main(args) == 0
    before = out.read_bytes()
    ledger_path(out).unlink()  # as a results file made before the ledger existed

    def failing(path, plan):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(_runner, "prepare", failing)
    assert main([*args, "--min-chromosomes", "30", "--resume"]) == 2
    assert out.read_bytes() == before
    assert len(latest_rows(ledger_path(out))) == 3
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0
    assert out.read_bytes() == before


def test_resume_goes_back_only_to_the_last_fresh_start(tmp_path):
    out = tmp_path / "r.csv"
    with Ledger(out, ["path", "n"]) as ledger:
        ledger.add({"path": "a.png", "n": 1})
        ledger.add({"path": "b.png", "n": 1})
    ledger = Ledger(out, ["path", "n"], overwrite=True)
    ledger.add({"path": "a.png", "n": 2})
    ledger.close(failed=True)  # the overwriting run died after one picture
    with Ledger(out, ["path", "n"], resume=True) as ledger:
        assert ledger.previous_rows() == [{"path": "a.png", "n": 2}]

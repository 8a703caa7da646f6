"""The pipeline on a real Dask cluster on this machine (a scheduler and two worker processes
on loopback only): the same results as one machine, nothing lost when a worker dies."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from metasift.cli import main
from metasift.pipeline import run

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as cluster:
        yield cluster


def test_a_cluster_gives_the_same_results_file_as_this_machine(pictures, cluster, tmp_path):
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    folder = str(pictures[0].parent)
    assert main(["classify", folder, "--out", str(here), "--batch-size", "2"]) == 1
    address = cluster.scheduler_address
    args = ["classify", folder, "--out", str(there), "--batch-size", "2", "--scheduler", address]
    assert main(args) == 1
    assert here.read_bytes() == there.read_bytes()


def test_a_worker_killed_mid_run_loses_no_picture(pictures, cluster):
    expected = [r.row() for r in run(pictures, steps=("count",), workers=1)]
    with distributed.Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
        results = run(pictures, steps=("count",), scheduler=client, batch_size=1)
        rows = [next(results).row()]
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # one worker dies mid-run
        rows += [r.row() for r in results]
    assert [r["path"] for r in rows] == [str(p) for p in pictures]  # each exactly once
    assert rows == expected


def test_without_dask_scheduler_is_a_clear_error(pictures, tmp_path):
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from metasift.cli import main\n"
        f"sys.exit(main(['count', {str(pictures[0])!r}, '--out', {str(tmp_path / 'c.csv')!r},"
        " '--scheduler', 'tcp://127.0.0.1:1']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'metasift[cluster]'" in done.stderr


def test_workers_in_another_folder_find_pictures_named_relative_to_this_one(
    pictures, cluster, monkeypatch
):
    monkeypatch.chdir(pictures[0].parent.parent)
    relative = [Path(p.parent.name) / p.name for p in pictures]
    here = [r.row() for r in run(relative, steps=("count",), workers=1)]
    there = [r.row() for r in run(relative, steps=("count",), scheduler=cluster.scheduler_address)]
    assert there == here and [r["path"] for r in there] == [str(p) for p in relative]
    assert not there[0]["error"]

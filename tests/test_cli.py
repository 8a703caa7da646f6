import re
import subprocess
import sys

import pytest

from metasift.cli import main


def test_help_imports_nothing_heavy():
    """`metasift --help` must answer at once: no torch, onnxruntime or scipy at start-up."""
    code = (
        "import sys\nfrom metasift.cli import get_parser\nget_parser().format_help()\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'scipy', 'skimage') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_every_subcommand_has_help(capsys):
    for command in (
        "synth",
        "train",
        "evaluate",
        "classify",
        "count",
        "info",
        "demo",
        "dose",
        "review",
    ):
        try:
            main([command, "--help"])
        except SystemExit as done:
            assert done.code == 0
        assert "usage: metasift " + command in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2


def test_info_names_bad_files(tmp_path, capsys):
    (tmp_path / "empty.png").write_bytes(b"")
    assert main(["info", str(tmp_path / "empty.png")]) == 1
    assert "empty.png: the file is empty" in capsys.readouterr().out


def test_synth_choices_are_the_synthesisers():
    """The parser names them without importing the synthesiser (for a fast --help)."""
    from metasift import synth
    from metasift.cli import synth as command

    assert command.STAINS == synth.STAINS and command.STYLES == synth.STYLES
    assert command.FORMATS == synth.FORMATS


def test_help_prints_each_default_once_and_never_none(capsys):
    for command in ("synth", "train", "evaluate", "classify", "count", "info", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text and "(default: False)" not in text, command
        # a default written into the help text and added again by argparse
        assert not re.search(r"\((default|unset)[^()]*\) \(default:", text), command


def test_the_manifest_format_is_written_the_same_in_help_and_data(capsys):
    from metasift import data

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert data.MANIFEST in " ".join(capsys.readouterr().out.split())

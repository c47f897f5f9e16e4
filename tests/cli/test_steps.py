"""`convblocks steps` prints every figure and marks it."""

import subprocess
import sys

from convblocks.cli.main import main


def test_steps_prints_every_figure_as_matching(capsys):
    assert main(["steps", "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "58/58 figures match across 11 cases" in out
    assert "DIFFERS" not in out and "ERROR" not in out
    assert "[11/11] pool_backward" in out
    assert "Z's mean = 0.6923608807576933" in out  # the exercise's printed figure, shown beside ours


def test_steps_one_case_and_unknown_case(capsys):
    assert main(["steps", "--case", "zero_pad", "--impl", "loops"]) == 0
    assert "3/3 figures match" in capsys.readouterr().out
    assert main(["steps", "--case", "nope"]) == 2
    assert "unknown case 'nope'" in capsys.readouterr().err


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "convblocks", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "steps" in out and "usage: convblocks" in out

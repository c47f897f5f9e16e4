"""The entry point's process settings."""

from __future__ import annotations

import sys



# ------------------------------------------------------------ OpenBLAS's idle threads
def test_quiet_blas_threads_sets_the_timeout_before_numpy_loads(monkeypatch):
    from convblocks.cli import main as cli_main

    environ: dict[str, str] = {}
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    assert cli_main.quiet_blas_threads(environ) is True
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": cli_main.BLAS_THREAD_TIMEOUT}
    environ = {"OPENBLAS_THREAD_TIMEOUT": "20"}  # the user's own setting wins
    assert cli_main.quiet_blas_threads(environ) is True
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": "20"}

def test_quiet_blas_threads_is_a_no_op_once_numpy_is_loaded():
    import numpy  # noqa: F401

    from convblocks.cli import main as cli_main

    environ: dict[str, str] = {}
    assert cli_main.quiet_blas_threads(environ) is False
    assert environ == {}


def test_only_the_training_commands_quiet_blas_threads():
    from convblocks.cli.main import wants_quiet_blas

    assert wants_quiet_blas(["train", "--epochs", "1"])
    assert wants_quiet_blas(["bench", "--train", "--threads", "2"])
    assert not wants_quiet_blas(["bench"])  # kernel cases: small GEMMs pay for every wake-up
    assert not wants_quiet_blas(["bench", "--train", "--cases", "d"])
    assert not wants_quiet_blas(["bench", "--train", "--cases=pool"])
    assert not wants_quiet_blas(["grade", "train.py"])
    assert not wants_quiet_blas([])


def test_closed_stdout_is_no_traceback():
    """Started with stdout closed (``convblocks ... >&-``: sys.stdout is None), a command
    ends with its own status instead of an AttributeError from the final flush."""
    import os
    import subprocess

    r = subprocess.run([sys.executable, "-m", "convblocks.cli.main"], stderr=subprocess.PIPE,
                       text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert "Traceback" not in r.stderr and "usage: convblocks" in r.stderr
    assert r.returncode == 2

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

"""Shared setup for the engine's tests in tests/functional.

* ``torch_ref`` (the PyTorch references of the oracle tests) is importable as a plain
  module from any test here, whatever pytest's import mode.
* Tests in ``test_*_oracle.py`` get the ``torch`` marker (``-m "not torch"`` skips them).
* ``rng``: a seeded NumPy generator, so failures reproduce (used by the error tests).
* ``tiny_workspace``: the smallest workspace limit (1 MiB) for one test, so kernels
  split the batch into many chunks; the previous limit is restored afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name.endswith("_oracle.py") and item.path.parent == Path(_HERE):
            item.add_marker(pytest.mark.torch)


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with a fixed seed."""
    return np.random.default_rng(20261122)


@pytest.fixture
def tiny_workspace():
    """Set the workspace limit to 1 MiB for one test; restore the previous limit."""
    from convblocks.functional import set_workspace_limit

    previous = set_workspace_limit(1 << 20)
    yield 1 << 20
    set_workspace_limit(previous)

"""Helpers shared by the data-set tests: tiny synthetic IDX data sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convblocks.datasets.idx import write_idx

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def make_idx_dataset(folder: Path, *, n_train: int = 12, n_test: int = 6, seed: int = 0,
                     compress: bool = True) -> dict:
    """Write four MNIST-style IDX files of random uint8 images into ``folder``.

    Returns the arrays written, keyed by file name.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(folder / (name if compress else name.removesuffix(".gz")), arr,
                  compress=compress)
    return arrays


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No $CONVBLOCKS_DATA, a private empty cache, no URL override, online."""
    for var in ("CONVBLOCKS_DATA", "CONVBLOCKS_OFFLINE", "CONVBLOCKS_FASHION_MNIST_URL",
                "CONVBLOCKS_MNIST_URL", "CONVBLOCKS_TINY_MNIST_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path

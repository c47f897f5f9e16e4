"""conv2d's working memory stays under the workspace limit (measured with tracemalloc).

NumPy reports its array allocations to tracemalloc, so the peak traced memory of a
forward + backward is: the results themselves (y, dx, dw, db) plus the temporaries.
The kernels process the batch in blocks whose column matrix (and padded input) fits
the workspace limit, so the temporaries stay near one limit's worth, far below a
whole-batch im2col matrix.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from convblocks.functional import conv2d, conv2d_backward, conv_transpose2d, conv_transpose2d_backward
from convblocks.functional import set_workspace_limit
from convblocks.functional.buffers import pool_disabled
import convblocks.functional.winograd as winograd

MiB = 1 << 20


def _peak(fn) -> int:
    """Peak traced bytes while ``fn()`` runs (one BLAS thread: memory, not speed, is
    measured; no buffer pool: every temporary is a new, traced allocation)."""
    with threadpool_limits(1), pool_disabled():
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


@pytest.fixture
def limit():
    """A 4 MiB workspace limit for the test, restored afterwards."""
    previous = set_workspace_limit(4 * MiB)
    yield 4 * MiB
    set_workspace_limit(previous)


@pytest.mark.parametrize("stride, use_winograd", [(1, False), (1, True), (2, False)])
def test_conv2d_forward_backward_peak_is_bounded_by_the_limit(rng, limit, monkeypatch, stride, use_winograd):
    monkeypatch.setattr(winograd, "_enabled", use_winograd)
    # shape (d) of the benchmarks at batch 12: 32x32x64 -> 3x3 -> 64 channels
    N, H, W, C, K = 12, 32, 32, 64, 64
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    w = rng.standard_normal((3, 3, C, K)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    Ho = (H + 2 - 3) // stride + 1
    dy = rng.standard_normal((N, Ho, Ho, K)).astype(np.float32)
    results = {}

    def run():
        y, cache = conv2d(x, w, b, stride=stride, padding=1)
        results["y"] = y
        results["grads"] = conv2d_backward(dy, cache)

    peak = _peak(run)
    outputs = results["y"].nbytes + sum(g.nbytes for g in results["grads"])
    full_im2col = N * Ho * Ho * 3 * 3 * C * 4
    # temporaries: one block (columns + padded input) under the limit, plus small
    # per-call arrays (flipped weights, per-block GEMM results); 1 MiB covers them
    assert peak - outputs <= limit + MiB, (peak / MiB, outputs / MiB)
    assert full_im2col > limit + MiB  # the bound is meaningful: a plain im2col exceeds it


def test_conv_transpose2d_peak_is_bounded_by_the_limit(rng, limit):
    N, H, W, C_in, C_out = 6, 16, 16, 64, 32
    x = rng.standard_normal((N, H, W, C_in)).astype(np.float32)
    w = rng.standard_normal((3, 3, C_out, C_in)).astype(np.float32)
    results = {}

    def run():
        y, cache = conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
        results["y"] = y
        results["grads"] = conv_transpose2d_backward(np.ones_like(y), cache)

    dy_bytes = N * 32 * 32 * C_out * 4  # the np.ones_like(y) made inside run()
    peak = _peak(run)
    outputs = results["y"].nbytes + sum(g.nbytes for g in results["grads"] if g is not None)
    assert peak - outputs - dy_bytes <= limit + MiB, peak / MiB


@pytest.mark.parametrize("use_winograd", [False, True])
def test_default_limit_keeps_shape_d_under_64_mib(rng, monkeypatch, use_winograd):
    """The benchmark shape (d) at its full batch of 32 stays under 64 MiB of temporaries."""
    monkeypatch.setattr(winograd, "_enabled", use_winograd)
    N, H, W, C, K = 32, 32, 32, 64, 64
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    w = rng.standard_normal((3, 3, C, K)).astype(np.float32)
    dy = rng.standard_normal((N, H, W, K)).astype(np.float32)
    results = {}

    def run():
        y, cache = conv2d(x, w, stride=1, padding=1)
        results["y"] = y
        results["grads"] = conv2d_backward(dy, cache)

    peak = _peak(run)
    outputs = results["y"].nbytes + sum(g.nbytes for g in results["grads"] if g is not None)
    assert peak - outputs <= 64 * MiB, peak / MiB

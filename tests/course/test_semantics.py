"""The semantics the exercise leaves open, as convblocks decides them."""

import numpy as np
import pytest

from convblocks import course, loops

IMPLS = pytest.mark.parametrize("L", [course, loops], ids=["fast", "loops"])


@IMPLS
def test_tied_maxima_send_the_gradient_once_to_the_first(L):
    x = np.array([[1.0, 3.0], [3.0, 0.0]])
    np.testing.assert_array_equal(L.create_mask_from_window(x), [[False, True], [False, False]])
    A = np.ones((1, 2, 2, 1))  # every element ties
    _, cache = L.pool_forward(A, {"f": 2, "stride": 2})
    dA_prev = L.pool_backward(np.full((1, 1, 1, 1), 5.0), cache)
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], [[5.0, 0.0], [0.0, 0.0]])


@IMPLS
def test_overlapping_max_windows_accumulate(L):
    # A 3x3 input whose centre is the max of all four 2x2 stride-1 windows.
    A = np.zeros((1, 3, 3, 1))
    A[0, 1, 1, 0] = 9.0
    _, cache = L.pool_forward(A, {"f": 2, "stride": 1})
    dA = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    dA_prev = L.pool_backward(dA, cache)
    assert dA_prev[0, 1, 1, 0] == 10.0 and dA_prev.sum() == 10.0


@IMPLS
def test_pool_backward_honours_the_stride(L):
    A = np.arange(16.0).reshape(1, 4, 4, 1)
    _, cache = L.pool_forward(A, {"f": 2, "stride": 2})
    dA_prev = L.pool_backward(np.ones((1, 2, 2, 1)), cache)
    expected = np.zeros((4, 4))
    expected[[1, 1, 3, 3], [1, 3, 1, 3]] = 1.0  # each window's bottom-right is its max
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], expected)
    avg = L.pool_backward(np.ones((1, 2, 2, 1)), cache, mode="average")
    np.testing.assert_allclose(avg[0, :, :, 0], np.full((4, 4), 0.25))


@IMPLS
def test_gapped_windows_leave_zero_gradient(L):
    A = np.random.default_rng(0).standard_normal((1, 5, 5, 2))
    _, cache = L.pool_forward(A, {"f": 1, "stride": 3})
    dA_prev = L.pool_backward(np.ones((1, 2, 2, 2)), cache, mode="average")
    assert dA_prev.sum() == 8.0 and dA_prev[0, 1].sum() == 0.0


@IMPLS
def test_conv_backward_at_pad_zero(L):
    rng = np.random.default_rng(1)
    A, W, b = rng.standard_normal((2, 4, 5, 2)), rng.standard_normal((2, 2, 2, 3)), rng.standard_normal((1, 1, 1, 3))
    Z, cache = L.conv_forward(A, W, b, {"stride": 1, "pad": 0})
    dA, dW, db = L.conv_backward(np.ones_like(Z), cache)
    assert dA.shape == A.shape and np.abs(dA).sum() > 0
    np.testing.assert_allclose(db.reshape(-1), np.full(3, Z[..., 0].size))


@IMPLS
def test_inputs_are_never_modified(L):
    rng = np.random.default_rng(2)
    A, W, b = rng.standard_normal((2, 5, 5, 2)), rng.standard_normal((3, 3, 2, 2)), rng.standard_normal((1, 1, 1, 2))
    copies = [x.copy() for x in (A, W, b)]
    Z, cache = L.conv_forward(A, W, b, {"stride": 2, "pad": 1})
    dZ = rng.standard_normal(Z.shape)
    dZ_copy = dZ.copy()
    L.conv_backward(dZ, cache)
    P, pcache = L.pool_forward(A, {"f": 2, "stride": 1})
    dP = rng.standard_normal(P.shape)
    dP_copy = dP.copy()
    L.pool_backward(dP, pcache, mode="max")
    L.pool_backward(dP, pcache, mode="average")
    for x, c in zip((A, W, b, dZ, dP), (*copies, dZ_copy, dP_copy)):
        np.testing.assert_array_equal(x, c)


@IMPLS
def test_integer_input_computes_in_float64(L):
    A = np.arange(2 * 4 * 4 * 1).reshape(2, 4, 4, 1)
    W = np.ones((2, 2, 1, 1), dtype=np.int32)
    b = np.zeros((1, 1, 1, 1), dtype=np.int64)
    Z, _ = L.conv_forward(A, W, b, {"stride": 2, "pad": 0})
    assert Z.dtype == np.float64
    assert Z[0, 0, 0, 0] == 0 + 1 + 4 + 5
    P, _ = L.pool_forward(A, {"f": 2, "stride": 2}, mode="average")
    assert P.dtype == np.float64 and P[0, 0, 0, 0] == 2.5


def test_float32_stays_float32_at_the_top_level():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    W = rng.standard_normal((2, 2, 2, 3)).astype(np.float32)
    b = rng.standard_normal((1, 1, 1, 3)).astype(np.float32)
    Z, cache = course.conv_forward(A, W, b, {"stride": 1, "pad": 0})
    assert Z.dtype == np.float32
    assert all(g.dtype == np.float32 for g in course.conv_backward(Z, cache))
    P, pc = course.pool_forward(A, {"f": 2, "stride": 1})
    assert P.dtype == np.float32 and course.pool_backward(P, pc).dtype == np.float32


def test_top_level_exports_the_vectorized_functions():
    import convblocks
    assert convblocks.conv_forward is course.conv_forward
    assert convblocks.pool_backward is course.pool_backward

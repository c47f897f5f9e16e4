"""Non-finite values in the exercise functions: both implementations, as PyTorch.

Found by fuzzing the fast functions against the loops and PyTorch."""

import numpy as np
import pytest

from convblocks import course, loops

IMPLS = pytest.mark.parametrize("L", [course, loops], ids=["fast", "loops"])


@IMPLS
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_upstream_gradient_reaches_only_the_max(L, value):
    """A NaN or infinite dA in max pool_backward goes to each window's max only; the
    other elements stay +0.0, as in PyTorch (mask * dA would make them NaN)."""
    A_prev = np.array([[1.0, 2.0, 5.0], [3.0, 4.0, 0.0], [0.0, 6.0, 0.0]]).reshape(1, 3, 3, 1)
    _, cache = L.pool_forward(A_prev, {"f": 2, "stride": 1})
    dA = np.array([value, 1.0, 1.0, 1.0]).reshape(1, 2, 2, 1)
    dA_prev = L.pool_backward(dA, cache, mode="max")[0, :, :, 0]
    expected = np.array([[0.0, 0.0, 1.0], [0.0, value, 0.0], [0.0, 2.0, 0.0]])
    np.testing.assert_array_equal(dA_prev, expected)
    assert not np.signbit(dA_prev[expected == 0]).any()


@pytest.mark.parametrize("dtype, n_C_prev", [(np.float32, 1), (np.float64, 32)])
def test_inf_weight_on_a_padding_tap_leaves_dA_prev_finite(dtype, n_C_prev):
    """A weight tap that only ever reads padding never multiplies a real gradient: an
    infinite one leaves dA_prev finite (the stride-1 engine paths used to multiply
    zero-padded dZ by it: 0 * inf = NaN); loops and PyTorch give 1.0."""
    A_prev = np.ones((1, 1, 1, n_C_prev), dtype)
    W = np.ones((3, 3, n_C_prev, 1), dtype)
    W[0, 2, 0, 0] = np.inf  # this tap reads padding in the only window
    with np.errstate(invalid="ignore"):  # the forward's output is NaN (0 * inf), as in torch
        _, cache = course.conv_forward(A_prev, W, np.zeros((1, 1, 1, 1), dtype),
                                       {"stride": 1, "pad": 1})
    dA_prev = course.conv_backward(np.ones((1, 1, 1, 1), dtype), cache)[0]
    np.testing.assert_array_equal(dA_prev, loops.conv_backward(np.ones((1, 1, 1, 1), dtype), cache)[0])
    np.testing.assert_array_equal(dA_prev, np.ones_like(A_prev))


def test_nan_weight_reaches_only_the_pixels_its_tap_reads():
    """float32 stride 1 used to compute dA_prev at the padded width with zero columns in
    dZ, so a NaN tap leaked 0 * NaN into pixels it never reads, even at pad 0."""
    A_prev = np.ones((1, 2, 2, 1), np.float32)
    W = np.ones((2, 2, 1, 1), np.float32)
    W[0, 0, 0, 0] = np.nan  # one window: the tap reads A_prev[0, 0, 0] only
    _, cache = course.conv_forward(A_prev, W, np.zeros((1, 1, 1, 1), np.float32), {"stride": 1, "pad": 0})
    dA_prev = course.conv_backward(np.ones((1, 1, 1, 1), np.float32), cache)[0]
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], [[np.nan, 1.0], [1.0, 1.0]])

"""The vectorized functions agree with the literal loops on many generated cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convblocks import course, loops

from .strategies import conv_case, pool_case

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@SETTINGS
@given(conv_case())
def test_conv_forward_and_backward(case):
    A, W, b, hp = case
    Z, cache = course.conv_forward(A, W, b, hp)
    Zl, cache_l = loops.conv_forward(A, W, b, hp)
    assert Z.shape == Zl.shape
    assert Z.dtype == A.dtype
    np.testing.assert_allclose(Z, Zl, **tol(A.dtype))
    assert cache[0] is A and cache[1] is W and cache[2] is b and cache[3] is hp
    dZ = np.random.default_rng(0).standard_normal(Z.shape).astype(A.dtype)
    for got, want in zip(course.conv_backward(dZ, cache), loops.conv_backward(dZ, cache_l)):
        assert got.shape == want.shape
        assert got.dtype == A.dtype
        np.testing.assert_allclose(got, want, **tol(A.dtype))


@SETTINGS
@given(pool_case(), st.sampled_from(["max", "average"]))
def test_pool_forward_and_backward(case, mode):
    A, hp = case
    out, cache = course.pool_forward(A, hp, mode=mode)
    out_l, _ = loops.pool_forward(A, hp, mode=mode)
    assert out.dtype == A.dtype
    np.testing.assert_allclose(out, out_l, **tol(A.dtype))
    dA = np.random.default_rng(1).standard_normal(out.shape).astype(A.dtype)
    got = course.pool_backward(dA, cache, mode=mode)
    want = loops.pool_backward(dA, cache, mode=mode)
    assert got.shape == A.shape and got.dtype == A.dtype
    np.testing.assert_allclose(got, want, **tol(A.dtype))


@SETTINGS
@given(pool_case(dtype=np.float64, ties=True))
def test_max_pool_ties_agree(case):
    A, hp = case
    out, cache = course.pool_forward(A, hp)
    dA = np.random.default_rng(2).standard_normal(out.shape)
    np.testing.assert_allclose(course.pool_backward(dA, cache), loops.pool_backward(dA, cache),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pad", [0, 1, 3])
@pytest.mark.parametrize("impl", [course, loops], ids=["fast", "loops"])
def test_zero_pad(impl, pad):
    X = np.random.default_rng(3).standard_normal((2, 3, 4, 2))
    P = impl.zero_pad(X, pad)
    assert P.shape == (2, 3 + 2 * pad, 4 + 2 * pad, 2)
    np.testing.assert_array_equal(P[:, pad:pad + 3, pad:pad + 4], X)
    assert P.sum() == pytest.approx(X.sum())
    P[...] = 7  # the result never aliases the input
    assert not np.any(X == 7)


@pytest.mark.parametrize("impl", [course, loops], ids=["fast", "loops"])
def test_conv_single_step_is_a_python_float(impl):
    rng = np.random.default_rng(4)
    a, W, b = rng.standard_normal((3, 3, 2)), rng.standard_normal((3, 3, 2)), rng.standard_normal((1, 1, 1))
    z = impl.conv_single_step(a, W, b)
    assert type(z) is float
    assert z == pytest.approx(float(np.sum(a * W) + b[0, 0, 0]), rel=1e-12)


@pytest.mark.parametrize("impl", [course, loops], ids=["fast", "loops"])
def test_distribute_value(impl):
    a = impl.distribute_value(3.0, (2, 3))
    np.testing.assert_allclose(a, np.full((2, 3), 0.5))

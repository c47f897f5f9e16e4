"""Every class of bad input raises at the API boundary, naming the argument."""

import numpy as np
import pytest

from convblocks import course, loops

IMPLS = pytest.mark.parametrize("L", [course, loops], ids=["fast", "loops"])
rng = np.random.default_rng(0)
A = rng.standard_normal((2, 5, 5, 3))
W = rng.standard_normal((3, 3, 3, 4))
b = rng.standard_normal((1, 1, 1, 4))
HP = {"stride": 1, "pad": 1}
PHP = {"f": 2, "stride": 2}


def raises(exc, *words):
    """pytest.raises that also checks every key word appears in the message."""
    class _Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *a):
            handled = self.ctx.__exit__(*a)
            msg = str(self.info.value)
            for w in words:
                assert w in msg, f"{w!r} not in message {msg!r}"
            return handled
    return _Ctx()


@IMPLS
def test_wrong_number_of_dimensions(L):
    with raises(ValueError, "A_prev", "4-D", "(5, 5, 3)"):
        L.conv_forward(A[0], W, b, HP)
    with raises(ValueError, "W", "4-D"):
        L.conv_forward(A, W[0], b, HP)
    with raises(ValueError, "A_prev", "4-D"):
        L.pool_forward(A[0], PHP)
    with raises(ValueError, "X", "4-D"):
        L.zero_pad(A[0], 1)


@IMPLS
def test_channels_differ(L):
    with raises(ValueError, "A_prev", "3 channels", "n_C_prev=2"):
        L.conv_forward(A, W[:, :, :2], b, HP)


@IMPLS
def test_non_square_filter(L):
    with raises(ValueError, "W", "square", "(3, 2, 3, 4)"):
        L.conv_forward(A, W[:, :2], b, HP)


@IMPLS
def test_bias_of_wrong_shape(L):
    with raises(ValueError, "b", "(1, 1, 1, 4)", "(4,)"):
        L.conv_forward(A, W, b.reshape(4), HP)
    with raises(ValueError, "b", "(1, 1, 1, 4)"):
        L.conv_forward(A, W, b[..., :3], HP)


@IMPLS
def test_hparameters_missing_or_unknown_key(L):
    with raises(ValueError, "missing", "'pad'"):
        L.conv_forward(A, W, b, {"stride": 1})
    with raises(ValueError, "unknown", "'padding'"):
        L.conv_forward(A, W, b, {"stride": 1, "pad": 0, "padding": 1})
    with raises(ValueError, "missing", "'f'"):
        L.pool_forward(A, {"stride": 1})
    with raises(ValueError, "unknown", "'pad'"):
        L.pool_forward(A, {"stride": 1, "f": 2, "pad": 0})
    with raises(TypeError, "hparameters", "dict"):
        L.conv_forward(A, W, b, [1, 1])


@IMPLS
@pytest.mark.parametrize("hp, words", [
    ({"stride": 0, "pad": 0}, ("stride", ">= 1", "0")),
    ({"stride": 1, "pad": -1}, ("pad", ">= 0", "-1")),
])
def test_stride_and_pad_out_of_range(L, hp, words):
    with raises(ValueError, *words):
        L.conv_forward(A, W, b, hp)


@IMPLS
@pytest.mark.parametrize("hp, words", [
    ({"stride": 1.5, "pad": 0}, ("stride", "integer", "1.5")),
    ({"stride": 1, "pad": 1.0}, ("pad", "integer", "1.0")),
    ({"stride": True, "pad": 0}, ("stride", "integer", "True")),
])
def test_non_integer_stride_or_pad(L, hp, words):
    with raises(TypeError, *words):
        L.conv_forward(A, W, b, hp)


@IMPLS
def test_non_integer_pool_f_and_zero_pad(L):
    with raises(TypeError, "f", "integer", "2.0"):
        L.pool_forward(A, {"f": 2.0, "stride": 1})
    with raises(TypeError, "pad", "integer"):
        L.zero_pad(A, 1.5)
    with raises(ValueError, "pad", ">= 0"):
        L.zero_pad(A, -2)
    with raises(ValueError, "f", ">= 1"):
        L.pool_forward(A, {"f": 0, "stride": 1})


@IMPLS
def test_window_larger_than_input(L):
    with raises(ValueError, "f=7", "larger", "5x5"):
        L.conv_forward(A, rng.standard_normal((7, 7, 3, 4)), b, {"stride": 1, "pad": 0})
    with raises(ValueError, "f=6", "larger"):
        L.pool_forward(A, {"f": 6, "stride": 1})


@IMPLS
def test_unknown_mode_lists_valid_ones(L):
    with raises(ValueError, "mode", "'max'", "'average'", "'avg'"):
        L.pool_forward(A, PHP, mode="avg")
    _, cache = L.pool_forward(A, PHP)
    with raises(ValueError, "mode", "'mean'"):
        L.pool_backward(np.ones((2, 2, 2, 3)), cache, mode="mean")


@IMPLS
def test_gradient_shape_must_match_cache(L):
    Z, cache = L.conv_forward(A, W, b, HP)
    with raises(ValueError, "dZ", "(2, 5, 5, 4)", "(2, 5, 5, 3)"):
        L.conv_backward(np.ones((2, 5, 5, 3)), cache)
    P, pcache = L.pool_forward(A, PHP)
    with raises(ValueError, "dA", "(2, 2, 2, 3)"):
        L.pool_backward(np.ones((2, 3, 3, 3)), pcache)
    with raises(ValueError, "cache", "(A_prev, W, b, hparameters)"):
        L.conv_backward(Z, cache[:3])


@IMPLS
def test_non_numeric_arrays(L):
    with raises(TypeError, "A_prev", "dtype"):
        L.conv_forward(np.full((2, 5, 5, 3), "x"), W, b, HP)
    with raises(TypeError, "W", "complex128"):
        L.conv_forward(A, W.astype(complex), b, HP)
    with raises(TypeError, "x"):
        L.create_mask_from_window(np.array([["a", "b"]]))
    with raises(TypeError, "A_prev", "float16"):
        L.pool_forward(A.astype(np.float16), PHP)


@IMPLS
def test_distribute_value_bad_shape(L):
    with raises(ValueError, "shape", "positive", "(0, 2)"):
        L.distribute_value(1.0, (0, 2))
    with raises(ValueError, "shape", "pair"):
        L.distribute_value(1.0, (2,))
    with raises(ValueError, "dz", "single number"):
        L.distribute_value(np.ones(3), (2, 2))


@IMPLS
def test_conv_single_step_shapes(L):
    with raises(ValueError, "W", "shape of a_slice_prev"):
        L.conv_single_step(np.ones((2, 2, 3)), np.ones((2, 2, 2)), np.ones((1, 1, 1)))
    with raises(ValueError, "b", "one element"):
        L.conv_single_step(np.ones((2, 2, 3)), np.ones((2, 2, 3)), np.ones((1, 1, 2)))


@IMPLS
def test_nan_and_inf_propagate(L):
    X = A.copy()
    X[0, 2, 2, 0] = np.nan
    X[1, 0, 0, 1] = np.inf
    Z, _ = L.conv_forward(X, W, b, HP)
    assert np.isnan(Z[0, 1:4, 1:4]).all() and not np.isnan(Z[0, 0, 0]).any()
    assert np.isinf(Z[1, 0, 0]).any() or np.isnan(Z[1, 0, 0]).any()
    P, _ = L.pool_forward(X, {"f": 2, "stride": 1}, mode="max")
    assert np.isnan(P[0, 1:3, 1:3, 0]).all() and P[1, 0, 0, 1] == np.inf


@IMPLS
def test_nan_windows_send_the_gradient_to_their_last_nan_as_torch(L):
    """A pooling window holding NaN: the mask and pool_backward point to its last NaN,
    as the engine and PyTorch do (and ties without NaN keep the first maximum)."""
    torch = pytest.importorskip("torch")
    x = np.array([[np.nan, 1.0], [np.nan, 5.0]])
    np.testing.assert_array_equal(L.create_mask_from_window(x), [[False, False], [True, False]])
    np.testing.assert_array_equal(L.create_mask_from_window(np.array([[3.0, 3.0], [1.0, 3.0]])),
                                  [[True, False], [False, False]])
    A_prev = np.zeros((1, 4, 4, 2))
    A_prev[0, 0, 0, 0] = A_prev[0, 1, 1, 0] = A_prev[0, 2, 3, 1] = np.nan
    A_prev[0, 3, 2, 1] = np.nan
    P, cache = L.pool_forward(A_prev, {"f": 2, "stride": 2}, mode="max")
    dA = np.arange(1.0, 1.0 + P.size).reshape(P.shape)
    t = torch.from_numpy(A_prev.transpose(0, 3, 1, 2).copy()).requires_grad_()
    torch.nn.functional.max_pool2d(t, 2).backward(torch.from_numpy(dA.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_array_equal(L.pool_backward(dA, cache, mode="max"),
                                  t.grad.numpy().transpose(0, 2, 3, 1))


@IMPLS
@pytest.mark.parametrize("args", [
    ((1, 5, 5, 0), (3, 3, 0, 2), "A_prev"), ((1, 0, 4, 3), (3, 3, 3, 2), "A_prev"),
    ((1, 4, 4, 3), (3, 3, 3, 0), "W")])
def test_empty_axes_are_refused_alike(L, args):
    """Zero rows, columns or channels: a clear error from the shared checks, in both
    implementations (an empty batch is fine)."""
    a_shape, w_shape, name = args
    b = np.zeros((1, 1, 1, w_shape[3]))
    with raises(ValueError, name, "got shape"):
        L.conv_forward(np.zeros(a_shape), np.zeros(w_shape), b, {"stride": 1, "pad": 2})
    with raises(ValueError, "A_prev", "at least one row, column and channel"):
        L.pool_forward(np.zeros((1, 4, 4, 0)), {"f": 2, "stride": 2})
    Z, _ = L.conv_forward(np.zeros((0, 4, 4, 3)), np.zeros((3, 3, 3, 2)), np.zeros((1, 1, 1, 2)),
                          {"stride": 1, "pad": 1})
    assert Z.shape == (0, 4, 4, 2)


@IMPLS
def test_gradients_keep_the_forward_dtype(L):
    """A float64 upstream gradient for a float32 forward gives float32 gradients (rounded),
    in both implementations, as in PyTorch."""
    A = np.ones((1, 3, 3, 1), np.float32)
    W = np.ones((1, 1, 1, 1), np.float32)
    Z, cache = L.conv_forward(A, W, np.zeros((1, 1, 1, 1), np.float32), {"stride": 1, "pad": 0})
    grads = L.conv_backward(np.full(Z.shape, 1 + 1e-12), cache)
    assert [g.dtype for g in grads] == [np.float32] * 3
    np.testing.assert_array_equal(grads[2], np.float32(9.0))
    P, cache = L.pool_forward(A, {"f": 1, "stride": 1}, mode="average")
    assert L.pool_backward(np.full(P.shape, 1 + 1e-12), cache, mode="average").dtype == np.float32


def test_conv_single_step_fast_equals_loops_bit_for_bit():
    rng = np.random.default_rng(0)
    for f, c in [(1, 1), (3, 4), (5, 16), (7, 64)]:
        a, W, b = rng.standard_normal((f, f, c)), rng.standard_normal((f, f, c)), rng.standard_normal((1, 1, 1))
        assert course.conv_single_step(a, W, b) == loops.conv_single_step(a, W, b)


@IMPLS
def test_pool_window_wider_than_the_input_is_refused(L):
    with raises(ValueError, "f=3", "larger than the input"):
        L.pool_forward(np.zeros((1, 5, 2, 1)), {"f": 3, "stride": 1})


@IMPLS
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_keeps_float32(L, dtype):
    A = np.ones((1, 3, 3, 1), dtype)
    W = np.ones((2, 2, 1, 1), dtype)
    Z, _ = L.conv_forward(A, W, np.zeros((1, 1, 1, 1), dtype), {"stride": 1, "pad": 0})
    P, _ = L.pool_forward(A, {"f": 2, "stride": 1})
    assert Z.dtype == P.dtype == dtype


# ---- found by fuzzing the eight functions (both implementations) with bad input ----

@IMPLS
def test_masked_arrays_are_refused_alike(L):
    """A numpy.ma.MaskedArray is an ndarray whose mask the fast kernels ignored while the
    loops' np.max/np.mean honoured it: pool_forward and create_mask_from_window gave
    different answers. Both now refuse it, naming the argument."""
    M = np.ma.masked_array(A, mask=A > 1)
    with raises(TypeError, "A_prev", "MaskedArray", "filled"):
        L.pool_forward(M, PHP)
    with raises(TypeError, "A_prev", "MaskedArray"):
        L.conv_forward(M, W, b, HP)
    with raises(TypeError, "W", "MaskedArray"):
        L.conv_forward(A, np.ma.masked_array(W), b, HP)
    with raises(TypeError, "X", "MaskedArray"):
        L.zero_pad(M, 1)
    with raises(TypeError, "x", "MaskedArray"):
        L.create_mask_from_window(M[0, :2, :2, 0])
    with raises(TypeError, "dz", "MaskedArray"):
        L.distribute_value(np.ma.masked_array([3.0], mask=[True]), (2, 2))
    P, cache = L.pool_forward(A, PHP)
    with raises(TypeError, "dA", "MaskedArray"):
        L.pool_backward(np.ma.masked_array(P), cache)


@IMPLS
@pytest.mark.parametrize("pad", [10**6, 10**12, 10**30])
def test_impossibly_large_padding_names_the_option(L, pad):
    """pad=10**12 gave NumPy's "array is too big", 10**30 "Maximum allowed dimension
    exceeded", 10**6 a MemoryError in the loops (and a ValueError from the engine)."""
    with raises(ValueError, f"pad={pad}", "padded X", "would have shape"):
        L.zero_pad(A, pad)
    with raises(ValueError, f"'pad': {pad}", "padded image of A_prev", "would have shape"):
        L.conv_forward(A, W, b, {"stride": 1, "pad": pad})
    Z, _ = L.conv_forward(A, W, b, HP)
    with raises(ValueError, f"'pad': {pad}", "would have shape"):
        L.conv_backward(Z, (A, W, b, {"stride": 1, "pad": pad}))


def test_impossibly_large_sizes_give_the_same_message_in_both():
    for call in (lambda L: L.zero_pad(A, 10**6),
                 lambda L: L.conv_forward(A, W, b, {"stride": 1, "pad": 10**6}),
                 lambda L: L.distribute_value(1.0, (10**6, 10**6))):
        messages = []
        for L in (course, loops):
            with pytest.raises(ValueError) as info:
                call(L)
            messages.append(str(info.value))
        assert messages[0] == messages[1]


@IMPLS
def test_empty_batch_padded_beyond_numpy_limit(L):
    """An empty batch: zero bytes, but NumPy still refuses dimensions whose product
    overflows ("array is too big"); a modest pad on an empty batch still works."""
    with raises(ValueError, "pad=1000000000000", "padded X", "(0, 2000000000002"):
        L.zero_pad(np.zeros((0, 2, 2, 1)), 10**12)
    assert L.zero_pad(np.zeros((0, 2, 2, 1)), 10**5).shape == (0, 200002, 200002, 1)


@IMPLS
@pytest.mark.parametrize("shape", [(10**6, 10**6), (10**12, 10**12), (10**30, 1)])
def test_distribute_value_impossibly_large_window(L, shape):
    with raises(ValueError, "distribute_value", f"shape={shape}", "would have shape"):
        L.distribute_value(1.0, shape)


@IMPLS
@pytest.mark.parametrize("dz", [True, np.bool_(False), np.array([True])])
def test_distribute_value_refuses_a_boolean_dz(L, dz):
    """True counted as 1 (0.25 in each cell of a 2x2 window): a flag is not a gradient."""
    with raises(TypeError, "dz", "number, not a boolean", repr(dz)):
        L.distribute_value(dz, (2, 2))
    assert L.distribute_value(np.float32(2), [2, 2]).tolist() == [[0.5, 0.5], [0.5, 0.5]]

"""Pooling: invalid input, ties, NaN/Inf, dtype rules, in-place safety, chunking.

Values are checked against PyTorch in test_pool_oracle.py; here each class of invalid
input or option must raise the right exception type with a message naming the
argument, and the engine's contracts (first-maximum ties, IEEE special values, dtypes,
inputs never modified, workspace chunking, the argmax in the cache) are checked
against hand-computed expectations or the engine's own unchunked result.
"""

from __future__ import annotations

import numpy as np
import pytest

from convblocks.functional import (avg_pool2d, avg_pool2d_backward, global_avg_pool2d,
                                   global_avg_pool2d_backward, global_max_pool2d,
                                   global_max_pool2d_backward, max_pool2d, max_pool2d_backward,
                                   set_workspace_limit)
from convblocks import loops
from convblocks.functional import pool
from convblocks.functional import get_num_threads, set_num_threads

POOLS = [(max_pool2d, max_pool2d_backward), (avg_pool2d, avg_pool2d_backward)]
GLOBALS = [(global_max_pool2d, global_max_pool2d_backward),
           (global_avg_pool2d, global_avg_pool2d_backward)]


def _x(rng, shape=(2, 6, 6, 3), dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def _nchw(a):
    return a.transpose(0, 3, 1, 2)


def _nhwc(a):
    return a.transpose(0, 2, 3, 1)


# ----------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize("fwd", [max_pool2d, avg_pool2d])
def test_wrong_ndim_names_x(rng, fwd):
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, H, W, C\).*got 3-D"):
        fwd(_x(rng, (6, 6, 3)), 2)
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\).*got 5-D"):
        fwd(_x(rng, (1, 2, 6, 6, 3)), 2, data_format="NCHW")


@pytest.mark.parametrize("fwd", [max_pool2d, avg_pool2d, global_max_pool2d, global_avg_pool2d])
@pytest.mark.parametrize("bad, kind", [
    (np.zeros((1, 4, 4, 1), dtype=np.complex128), "complex128"),
    (np.zeros((1, 4, 4, 1), dtype=np.float16), "float16"),
    (np.full((1, 4, 4, 1), "a"), "<U1"),
])
def test_unsupported_dtype_is_a_type_error(fwd, bad, kind):
    args = (2,) if fwd in (max_pool2d, avg_pool2d) else ()
    with pytest.raises(TypeError, match=rf"x must hold float32, float64 or integer.*{kind}"):
        fwd(bad, *args)


@pytest.mark.parametrize("fwd", [max_pool2d, avg_pool2d, global_max_pool2d, global_avg_pool2d])
def test_bad_data_format(rng, fwd):
    args = (2,) if fwd in (max_pool2d, avg_pool2d) else ()
    with pytest.raises(ValueError, match=r"data_format must be one of 'NHWC', 'NCHW'; got 'NWHC'"):
        fwd(_x(rng), *args, data_format="NWHC")


@pytest.mark.parametrize("fwd", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("option, value, exc, words", [
    ("kernel_size", 0, ValueError, r"kernel_size must be >= 1; got 0"),
    ("kernel_size", (2, 0), ValueError, r"kernel_size\[1\] must be >= 1; got 0"),
    ("kernel_size", 2.0, TypeError, r"kernel_size must be an integer; got 2.0"),
    ("kernel_size", (2, 2, 2), ValueError, r"kernel_size must be an int or a pair"),
    ("stride", 0, ValueError, r"stride must be >= 1; got 0"),
    ("stride", True, TypeError, r"stride must be an integer; got True"),
    ("padding", -1, ValueError, r"padding must be >= 0; got -1"),
    ("padding", "full", ValueError, r"padding must be an int.*'valid' or 'same'; got 'full'"),
    ("padding", (1, 1, 1), ValueError, r"padding must be an int, \(h, w\)"),
    ("ceil_mode", 1, TypeError, r"ceil_mode must be True or False; got 1"),
])
def test_bad_option(rng, fwd, option, value, exc, words):
    kwargs = {"kernel_size": 2, option: value}
    with pytest.raises(exc, match=words):
        fwd(_x(rng), **kwargs)


def test_bad_max_only_and_avg_only_options(rng):
    with pytest.raises(ValueError, match=r"dilation must be >= 1; got 0"):
        max_pool2d(_x(rng), 2, dilation=0)
    with pytest.raises(TypeError, match=r"count_include_pad must be True or False; got 'yes'"):
        avg_pool2d(_x(rng), 2, count_include_pad="yes")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'dilation'"):
        avg_pool2d(_x(rng), 2, dilation=1)  # PyTorch's avg_pool2d has no dilation either
    with pytest.raises(TypeError, match=r"positional argument"):
        max_pool2d(_x(rng), 2, 2)  # options are keyword-only


@pytest.mark.parametrize("fwd", [max_pool2d, avg_pool2d])
def test_padding_at_most_half_the_kernel(rng, fwd):
    with pytest.raises(ValueError, match=rf"{fwd.__name__}: padding should be at most half "
                                         r"of the kernel_size.*3//2 = 1 along h.*\(2, 2\)"):
        fwd(_x(rng), 3, padding=2)
    with pytest.raises(ValueError, match=r"at most half.*along w; got padding \(0, 2\)"):
        fwd(_x(rng), 3, padding=((0, 0), (0, 2)))
    fwd(_x(rng), 3, padding=1)  # exactly half is fine


def test_dilated_max_pool_padding_limit_is_half_the_kernel_as_torch(rng):
    # PyTorch's rule: kernel_size // 2 whatever the dilation (2 dilated by 3 spans 4 rows)
    max_pool2d(_x(rng), 2, padding=1, dilation=3)
    with pytest.raises(ValueError, match=r"at most half of the kernel_size.*2//2 = 1.*"
                                         r"kernel_size 2 \(dilation 3 does not change this\)"):
        max_pool2d(_x(rng), 2, padding=2, dilation=3)
    y, cache = max_pool2d(_x(rng), 2, stride=1, padding="same", dilation=3)  # TensorFlow's rule
    assert max(max(p) for p in cache.padding) == 2 and y.shape[1:3] == _x(rng).shape[1:3]


@pytest.mark.parametrize("fwd", [max_pool2d, avg_pool2d])
def test_window_larger_than_padded_input(rng, fwd):
    with pytest.raises(ValueError, match=r"window \(kernel_size 5.*larger than the padded input "
                                         r"along w \(4 \+ 0 \+ 0 = 4\)"):
        fwd(_x(rng, (1, 6, 4, 2)), 5)
    with pytest.raises(ValueError, match=r"larger than the padded input along h"):
        fwd(_x(rng, (1, 3, 8, 2)), (4, 2), padding=0)
    with pytest.raises(ValueError, match=r"larger than the padded input along h"):
        fwd(_x(rng, (1, 2, 2, 0)), 3, data_format="NCHW")  # H = 0


def test_dilated_window_larger_than_input(rng):
    with pytest.raises(ValueError, match=r"kernel_size 3, dilation 3, span 7\) is larger"):
        max_pool2d(_x(rng), 3, dilation=3)


@pytest.mark.parametrize("fwd, bwd", POOLS + GLOBALS)
def test_backward_checks_dy_and_cache(rng, fwd, bwd):
    args = (2,) if fwd in (max_pool2d, avg_pool2d) else ()
    y, cache = fwd(_x(rng), *args)
    bad_shape = y.shape[:-1] + (y.shape[-1] + 1,)
    with pytest.raises(ValueError, match=rf"{bwd.__name__}: dy must have the forward output's "
                                         rf"shape \({y.shape[0]}, .*got \({bad_shape[0]}, "):
        bwd(np.zeros(bad_shape), cache)
    with pytest.raises(TypeError, match=r"dy must hold float32, float64 or integer"):
        bwd(np.zeros(y.shape, dtype=np.complex64), cache)
    with pytest.raises(TypeError, match=rf"{bwd.__name__}: cache must be the .*Cache returned "
                                        r"by the forward; got tuple"):
        bwd(np.zeros(y.shape), (cache,))


def test_global_max_backward_rejects_an_average_cache(rng):
    y, cache = global_avg_pool2d(_x(rng))
    with pytest.raises(ValueError, match=r"cache comes from global_avg_pool2d"):
        global_max_pool2d_backward(np.ones_like(y), cache)


def test_global_avg_backward_rejects_a_max_cache(rng):
    y, cache = global_max_pool2d(_x(rng))
    with pytest.raises(ValueError, match=r"cache comes from global_max_pool2d"):
        global_avg_pool2d_backward(np.ones_like(y), cache)


WINDOWED = [(max_pool2d, max_pool2d_backward, dict(kernel_size=2)),
            (max_pool2d, max_pool2d_backward, dict(kernel_size=3, stride=2, padding=1)),
            (avg_pool2d, avg_pool2d_backward, dict(kernel_size=3, stride=1, padding=1)),
            (global_max_pool2d, global_max_pool2d_backward, {}),
            (global_avg_pool2d, global_avg_pool2d_backward, {})]


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("fwd,bwd,options", WINDOWED, ids=lambda v: getattr(v, "__name__", str(v)))
def test_empty_batch_gives_empty_results_as_torch(fwd, bwd, options, data_format):
    torch = pytest.importorskip("torch")
    shape = (0, 5, 6, 3) if data_format == "NHWC" else (0, 3, 5, 6)
    y, cache = fwd(np.zeros(shape, np.float32), data_format=data_format, **options)
    dx = bwd(np.zeros(y.shape, np.float32), cache)
    assert y.dtype == dx.dtype == np.float32 and dx.shape == shape
    t = torch.zeros((0, 3, 5, 6))
    F = torch.nn.functional
    ref = {"max_pool2d": lambda: F.max_pool2d(t, **options),
           "avg_pool2d": lambda: F.avg_pool2d(t, **options),
           "global_max_pool2d": lambda: F.adaptive_max_pool2d(t, 1).flatten(1),
           "global_avg_pool2d": lambda: F.adaptive_avg_pool2d(t, 1).flatten(1)}[fwd.__name__]()
    expected = tuple(ref.shape) if y.ndim == 2 or data_format == "NCHW" else \
        tuple(ref.permute(0, 2, 3, 1).shape)
    assert y.shape == expected


@pytest.mark.parametrize("fwd", [max_pool2d, avg_pool2d, global_max_pool2d])
def test_zero_channels_raise_as_torch(fwd, rng):
    """PyTorch refuses zero channels in these pools (adaptive_avg_pool2d accepts them)."""
    options = {} if fwd is global_max_pool2d else dict(kernel_size=2)
    with pytest.raises(ValueError, match=rf"{fwd.__name__}: x must have at least one channel; "
                                         r"got shape \(2, 0, 4, 4\) \(axis 1 is C\)"):
        fwd(np.zeros((2, 0, 4, 4)), data_format="NCHW", **options)


@pytest.mark.parametrize("fwd", [global_max_pool2d, global_avg_pool2d])
def test_global_pools_reject_empty_images(fwd):
    with pytest.raises(ValueError, match=rf"{fwd.__name__}: x must have at least one spatial "
                                         r"position; got shape \(2, 0, 3, 4\)"):
        fwd(np.zeros((2, 0, 3, 4)))


# ----------------------------------------------------------------------------- ties


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tied_window_sends_its_whole_gradient_to_its_first_maximum(data_format, dtype):
    """2x2/2 on a constant image: every window's first maximum is its top-left pixel."""
    x = np.full((2, 4, 6, 3), 7.0, dtype=dtype)
    dy = np.arange(1.0, 1 + 2 * 2 * 3 * 3, dtype=dtype).reshape(2, 2, 3, 3)
    expected = np.zeros_like(x)
    expected[:, ::2, ::2, :] = dy
    if data_format == "NCHW":
        x, dy, expected = _nchw(x), _nchw(dy), _nchw(expected)
    y, cache = max_pool2d(x, 2, data_format=data_format)
    np.testing.assert_array_equal(y, np.full(dy.shape, 7.0))
    np.testing.assert_array_equal(max_pool2d_backward(dy, cache), expected)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_ties_across_overlapping_windows_count_once_per_window(data_format):
    """3x3/1 without padding on a 5x5 image whose maximum value 5 sits at three tied
    places: each window sends its gradient, once, to its first 5 in row-major order."""
    img = np.zeros((5, 5))
    img[1, 3] = img[2, 1] = img[3, 3] = 5.0
    x = img[None, :, :, None]
    dy = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    expected = np.zeros((5, 5))
    for i in range(3):
        for j in range(3):
            window = img[i:i + 3, j:j + 3]
            p, q = np.unravel_index(np.argmax(window), (3, 3))  # first maximum
            expected[i + p, j + q] += dy[0, i, j, 0]
    if data_format == "NCHW":
        x, dy = _nchw(x), _nchw(dy)
    y, cache = max_pool2d(x, 3, stride=1, data_format=data_format)
    dx = max_pool2d_backward(dy, cache)
    dx = dx[0, :, :, 0] if data_format == "NHWC" else dx[0, 0]
    np.testing.assert_array_equal(dx, expected)
    assert dx.sum() == dy.sum()  # each window's gradient lands exactly once


def test_global_max_tie_goes_to_the_first_position():
    x = np.zeros((1, 3, 3, 2))
    x[0, 1, 2, 0] = x[0, 2, 0, 0] = 4.0  # channel 0: tie between (1, 2) and (2, 0)
    y, cache = global_max_pool2d(x)
    dx = global_max_pool2d_backward(np.array([[3.0, 5.0]]), cache)
    expected = np.zeros_like(x)
    expected[0, 1, 2, 0] = 3.0
    expected[0, 0, 0, 1] = 5.0  # channel 1 is all zeros: first position
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(cache.argmax, [[1 * 3 + 2, 0]])


# ----------------------------------------------------------------------------- NaN and Inf


def test_nan_propagates_and_its_gradient_goes_to_the_windows_last_nan():
    """PyTorch's rule: a window holding NaN outputs NaN (IEEE propagation) and, since its
    scan moves the argmax on ``val > max or isnan(val)``, points to its last NaN."""
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = np.nan  # top-left window: two NaN
    x[0, 3, 3, 0] = np.nan  # bottom-right window: one NaN at its maximum's place
    y, cache = max_pool2d(x, 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[np.nan, 7.0], [13.0, np.nan]])
    dx = max_pool2d_backward(np.ones((1, 2, 2, 1)), cache)
    expected = np.zeros((4, 4))
    expected[1, 0] = expected[1, 3] = expected[3, 1] = expected[3, 3] = 1.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)
    np.testing.assert_array_equal(cache.indices()[0, :, :, 0], [[4, 7], [13, 15]])


def test_nan_in_average_and_global_pools_propagates():
    x = np.ones((1, 4, 4, 1))
    x[0, 0, 0, 0] = np.nan
    y, _ = avg_pool2d(x, 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[np.nan, 1.0], [1.0, 1.0]])
    assert np.isnan(global_avg_pool2d(x)[0]).all()
    y, cache = global_max_pool2d(x)
    assert np.isnan(y).all()
    np.testing.assert_array_equal(cache.argmax, [[0]])


def test_infinities():
    """+inf wins its window; an all -inf window outputs -inf, and its gradient goes to its
    first real element even when the window starts in the (-inf) padding."""
    x = np.zeros((1, 4, 4, 1))
    x[0, 2, 3, 0] = np.inf
    x[0, 0:2, 0:2, 0] = -np.inf
    y, cache = max_pool2d(x, 3, stride=2, padding=1)  # windows start at rows/cols -1, 1
    np.testing.assert_array_equal(y[0, :, :, 0], [[-np.inf, 0.0], [0.0, np.inf]])
    dx = max_pool2d_backward(np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1), cache)
    expected = np.zeros((4, 4))
    expected[0, 0] = 1.0  # rows/cols -1..1: real part all -inf; its first real element
    expected[0, 2] = 2.0  # rows -1..1, cols 1..3: first 0 in row-major order
    expected[2, 0] = 3.0  # rows 1..3, cols -1..1: first 0
    expected[2, 3] = 4.0  # rows/cols 1..3: the +inf
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("fwd, bwd", POOLS + GLOBALS)
@pytest.mark.parametrize("x_dtype, dy_dtype, y_dtype, dx_dtype", [
    (np.float32, np.float32, np.float32, np.float32),
    (np.float64, np.float64, np.float64, np.float64),
    (np.float32, np.float64, np.float32, np.float32),  # a backward keeps its forward's dtype
    (np.int64, np.int32, np.float64, np.float64),
    (np.bool_, np.float32, np.float64, np.float64),
])
def test_dtype_rules(rng, fwd, bwd, x_dtype, dy_dtype, y_dtype, dx_dtype):
    args = (2,) if fwd in (max_pool2d, avg_pool2d) else ()
    x = (rng.standard_normal((2, 4, 4, 3)) * 3).astype(x_dtype)
    y, cache = fwd(x, *args)
    assert y.dtype == y_dtype
    dy = (rng.standard_normal(y.shape) * 3).astype(dy_dtype)
    dx = bwd(dy, cache)
    assert dx.dtype == dx_dtype and dx.shape == x.shape
    ref_y, ref_cache = fwd(x.astype(np.float64), *args)
    np.testing.assert_allclose(y, ref_y, rtol=1e-6)
    np.testing.assert_allclose(dx, bwd(dy.astype(dx_dtype).astype(np.float64), ref_cache),
                               rtol=1e-6)


def test_integer_lists_are_accepted():
    y, cache = max_pool2d([[[[1], [2]], [[4], [3]]]], 2)
    assert y.dtype == np.float64 and y.tolist() == [[[[4.0]]]]
    assert max_pool2d_backward([[[[5]]]], cache).tolist() == [[[[0.0], [0.0]], [[5.0], [0.0]]]]


# ----------------------------------------------------------------------------- in-place safety


@pytest.mark.parametrize("fwd, bwd", POOLS + GLOBALS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_inputs_are_never_modified(rng, fwd, bwd, data_format):
    args = (3,) if fwd in (max_pool2d, avg_pool2d) else ()
    kwargs = {"stride": 2, "padding": 1} if args else {}
    x = _x(rng, (2, 7, 7, 3))
    x_before = x.copy()
    y, cache = fwd(x, *args, data_format=data_format, **kwargs)
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = bwd(dy, cache)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)
    assert not np.shares_memory(dx, x) and not np.shares_memory(dx, dy)
    assert not np.shares_memory(y, x)


def test_changing_the_returned_y_does_not_change_the_gradient(rng):
    """The cache keeps its own copy of y: an in-place edit of the output (say, a ReLU
    applied in place) must not move the argmax."""
    x = _x(rng, (2, 6, 6, 3))
    y, cache = max_pool2d(x, 2)
    dy = rng.standard_normal(y.shape)
    before = max_pool2d_backward(dy, cache)
    y[...] = 0.0
    np.testing.assert_array_equal(max_pool2d_backward(dy, cache), before)


# ----------------------------------------------------------------------------- argmax, chunking


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_indices_are_flat_positions_of_each_windows_maximum(rng, data_format):
    """``cache.indices()`` is PyTorch's return_indices: ``h*W + w`` of the maximum."""
    x = _x(rng, (2, 7, 6, 3))
    y, cache = max_pool2d(x, 3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True)
    ind = cache.indices()
    if data_format == "NCHW":
        y2, cache2 = max_pool2d(_nchw(x), 3, stride=2, padding=1, dilation=(1, 2),
                                ceil_mode=True, data_format="NCHW")
        np.testing.assert_array_equal(_nhwc(cache2.indices()), ind)
        np.testing.assert_array_equal(_nhwc(y2), y)
    flat = x.reshape(2, 7 * 6, 3)
    picked = np.take_along_axis(flat, ind.reshape(2, -1, 3), axis=1).reshape(y.shape)
    np.testing.assert_array_equal(picked, y)
    assert ind.dtype == np.int64 and ind.min() >= 0 and ind.max() < 7 * 6
    assert cache.argmax.dtype == np.uint8 and cache.argmax.max() < 9


@pytest.mark.parametrize("fwd, bwd, kwargs", [
    (max_pool2d, max_pool2d_backward, {"kernel_size": 3, "stride": 2, "padding": 1}),
    (max_pool2d, max_pool2d_backward, {"kernel_size": 2, "ceil_mode": True}),
    (avg_pool2d, avg_pool2d_backward, {"kernel_size": 3, "stride": 1, "padding": 1,
                                       "count_include_pad": False}),
])
def test_workspace_limit_chunks_the_batch_with_identical_results(rng, fwd, bwd, kwargs):
    """A 1 MiB limit forces several batch chunks (each padded example is ~0.4 MiB)."""
    x = _x(rng, (6, 3, 131, 131))
    y_ref, cache_ref = fwd(x, data_format="NCHW", **kwargs)
    dy = rng.standard_normal(y_ref.shape)
    dx_ref = bwd(dy, cache_ref)
    previous = set_workspace_limit(1 << 20)
    try:
        y, cache = fwd(x, data_format="NCHW", **kwargs)
        dx = bwd(dy, cache)
    finally:
        set_workspace_limit(previous)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)


@pytest.mark.parametrize("fwd, bwd, kwargs", [
    (max_pool2d, max_pool2d_backward, {"kernel_size": 2}),
    (max_pool2d, max_pool2d_backward, {"kernel_size": 3, "stride": 2, "padding": 1}),
    (avg_pool2d, avg_pool2d_backward, {"kernel_size": 2}),
])
def test_threads_give_identical_results(rng, fwd, bwd, kwargs):
    """Large enough for two threads (about 800K elements): the chunks split the batch."""
    x = _x(rng, (16, 32, 32, 48)).astype(np.float32)
    previous = set_num_threads(1)
    try:
        y1, cache1 = fwd(x, **kwargs)
        dy = rng.standard_normal(y1.shape).astype(np.float32)
        dx1 = bwd(dy, cache1)
        set_num_threads(2)
        y2, cache2 = fwd(x, **kwargs)
        dx2 = bwd(dy, cache2)
    finally:
        set_num_threads(previous)
    np.testing.assert_array_equal(y2, y1)
    np.testing.assert_array_equal(dx2, dx1)


def test_set_num_threads_checks_its_argument():
    with pytest.raises(ValueError, match=r"n must be >= 1; got 0"):
        set_num_threads(0)
    with pytest.raises(TypeError, match=r"n must be an integer; got 2.0"):
        set_num_threads(2.0)
    assert set_num_threads(get_num_threads()) == get_num_threads()


# ----------------------------------------------------------------------------- fast paths


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("kernel_size, stride", [(3, 2), (3, 1), (2, 2), (2, 1)])
def test_max_backward_with_many_ties_matches_the_literal_loops(rng, data_format, kernel_size,
                                                               stride):
    """ReLU-like inputs (about half zeros, small integers): many windows tie, also across
    overlapping windows; every fast path must agree with the textbook loops, which give
    each window's gradient to its first maximum. Two batch sizes reuse one geometry."""
    for n in (3, 2):
        x = np.maximum(rng.integers(-3, 3, size=(n, 9, 11, 4)), 0).astype(np.float64)
        y_ref, cache_ref = loops.pool_forward(x, {"f": kernel_size, "stride": stride}, "max")
        dy = rng.standard_normal(y_ref.shape)
        dx_ref = loops.pool_backward(dy, cache_ref, "max")
        if data_format == "NCHW":
            y, cache = max_pool2d(_nchw(x), kernel_size, stride=stride, data_format="NCHW")
            y, dx = _nhwc(y), _nhwc(max_pool2d_backward(_nchw(dy), cache))
        else:
            y, cache = max_pool2d(x, kernel_size, stride=stride)
            dx = max_pool2d_backward(dy, cache)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("fwd, bwd, kwargs", [
    (max_pool2d, max_pool2d_backward, {"kernel_size": 2}),
    (max_pool2d, max_pool2d_backward, {"kernel_size": 3, "stride": 2}),
    (max_pool2d, max_pool2d_backward, {"kernel_size": 3, "stride": 2, "padding": 1}),
    (avg_pool2d, avg_pool2d_backward, {"kernel_size": 2}),
    (avg_pool2d, avg_pool2d_backward, {"kernel_size": 3, "stride": 2, "padding": 1}),
])
def test_non_contiguous_x_and_dy_give_the_contiguous_results(rng, fwd, bwd, kwargs):
    """Strided views (every other column, a transposed layout) as x and dy."""
    x_view = _x(rng, (2, 8, 20, 3))[:, :, ::2, :]  # (2, 8, 10, 3), not contiguous
    y_ref, cache_ref = fwd(np.ascontiguousarray(x_view), **kwargs)
    dy_view = _nhwc(np.ascontiguousarray(_nchw(rng.standard_normal(y_ref.shape))))
    dx_ref = bwd(np.ascontiguousarray(dy_view), cache_ref)
    y, cache = fwd(x_view, **kwargs)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(bwd(dy_view, cache), dx_ref)


@pytest.mark.parametrize("inputs", ["distinct", "ties", "ties in one example", "nan", "inf"])
def test_tiled_max_backward_fast_path_matches_the_literal_loops(rng, monkeypatch, inputs):
    """Windows that tile an NHWC input with >= 32 channels take a one-comparison fast
    path that must keep only the first maximum of a tied window, and step aside for
    NaN or infinite outputs; the batch is split into one-example chunks so that chunks
    with and without ties meet in one call."""
    monkeypatch.setattr(pool, "_CACHE_BLOCK", 1)  # one example per chunk
    x = rng.standard_normal((3, 6, 8, 32))
    if inputs == "ties":
        x = np.maximum(rng.integers(-3, 3, size=x.shape), 0).astype(np.float64)
    elif inputs == "ties in one example":
        x[1, :2, :2, 5] = 7.0  # one 2x2 window, all four elements equal
    elif inputs == "nan":
        x[2, 3, 4, 0] = np.nan
    elif inputs == "inf":
        x[0, 0, 0, :] = np.inf
    y, cache = max_pool2d(x, 2)
    dy = rng.standard_normal(y.shape)
    dx = max_pool2d_backward(dy, cache)
    if inputs == "nan":  # PyTorch's rule: the window's gradient goes to its NaN
        expected = max_pool2d_backward(dy, max_pool2d(np.where(np.isnan(x), np.inf, x), 2)[1])
        np.testing.assert_array_equal(dx, expected)
        return
    y_ref, cache_ref = loops.pool_forward(x, {"f": 2, "stride": 2}, "max")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, loops.pool_backward(dy, cache_ref, "max"))


def test_global_max_points_a_channel_with_nan_to_its_last_nan():
    """PyTorch's adaptive_max_pool2d rule: the gradient goes to the channel's last NaN."""
    x = np.zeros((1, 2, 2, 1))
    x[0, 0, 0, 0] = x[0, 1, 1, 0] = np.nan
    y, cache = global_max_pool2d(x)
    assert np.isnan(y).all() and cache.argmax[0, 0] == 3
    dx = global_max_pool2d_backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0], [0, 1]])


def test_all_neginf_dilated_window_points_to_its_first_real_element():
    """A window of only -inf (and padding) sends its gradient to its first element inside
    the input, as PyTorch: with dilation 2 and padding 2, window (0, 0)'s taps are rows
    and columns -2, 0, 2, ..., so its first real element is (0, 0), at offset p = q = 1."""
    x = np.full((1, 9, 9, 1), -np.inf)
    y, cache = max_pool2d(x, 5, stride=3, padding=2, dilation=2, ceil_mode=True)
    assert np.isneginf(y).all()
    assert cache.indices()[0, 0, 0, 0] == 0
    dx = max_pool2d_backward(np.ones_like(y), cache)
    assert dx[0, 0, 0, 0] == 1

"""Pooling (max, average, global) and its backward against PyTorch.

Hypothesis covers kernel/stride/dilation as ints or pairs, stride None, every padding
form (int, (h, w), ((top, bottom), (left, right)) symmetric or not, 'valid', 'same'),
ceil_mode, count_include_pad, both layouts and both dtypes. Max-pooling inputs hold
pairwise-distinct values, so torch's argmax and ours cannot legitimately differ; ties get
their own test with a hand-built gradient (the FIRST maximum of a window in row-major
order receives the window's gradient, once). References run in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convblocks.functional import (avg_pool2d, avg_pool2d_backward, global_avg_pool2d,
                                   global_avg_pool2d_backward, global_max_pool2d,
                                   global_max_pool2d_backward, max_pool2d, max_pool2d_backward)
from torch_ref import (assert_close, avg_pool2d_ref, distinct_array, explicit_padding,
                       global_avg_pool2d_ref, global_max_pool2d_ref, max_pool2d_ref,
                       oracle_settings, random_array)

FORMATS = st.sampled_from(["NHWC", "NCHW"])
DTYPES = st.sampled_from([np.float32, np.float64])


def _int_or_pair(draw, h: int, w: int):
    """(h, w) as given, or the int h when both agree and hypothesis prefers it."""
    return h if h == w and draw(st.booleans()) else (h, w)


@st.composite
def pool_configs(draw, *, dilated: bool, medium: bool = False) -> dict:
    """A configuration within torch's rules (each pad at most kernel_size // 2, one
    window fits). Every padding form: int, (h, w), ((top, bottom), (left, right)) —
    symmetric or not — 'valid' and 'same'; asymmetric padding only without ceil_mode
    (torch has no reference for that pair). ``medium``: more channels, larger images."""
    extra = 24 if medium else 6
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if draw(st.integers(0, 3)) == 0:
        stride = None                                   # stride = kernel_size
    else:
        stride = _int_or_pair(draw, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dh, dw = (draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3]))) \
        if dilated else (1, 1)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    form = draw(st.sampled_from(["int_or_pair", "int_or_pair", "symmetric", "asymmetric",
                                 "valid", "same"]))
    if form == "same":
        h, w = draw(st.integers(1, 2 + extra)), draw(st.integers(1, 2 + extra))
        padding = "same"
        pads = explicit_padding("same", kernel_size=(kh, kw), stride=stride or (kh, kw),
                                dilation=(dh, dw), in_hw=(h, w))
        assume(max(pads[0]) <= kh // 2 and max(pads[1]) <= kw // 2)
    else:
        if form == "valid":
            padding, pads = "valid", ((0, 0), (0, 0))
        elif form == "asymmetric":
            pads = ((draw(st.integers(0, kh // 2)), draw(st.integers(0, kh // 2))),
                    (draw(st.integers(0, kw // 2)), draw(st.integers(0, kw // 2))))
            padding = pads
        else:
            ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
            pads = ((ph, ph), (pw, pw))
            padding = pads if form == "symmetric" else _int_or_pair(draw, ph, pw)
        min_h = max(1, span_h - sum(pads[0]))
        min_w = max(1, span_w - sum(pads[1]))
        h, w = draw(st.integers(min_h, min_h + extra)), draw(st.integers(min_w, min_w + extra))
    symmetric = pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]
    cfg = dict(n=draw(st.integers(1, 4 if medium else 2)),
               c=draw(st.integers(1, 32 if medium else 3)), h=h, w=w,
               kernel_size=_int_or_pair(draw, kh, kw), stride=stride, padding=padding,
               ceil_mode=symmetric and draw(st.booleans()), data_format=draw(FORMATS),
               dtype=draw(DTYPES), seed=draw(st.integers(0, 2**32 - 1)))
    if dilated:
        cfg["dilation"] = _int_or_pair(draw, dh, dw)
    else:
        cfg["count_include_pad"] = draw(st.booleans())
    return cfg


def x_shape(cfg: dict) -> tuple[int, int, int, int]:
    if cfg["data_format"] == "NHWC":
        return cfg["n"], cfg["h"], cfg["w"], cfg["c"]
    return cfg["n"], cfg["c"], cfg["h"], cfg["w"]


def engine_options(cfg: dict, *extra: str) -> dict:
    keys = ("stride", "padding", "ceil_mode", "data_format") + extra
    return {k: cfg[k] for k in keys}


def torch_options(cfg: dict, *extra: str) -> dict:
    return {k: cfg[k] for k in ("kernel_size", "stride", "padding", "ceil_mode", "data_format")
            + extra}


def check_pool(cfg: dict, x: np.ndarray, forward, backward, ref_fn, extra: tuple[str, ...]) -> None:
    """Forward and dx against torch for a random dy; inputs left untouched.

    A dilated max window can lie wholly in the padding (its output is -inf); torch then
    sends that window's gradient to an arbitrary position, while it depends on no input
    at all. Such windows' dy is zeroed for torch only: the engine must give them no
    gradient (see test_max_pool2d_window_wholly_in_padding).
    """
    ref_y = ref_fn(x, None, **torch_options(cfg, *extra))["y"]
    dy = random_array(np.random.default_rng(cfg["seed"] + 1), ref_y.shape, cfg["dtype"])
    ref = ref_fn(x, np.where(np.isfinite(ref_y), dy, 0), **torch_options(cfg, *extra))
    x0, dy0 = x.copy(), dy.copy()
    y, cache = forward(x, cfg["kernel_size"], **engine_options(cfg, *extra))
    assert_close(y, ref["y"], dtype=cfg["dtype"], name="y", config=cfg)
    dx = backward(dy, cache)
    assert_close(dx, ref["dx"], dtype=cfg["dtype"], name="dx", config=cfg)
    np.testing.assert_array_equal(x, x0, err_msg="x was modified")
    np.testing.assert_array_equal(dy, dy0, err_msg="dy was modified")


def check_max(cfg: dict) -> None:
    """check_pool for max pooling on distinct values, plus the cache's argmax positions
    against torch's return_indices (windows wholly in the padding excepted: they have no
    maximum, and torch reports an arbitrary position)."""
    x = distinct_array(np.random.default_rng(cfg["seed"]), x_shape(cfg), cfg["dtype"])
    check_pool(cfg, x, max_pool2d, max_pool2d_backward, max_pool2d_ref, ("dilation",))
    ref = max_pool2d_ref(x, None, **torch_options(cfg, "dilation"))
    indices = max_pool2d(x, cfg["kernel_size"], **engine_options(cfg, "dilation"))[1].indices()
    real = np.isfinite(ref["y"])
    np.testing.assert_array_equal(indices[real], ref["indices"][real],
                                  err_msg=f"argmax indices differ from torch's for {cfg}")


def check_avg(cfg: dict) -> None:
    x = random_array(np.random.default_rng(cfg["seed"]), x_shape(cfg), cfg["dtype"])
    check_pool(cfg, x, avg_pool2d, avg_pool2d_backward, avg_pool2d_ref, ("count_include_pad",))


@oracle_settings(max_examples=200)
@given(pool_configs(dilated=True))
def test_max_pool2d_matches_torch(cfg):
    check_max(cfg)


@oracle_settings(max_examples=200)
@given(pool_configs(dilated=False))
def test_avg_pool2d_matches_torch(cfg):
    check_avg(cfg)


@oracle_settings(max_examples=40)
@given(pool_configs(dilated=True, medium=True))
def test_max_pool2d_medium_shapes_match_torch(cfg):
    check_max(cfg)


@oracle_settings(max_examples=40)
@given(pool_configs(dilated=False, medium=True))
def test_avg_pool2d_medium_shapes_match_torch(cfg):
    check_avg(cfg)


def _cfg(kernel_size, *, stride=None, padding=0, ceil_mode=False, n=2, c=3, h=6, w=6,
         data_format="NHWC", dtype=np.float64, seed=0, **extra):
    return dict(n=n, c=c, h=h, w=w, kernel_size=kernel_size, stride=stride, padding=padding,
                ceil_mode=ceil_mode, data_format=data_format, dtype=dtype, seed=seed, **extra)


MAX_CASES = {
    "2x2/2 (LeNet)": _cfg(2, stride=2, dilation=1),
    "3x3/2 pad 1 (ResNet stem)": _cfg(3, stride=2, padding=1, h=7, w=8, dilation=1),
    "ceil_mode last window starts in the padding": _cfg(3, stride=2, padding=1, h=6, w=6,
                                                        ceil_mode=True, dilation=1),
    "ceil_mode window dropped (starts past input)": _cfg(2, stride=2, padding=1, h=5, w=5,
                                                         ceil_mode=True, dilation=1),
    "window equals input": _cfg((6, 5), stride=1, h=6, w=5, dilation=1),
    "dilated non-square NCHW float32": _cfg((2, 3), stride=(1, 2), padding=(1, 1), h=7, w=9,
                                            dilation=(3, 2), data_format="NCHW", dtype=np.float32),
    "stride above kernel": _cfg(1, stride=3, h=7, w=8, dilation=1),
    "17x16 window: more than 256 positions": _cfg((17, 16), stride=(2, 1), padding=(8, 3),
                                                  h=19, w=18, dilation=1),
    "same 2x2/1 pads bottom/right only": _cfg(2, stride=1, padding="same", h=5, w=4, dilation=1),
    "same 3x3/2 on odd size": _cfg(3, stride=2, padding="same", h=7, w=5, dilation=1),
    "asymmetric explicit": _cfg((3, 2), stride=(2, 1), padding=((0, 1), (1, 0)), h=6, w=5,
                                dilation=1, data_format="NCHW"),
    # ceil_mode lets a window be longer than the padded input: one window (torch's rule)
    "ceil_mode window longer than the input": _cfg(2, stride=2, h=1, w=4, ceil_mode=True,
                                                   dilation=1),
    "ceil_mode 5-wide window on 3 columns": _cfg((1, 5), stride=3, h=2, w=3, ceil_mode=True,
                                                 dilation=1, data_format="NCHW"),
    "ceil_mode dilated window longer than the input": _cfg((2, 1), stride=2, padding=(1, 0),
                                                           h=1, w=3, ceil_mode=True,
                                                           dilation=(2, 1)),
}

AVG_CASES = {
    "2x2/2": _cfg(2, stride=2, count_include_pad=True),
    "3x3/1 pad 1 exclude pad": _cfg(3, stride=1, padding=1, count_include_pad=False),
    "ceil_mode window past padded input, include pad": _cfg(3, stride=2, padding=1, h=6, w=6,
                                                            ceil_mode=True, count_include_pad=True),
    "ceil_mode window past padded input, exclude pad": _cfg(
        3, stride=2, padding=1, h=6, w=6, ceil_mode=True, count_include_pad=False),
    "ceil_mode no padding": _cfg(3, stride=2, h=6, w=8, ceil_mode=True, count_include_pad=True),
    "same 2x2/1 exclude pad": _cfg(2, stride=1, padding="same", h=4, w=5, count_include_pad=False),
    "same 3x3/2 include pad": _cfg(3, stride=2, padding="same", h=6, w=7, count_include_pad=True),
    "asymmetric exclude pad": _cfg((2, 3), stride=1, padding=((1, 0), (0, 1)),
                                   count_include_pad=False),
    "non-square NCHW float32": _cfg((3, 2), stride=(2, 1), padding=(1, 0), h=5, w=4,
                                    count_include_pad=False, data_format="NCHW", dtype=np.float32),
    # ceil_mode windows longer than the padded input: the divisor counts the padded input
    "ceil_mode window longer than the input": _cfg(2, stride=2, h=1, w=4, ceil_mode=True,
                                                   count_include_pad=True),
    "ceil_mode 4-wide window on 3 columns, include pad": _cfg(
        (1, 4), stride=3, h=2, w=3, ceil_mode=True, count_include_pad=True),
    "ceil_mode 4-wide window, pad 2, exclude pad": _cfg(
        (1, 4), stride=2, padding=(0, 2), h=2, w=3, ceil_mode=True, count_include_pad=False),
    "ceil_mode 5-wide window, pad 2, include pad": _cfg(
        (1, 5), stride=4, padding=(0, 2), h=2, w=3, ceil_mode=True, count_include_pad=True),
}


@pytest.mark.parametrize("cfg", MAX_CASES.values(), ids=MAX_CASES.keys())
def test_max_pool2d_edge_cases_match_torch(cfg):
    check_max(cfg)


@pytest.mark.parametrize("cfg", AVG_CASES.values(), ids=AVG_CASES.keys())
def test_avg_pool2d_edge_cases_match_torch(cfg):
    check_avg(cfg)


def test_max_pool2d_window_wholly_in_padding():
    """Kernel (1, 2) dilated by 2 with one column of padding on a one-column image: both
    taps of every window fall in the -inf padding, so y is -inf and, since y depends on
    no input, dx is zero (torch routes this gradient to a stray index instead)."""
    x = np.array([1.0, 2.0]).reshape(1, 2, 1, 1)                  # (N, H, W, C)
    y, cache = max_pool2d(x, (1, 2), padding=(0, 1), dilation=(1, 2))
    np.testing.assert_array_equal(y, np.full((1, 2, 1, 1), -np.inf))
    dx = max_pool2d_backward(np.array([10.0, 20.0]).reshape(1, 2, 1, 1), cache)
    np.testing.assert_array_equal(dx, np.zeros_like(x))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum_once(data_format, dtype):
    """2x2 windows, stride 1, on a 3x3 image whose bottom-right 2x2 block ties at 5:
    every window's first maximum in row-major order is pixel (1, 1), so it gets the sum
    of all four upstream gradients and the other tied pixels get nothing."""
    img = np.array([[0, 0, 0], [0, 5, 5], [0, 5, 5]], dtype=dtype)
    up = np.array([[1, 2], [3, 4]], dtype=dtype)
    expected = np.zeros((3, 3), dtype=dtype)
    expected[1, 1] = up.sum()
    # A second image (also a second channel) of all ties: window (i, j)'s first max is (i, j).
    flat = np.ones((3, 3), dtype=dtype)
    expected_flat = np.zeros((3, 3), dtype=dtype)
    expected_flat[:2, :2] = up
    x = np.stack([np.stack([img, flat]), np.stack([flat, img])])        # (N=2, C=2, 3, 3)
    dy = np.stack([np.stack([up, up])] * 2)                             # (2, 2, 2, 2)
    dx_expected = np.stack([np.stack([expected, expected_flat]),
                            np.stack([expected_flat, expected])])
    if data_format == "NHWC":
        x, dy, dx_expected = (a.transpose(0, 2, 3, 1) for a in (x, dy, dx_expected))
    y_img, y_flat = np.full((2, 2), 5, dtype=dtype), np.ones((2, 2), dtype=dtype)
    y_expected = np.stack([np.stack([y_img, y_flat]), np.stack([y_flat, y_img])])
    if data_format == "NHWC":
        y_expected = y_expected.transpose(0, 2, 3, 1)
    y, cache = max_pool2d(x, 2, stride=1, data_format=data_format)
    np.testing.assert_array_equal(y, y_expected)
    dx = max_pool2d_backward(np.ascontiguousarray(dy), cache)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, dx_expected)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_tie_in_one_window_with_stride_none(data_format, dtype):
    """Non-overlapping 2x2 windows (stride None) full of equal values: only each window's
    top-left pixel receives the gradient."""
    x = np.full((1, 4, 4, 1), 3.0, dtype=dtype)
    dy = np.arange(1, 5, dtype=dtype).reshape(1, 2, 2, 1)
    expected = np.zeros_like(x)
    expected[0, ::2, ::2, 0] = dy[0, :, :, 0]
    if data_format == "NCHW":
        x, dy, expected = (np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in (x, dy, expected))
    y, cache = max_pool2d(x, 2, data_format=data_format)
    np.testing.assert_array_equal(y, np.full(dy.shape, 3.0, dtype=dtype))
    np.testing.assert_array_equal(max_pool2d_backward(dy, cache), expected)


@oracle_settings(max_examples=40)
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6),
       data_format=FORMATS, dtype=DTYPES, seed=st.integers(0, 2**32 - 1))
def test_global_pools_match_torch(n, c, h, w, data_format, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (n, h, w, c) if data_format == "NHWC" else (n, c, h, w)
    x = distinct_array(rng, shape, dtype)
    dy = random_array(rng, (n, c), dtype)
    config = dict(shape=shape, data_format=data_format, dtype=dtype)
    for forward, backward, ref_fn, name in (
            (global_avg_pool2d, global_avg_pool2d_backward, global_avg_pool2d_ref, "avg"),
            (global_max_pool2d, global_max_pool2d_backward, global_max_pool2d_ref, "max")):
        ref = ref_fn(x, dy, data_format=data_format)
        y, cache = forward(x, data_format=data_format)
        assert_close(y, ref["y"], dtype=dtype, name=f"global {name} y", config=config)
        dx = backward(dy, cache)
        assert_close(dx, ref["dx"], dtype=dtype, name=f"global {name} dx", config=config)


def test_integer_input_pools_in_float64():
    x = np.random.default_rng(3).permutation(2 * 5 * 5 * 3).reshape(2, 5, 5, 3)
    for forward, backward, ref in (
            (max_pool2d, max_pool2d_backward, max_pool2d_ref),
            (avg_pool2d, avg_pool2d_backward, avg_pool2d_ref)):
        y, cache = forward(x, 3, stride=2, padding=1)
        dy = np.ones_like(y)
        want = ref(x, dy, kernel_size=3, stride=2, padding=1)
        assert_close(y, want["y"], dtype=np.float64, name=f"{forward.__name__} y")
        assert_close(backward(dy, cache), want["dx"], dtype=np.float64,
                     name=f"{forward.__name__} dx")
    for forward, backward in ((global_avg_pool2d, global_avg_pool2d_backward),
                              (global_max_pool2d, global_max_pool2d_backward)):
        y, cache = forward(x)
        assert y.dtype == np.float64 and backward(np.ones_like(y), cache).dtype == np.float64


# The benchmark's pooling shapes (batch reduced), NHWC, where fast paths live: the
# reshape trick for tiling windows (2x2/2) and offset loops for overlapping ones (3x3/2).
BENCH_SHAPES = {"LeNet 1": (4, 28, 28, 6), "LeNet 2": (4, 10, 10, 16),
                "32x32x64": (2, 32, 32, 64), "28x28x128": (2, 28, 28, 128)}
BENCH_POOLS = {"max 2x2/2": ("max", 2, 2), "avg 2x2/2": ("avg", 2, 2), "max 3x3/2": ("max", 3, 2)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", BENCH_POOLS.values(), ids=BENCH_POOLS.keys())
@pytest.mark.parametrize("shape", BENCH_SHAPES.values(), ids=BENCH_SHAPES.keys())
def test_benchmark_shapes_match_torch(shape, pool, dtype):
    kind, k, s = pool
    n, h, w, c = shape
    if kind == "max":
        check_max(_cfg(k, stride=s, n=n, h=h, w=w, c=c, dtype=dtype, dilation=1))
    else:
        check_avg(_cfg(k, stride=s, n=n, h=h, w=w, c=c, dtype=dtype, count_include_pad=True))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_non_contiguous_inputs_match_torch(data_format):
    """Fortran-ordered x and dy give the same values as C-ordered ones."""
    shape = (3, 7, 6, 2) if data_format == "NHWC" else (3, 2, 7, 6)
    x = distinct_array(np.random.default_rng(1), shape, np.float64)
    opts = dict(stride=2, padding=1, data_format=data_format)
    for forward, backward, ref_fn in ((max_pool2d, max_pool2d_backward, max_pool2d_ref),
                                      (avg_pool2d, avg_pool2d_backward, avg_pool2d_ref)):
        y, cache = forward(np.asfortranarray(x), 3, **opts)
        dy = np.asfortranarray(random_array(np.random.default_rng(2), y.shape, np.float64))
        assert not dy.flags.c_contiguous
        ref = ref_fn(x, dy, kernel_size=3, **opts)
        assert_close(y, ref["y"], dtype=np.float64, name=f"{forward.__name__} y")
        assert_close(backward(dy, cache), ref["dx"], dtype=np.float64,
                     name=f"{forward.__name__} dx")


def test_max_pool2d_ties_across_overlapping_windows_with_padding():
    """3x3/1 pooling with padding 1 on a constant 3x3 image: window (i, j) covers rows
    i-1..i+1, so its first real maximum is pixel (max(i-1, 0), max(j-1, 0)). Each pixel's
    gradient is the sum of dy over the windows that chose it, counted once per window."""
    x = np.full((1, 3, 3, 1), 2.0)
    dy = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    expected = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            expected[max(i - 1, 0), max(j - 1, 0)] += dy[0, i, j, 0]
    y, cache = max_pool2d(x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(y, np.full((1, 3, 3, 1), 2.0))
    np.testing.assert_array_equal(max_pool2d_backward(dy, cache)[0, :, :, 0], expected)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_dilated_max_pool2d_same_padding_beyond_kernel_half(ceil_mode):
    """Numeric padding follows torch 2.13 (at most kernel_size // 2, even when dilated:
    kernel 3, dilation 3, padding 2 raises in both). 'same' (TensorFlow's rule, no torch
    equivalent) may need up to half the dilated span: here kernel 3 dilated by 3 spans 7,
    'same' with stride 2 pads 2 or 3 per side. Its values must equal pooling the
    explicitly -inf-padded input without padding."""
    x = distinct_array(np.random.default_rng(5), (2, 6, 7, 3), np.float64)
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="half of kernel size"):
        torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 2, 3, ceil_mode=ceil_mode)
    with pytest.raises(ValueError, match=r"at most half of the kernel_size.*3//2 = 1.*"
                                         r"dilation 3 does not change this"):
        max_pool2d(x, 3, stride=2, padding=2, dilation=3, ceil_mode=ceil_mode)
    y, cache = max_pool2d(x, 3, stride=2, padding="same", dilation=3, ceil_mode=ceil_mode)
    # TensorFlow's 'same': ceil(n / 2) outputs; rows pad 6+... = (2, 3), columns (3, 3)
    assert y.shape == (2, 3, 4, 3)
    (t, b), (l, r) = cache.padding
    assert (t, b, l, r) == (2, 3, 3, 3)
    dy = random_array(np.random.default_rng(6), y.shape, np.float64)
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=-np.inf)
    ref = max_pool2d_ref(xp, dy, kernel_size=3, stride=2, dilation=3)
    assert_close(y, ref["y"], dtype=np.float64, name="y")
    assert_close(max_pool2d_backward(dy, cache), ref["dx"][:, t:t + 6, l:l + 7],
                 dtype=np.float64, name="dx")


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_propagates_nan_as_torch(data_format, dtype):
    """NaN propagates through max pooling as in torch: a window holding a NaN outputs NaN,
    its gradient and return_indices go where torch sends them (its last NaN)."""
    cfg = _cfg(3, stride=2, padding=1, n=2, c=3, h=7, w=6, data_format=data_format,
               dtype=dtype, dilation=1)
    x = distinct_array(np.random.default_rng(8), x_shape(cfg), dtype)
    flat = x.reshape(-1)
    flat[np.random.default_rng(9).choice(flat.size, size=12, replace=False)] = np.nan
    ref_y = max_pool2d_ref(x, None, **torch_options(cfg, "dilation"))["y"]
    assert np.isnan(ref_y).any()
    dy = random_array(np.random.default_rng(10), ref_y.shape, dtype)
    ref = max_pool2d_ref(x, dy, **torch_options(cfg, "dilation"))
    y, cache = max_pool2d(x, 3, **engine_options(cfg, "dilation"))
    assert_close(y, ref["y"], dtype=dtype, name="y with NaN")
    assert_close(max_pool2d_backward(dy, cache), ref["dx"], dtype=dtype, name="dx with NaN")
    np.testing.assert_array_equal(cache.indices(), ref["indices"])


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [3, 40])  # 40: the tiled one-comparison path (NHWC)
@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (2, 3, 0), ((1, 2), (1, 2), 0),
                                                      (3, 3, 1), (3, 2, 1), (2, 1, 0)])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool2d_backward_of_non_finite_dy_matches_torch_bit_for_bit(
        data_format, dtype, channels, kernel, stride, padding, ties):
    """A NaN or infinite gradient reaches only its window's argmax, as in torch (which
    adds dy into zeros there): every element no window picked is exactly +0.0, never
    ``nan * 0`` or ``-0.0`` (a 0/1 mask times dy gave both)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 8, channels)).astype(dtype)
    if ties:
        x = np.maximum(np.round(x), 0)
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y, cache = max_pool2d(x, kernel, stride=stride, padding=padding, data_format=data_format)
    dy = rng.standard_normal(y.shape).astype(dtype)
    flat = dy.reshape(-1)
    flat[::3], flat[1::7], flat[2::5] = np.nan, np.inf, -np.inf
    ref = max_pool2d_ref(x, dy, kernel_size=kernel, stride=stride, padding=padding,
                         data_format=data_format)["dx"]
    with np.errstate(invalid="ignore"):  # inf + -inf where overlapping windows share an argmax
        dx = max_pool2d_backward(dy, cache)
    # NaN and infinities exactly where torch has them, the finite values to rounding
    # (the reference sums overlapping windows in float64), +0.0 where torch has +0.0
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(ref))
    np.testing.assert_array_equal(np.where(np.isinf(ref), ref, 0), np.where(np.isinf(dx), dx, 0))
    finite = np.isfinite(ref)
    assert_close(dx[finite], ref[finite], dtype=dtype, name="finite dx")
    zeros = ref == 0
    np.testing.assert_array_equal(np.signbit(dx[zeros]), np.signbit(ref[zeros]))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_tiny_workspace_limit_still_matches_torch(tiny_workspace, data_format):
    """A 1 MiB limit splits a 9-image float64 batch into chunks; values must not change."""
    big = dict(n=9, c=16, h=32, w=32, data_format=data_format)
    check_max(_cfg(3, stride=2, padding=1, dilation=1, **big))
    check_avg(_cfg(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False, **big))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_interleaved_calls_do_not_share_buffers(kind):
    """Two forwards, then the backwards in the other order: each cache stays valid and
    the first output is not overwritten by the second call."""
    forward, backward, ref_fn = ((max_pool2d, max_pool2d_backward, max_pool2d_ref) if kind == "max"
                                 else (avg_pool2d, avg_pool2d_backward, avg_pool2d_ref))
    opts = dict(kernel_size=3, stride=2, padding=1)
    xs = [distinct_array(np.random.default_rng(s), (3, 9, 8, 4), np.float32) for s in (1, 2)]
    outs = [forward(x, opts["kernel_size"], stride=2, padding=1) for x in xs]
    y1_copy = outs[0][0].copy()
    dys = [random_array(np.random.default_rng(s), outs[0][0].shape, np.float32) for s in (3, 4)]
    dxs = [backward(dys[1], outs[1][1]), backward(dys[0], outs[0][1])][::-1]
    np.testing.assert_array_equal(outs[0][0], y1_copy, err_msg="y of the first call changed")
    for x, (y, _), dy, dx in zip(xs, outs, dys, dxs):
        ref = ref_fn(x, dy, **opts)
        assert_close(y, ref["y"], dtype=np.float32, name=f"{kind} y")
        assert_close(dx, ref["dx"], dtype=np.float32, name=f"{kind} dx")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [2, 3])
# NHWC's tiled path walks ties from 32 channels on (fewer: the general path); NCHW
# windows take the general path
@pytest.mark.parametrize("data_format,c,wo", [("NHWC", 6, 3), ("NHWC", 32, 3), ("NHWC", 40, 3),
                                              ("NCHW", 5, 3), ("NCHW", 3, 33)])
def test_tiled_max_pool2d_with_many_ties_matches_torch(data_format, c, wo, kernel, dtype):
    """Windows that tile the input, on ReLU-like data (half zeros, small integers):
    most windows tie, and each sends its gradient to its first maximum only."""
    rng = np.random.default_rng(c * 10 + kernel)
    shape = (3, 4 * kernel, wo * kernel, c) if data_format == "NHWC" else (3, c, 4 * kernel, wo * kernel)
    x = np.maximum(rng.integers(-3, 3, size=shape), 0).astype(dtype)
    y, cache = max_pool2d(x, kernel, data_format=data_format)
    dy = random_array(rng, y.shape, dtype)
    ref = max_pool2d_ref(x, dy, kernel_size=kernel, data_format=data_format)
    config = (data_format, c, wo, kernel)
    assert_close(y, ref["y"], dtype=dtype, name="y", config=config)
    assert_close(max_pool2d_backward(dy, cache), ref["dx"], dtype=dtype, name="dx", config=config)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [2, (2, 3)])
def test_tiled_max_pool2d_nchw_distinct_values_match_torch(kernel, dtype):
    """NCHW windows that tile the input, no ties."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(kh * 10 + kw)
    x = distinct_array(rng, (4, 6, 5 * kh, 7 * kw), dtype)
    y, cache = max_pool2d(x, kernel, data_format="NCHW")
    dy = random_array(rng, y.shape, dtype)
    ref = max_pool2d_ref(x, dy, kernel_size=kernel, data_format="NCHW")
    assert_close(y, ref["y"], dtype=dtype, name="y", config=kernel)
    assert_close(max_pool2d_backward(dy, cache), ref["dx"], dtype=dtype, name="dx", config=kernel)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [2, (3, 2), (1, 3)])
def test_tiled_avg_pool2d_matches_torch(kernel, dtype, data_format):
    """Windows that tile the input: the backward spreads each share with broadcasting
    copies, laid out differently for NHWC and NCHW; large enough for two chunks."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(kh * 10 + kw)
    shape = (8, 7 * kh, 5 * kw, 24) if data_format == "NHWC" else (8, 24, 7 * kh, 5 * kw)
    x = random_array(rng, shape, dtype)
    y, cache = avg_pool2d(x, kernel, data_format=data_format)
    dy = random_array(rng, y.shape, dtype)
    ref = avg_pool2d_ref(x, dy, kernel_size=kernel, data_format=data_format)
    assert_close(y, ref["y"], dtype=dtype, name="y", config=(kernel, data_format))
    assert_close(avg_pool2d_backward(dy, cache), ref["dx"], dtype=dtype, name="dx",
                 config=(kernel, data_format))

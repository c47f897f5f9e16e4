"""conv2d and conv2d_backward against PyTorch (the oracle), values and dtypes.

Hypothesis draws configurations over every option (stride, dilation, groups incl.
depthwise, non-square kernels, H != W, every padding form incl. 'same' at strides 1-3,
bias or none, NHWC/NCHW, float32/float64); explicit cases pin the edge cases. The
reference (tests/functional/torch_ref.py) runs in float64, so float32 results are held
to 1e-4 and float64 results to 1e-10 relative to max |reference|.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convblocks.functional import conv2d, conv2d_backward, conv2d_cache
from torch_ref import (assert_bias_grad_and_inputs_kept, assert_close, conv2d_ref,
                       explicit_padding, oracle_settings, pair, random_array)

DTYPES = st.sampled_from([np.float32, np.float64])
FORMATS = st.sampled_from(["NHWC", "NCHW"])


def int_or_pair(lo: int, hi: int) -> st.SearchStrategy:
    """An int in [lo, hi] or an (h, w) pair of them."""
    one = st.integers(lo, hi)
    return st.one_of(one, st.tuples(one, one))


@st.composite
def paddings(draw) -> object:
    """Every padding form the engine accepts."""
    p = st.integers(0, 3)
    return draw(st.one_of(p, st.tuples(p, p), st.tuples(st.tuples(p, p), st.tuples(p, p)),
                          st.just("valid"), st.just("same")))


@st.composite
def conv_configs(draw, *, medium: bool = False) -> dict:
    """A valid conv2d configuration: shapes, options, dtype and a data seed.

    ``medium`` draws more channels, larger images and batches (still well under a
    second each), to reach kernels' size-dependent paths (batch blocks, small-C layouts,
    3x3 special cases) that tiny shapes skip.
    """
    ch = 24 if medium else 4           # most channels of a plain convolution
    per_group = 6 if medium else 2
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "plain":
        groups, c_in, c_out = 1, draw(st.integers(1, ch)), draw(st.integers(1, ch))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        c_in = groups * draw(st.integers(1, per_group))
        c_out = groups * draw(st.integers(1, per_group))
    else:  # depthwise: one filter group per input channel, channel multiplier 1-2
        groups = c_in = draw(st.integers(2, 2 * per_group))
        c_out = c_in * draw(st.integers(1, 2))
    kmax = 5 if medium else 4
    kh, kw = draw(st.integers(1, kmax)), draw(st.integers(1, kmax))
    stride = draw(int_or_pair(1, 3))
    dilation = draw(st.one_of(st.just(1), int_or_pair(1, 3)))
    padding = draw(paddings())
    # Smallest input whose padded size holds one (dilated) window.
    (dh, dw) = pair(dilation)
    if isinstance(padding, str):
        pad_h = pad_w = 0
    else:
        (t, b), (l, r) = explicit_padding(padding, kernel_size=(kh, kw), stride=stride,
                                          dilation=dilation, in_hw=(1, 1))
        pad_h, pad_w = t + b, l + r
    min_h = 1 if padding == "same" else max(1, dh * (kh - 1) + 1 - pad_h)
    min_w = 1 if padding == "same" else max(1, dw * (kw - 1) + 1 - pad_w)
    extra = 20 if medium else 6
    h = draw(st.integers(min_h, min_h + extra))
    w = draw(st.integers(min_w, min_w + extra))
    return dict(n=draw(st.integers(1, 6 if medium else 3)), h=h, w=w, c_in=c_in, c_out=c_out,
                kernel=(kh, kw), groups=groups, stride=stride, dilation=dilation,
                padding=padding, bias=draw(st.booleans()), data_format=draw(FORMATS),
                dtype=draw(DTYPES), seed=draw(st.integers(0, 2**32 - 1)))


@st.composite
def winograd_configs(draw) -> dict:
    """3x3, stride 1, dilation 1, groups 1 with 16+ channels each way: the shape class a
    fast Winograd F(2x2, 3x3) kernel takes over (forward, and the input gradient as a
    stride-1 correlation). Odd and even output sizes (partial 2x2 tiles), every padding
    form, batches that span several blocks."""
    padding = draw(st.one_of(st.integers(0, 2), st.just("same"), st.just("valid"),
                             st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                                       st.tuples(st.integers(0, 3), st.integers(0, 3)))))
    pads = explicit_padding(padding, kernel_size=3, stride=1, dilation=1, in_hw=(9, 9))
    min_h = max(1, 3 - sum(pads[0])) if padding != "same" else 1
    min_w = max(1, 3 - sum(pads[1])) if padding != "same" else 1
    return dict(n=draw(st.integers(1, 5)), h=draw(st.integers(min_h, 17)),
                w=draw(st.integers(min_w, 17)), c_in=draw(st.integers(16, 40)),
                c_out=draw(st.integers(16, 40)), kernel=(3, 3), groups=1, stride=1,
                dilation=1, padding=padding, bias=draw(st.booleans()),
                data_format=draw(FORMATS), dtype=draw(DTYPES),
                seed=draw(st.integers(0, 2**32 - 1)))


def make_inputs(cfg: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """x in cfg's layout, weights HWIO (NHWC) or OIHW (NCHW), bias or None."""
    rng = np.random.default_rng(cfg["seed"])
    (kh, kw), dtype = cfg["kernel"], cfg["dtype"]
    ci_g = cfg["c_in"] // cfg["groups"]
    if cfg["data_format"] == "NHWC":
        x_shape, w_shape = (cfg["n"], cfg["h"], cfg["w"], cfg["c_in"]), (kh, kw, ci_g, cfg["c_out"])
    else:
        x_shape, w_shape = (cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]), (cfg["c_out"], ci_g, kh, kw)
    x = random_array(rng, x_shape, dtype)
    w = random_array(rng, w_shape, dtype)
    b = random_array(rng, (cfg["c_out"],), dtype) if cfg["bias"] else None
    return x, w, b


def options(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("stride", "padding", "dilation", "groups", "data_format")}


def reference(cfg: dict, x, w, b) -> tuple[dict, np.ndarray]:
    """torch's forward and gradients for a random upstream gradient dy (also returned)."""
    y_shape = conv2d_ref(x, w, b, None, **options(cfg))["y"].shape
    dy = random_array(np.random.default_rng(cfg["seed"] + 1), y_shape, cfg["dtype"])
    return conv2d_ref(x, w, b, dy, **options(cfg)), dy


def check_forward_backward(cfg: dict) -> None:
    """Forward y and every gradient against torch; inputs left untouched."""
    x, w, b = make_inputs(cfg)
    ref, dy = reference(cfg, x, w, b)
    originals = [a.copy() for a in (x, w, b, dy) if a is not None]
    y, cache = conv2d(x, w, b, **options(cfg))
    assert_close(y, ref["y"], dtype=cfg["dtype"], name="y", config=cfg)
    dx, dw, db = conv2d_backward(dy, cache)
    assert_close(dx, ref["dx"], dtype=cfg["dtype"], name="dx", config=cfg)
    assert_close(dw, ref["dw"], dtype=cfg["dtype"], name="dw", config=cfg)
    assert_bias_grad_and_inputs_kept(db, ref, b, originals, [x, w, b, dy], cfg)


@oracle_settings(max_examples=300)
@given(conv_configs())
def test_conv2d_forward_and_gradients_match_torch(cfg):
    check_forward_backward(cfg)


@oracle_settings(max_examples=80)
@given(conv_configs(medium=True))
def test_conv2d_medium_shapes_match_torch(cfg):
    check_forward_backward(cfg)


def assert_same(got, want, dtype, what: str, cfg: dict) -> None:
    """Two engine results that should agree to rounding: the same dtype and shape, and
    within 1e-12 (float64) or 1e-5 (float32) of max |want|."""
    if want is None:
        assert got is None, f"{what}: expected None for {cfg}"
        return
    assert got.dtype == want.dtype and got.shape == want.shape, f"{what} for {cfg}"
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale, err_msg=f"{what} for {cfg}")


@oracle_settings(max_examples=40)
@given(winograd_configs())
def test_conv2d_3x3_stride1_many_channels_match_torch(cfg):
    check_forward_backward(cfg)


@oracle_settings(max_examples=60)
@given(conv_configs())
def test_compute_dx_false_and_conv2d_cache_give_the_same_gradients(cfg):
    """compute_dx=False: dx None, dw/db unchanged; conv2d_cache(...) + backward equals the
    forward's cache + backward (the exercise's conv_backward has no forward cache)."""
    x, w, b = make_inputs(cfg)
    ref, dy = reference(cfg, x, w, b)
    _, cache = conv2d(x, w, b, **options(cfg))
    dx, dw, db = conv2d_backward(dy, cache)

    no_dx, dw2, db2 = conv2d_backward(dy, cache, compute_dx=False)
    assert no_dx is None, f"compute_dx=False must give dx None for {cfg}"
    assert_close(dw2, ref["dw"], dtype=cfg["dtype"], name="dw (compute_dx=False)", config=cfg)
    assert_same(dw2, dw, cfg["dtype"], "dw with compute_dx=False", cfg)
    assert_same(db2, db, cfg["dtype"], "db with compute_dx=False", cfg)

    grads = conv2d_backward(dy, conv2d_cache(x, w, b, **options(cfg)))
    for name, got, fwd in zip(("dx", "dw", "db"), grads, (dx, dw, db)):
        assert_same(got, fwd, cfg["dtype"], f"{name}: conv2d_cache vs the forward's cache", cfg)


def _cfg(n=2, h=5, w=6, c_in=3, c_out=4, kernel=(3, 3), groups=1, stride=1, dilation=1,
         padding=0, bias=True, data_format="NHWC", dtype=np.float64, seed=0) -> dict:
    return dict(n=n, h=h, w=w, c_in=c_in, c_out=c_out, kernel=kernel, groups=groups,
                stride=stride, dilation=dilation, padding=padding, bias=bias,
                data_format=data_format, dtype=dtype, seed=seed)


EDGE_CASES = {
    # The exercise's conv_forward example: A_prev (10, 4, 4, 3), W (2, 2, 3, 8), pad 2, stride 2.
    "exercise": _cfg(n=10, h=4, w=4, c_in=3, c_out=8, kernel=(2, 2), padding=2, stride=2),
    "1x1 kernel stride 2": _cfg(kernel=(1, 1), stride=2),
    "window equals input": _cfg(h=4, w=3, kernel=(4, 3)),
    "window equals padded input": _cfg(h=2, w=2, kernel=(4, 4), padding=1),
    "stride above kernel skips pixels": _cfg(h=9, w=8, kernel=(2, 2), stride=3),
    "padding above kernel": _cfg(h=3, w=3, kernel=(2, 2), padding=3),
    "non-square everything": _cfg(h=7, w=4, kernel=(3, 1), stride=(2, 1), dilation=(1, 2),
                                  padding=((2, 0), (1, 3))),
    "same stride 1 even kernel": _cfg(h=6, w=5, kernel=(2, 4), padding="same"),
    "same stride 2 odd size": _cfg(h=7, w=7, kernel=(3, 3), stride=2, padding="same"),
    "same stride 2 even size": _cfg(h=8, w=6, kernel=(3, 3), stride=2, padding="same"),
    "same stride 3 dilated": _cfg(h=10, w=8, kernel=(3, 2), stride=3, dilation=2, padding="same"),
    "same with stride above kernel": _cfg(h=5, w=7, kernel=(1, 2), stride=3, padding="same"),
    "valid": _cfg(h=6, w=7, kernel=(3, 2), padding="valid"),
    "depthwise multiplier 3": _cfg(c_in=3, c_out=9, groups=3, kernel=(3, 3), padding=1),
    "groups 2 NCHW float32": _cfg(c_in=4, c_out=6, groups=2, data_format="NCHW", dtype=np.float32),
    "single pixel": _cfg(n=1, h=1, w=1, c_in=1, c_out=1, kernel=(1, 1)),
    "dilation 3 NCHW no bias": _cfg(h=9, w=9, dilation=3, bias=False, data_format="NCHW"),
    "float32 wide channels": _cfg(n=2, h=6, w=6, c_in=24, c_out=20, padding=1, dtype=np.float32),
}


@pytest.mark.parametrize("cfg", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_conv2d_edge_cases_match_torch(cfg):
    check_forward_backward(cfg)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_dtype_rules(data_format):
    """float32 stays float32 (outputs and every gradient); integer input and mixed
    float32/float64 compute in float64 — and the values still match torch."""
    cfg = _cfg(data_format=data_format, padding=1)
    x, w, b = make_inputs(cfg)
    _, dy = reference(cfg, x, w, b)

    y, cache = conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32),
                      **options(cfg))
    grads = conv2d_backward(dy.astype(np.float32), cache)
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)

    xi = np.round(x * 4).astype(np.int64)                   # integer input
    w32, b32 = w.astype(np.float32), b.astype(np.float32)
    ref_i = conv2d_ref(xi, w32, b32, dy, **options(cfg))
    y, cache = conv2d(xi, w32, b32, **options(cfg))
    assert_close(y, ref_i["y"], dtype=np.float64, name="y (int x, float32 w)")
    dx, dw, db = conv2d_backward(dy, cache)
    for name, got in (("dx", dx), ("dw", dw), ("db", db)):
        assert_close(got, ref_i[name], dtype=np.float64, name=f"{name} (int x)")

    y, cache = conv2d(x.astype(np.float32), w, b, **options(cfg))   # mixed -> float64
    assert_close(y, conv2d_ref(x.astype(np.float32), w, b, None, **options(cfg))["y"],
                 dtype=np.float64, name="y (float32 x, float64 w)")
    assert all(g.dtype == np.float64 for g in conv2d_backward(dy, cache))


# The benchmark's layer shapes (batch reduced): big enough to reach the engine's blocked,
# multi-chunk paths (batch blocks of a few images; odd batches leave a partial block).
BENCH_SHAPES = {
    # name: (N, H, W, C_in, kernel, C_out, pad, stride)
    "(a) exercise": (10, 4, 4, 3, 2, 8, 2, 2),
    "(b) LeNet conv1": (5, 28, 28, 1, 5, 6, 2, 1),
    "(c) LeNet conv2": (5, 14, 14, 6, 5, 16, 0, 1),
    "(d) 3x3 64->64": (5, 32, 32, 64, 3, 64, 1, 1),
    "(e) 3x3/2 64->128": (3, 56, 56, 64, 3, 128, 1, 2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", BENCH_SHAPES.values(), ids=BENCH_SHAPES.keys())
def test_benchmark_shapes_match_torch(shape, dtype):
    n, h, w, c_in, k, c_out, pad, stride = shape
    layout = "NCHW" if dtype == np.float64 and c_in == 64 else "NHWC"
    check_forward_backward(_cfg(n=n, h=h, w=w, c_in=c_in, c_out=c_out, kernel=(k, k),
                                padding=pad, stride=stride, data_format=layout, dtype=dtype))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_tiny_workspace_limit_still_matches_torch(tiny_workspace, data_format):
    """A 1 MiB limit forces one image (or less) per chunk; values must not change."""
    check_forward_backward(_cfg(n=5, h=24, w=20, c_in=16, c_out=24, kernel=(3, 3), padding=1,
                                stride=1, groups=2, data_format=data_format, dtype=np.float32))
    check_forward_backward(_cfg(n=3, h=17, w=17, c_in=8, c_out=8, kernel=(5, 5), padding="same",
                                stride=2, dilation=2, data_format=data_format))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_non_contiguous_inputs_match_torch(data_format):
    """Transposed, reversed and strided views (x, w, b, dy) give the same answer as
    contiguous copies: the engine must not assume C-order strides."""
    cfg = _cfg(n=3, h=7, w=6, c_in=4, c_out=6, kernel=(3, 2), padding=((1, 0), (2, 1)),
               stride=(2, 1), groups=2, data_format=data_format)
    x, w, b = make_inputs(cfg)
    ref, dy = reference(cfg, x, w, b)
    # Same values, other memory layouts: Fortran order, a reversed-then-reversed view,
    # every other element of a twice-longer array.
    xv = np.asfortranarray(x)
    wv = np.ascontiguousarray(w[::-1, ::-1])[::-1, ::-1]
    bv = np.repeat(b, 2)[::2]
    dyv = np.asfortranarray(dy)
    assert not (xv.flags.c_contiguous or wv.flags.c_contiguous or bv.flags.c_contiguous)
    y, cache = conv2d(xv, wv, bv, **options(cfg))
    assert_close(y, ref["y"], dtype=cfg["dtype"], name="y (non-contiguous)")
    for name, got in zip(("dx", "dw", "db"), conv2d_backward(dyv, cache)):
        assert_close(got, ref[name], dtype=cfg["dtype"], name=f"{name} (non-contiguous)")


def test_backward_twice_on_one_cache_gives_the_same_gradients():
    """The cache is not consumed or modified by a backward pass."""
    cfg = _cfg(n=2, h=6, w=6, padding="same", stride=2)
    x, w, b = make_inputs(cfg)
    _, dy = reference(cfg, x, w, b)
    _, cache = conv2d(x, w, b, **options(cfg))
    first = conv2d_backward(dy, cache)
    second = conv2d_backward(dy, cache)
    for a, c in zip(first, second):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("cfg", [
    _cfg(n=3, h=12, w=12, c_in=16, c_out=16, padding=1, dtype=np.float32),   # 3x3/1, 16 ch
    _cfg(n=3, h=9, w=8, c_in=4, c_out=6, kernel=(2, 3), stride=2, padding="same"),
], ids=["3x3 stride 1, 16 channels", "2x3 stride 2 same"])
def test_interleaved_calls_do_not_share_buffers(cfg):
    """Two forwards, then the two backwards in the other order: each result and cache
    stays valid — no workspace reused behind the caller's back — and earlier outputs
    are not overwritten by later calls."""
    first, second = make_inputs(cfg), make_inputs(dict(cfg, seed=cfg["seed"] + 100))
    ref1, dy1 = reference(cfg, *first)
    ref2, dy2 = reference(dict(cfg, seed=cfg["seed"] + 100), *second)
    y1, cache1 = conv2d(*first, **options(cfg))
    y1_copy = y1.copy()
    y2, cache2 = conv2d(*second, **options(cfg))
    grads2 = conv2d_backward(dy2, cache2)
    grads1 = conv2d_backward(dy1, cache1)
    np.testing.assert_array_equal(y1, y1_copy, err_msg="y of the first call changed")
    for y, grads, ref in ((y1, grads1, ref1), (y2, grads2, ref2)):
        assert_close(y, ref["y"], dtype=cfg["dtype"], name="y")
        for name, got in zip(("dx", "dw", "db"), grads):
            assert_close(got, ref[name], dtype=cfg["dtype"], name=name)


@pytest.mark.parametrize("dtype, c_in, groups, padding, x_hw", [
    (np.float32, 2, 1, 1, (3, 4)),     # float32, few channels: the flat col2im path
    (np.float64, 32, 1, 1, (3, 4)),    # many channels: the stride-1 correlation path
    (np.float32, 32, 2, "same", (4, 3)),
    (np.float32, 2, 1, 0, (3, 3)),
])
def test_non_finite_weights_reach_only_the_pixels_their_taps_read(dtype, c_in, groups, padding,
                                                                   x_hw):
    """dx adds tap (p, q)'s weights only into pixels that tap reads in some window: a NaN
    or infinite weight on a tap that reads only padding (or, at pad 0, only some pixels)
    must not turn the others into 0 * inf = NaN, as in PyTorch."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, *x_hw, c_in)).astype(dtype)
    w = rng.standard_normal((3, 3, c_in // groups, 4)).astype(dtype)
    w[0, 2, 0, 1] = np.inf  # top-right tap
    w[2, 0, 0, 3] = np.nan  # bottom-left tap
    with np.errstate(invalid="ignore"):
        y, cache = conv2d(x, w, padding=padding, groups=groups)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = conv2d_backward(dy, cache)[0]
    ref = conv2d_ref(x, w, None, dy, padding=padding, groups=groups)["dx"]
    assert np.isfinite(ref).any() and not np.isfinite(ref).all()  # the case at hand
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(ref))
    np.testing.assert_array_equal(np.where(np.isinf(ref), ref, 0), np.where(np.isinf(dx), dx, 0))
    finite = np.isfinite(ref)
    assert_close(dx[finite], ref[finite], dtype=dtype, name="finite dx")

"""conv_transpose2d and its backward against PyTorch's F.conv_transpose2d.

Weights: NHWC uses (kh, kw, C_out/groups, C_in), NCHW uses torch's own
(C_in, C_out/groups, kh, kw). Hypothesis covers stride, padding, output_padding (below
stride or dilation, as torch requires), dilation, groups, both layouts and both dtypes;
the reference runs in float64 (float32 held to 1e-4, float64 to 1e-10 relative).
Beyond torch's symmetric padding, the engine accepts ((top, bottom), (left, right))
(rows cropped from each side of the full output) and 'same' (output H*stride, the
adjoint of a 'same' conv2d); torch_ref builds those from an unpadded torch result.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convblocks.functional import (conv2d, conv2d_backward, conv_transpose2d,
                                   conv_transpose2d_backward)
from torch_ref import (assert_bias_grad_and_inputs_kept, assert_close, conv_transpose2d_ref,
                       oracle_settings, random_array, rel_err)


def _int_or_pair(draw, h: int, w: int):
    """(h, w) as given, or the int h when both agree and hypothesis prefers it."""
    return h if h == w and draw(st.booleans()) else (h, w)


@st.composite
def transpose_configs(draw, *, medium: bool = False) -> dict:
    """A configuration torch accepts (output_padding below stride or dilation, output
    at least 1x1), with every padding form; ``medium``: more channels, larger images."""
    ch, per_group = (16, 6) if medium else (4, 2)
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "plain":
        groups, c_in, c_out = 1, draw(st.integers(1, ch)), draw(st.integers(1, ch))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        c_in = groups * draw(st.integers(1, per_group))
        c_out = groups * draw(st.integers(1, per_group))
    else:
        groups = c_in = draw(st.integers(2, 2 * per_group))
        c_out = c_in * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3]))
    # torch: output_padding must be smaller than either stride or dilation.
    oh = draw(st.integers(0, max(sh, dh) - 1))
    ow = draw(st.integers(0, max(sw, dw) - 1))
    h, w = draw(st.integers(1, 14 if medium else 5)), draw(st.integers(1, 14 if medium else 5))
    # Output (h-1)*s - top - bottom + d*(k-1) + op + 1 must be >= 1.
    room_h, room_w = (h - 1) * sh + dh * (kh - 1) + oh, (w - 1) * sw + dw * (kw - 1) + ow
    form = draw(st.sampled_from(["symmetric", "symmetric", "explicit", "same", "valid"]))
    if form == "symmetric":                             # torch's own padding
        padding = _int_or_pair(draw, draw(st.integers(0, min(3, room_h // 2))),
                               draw(st.integers(0, min(3, room_w // 2))))
    elif form == "explicit":                            # ((top, bottom), (left, right))
        t = draw(st.integers(0, min(3, room_h)))
        l = draw(st.integers(0, min(3, room_w)))
        padding = ((t, draw(st.integers(0, min(3, room_h - t)))),
                   (l, draw(st.integers(0, min(3, room_w - l)))))
    else:
        padding = form
        if form == "same":                              # output H*stride, no output_padding
            oh = ow = 0
    return dict(n=draw(st.integers(1, 4 if medium else 3)), h=h, w=w, c_in=c_in, c_out=c_out,
                kernel=(kh, kw), groups=groups, stride=_int_or_pair(draw, sh, sw),
                padding=padding, output_padding=_int_or_pair(draw, oh, ow),
                dilation=_int_or_pair(draw, dh, dw), bias=draw(st.booleans()),
                data_format=draw(st.sampled_from(["NHWC", "NCHW"])),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**32 - 1)))


def make_inputs(cfg: dict):
    """x in cfg's layout; w (kh, kw, C_out/groups, C_in) for NHWC, (C_in, C_out/groups,
    kh, kw) for NCHW; bias (C_out,) or None."""
    rng = np.random.default_rng(cfg["seed"])
    (kh, kw), dtype, co_g = cfg["kernel"], cfg["dtype"], cfg["c_out"] // cfg["groups"]
    if cfg["data_format"] == "NHWC":
        x_shape, w_shape = (cfg["n"], cfg["h"], cfg["w"], cfg["c_in"]), (kh, kw, co_g, cfg["c_in"])
    else:
        x_shape, w_shape = (cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]), (cfg["c_in"], co_g, kh, kw)
    x = random_array(rng, x_shape, dtype)
    w = random_array(rng, w_shape, dtype)
    b = random_array(rng, (cfg["c_out"],), dtype) if cfg["bias"] else None
    return x, w, b


def options(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("stride", "padding", "output_padding", "dilation", "groups",
                                "data_format")}


def check_forward_backward(cfg: dict) -> None:
    """Forward y and every gradient (also with compute_dx=False) against torch, for a
    random upstream gradient dy; inputs left untouched."""
    x, w, b = make_inputs(cfg)
    y_shape = conv_transpose2d_ref(x, w, b, None, **options(cfg))["y"].shape
    dy = random_array(np.random.default_rng(cfg["seed"] + 1), y_shape, cfg["dtype"])
    ref = conv_transpose2d_ref(x, w, b, dy, **options(cfg))
    originals = [a.copy() for a in (x, w, b, dy) if a is not None]

    y, cache = conv_transpose2d(x, w, b, **options(cfg))
    assert_close(y, ref["y"], dtype=cfg["dtype"], name="y", config=cfg)
    dx, dw, db = conv_transpose2d_backward(dy, cache)
    assert_close(dx, ref["dx"], dtype=cfg["dtype"], name="dx", config=cfg)
    assert_close(dw, ref["dw"], dtype=cfg["dtype"], name="dw", config=cfg)
    no_dx, dw2, _ = conv_transpose2d_backward(dy, cache, compute_dx=False)
    assert no_dx is None
    assert_close(dw2, ref["dw"], dtype=cfg["dtype"], name="dw (compute_dx=False)", config=cfg)
    assert_bias_grad_and_inputs_kept(db, ref, b, originals, [x, w, b, dy], cfg)


@oracle_settings(max_examples=200)
@given(transpose_configs())
def test_conv_transpose2d_forward_and_gradients_match_torch(cfg):
    check_forward_backward(cfg)


@oracle_settings(max_examples=40)
@given(transpose_configs(medium=True))
def test_conv_transpose2d_medium_shapes_match_torch(cfg):
    check_forward_backward(cfg)


@oracle_settings(max_examples=25)
@given(n=st.integers(1, 4), h=st.integers(1, 15), w=st.integers(1, 15),
       c_in=st.integers(16, 32), c_out=st.integers(16, 32),
       padding=st.one_of(st.integers(0, 1), st.just("same"),
                         st.tuples(st.tuples(st.integers(0, 1), st.integers(0, 1)),
                                   st.tuples(st.integers(0, 1), st.integers(0, 1)))),
       data_format=st.sampled_from(["NHWC", "NCHW"]),
       dtype=st.sampled_from([np.float32, np.float64]),
       bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_3x3_stride1_many_channels_match_torch(n, h, w, c_in, c_out, padding, data_format, dtype,
                                               bias, seed):
    """3x3 stride-1 transposed convolutions with 16+ channels: the forward and dx are
    stride-1 correlations, the shape class of a fast Winograd kernel."""
    check_forward_backward(_cfg(n=n, h=h, w=w, c_in=c_in, c_out=c_out, kernel=(3, 3), stride=1,
                                padding=padding, data_format=data_format, dtype=dtype,
                                bias=bias, seed=seed))


def _cfg(n=2, h=4, w=3, c_in=3, c_out=2, kernel=(3, 3), groups=1, stride=2, padding=1,
         output_padding=0, dilation=1, bias=True, data_format="NHWC", dtype=np.float64, seed=0):
    return dict(n=n, h=h, w=w, c_in=c_in, c_out=c_out, kernel=kernel, groups=groups,
                stride=stride, padding=padding, output_padding=output_padding,
                dilation=dilation, bias=bias, data_format=data_format, dtype=dtype, seed=seed)


EDGE_CASES = {
    "stride 2 output_padding 1 (the usual upsampler)": _cfg(output_padding=1),
    "output_padding below dilation, stride 1": _cfg(stride=1, dilation=3, output_padding=2,
                                                    padding=0),
    "non-square": _cfg(h=2, w=5, kernel=(1, 4), stride=(3, 1), padding=(0, 2),
                       output_padding=(2, 0), dilation=(1, 2)),
    "padding crops to one pixel": _cfg(h=1, w=1, kernel=(3, 3), stride=1, padding=1),
    "kernel 1 stride 3 (gaps of bias only)": _cfg(kernel=(1, 1), stride=3, padding=0),
    "depthwise NCHW float32": _cfg(c_in=4, c_out=8, groups=4, data_format="NCHW", dtype=np.float32),
    "groups 2 no bias": _cfg(c_in=4, c_out=6, groups=2, bias=False, data_format="NCHW"),
    "asymmetric crop": _cfg(h=3, w=4, padding=((0, 2), (3, 1)), output_padding=(1, 0)),
    "same stride 2": _cfg(h=3, w=4, kernel=(3, 3), padding="same"),
    "same kernel below stride (zero rows appended)": _cfg(h=3, w=2, kernel=(1, 2), stride=3,
                                                          padding="same"),
    "same dilated NCHW": _cfg(h=2, w=3, kernel=(2, 3), stride=(1, 2), dilation=2,
                              padding="same", data_format="NCHW"),
    "valid": _cfg(padding="valid", output_padding=1),
}


@pytest.mark.parametrize("cfg", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_conv_transpose2d_edge_cases_match_torch(cfg):
    check_forward_backward(cfg)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_transpose_is_the_adjoint_of_conv2d(data_format):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for the same weights array: the
    transposed convolution is conv2d's input gradient (weights HWIO (kh, kw, C_in, C_out)
    read as (kh, kw, C_out', C_in') with C_out' = conv2d's C_in)."""
    rng = np.random.default_rng(7)
    opts = dict(stride=2, padding=1, dilation=1, data_format=data_format)
    if data_format == "NHWC":
        x, w = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((3, 3, 3, 5))
    else:
        x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((5, 3, 3, 3))
    y, cache = conv2d(x, w, **opts)
    g = rng.standard_normal(y.shape)
    # conv2d's (kh, kw, C_in, C_out) == transpose's (kh, kw, C_out', C_in') with C_out'=C_in;
    # NCHW: conv2d's (C_out, C_in, kh, kw) == transpose's (C_in', C_out', kh, kw).
    # Heights 7 -> 4 -> 7 need no output_padding; widths 6 -> 3 -> 5 need one more column.
    back = conv_transpose2d(g, w, output_padding=(0, 1), **opts)[0]
    assert back.shape == x.shape
    assert rel_err(np.vdot(x, back), np.vdot(y, g)) < 1e-10
    dx = conv2d_backward(g, cache)[0]
    assert rel_err(back, dx) < 1e-10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_preserved(dtype):
    cfg = _cfg(dtype=dtype, output_padding=1)
    x, w, b = make_inputs(cfg)
    y, cache = conv_transpose2d(x, w, b, **options(cfg))
    grads = conv_transpose2d_backward(np.ones_like(y), cache)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    yi, cache = conv_transpose2d(np.round(x * 4).astype(np.int32), w.astype(np.float64), b,
                                 **options(cfg))
    ref = conv_transpose2d_ref(np.round(x * 4).astype(np.int32), w.astype(np.float64), b, None,
                               **options(cfg))["y"]
    assert_close(yi, ref, dtype=np.float64, name="y (int x)")


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_non_contiguous_inputs_match_torch(data_format):
    """Fortran-ordered x, w and dy, and a strided bias, give the C-ordered answer."""
    cfg = _cfg(n=2, h=4, w=5, c_in=4, c_out=6, groups=2, stride=(2, 1), padding=((1, 0), (0, 2)),
               output_padding=(1, 0), data_format=data_format)
    x, w, b = make_inputs(cfg)
    y_shape = conv_transpose2d_ref(x, w, b, None, **options(cfg))["y"].shape
    dy = random_array(np.random.default_rng(3), y_shape, np.float64)
    ref = conv_transpose2d_ref(x, w, b, dy, **options(cfg))
    y, cache = conv_transpose2d(np.asfortranarray(x), np.asfortranarray(w), np.repeat(b, 2)[::2],
                                **options(cfg))
    assert_close(y, ref["y"], dtype=np.float64, name="y (non-contiguous)")
    grads = conv_transpose2d_backward(np.asfortranarray(dy), cache)
    for name, got in zip(("dx", "dw", "db"), grads):
        assert_close(got, ref[name], dtype=np.float64, name=f"{name} (non-contiguous)")

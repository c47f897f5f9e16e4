"""conv2d / conv_transpose2d: invalid input, dtype rules, in-place safety, chunking.

Values are checked against PyTorch in test_conv_oracle.py; here each class of invalid
input or option must raise the right exception type with a message naming the
argument, and the engine's contracts (inputs never modified, dtypes, workspace
chunking, ``conv2d_cache``) are checked against the engine's own unchunked result or
against convblocks.loops.
"""

from __future__ import annotations

import numpy as np
import pytest

import convblocks.functional.gemm_conv as gemm_conv
import convblocks.functional.winograd as winograd
from convblocks.functional import (conv2d, conv2d_backward, conv2d_cache, conv_transpose2d,
                                   conv_transpose2d_backward, set_workspace_limit)


def _x(rng, shape=(2, 5, 5, 4), dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize("fn", [conv2d, conv_transpose2d, conv2d_cache])
def test_wrong_ndim_names_x_and_w(rng, fn):
    w = _x(rng, (3, 3, 4, 4))
    with pytest.raises(ValueError, match=r"x must be 4-D .*got 3-D"):
        fn(_x(rng, (5, 5, 4)), w)
    with pytest.raises(ValueError, match=r"w must be 4-D .*got 2-D"):
        fn(_x(rng), w[0, 0])


@pytest.mark.parametrize("bad, kind", [
    (np.zeros((2, 5, 5, 4), dtype=np.complex128), "complex"),
    (np.zeros((2, 5, 5, 4), dtype=np.float16), "float16"),
    (np.array([["a"]]), "<U1"),
])
def test_unsupported_dtype_is_a_type_error(rng, bad, kind):
    with pytest.raises(TypeError, match=rf"x must hold float32, float64 or integer.*{kind}"):
        conv2d(bad, _x(rng, (3, 3, 4, 2)))
    with pytest.raises(TypeError, match=r"w must hold"):
        conv2d(_x(rng), np.zeros((3, 3, 4, 2), dtype=np.complex64))


def test_channel_mismatch(rng):
    with pytest.raises(ValueError, match=r"C_in/groups=3.*C_in=4.*must be 4"):
        conv2d(_x(rng), _x(rng, (3, 3, 3, 2)))
    with pytest.raises(ValueError, match=r"C_in/groups=3.*C_in=4.*must be 4"):
        conv2d(_x(rng, (2, 4, 5, 5)), _x(rng, (2, 3, 3, 3)), data_format="NCHW")
    with pytest.raises(ValueError, match=r"C_in=3, but x has 4 channels"):
        conv_transpose2d(_x(rng), _x(rng, (3, 3, 2, 3)))


def test_groups_must_divide_channels(rng):
    with pytest.raises(ValueError, match=r"groups=3 must divide the input channels C_in=4"):
        conv2d(_x(rng), _x(rng, (3, 3, 1, 3)), groups=3)
    with pytest.raises(ValueError, match=r"groups=2 must divide the output channels C_out=3"):
        conv2d(_x(rng), _x(rng, (3, 3, 2, 3)), groups=2)
    with pytest.raises(ValueError, match=r"groups=3 must divide the input channels C_in=4"):
        conv_transpose2d(_x(rng), _x(rng, (3, 3, 2, 4)), groups=3)


@pytest.mark.parametrize("fn, w_shape", [(conv2d, (3, 3, 4, 6)), (conv_transpose2d, (3, 3, 6, 4))])
def test_bias_shape(rng, fn, w_shape):
    with pytest.raises(ValueError, match=r"b must have shape \(6,\).*got shape \(4,\)"):
        fn(_x(rng), _x(rng, w_shape), np.zeros(4))
    with pytest.raises(ValueError, match=r"b must have shape \(6,\).*got shape \(1, 6\)"):
        fn(_x(rng), _x(rng, w_shape), np.zeros((1, 6)))


@pytest.mark.parametrize("option, value, exc, words", [
    ("stride", 0, ValueError, r"stride must be >= 1; got 0"),
    ("stride", (1, 0), ValueError, r"stride\[1\] must be >= 1; got 0"),
    ("stride", 1.5, TypeError, r"stride must be an integer; got 1.5"),
    ("stride", (1, 2, 3), ValueError, r"stride must be an int or a pair"),
    ("dilation", -1, ValueError, r"dilation must be >= 1; got -1"),
    ("dilation", True, TypeError, r"dilation must be an integer; got True"),
    ("groups", 0, ValueError, r"groups must be >= 1; got 0"),
    ("groups", "2", TypeError, r"groups must be an integer"),
    # NumPy makes timedelta64 a signed integer type; it is no count of anything here
    ("stride", np.timedelta64(2), TypeError, r"stride must be an integer; got np.timedelta64"),
    ("padding", -1, ValueError, r"padding must be >= 0; got -1"),
    ("padding", "full", ValueError, r"padding must be .*'valid' or 'same'; got 'full'"),
    ("padding", (1, 2, 3), ValueError, r"padding must be an int, \(h, w\)"),
    ("padding", ((1, 2), (1,)), ValueError, r"padding for axis w must be \(before, after\)"),
    ("padding", 1.0, TypeError, r"padding must be an integer"),
    ("data_format", "NCWH", ValueError, r"data_format must be one of 'NHWC', 'NCHW'; got 'NCWH'"),
])
@pytest.mark.parametrize("fn", [conv2d, conv_transpose2d])
def test_bad_option(rng, fn, option, value, exc, words):
    with pytest.raises(exc, match=words):
        fn(_x(rng), _x(rng, (3, 3, 4, 4)), **{option: value})


def test_window_larger_than_padded_input(rng):
    with pytest.raises(ValueError, match=r"kernel window is larger than the padded input.*\(5, 5\)"):
        conv2d(_x(rng, (1, 4, 4, 1)), _x(rng, (5, 5, 1, 1)))
    # dilation makes a 3x3 kernel span 7 rows
    with pytest.raises(ValueError, match=r"spans \(7, 7\)"):
        conv2d(_x(rng, (1, 6, 6, 1)), _x(rng, (3, 3, 1, 1)), dilation=3, padding=0)
    # padding fixes it
    y, _ = conv2d(_x(rng, (1, 6, 6, 1)), _x(rng, (3, 3, 1, 1)), dilation=3, padding=1)
    assert y.shape == (1, 2, 2, 1)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_huge_stride_or_dilation_selecting_one_window_or_tap_works(rng, data_format):
    """As in PyTorch, a stride past the input selects one window and a dilation on a
    1-tap axis changes nothing, however large (2**62 used to overflow the strided view)."""
    huge = 2 ** 62
    x = _x(rng, (2, 5, 5, 3))
    w = _x(rng, (2, 2, 3, 4))
    if data_format == "NCHW":
        x, w = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    for options, same in [({"stride": huge}, {"stride": 5}),
                          ({"stride": (huge, 1), "padding": "same"}, {"stride": (5, 1), "padding": "same"})]:
        y, cache = conv2d(x, w, data_format=data_format, **options)
        y_ref, cache_ref = conv2d(x, w, data_format=data_format, **same)
        np.testing.assert_array_equal(y, y_ref)
        dy = rng.standard_normal(y.shape)
        for got, want in zip(conv2d_backward(dy, cache), conv2d_backward(dy, cache_ref)):
            np.testing.assert_array_equal(got, want)
    w1 = _x(rng, (1, 2, 3, 4)) if data_format == "NHWC" else _x(rng, (4, 3, 1, 2))
    y, _ = conv2d(x, w1, dilation=(huge, 1), data_format=data_format)
    np.testing.assert_array_equal(y, conv2d(x, w1, data_format=data_format)[0])
    # transposed: one input pixel, so the stride never steps; backward is a huge-stride conv2d
    wt = _x(rng, (3, 3, 4, 2)) if data_format == "NHWC" else _x(rng, (2, 4, 3, 3))
    xt = x[:, :1, :1, :2] if data_format == "NHWC" else x[:, :2, :1, :1]
    y, cache = conv_transpose2d(xt, wt, stride=huge, data_format=data_format)
    y_ref, cache_ref = conv_transpose2d(xt, wt, stride=1, data_format=data_format)
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape)
    for got, want in zip(conv_transpose2d_backward(dy, cache), conv_transpose2d_backward(dy, cache_ref)):
        if want is not None:
            np.testing.assert_array_equal(got, want)


def test_empty_axes_are_rejected(rng):
    with pytest.raises(ValueError, match=r"x must have non-empty height, width and channels"):
        conv2d(np.zeros((1, 0, 4, 1)), _x(rng, (1, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"must have no empty axis"):
        conv2d(_x(rng), np.zeros((3, 3, 4, 0)))


def test_transpose_output_padding_rules(rng):
    x, w = _x(rng), _x(rng, (3, 3, 2, 4))
    with pytest.raises(ValueError, match=r"output_padding \(h\) must be smaller than the stride or the dilation"):
        conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output_padding \(w\).*output_padding=1 with stride=1, dilation=1"):
        conv_transpose2d(x, w, output_padding=(0, 1))
    with pytest.raises(ValueError, match=r"output_padding must be >= 0"):
        conv_transpose2d(x, w, stride=2, output_padding=-1)
    with pytest.raises(ValueError, match=r"output_padding must be 0 with padding='same'"):
        conv_transpose2d(x, w, stride=2, padding="same", output_padding=1)
    # smaller than the dilation is enough (PyTorch's rule)
    y, _ = conv_transpose2d(x, w, stride=1, dilation=2, output_padding=1)
    assert y.shape == (2, 10, 10, 2)


def test_transpose_padding_removing_everything(rng):
    with pytest.raises(ValueError, match=r"removes the whole output.*\(-1, -1\)"):
        conv_transpose2d(_x(rng, (1, 2, 2, 1)), _x(rng, (2, 2, 1, 1)), padding=2)


@pytest.mark.parametrize("fwd, bwd", [(conv2d, conv2d_backward), (conv_transpose2d, conv_transpose2d_backward)])
def test_backward_checks_dy_cache_and_compute_dx(rng, fwd, bwd):
    y, cache = fwd(_x(rng), _x(rng, (3, 3, 4, 4)), padding=1)
    with pytest.raises(ValueError, match=r"dy must have the forward output's shape .*got shape \(2, 5, 5, 3\)"):
        bwd(np.zeros((2, 5, 5, 3)), cache)
    with pytest.raises(TypeError, match=r"dy must hold float32"):
        bwd(y.astype(np.complex128), cache)
    with pytest.raises(TypeError, match=r"compute_dx must be True or False; got 1"):
        bwd(y, cache, compute_dx=1)
    with pytest.raises(TypeError, match=r"cache must be the .*Cache returned by .*; got dict"):
        bwd(y, {"x": 1})
    other = conv_transpose2d if fwd is conv2d else conv2d
    _, other_cache = other(_x(rng), _x(rng, (3, 3, 4, 4)), padding=1)
    with pytest.raises(TypeError, match=r"cache must be the"):
        bwd(y, other_cache)


# ----------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("fwd, bwd", [(conv2d, conv2d_backward), (conv_transpose2d, conv_transpose2d_backward)])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_inputs_are_never_modified(rng, fwd, bwd, data_format):
    x = _x(rng, (2, 4, 6, 6))
    w, b = _x(rng, (4, 2, 3, 3)), _x(rng, (4,)) if fwd is conv2d else _x(rng, (2,))
    if fwd is conv_transpose2d:
        w = _x(rng, (4, 1, 3, 3))
    if data_format == "NHWC":
        x, w = x.transpose(0, 2, 3, 1).copy(), w.transpose(2, 3, 1, 0).copy()
    copies = [a.copy() for a in (x, w, b)]
    y, cache = fwd(x, w, b, stride=2, padding=1, groups=2, data_format=data_format)
    dy = rng.standard_normal(y.shape)
    dy_copy = dy.copy()
    bwd(dy, cache)
    for a, c in zip((x, w, b, dy), (*copies, dy_copy)):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("xd, wd, expected", [
    (np.float32, np.float32, np.float32), (np.float64, np.float64, np.float64),
    (np.float32, np.float64, np.float64), (np.int64, np.int32, np.float64),
    (np.int8, np.float32, np.float64), (np.bool_, np.float64, np.float64),
])
@pytest.mark.parametrize("fwd, bwd", [(conv2d, conv2d_backward), (conv_transpose2d, conv_transpose2d_backward)])
def test_dtype_rules(rng, xd, wd, expected, fwd, bwd):
    x = (rng.standard_normal((2, 5, 5, 2)) * 3).astype(xd)
    w = (rng.standard_normal((2, 2, 2, 2)) * 3).astype(wd)
    b = np.ones(2, dtype=np.float32)
    y, cache = fwd(x, w, b, stride=2)
    assert y.dtype == expected
    # a float64 dy into a float32 computation is computed in float32
    dx, dw, db = bwd(np.ones(y.shape), cache)
    assert dx.dtype == dw.dtype == db.dtype == expected
    # integer input gives the float64 result of its float64 values
    ref, _ = fwd(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride=2)
    np.testing.assert_allclose(y, ref, rtol=1e-5 if expected == np.float32 else 1e-12, atol=1e-5)


def test_integer_lists_are_accepted():
    y, _ = conv2d([[[[1], [2]], [[3], [4]]]], [[[[1]], [[1]]], [[[1]], [[1]]]])
    assert y.dtype == np.float64 and y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 10.0


def test_matches_the_loops_reference(rng):
    """The exercise's conv_forward / conv_backward loops agree with the engine."""
    loops = pytest.importorskip("convblocks.loops")
    x, w, b = _x(rng, (2, 5, 4, 3)), _x(rng, (3, 3, 3, 2)), _x(rng, (2,))
    hp = {"stride": 2, "pad": 1}
    Z, cache_l = loops.conv_forward(x, w, b.reshape(1, 1, 1, 2), hp)
    y, cache = conv2d(x, w, b, stride=2, padding=1)
    np.testing.assert_allclose(y, Z, rtol=1e-12, atol=1e-12)
    dZ = rng.standard_normal(y.shape)
    dA, dW, db = loops.conv_backward(dZ, cache_l)
    dx, dw, db2 = conv2d_backward(dZ, cache)
    np.testing.assert_allclose(dx, dA, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db2, np.ravel(db), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, case", [
    (4, dict(stride=1, padding=1)),                    # tap-major col2im
    (4, dict(stride=2, padding="same", groups=2)),     # grouped, strided
    (4, dict(stride=(1, 2), dilation=2, padding=((2, 0), (1, 3)))),
    (4, dict(stride=2, padding=1, groups=4)),          # depthwise: channel-first
    (16, dict(stride=1, padding=1)),                   # Winograd
    (16, dict(stride=2, padding=1)),                   # pixel-major col2im
])
def test_workspace_chunking_matches_unchunked(rng, monkeypatch, dtype, channels, case):
    # let Winograd take the small 16-channel 3x3 stride-1 case
    monkeypatch.setattr(winograd, "_enabled", True)
    monkeypatch.setattr(winograd, "_MIN_CHANNELS", 16)
    monkeypatch.setattr(winograd, "_MIN_OUT_SIZE", 2)
    C, K = channels, channels + 2 if case.get("groups", 1) == 1 else 8
    x, w, b = _x(rng, (7, 9, 8, C), dtype), _x(rng, (3, 3, C // case.get("groups", 1), K), dtype), _x(rng, (K,), dtype)
    y1, c1 = conv2d(x, w, b, **case)
    dy = rng.standard_normal(y1.shape).astype(dtype)
    g1 = conv2d_backward(dy, c1)
    # conv2d's HWIO weights (kh, kw, C_in/groups, C_out) read as transposed-conv weights
    # (kh, kw, C_out/groups, C_in) map y1's K channels back to C
    t_opts = {k: v for k, v in case.items() if k != "padding"}
    t1, ct1 = conv_transpose2d(y1, w, **t_opts)
    tg1 = conv_transpose2d_backward(np.ones_like(t1), ct1)
    # one image per block: every loop runs over 7 chunks
    monkeypatch.setattr(gemm_conv, "_TARGET_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd, "_GEMM_BLOCK_BYTES", 1)
    previous = set_workspace_limit(1 << 20)
    try:
        y2, c2 = conv2d(x, w, b, **case)
        g2 = conv2d_backward(dy, c2)
        t2, ct2 = conv_transpose2d(y1, w, **t_opts)
        tg2 = conv_transpose2d_backward(np.ones_like(t2), ct2)
    finally:
        set_workspace_limit(previous)
    # blocking changes the order of the sums, so results agree to rounding, relative to
    # each array's largest value
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for a, b_ in zip((y2, t2, *g2, *tg2), (y1, t1, *g1, *tg1)):
        assert (a is None) == (b_ is None)
        if a is not None:
            assert a.dtype == b_.dtype and a.shape == b_.shape
            assert np.abs(a - b_).max() <= tol * np.abs(b_).max()


def test_block_size_obeys_the_workspace_limit():
    previous = set_workspace_limit(1 << 20)
    try:
        assert gemm_conv.block_size(100, 300_000) == 3   # 3 * 300 kB <= 1 MiB
        assert gemm_conv.block_size(100, 10 << 20) == 1  # never 0, even if one image is larger
        assert gemm_conv.block_size(2, 1000) == 2        # never more than the batch
    finally:
        set_workspace_limit(previous)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_cache_backward_equals_forward_cache_backward(rng, data_format, bias):
    x = _x(rng, (3, 6, 7, 4)) if data_format == "NHWC" else _x(rng, (3, 4, 6, 7))
    w = _x(rng, (2, 3, 2, 6)) if data_format == "NHWC" else _x(rng, (6, 2, 2, 3))
    b = _x(rng, (6,)) if bias else None
    opts = dict(stride=(2, 1), padding="same", dilation=(1, 2), groups=2, data_format=data_format)
    y, cache = conv2d(x, w, b, **opts)
    cache2 = conv2d_cache(x, w, b, **opts)
    assert cache2.out_shape == y.shape == cache.out_shape
    dy = rng.standard_normal(y.shape)
    for a, b_ in zip(conv2d_backward(dy, cache), conv2d_backward(dy, cache2)):
        if a is None:
            assert b_ is None
        else:
            np.testing.assert_array_equal(a, b_)
    dx, dw, db = conv2d_backward(dy, cache2, compute_dx=False)
    assert dx is None and (db is None) == (not bias) and dw.shape == w.shape


def test_conv2d_cache_validates_like_conv2d(rng):
    with pytest.raises(ValueError, match=r"groups=3 must divide"):
        conv2d_cache(_x(rng), _x(rng, (3, 3, 1, 3)), groups=3)


# one image's transform buffers here: 8 bytes * (9*8*16 + 4*4*8*16 + 16*12*16) = 50176
@pytest.mark.parametrize("gemm_bytes, transform_bytes, blocks", [
    (1, 1, (1, 1)), (1 << 30, 2 * 50176, (5, 2)), (1 << 30, 1 << 30, (5, 5))])
def test_winograd_blocks_and_sub_blocks_match(rng, monkeypatch, gemm_bytes, transform_bytes, blocks):
    """Winograd's GEMM blocks and transform sub-blocks (incl. a ragged last one) change nothing."""
    monkeypatch.setattr(winograd, "_enabled", True)
    monkeypatch.setattr(winograd, "_MIN_CHANNELS", 16)
    monkeypatch.setattr(winograd, "_MIN_OUT_SIZE", 2)
    x, w = _x(rng, (5, 7, 6, 16)), _x(rng, (3, 3, 16, 16))
    y1, c1 = conv2d(x, w, padding=1)
    g1 = conv2d_backward(y1, c1)
    monkeypatch.setattr(winograd, "_GEMM_BLOCK_BYTES", gemm_bytes)
    monkeypatch.setattr(winograd, "_TRANSFORM_BLOCK_BYTES", transform_bytes)
    # 5 images of 4x3 tiles, padded 9x8, 16 -> 16 channels, float64: sub-blocks 2, 2, 1
    assert winograd._block_sizes(5, 4, 3, 9, 8, 16, 16, 8) == blocks
    y2, c2 = conv2d(x, w, padding=1)
    g2 = conv2d_backward(y2, c2)
    for a, b_ in zip((y2, *g2[:2]), (y1, *g1[:2])):
        assert np.abs(a - b_).max() <= 1e-13 * np.abs(b_).max()

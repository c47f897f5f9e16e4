"""Every internal kernel path of the convolution engine, against PyTorch.

gemm_conv picks a column layout from the channels per group (channel-first for 1,
tap-major col2im below 16, pixel-major above; windows that tile the input, stride =
kernel, make the input gradient one copy, and windows apart write instead of add),
the stride-1 input gradient runs as a forward convolution, and (when enabled) 3x3 stride-1 layers with enough channels go
to Winograd F(2x2, 3x3). The oracle tests draw small channel counts; these configurations force
each path, in float64 (1e-10) and float32 (1e-4, against the float64 reference); Winograd's
size thresholds are lowered (and it is enabled) here so that small layers take it.
"""

from __future__ import annotations

import numpy as np
import pytest

import convblocks.functional.winograd as winograd
from convblocks.functional import (conv2d, conv2d_backward, conv_transpose2d,
                                   conv_transpose2d_backward)
from torch_ref import assert_close, conv2d_ref, conv_transpose2d_ref, random_array

# (N, H, W, C_in, C_out, kernel, options): the path each exercises in the comment
CASES = [
    (3, 9, 8, 1, 6, (5, 5), dict(padding=2)),                          # channel-first, stride 1
    (2, 9, 9, 4, 4, (3, 3), dict(stride=2, padding=1, groups=4)),      # depthwise: channel-first
    (3, 14, 13, 6, 16, (5, 5), dict()),                                # tap-major col2im
    (2, 11, 10, 6, 8, (3, 2), dict(stride=(2, 3), dilation=(2, 1), padding="same")),  # tap-major, strided
    (2, 12, 11, 16, 20, (3, 3), dict(stride=2, padding=1)),            # pixel-major col2im
    (2, 10, 9, 32, 16, (3, 3), dict(stride=(1, 2), groups=2, padding=(1, 0))),  # pixel-major, grouped
    (2, 9, 10, 16, 24, (5, 3), dict(padding=((1, 3), (0, 2)))),        # stride-1 dx as a forward conv
    (2, 8, 8, 32, 16, (3, 3), dict(padding=1, groups=2)),              # ... grouped (flipped weights)
    (2, 8, 8, 16, 16, (3, 3), dict(dilation=2, padding=2)),            # ... dilated: no Winograd
    (3, 10, 9, 16, 16, (3, 3), dict(padding=1)),                       # Winograd, even/odd sizes
    (2, 7, 8, 24, 17, (3, 3), dict(padding=((0, 2), (2, 1)))),         # Winograd, asymmetric padding
    (1, 5, 5, 16, 32, (3, 3), dict(padding="same")),                   # Winograd, 'same'
    (2, 9, 9, 16, 16, (3, 3), dict(padding=4)),                        # padding wider than the kernel
    (2, 8, 9, 16, 8, (2, 2), dict(stride=2)),                          # tiling windows: dx is one copy
    (2, 10, 8, 1, 4, (3, 2), dict(stride=(3, 2))),                     # ... one channel, a spare row
    (2, 6, 6, 8, 12, (2, 3), dict(stride=(2, 3), groups=4)),           # ... grouped
    (2, 10, 11, 16, 8, (2, 2), dict(stride=3, padding=1)),             # apart: pixel-major writes
    (2, 10, 11, 6, 8, (2, 3), dict(stride=(2, 4), padding=1)),         # apart: tap-major writes
]


@pytest.fixture(autouse=True)
def small_winograd(monkeypatch):
    """Enable Winograd and let it take these small 3x3 stride-1 layers (by default it
    needs >= 32 channels and 16x16 outputs, where it pays off), so its edge cases stay
    cheap to test."""
    monkeypatch.setattr(winograd, "_enabled", True)
    monkeypatch.setattr(winograd, "_MIN_CHANNELS", 16)
    monkeypatch.setattr(winograd, "_MIN_OUT_SIZE", 2)


def test_winograd_dispatch(monkeypatch):
    monkeypatch.setattr(winograd, "_MIN_CHANNELS", 32)
    monkeypatch.setattr(winograd, "_MIN_OUT_SIZE", 16)
    assert winograd.winograd_applies((3, 3), (1, 1), (1, 1), 1, 64, 64, (32, 32))
    for kernel, stride, dilation, groups, c, hw in [
            ((3, 3), (2, 2), (1, 1), 1, 64, 32), ((5, 5), (1, 1), (1, 1), 1, 64, 32),
            ((3, 3), (1, 1), (2, 2), 1, 64, 32), ((3, 3), (1, 1), (1, 1), 2, 64, 32),
            ((3, 3), (1, 1), (1, 1), 1, 16, 32), ((3, 3), (1, 1), (1, 1), 1, 64, 8)]:
        assert not winograd.winograd_applies(kernel, stride, dilation, groups, c, c, (hw, hw))
    # off: never
    previous = winograd.set_winograd(False)
    try:
        assert previous is True  # the autouse fixture enabled it
        assert not winograd.winograd_applies((3, 3), (1, 1), (1, 1), 1, 64, 64, (32, 32))
        assert winograd.get_winograd() is False
    finally:
        winograd.set_winograd(previous)
    with pytest.raises(TypeError, match=r"enabled must be True or False; got 1"):
        winograd.set_winograd(1)


def _weights(rng, kernel, c_in, c_out, groups, dtype):
    return random_array(rng, (*kernel, c_in // groups, c_out), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv2d_paths(rng, case, dtype):
    N, H, W, C, K, kernel, opts = case
    x = random_array(rng, (N, H, W, C), dtype)
    w = _weights(rng, kernel, C, K, opts.get("groups", 1), dtype)
    b = random_array(rng, (K,), dtype)
    y, cache = conv2d(x, w, b, **opts)
    dy = random_array(rng, y.shape, dtype)
    dx, dw, db = conv2d_backward(dy, cache)
    ref = conv2d_ref(x, w, b, dy, **opts)
    for name, got in (("y", y), ("dx", dx), ("dw", dw), ("db", db)):
        assert_close(got, ref[name], dtype=dtype, name=name, config=case)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv_transpose2d_paths(rng, case, dtype):
    """The transposed convolution runs the same kernels with the roles swapped."""
    N, H, W, C, K, kernel, opts = case
    opts = {k: v for k, v in opts.items() if k != "padding"}
    x = random_array(rng, (N, H, W, K), dtype)
    # (kh, kw, C_out/groups, C_in): maps K input channels to C outputs
    w = random_array(rng, (*kernel, C // opts.get("groups", 1), K), dtype)
    y, cache = conv_transpose2d(x, w, **opts)
    dy = random_array(rng, y.shape, dtype)
    dx, dw, _ = conv_transpose2d_backward(dy, cache)
    ref = conv_transpose2d_ref(x, w, None, dy, **opts)
    for name, got in (("y", y), ("dx", dx), ("dw", dw)):
        assert_close(got, ref[name], dtype=dtype, name=name, config=case)


def test_winograd_is_used_and_matches_direct(rng, monkeypatch):
    """Winograd and the direct GEMM agree; disabling it changes nothing but rounding."""
    x = random_array(rng, (2, 8, 10, 16), np.float64)
    w = random_array(rng, (3, 3, 16, 16), np.float64)
    calls = []
    original = winograd.winograd_forward
    monkeypatch.setattr("convblocks.functional.gemm_conv.winograd_forward",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    y1, c1 = conv2d(x, w, padding=1)
    assert calls, "Winograd was not used for a 3x3 stride-1 16-channel layer"
    g1 = conv2d_backward(y1, c1)
    monkeypatch.setattr(winograd, "_enabled", False)
    y2, c2 = conv2d(x, w, padding=1)
    g2 = conv2d_backward(y2, c2)
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1[:2], g2[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)

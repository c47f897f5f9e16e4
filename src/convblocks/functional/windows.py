"""Sliding windows as strided views: the trick behind every fast kernel here.

A window view re-reads the (padded) input with extra strides instead of copying it:
``view[n, i, j, p, q, c] == x[n, i*sh + p*dh, j*sw + q*dw, c]``. Reductions and
``tensordot`` over ``(p, q[, c])`` then do the work of the textbook's four loops.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import buffers
from .padding import Padding2D

__all__ = ["pad_hw", "window_view"]


def pad_hw(x: np.ndarray, padding: Padding2D, *, value: float = 0.0, h_axis: int = 1) -> np.ndarray:
    """Pad the two spatial axes ``h_axis`` and ``h_axis + 1`` of ``x`` with ``value``.

    Returns ``x`` itself (no copy) when every pad is 0; never modifies ``x``.
    """
    (t, b), (l, r) = padding
    if t == b == l == r == 0:
        return x
    shape = list(x.shape)
    shape[h_axis] += t + b
    shape[h_axis + 1] += l + r
    out = buffers.empty(shape, x.dtype)
    out.fill(value)
    index = [slice(None)] * x.ndim
    index[h_axis] = slice(t, t + x.shape[h_axis])
    index[h_axis + 1] = slice(l, l + x.shape[h_axis + 1])
    out[tuple(index)] = x
    return out


def window_view(x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int] = (1, 1), out_hw: tuple[int, int] | None = None,
                *, h_axis: int = 1) -> np.ndarray:
    """Read-only view of every window of ``x`` along axes ``h_axis, h_axis + 1``.

    NHWC (``h_axis=1``): (N, Hp, Wp, C) -> (N, Ho, Wo, kh, kw, C).
    NCHW (``h_axis=2``): (N, C, Hp, Wp) -> (N, C, Ho, Wo, kh, kw).
    ``out_hw`` defaults to every window that fits (floor rule).
    """
    kh, kw = kernel_size
    sh, sw = stride
    dh, dw = dilation
    H, W = x.shape[h_axis], x.shape[h_axis + 1]
    if out_hw is None:
        out_hw = ((H - dh * (kh - 1) - 1) // sh + 1, (W - dw * (kw - 1) - 1) // sw + 1)
    Ho, Wo = out_hw
    # An axis of length 1 never steps: its byte stride is 0, so that a huge stride or
    # dilation (which then selects a single window or tap) cannot overflow as_strided.
    sh, sw, dh, dw = (s if n > 1 else 0 for s, n in ((sh, Ho), (sw, Wo), (dh, kh), (dw, kw)))
    st = x.strides
    sH, sW = st[h_axis], st[h_axis + 1]
    if h_axis == 1:  # NHWC
        shape = (x.shape[0], Ho, Wo, kh, kw, x.shape[3])
        strides = (st[0], sH * sh, sW * sw, sH * dh, sW * dw, st[3])
    elif h_axis == 2:  # NCHW
        shape = (x.shape[0], x.shape[1], Ho, Wo, kh, kw)
        strides = (st[0], st[1], sH * sh, sW * sw, sH * dh, sW * dw)
    else:
        raise ValueError(f"h_axis must be 1 (NHWC) or 2 (NCHW); got {h_axis}")
    return as_strided(x, shape=shape, strides=strides, writeable=False)

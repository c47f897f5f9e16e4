"""The exercise, literally: the eight functions as explicit loops.

This module is the textbook and the test oracle. Read it line by line next to the
exercise: every loop is the one the exercise describes, ``for i in range(m)`` over
examples, ``for h``/``for w`` over output pixels, ``for c`` over channels. It is slow on
purpose; :mod:`convblocks` (top level) has the same functions, vectorized.

Where the exercise leaves a choice open, these functions decide as a framework would:

- ``pad == 0`` works everywhere (no ``[pad:-pad]`` slice, which is empty at 0);
- the stride is honoured in every backward;
- gradients of overlapping windows accumulate (``+=``);
- in a max window with tied maxima the gradient goes to the first maximum in row-major
  order, once (``create_mask_from_window`` marks one element), as PyTorch does;
- integer input is computed in float64; inputs are never modified.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .course_checks import (
    check_conv_inputs,
    check_distribute_inputs,
    check_grad_shape,
    check_pool_input,
    check_single_step_inputs,
    check_window,
    unpack_cache,
    check_zero_pad_inputs,
)

__all__ = ["zero_pad", "conv_single_step", "conv_forward", "pool_forward", "conv_backward",
           "create_mask_from_window", "distribute_value", "pool_backward"]


def zero_pad(X: Any, pad: int) -> np.ndarray:
    """Pad the height and width of every image of ``X`` with ``pad`` zeros.

    Parameters
    ----------
    X : ndarray, shape (m, n_H, n_W, n_C)
    pad : int >= 0

    Returns
    -------
    X_pad : ndarray, shape (m, n_H + 2*pad, n_W + 2*pad, n_C)
    """
    X, pad = check_zero_pad_inputs(X, pad)
    m, n_H, n_W, n_C = X.shape
    X_pad = np.zeros((m, n_H + 2 * pad, n_W + 2 * pad, n_C), dtype=X.dtype)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                X_pad[i, h + pad, w + pad, :] = X[i, h, w, :]
    return X_pad


def conv_single_step(a_slice_prev: Any, W: Any, b: Any) -> float:
    """Apply one filter to one slice: ``sum(a_slice_prev * W) + b``.

    Parameters
    ----------
    a_slice_prev : ndarray, shape (f, f, n_C_prev)
    W : ndarray, shape (f, f, n_C_prev)
    b : ndarray with one element, shape (1, 1, 1)

    Returns
    -------
    Z : float
    """
    a_slice_prev, W, b = check_single_step_inputs(a_slice_prev, W, b)
    s = a_slice_prev * W
    Z = np.sum(s)
    # b is a one-element array; .item() takes its scalar (float() of a (1, 1, 1)
    # array is an error since NumPy 2).
    return float(Z + b.reshape(()).item())


def conv_forward(A_prev: Any, W: Any, b: Any, hparameters: dict):
    """Convolve (cross-correlate) every filter over every image.

    Parameters
    ----------
    A_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev)
    W : ndarray, shape (f, f, n_C_prev, n_C)
    b : ndarray, shape (1, 1, 1, n_C)
    hparameters : dict ``{"stride": s, "pad": p}``

    Returns
    -------
    Z : ndarray, shape (m, n_H, n_W, n_C), ``n_H = (n_H_prev + 2p - f) // s + 1``
    cache : tuple ``(A_prev, W, b, hparameters)``
    """
    A_prev_in, W_in, b_in = A_prev, W, b
    A_prev, W, b, stride, pad, n_H, n_W = check_conv_inputs(A_prev, W, b, hparameters)
    m = A_prev.shape[0]
    f, _, _, n_C = W.shape
    Z = np.zeros((m, n_H, n_W, n_C), dtype=np.result_type(A_prev, W, b))
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    a_slice_prev = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c],
                                                     b[:, :, :, c])
    cache = (A_prev_in, W_in, b_in, hparameters)
    return Z, cache


def pool_forward(A_prev: Any, hparameters: dict, mode: str = "max"):
    """Max or average pooling of every f x f window, no padding.

    Parameters
    ----------
    A_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev)
    hparameters : dict ``{"f": f, "stride": s}``
    mode : {"max", "average"}

    Returns
    -------
    A : ndarray, shape (m, n_H, n_W, n_C_prev), ``n_H = (n_H_prev - f) // s + 1``
    cache : tuple ``(A_prev, hparameters)``
    """
    A_prev_in = A_prev
    A_prev, f, stride, mode, n_H, n_W = check_pool_input(A_prev, hparameters, mode)
    m, _, _, n_C = A_prev.shape
    A = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for i in range(m):
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    a_prev_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c]
                    if mode == "max":
                        A[i, h, w, c] = np.max(a_prev_slice)
                    else:
                        A[i, h, w, c] = np.mean(a_prev_slice)
    cache = (A_prev_in, hparameters)
    return A, cache


def conv_backward(dZ: Any, cache: tuple):
    """Gradients of the convolution with respect to its input, weights and bias.

    Parameters
    ----------
    dZ : ndarray, shape (m, n_H, n_W, n_C)
        Gradient of the cost with respect to the output Z of ``conv_forward``.
    cache : tuple ``(A_prev, W, b, hparameters)`` from ``conv_forward``

    Returns
    -------
    dA_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev)
    dW : ndarray, shape (f, f, n_C_prev, n_C)
    db : ndarray, shape (1, 1, 1, n_C)
    """
    A_prev, W, b, stride, pad, n_H, n_W = check_conv_inputs(*unpack_cache(cache, 4, "(A_prev, W, b, hparameters)"))
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, _, _, n_C = W.shape
    dZ = check_grad_shape(dZ, "dZ", (m, n_H, n_W, n_C), "Z")
    # Gradients in the forward's dtype (a float64 dZ for a float32 forward is rounded
    # to float32, as in the engine and PyTorch).
    dtype = np.result_type(A_prev, W, b)
    dZ = dZ.astype(dtype, copy=False)
    # Gradient buffers start at zero, with the shapes of what they are gradients of.
    dA_prev = np.zeros(A_prev.shape, dtype=dtype)
    dW = np.zeros(W.shape, dtype=dtype)
    db = np.zeros(b.shape, dtype=dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = zero_pad(dA_prev, pad)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vert_start = h * stride
                    vert_end = vert_start + f
                    horiz_start = w * stride
                    horiz_end = horiz_start + f
                    a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                    # += : overlapping windows each add their share.
                    da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
        # Un-pad with explicit end indices: [pad:-pad] would be empty when pad == 0.
        dA_prev[i, :, :, :] = da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]
    return dA_prev, dW, db


def create_mask_from_window(x: Any) -> np.ndarray:
    """Boolean mask, True at the first maximum of ``x`` in row-major order.

    The exercise's ``x == np.max(x)`` marks every tied maximum, which multiplies the
    gradient by the number of ties; like PyTorch, convblocks marks only the first.
    With NaN in ``x``: its last NaN (PyTorch's max pooling sends the gradient there).

    Parameters
    ----------
    x : ndarray, shape (f, f) (any shape is accepted)

    Returns
    -------
    mask : ndarray of bool, shape of x
    """
    x = check_window(x)
    mask = np.zeros(x.shape, dtype=bool)
    best = None
    for index in np.ndindex(*x.shape):
        # PyTorch's rule: move on to a greater value or to any NaN. Ties keep the
        # first maximum; a window holding NaN points to its last NaN.
        if best is None or x[index] > x[best] or np.isnan(x[index]):
            best = index
    mask[best] = True
    return mask


def distribute_value(dz: Any, shape: tuple) -> np.ndarray:
    """Spread ``dz`` evenly over a window of ``shape``.

    Parameters
    ----------
    dz : float
    shape : tuple (n_H, n_W)

    Returns
    -------
    a : ndarray, shape (n_H, n_W), every entry ``dz / (n_H * n_W)``
    """
    dz, (n_H, n_W) = check_distribute_inputs(dz, shape)
    average = dz / (n_H * n_W)
    a = np.zeros((n_H, n_W))
    for h in range(n_H):
        for w in range(n_W):
            a[h, w] = average
    return a


def pool_backward(dA: Any, cache: tuple, mode: str = "max") -> np.ndarray:
    """Gradient of pooling with respect to its input.

    Parameters
    ----------
    dA : ndarray, shape (m, n_H, n_W, n_C)
        Gradient of the cost with respect to the output of ``pool_forward``.
    cache : tuple ``(A_prev, hparameters)`` from ``pool_forward``
    mode : {"max", "average"}

    Returns
    -------
    dA_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
    """
    A_prev, hparameters = unpack_cache(cache, 2, "(A_prev, hparameters)")
    A_prev, f, stride, mode, n_H, n_W = check_pool_input(A_prev, hparameters, mode)
    m, _, _, n_C = A_prev.shape
    dA = check_grad_shape(dA, "dA", (m, n_H, n_W, n_C), "A").astype(A_prev.dtype, copy=False)
    dA_prev = np.zeros(A_prev.shape, dtype=A_prev.dtype)  # the forward's dtype
    for i in range(m):
        a_prev = A_prev[i]
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    # The stride places window (h, w); ignoring it is the classic bug.
                    vert_start = h * stride
                    vert_end = vert_start + f
                    horiz_start = w * stride
                    horiz_end = horiz_start + f
                    if mode == "max":
                        a_prev_slice = a_prev[vert_start:vert_end, horiz_start:horiz_end, c]
                        mask = create_mask_from_window(a_prev_slice)
                        # np.where, not mask * dA: False * inf (or NaN) is NaN, which
                        # would reach every element of the window, not only its max.
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += np.where(mask, dA[i, h, w, c], 0)
                    else:
                        da = dA[i, h, w, c]
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += distribute_value(da, (f, f))
    return dA_prev


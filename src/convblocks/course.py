"""The exercise's eight functions, vectorized, on the engine.

Same names, arguments, shapes and caches as the exercise (and as
:mod:`convblocks.loops`, the literal version to read beside this one). Each function
checks its input the way the exercise describes it, then calls
:mod:`convblocks.functional`, which has the fast kernels:

- convolution is a matrix product over sliding windows (im2col on strided views);
- max pooling remembers where each window's first maximum is, so its backward is a
  scatter instead of a search;
- backward passes add each kernel offset's contribution with one strided slice, so
  overlapping windows accumulate.

Exported at the top level: ``convblocks.conv_forward`` is ``convblocks.course.conv_forward``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
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
from .functional.windows import pad_hw

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
        A new array (a copy of ``X`` when ``pad == 0``).
    """
    X, pad = check_zero_pad_inputs(X, pad)
    if pad == 0:
        return X.copy()
    return pad_hw(X, ((pad, pad), (pad, pad)))


def conv_single_step(a_slice_prev: Any, W: Any, b: Any) -> float:
    """``sum(a_slice_prev * W) + b`` as a Python float.

    Parameters
    ----------
    a_slice_prev : ndarray, shape (f, f, n_C_prev)
    W : ndarray, shape (f, f, n_C_prev)
    b : ndarray with one element, shape (1, 1, 1)

    Returns
    -------
    Z : float
    """
    a, W, b = check_single_step_inputs(a_slice_prev, W, b)
    # (f, f, n_C_prev) * (f, f, n_C_prev) -> () with NumPy's pairwise sum, as the
    # exercise's np.sum(a * W): its printed figure to the last digit (np.vdot's BLAS
    # order differs in the last bit); one window is too small for speed to matter.
    return float(np.sum(np.multiply(a, W)) + b.reshape(()).item())


def conv_forward(A_prev: Any, W: Any, b: Any, hparameters: dict):
    """Convolve every filter over every image.

    Parameters
    ----------
    A_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev)
    W : ndarray, shape (f, f, n_C_prev, n_C)
    b : ndarray, shape (1, 1, 1, n_C)
    hparameters : dict ``{"stride": s, "pad": p}``

    Returns
    -------
    Z : ndarray, shape (m, n_H, n_W, n_C), ``n_H = (n_H_prev + 2p - f) // s + 1``
    cache : tuple ``(A_prev, W, b, hparameters)``, the objects passed in
    """
    A, Wa, ba, stride, pad, _, _ = check_conv_inputs(A_prev, W, b, hparameters)
    Z, _ = F.conv2d(A, Wa, ba.reshape(-1), stride=stride, padding=pad)
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ: Any, cache: tuple):
    """Gradients of ``conv_forward`` with respect to A_prev, W and b.

    Parameters
    ----------
    dZ : ndarray, shape (m, n_H, n_W, n_C)
    cache : tuple ``(A_prev, W, b, hparameters)`` from ``conv_forward``

    Returns
    -------
    dA_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev)
    dW : ndarray, shape (f, f, n_C_prev, n_C)
    db : ndarray, shape (1, 1, 1, n_C)
    """
    A, W, b, stride, pad, n_H, n_W = check_conv_inputs(*unpack_cache(cache, 4, "(A_prev, W, b, hparameters)"))
    dZ = check_grad_shape(dZ, "dZ", (A.shape[0], n_H, n_W, W.shape[3]), "Z")
    engine_cache = F.conv2d_cache(A, W, b.reshape(-1), stride=stride, padding=pad)
    dA_prev, dW, db = F.conv2d_backward(dZ, engine_cache)
    return dA_prev, dW, db.reshape(b.shape)


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
    cache : tuple ``(A_prev, hparameters)``, the objects passed in
    """
    A, f, stride, mode, _, _ = check_pool_input(A_prev, hparameters, mode)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    out, _ = pool(A, f, stride=stride)
    return out, (A_prev, hparameters)


def pool_backward(dA: Any, cache: tuple, mode: str = "max") -> np.ndarray:
    """Gradient of ``pool_forward`` with respect to A_prev.

    Max: each window's gradient goes to its first maximum (row-major), once.
    Average: each window's gradient is spread evenly over its f*f elements.
    Overlapping windows accumulate.

    Parameters
    ----------
    dA : ndarray, shape (m, n_H, n_W, n_C)
    cache : tuple ``(A_prev, hparameters)`` from ``pool_forward``
    mode : {"max", "average"}

    Returns
    -------
    dA_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
    """
    A_prev, hparameters = unpack_cache(cache, 2, "(A_prev, hparameters)")
    A, f, stride, mode, n_H, n_W = check_pool_input(A_prev, hparameters, mode)
    dA = check_grad_shape(dA, "dA", (A.shape[0], n_H, n_W, A.shape[3]), "A")
    if mode == "max":
        # The exercise's cache has no argmax: find the maxima again, then scatter.
        _, engine_cache = F.max_pool2d(A, f, stride=stride)
        return F.max_pool2d_backward(dA, engine_cache)
    _, engine_cache = F.avg_pool2d(A, f, stride=stride)
    return F.avg_pool2d_backward(dA, engine_cache)


def create_mask_from_window(x: Any) -> np.ndarray:
    """Boolean mask of ``x``'s shape, True at its first maximum in row-major order
    (at its last NaN if it holds NaN, as PyTorch's max pooling).

    Parameters
    ----------
    x : ndarray, shape (f, f) (any non-empty shape)

    Returns
    -------
    mask : ndarray of bool, shape of x
    """
    x = check_window(x)
    mask = np.zeros(x.shape, dtype=bool)
    nan = np.isnan(x).reshape(-1)
    if nan.any():  # PyTorch's max pooling points a window holding NaN to its last NaN
        mask.flat[nan.size - 1 - np.argmax(nan[::-1])] = True
    else:
        mask.flat[np.argmax(x)] = True  # argmax returns the first maximum
    return mask


def distribute_value(dz: Any, shape: tuple) -> np.ndarray:
    """An array of ``shape`` filled with ``dz / (n_H * n_W)``.

    Parameters
    ----------
    dz : float
    shape : tuple (n_H, n_W)

    Returns
    -------
    a : ndarray, shape (n_H, n_W)
    """
    dz, (n_H, n_W) = check_distribute_inputs(dz, shape)
    return np.full((n_H, n_W), dz / (n_H * n_W))


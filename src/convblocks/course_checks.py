"""Input checks for the exercise's eight functions, shared by ``loops`` and ``course``.

The exercise's API passes options in dictionaries (``{"stride": s, "pad": p}``,
``{"f": f, "stride": s}``) and arrays in the exercise's shapes. These checks turn every
bad input into a ``ValueError`` or ``TypeError`` that names the argument, what was
given and what was expected, before any arithmetic runs.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .functional.checks import (as_float_array, as_int, check_array_size, check_choice, check_ndim,
                               shape_str)

__all__ = [
    "CONV_KEYS", "POOL_KEYS", "POOL_MODES",
    "check_conv_hparameters", "check_pool_hparameters", "check_mode",
    "check_conv_inputs", "check_pool_input", "check_grad_shape",
    "check_zero_pad_inputs", "check_single_step_inputs", "check_distribute_inputs", "unpack_cache",
    "check_window",
]

CONV_KEYS = ("stride", "pad")
POOL_KEYS = ("f", "stride")
POOL_MODES = ("max", "average")

_A_DIMS = "(m, n_H_prev, n_W_prev, n_C_prev)"


def _check_keys(hparameters: Any, expected: tuple[str, ...]) -> None:
    if not isinstance(hparameters, Mapping):
        raise TypeError(f"hparameters must be a dict with keys {list(expected)}; got "
                        f"{type(hparameters).__name__}")
    missing = [k for k in expected if k not in hparameters]
    if missing:
        raise ValueError(f"hparameters is missing key {missing[0]!r}: expected keys "
                         f"{list(expected)}, got {sorted(map(str, hparameters))}")
    unknown = [k for k in hparameters if k not in expected]
    if unknown:
        raise ValueError(f"hparameters has unknown key {unknown[0]!r}: expected keys "
                         f"{list(expected)}, got {sorted(map(str, hparameters))}")


def _check_nonempty(A: np.ndarray, name: str, dims: str) -> None:
    """Height, width and channels of at least 1 (the batch may be empty), as PyTorch."""
    if 0 in A.shape[1:]:
        raise ValueError(f"{name} {dims} must have at least one row, column and channel; "
                         f"got shape {shape_str(A.shape)}")


def check_conv_hparameters(hparameters: Any) -> tuple[int, int]:
    """``{"stride": s >= 1, "pad": p >= 0}`` -> ``(stride, pad)``."""
    _check_keys(hparameters, CONV_KEYS)
    stride = as_int(hparameters["stride"], "hparameters['stride']", minimum=1)
    pad = as_int(hparameters["pad"], "hparameters['pad']", minimum=0)
    return stride, pad


def check_pool_hparameters(hparameters: Any) -> tuple[int, int]:
    """``{"f": f >= 1, "stride": s >= 1}`` -> ``(f, stride)``."""
    _check_keys(hparameters, POOL_KEYS)
    f = as_int(hparameters["f"], "hparameters['f']", minimum=1)
    stride = as_int(hparameters["stride"], "hparameters['stride']", minimum=1)
    return f, stride


def check_mode(mode: Any) -> str:
    """``'max'`` or ``'average'``."""
    return check_choice(mode, "mode", POOL_MODES)


def check_zero_pad_inputs(X: Any, pad: Any) -> tuple[np.ndarray, int]:
    """``X`` 4-D (m, n_H, n_W, n_C); ``pad`` an int >= 0."""
    X = as_float_array(X, "X")
    check_ndim(X, 4, "X", "(m, n_H, n_W, n_C)")
    pad = as_int(pad, "pad", minimum=0)
    m, h, w, c = X.shape
    check_array_size((m, h + 2 * pad, w + 2 * pad, c), X.itemsize, "the padded X",
                     lambda: f"zero_pad: pad={pad}")
    return X, pad


def check_single_step_inputs(a_slice_prev: Any, W: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a_slice_prev`` and ``W`` of one shape (f, f, n_C_prev); ``b`` one element."""
    a = as_float_array(a_slice_prev, "a_slice_prev")
    W = as_float_array(W, "W")
    b = as_float_array(b, "b")
    check_ndim(a, 3, "a_slice_prev", "(f, f, n_C_prev)")
    if W.shape != a.shape:
        raise ValueError(f"W must have the shape of a_slice_prev {shape_str(a.shape)}; got "
                         f"{shape_str(W.shape)}")
    if b.size != 1:
        raise ValueError(f"b must hold exactly one element (shape (1, 1, 1)); got shape "
                         f"{shape_str(b.shape)}")
    return a, W, b


def check_conv_inputs(A_prev: Any, W: Any, b: Any, hparameters: Any):
    """Validate ``conv_forward``'s inputs; returns ``(A_prev, W, b, stride, pad, n_H, n_W)``."""
    A_prev = as_float_array(A_prev, "A_prev")
    W = as_float_array(W, "W")
    b = as_float_array(b, "b")
    check_ndim(A_prev, 4, "A_prev", _A_DIMS)
    check_ndim(W, 4, "W", "(f, f, n_C_prev, n_C)")
    stride, pad = check_conv_hparameters(hparameters)
    f, f2, c_in, c_out = W.shape
    if f != f2:
        raise ValueError(f"W must be square in its first two dimensions (f, f, n_C_prev, n_C); "
                         f"got shape {shape_str(W.shape)}")
    if A_prev.shape[3] != c_in:
        raise ValueError(f"A_prev has {A_prev.shape[3]} channels (shape {shape_str(A_prev.shape)}) "
                         f"but W expects n_C_prev={c_in} (shape {shape_str(W.shape)})")
    if b.shape != (1, 1, 1, c_out):
        raise ValueError(f"b must have shape (1, 1, 1, n_C) = (1, 1, 1, {c_out}); got "
                         f"{shape_str(b.shape)}")
    _check_nonempty(A_prev, "A_prev", _A_DIMS)  # an empty batch (m = 0) is fine
    if 0 in W.shape:
        raise ValueError(f"W (f, f, n_C_prev, n_C) must have no empty axis; got shape "
                         f"{shape_str(W.shape)}")
    m, h, w, _ = A_prev.shape
    if f > h + 2 * pad or f > w + 2 * pad:
        raise ValueError(f"filter size f={f} is larger than the padded input "
                         f"{h + 2 * pad}x{w + 2 * pad} (A_prev {h}x{w}, pad={pad})")
    n_H = (h + 2 * pad - f) // stride + 1
    n_W = (w + 2 * pad - f) // stride + 1
    # As the engine: one padded image (it pads a chunk of images at a time) and Z.
    itemsize = max(A_prev.itemsize, W.itemsize, b.itemsize)  # the result's: float32 or float64
    cause = lambda: f"hparameters {{'stride': {stride}, 'pad': {pad}}} with A_prev {h}x{w} and f={f}"
    check_array_size((1, h + 2 * pad, w + 2 * pad, c_in), itemsize, "one padded image of A_prev",
                     cause)
    check_array_size((m, n_H, n_W, c_out), itemsize, "Z", cause)
    return A_prev, W, b, stride, pad, n_H, n_W


def check_pool_input(A_prev: Any, hparameters: Any, mode: Any):
    """Validate ``pool_forward``'s inputs; returns ``(A_prev, f, stride, mode, n_H, n_W)``."""
    A_prev = as_float_array(A_prev, "A_prev")
    check_ndim(A_prev, 4, "A_prev", _A_DIMS)
    f, stride = check_pool_hparameters(hparameters)
    mode = check_mode(mode)
    _check_nonempty(A_prev, "A_prev", _A_DIMS)
    m, h, w, _ = A_prev.shape
    if f > h or f > w:
        raise ValueError(f"pooling window f={f} is larger than the input {h}x{w} "
                         f"(A_prev shape {shape_str(A_prev.shape)}); pooling has no padding")
    n_H = (h - f) // stride + 1
    n_W = (w - f) // stride + 1
    return A_prev, f, stride, mode, n_H, n_W


def check_grad_shape(grad: Any, name: str, expected: tuple[int, ...], source: str) -> np.ndarray:
    """``grad`` must be numeric with shape ``expected`` (the forward output's, from ``source``)."""
    grad = as_float_array(grad, name)
    if grad.shape != tuple(expected):
        raise ValueError(f"{name} must have the shape of the forward output {source} "
                         f"{shape_str(expected)}; got {shape_str(grad.shape)}")
    return grad


def check_distribute_inputs(dz: Any, shape: Any) -> tuple[float, tuple[int, int]]:
    """``dz`` a real scalar; ``shape`` a pair ``(n_H, n_W)`` of positive ints."""
    # a number, not a flag: True would count as 1 (bool arrays of activations are fine)
    if isinstance(dz, (bool, np.bool_)) or getattr(dz, "dtype", None) == np.bool_:
        raise TypeError(f"dz must be a number, not a boolean; got {dz!r} ({type(dz).__name__})")
    arr = as_float_array(dz, "dz")
    if arr.size != 1:
        raise ValueError(f"dz must be a single number; got an array of shape {shape_str(arr.shape)}")
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"shape must be a pair (n_H, n_W); got {shape!r}")
    n_H = as_int(shape[0], "shape[0]")
    n_W = as_int(shape[1], "shape[1]")
    if n_H < 1 or n_W < 1:
        raise ValueError(f"shape must have positive entries (n_H, n_W); got {(n_H, n_W)}: "
                         f"a window with no elements has no average")
    check_array_size((n_H, n_W), 8, "the window", lambda: f"distribute_value: shape={(n_H, n_W)}")
    return arr.reshape(()).item(), (n_H, n_W)


def check_window(x: Any) -> np.ndarray:
    """``create_mask_from_window``'s window: a numeric array with at least one element."""
    x = as_float_array(x, "x")
    if x.size == 0:
        raise ValueError(f"x must have at least one element; got shape {shape_str(x.shape)}")
    return x


def unpack_cache(cache: Any, n: int, what: str) -> tuple:
    """The forward's cache as a tuple of ``n`` items (``what`` describes them)."""
    if not isinstance(cache, (tuple, list)) or len(cache) != n:
        got = type(cache).__name__
        if isinstance(cache, (tuple, list)):
            got += f" of length {len(cache)}"
        raise ValueError(f"cache must be the tuple {what} returned by the forward function; "
                         f"got {got}")
    return tuple(cache)

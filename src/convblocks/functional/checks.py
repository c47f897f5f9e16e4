"""Argument checks shared by every public function.

Each check raises at the API boundary with a message that names the argument, what
was given and what was expected, so that no bad input reaches a kernel and fails
there with an IndexError or, worse, a silent wrong answer.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "as_float_array",
    "check_ndim",
    "as_int",
    "as_real",
    "as_float_dtype",
    "as_pair",
    "check_array_size",
    "check_choice",
    "check_data_format",
    "result_dtype",
    "shape_str",
]


def shape_str(shape: Sequence[int]) -> str:
    """``(2, 3)``-style text for a shape (``(5,)`` for one dimension)."""
    shape = tuple(int(s) for s in shape)
    return str(shape)


def as_float_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a floating-point array without copying when possible.

    float32 and float64 are kept; integer and boolean input is computed in float64;
    every other dtype (float16, complex, strings, objects) raises ``TypeError``.
    The input is never modified: callers must not write into the result.
    """
    if isinstance(x, np.ma.MaskedArray):  # np.asarray and the kernels would ignore the mask
        raise TypeError(f"{name} must be a plain numeric array; got a numpy.ma.MaskedArray, whose "
                        f"mask would be ignored (pass {name}.filled(value) or {name}.data)")
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a numeric array; got {type(x).__name__} "
                            f"that NumPy cannot turn into one ({exc})") from None
    kind = arr.dtype.kind
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if kind in "iub":
        return arr.astype(np.float64)
    raise TypeError(f"{name} must hold float32, float64 or integer numbers; "
                    f"got dtype {arr.dtype}" + (f" ({type(x).__name__})" if not isinstance(x, np.ndarray) else ""))


def check_ndim(x: np.ndarray, ndim: int, name: str, dims: str) -> None:
    """Raise ``ValueError`` unless ``x`` has ``ndim`` dimensions, described by ``dims``."""
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {dims}; got {x.ndim}-D array of shape "
                         f"{shape_str(x.shape)}")


def as_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int; bools, floats and strings raise ``TypeError``."""
    # np.timedelta64 is a NumPy signed integer type, but not a number of anything here
    if (isinstance(value, (bool, np.bool_, np.timedelta64))
            or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def as_real(value: Any, name: str, *, finite: bool = True) -> float:
    """``value`` as a Python float: an int, a float or a NumPy real scalar.

    Bools, strings, arrays, complex numbers (NumPy's too: ``float()`` would drop the
    imaginary part) and ``timedelta64`` raise ``TypeError``; with ``finite`` (the
    default) NaN and infinities raise ``ValueError``. Range checks are the caller's.
    """
    if (isinstance(value, (bool, np.bool_, np.timedelta64))
            or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number; got {value!r} ({type(value).__name__})")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return value


def as_float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """``dtype`` as ``np.dtype('float32')`` or ``np.dtype('float64')``; else ``TypeError``.

    None is refused (``np.dtype(None)`` would silently mean float64).
    """
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt not in (np.float32, np.float64):
        got = dt if dt is not None else repr(dtype)
        raise TypeError(f"{name} must be float32 or float64; got {got}")
    return dt


def as_bool(value: Any, name: str) -> bool:
    """``value`` as a Python bool; anything but a bool or ``np.bool_`` raises ``TypeError``.

    Flags are never read by truthiness: ``training="no"`` would otherwise mean True.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")
    return bool(value)


def as_pair(value: Any, name: str, *, minimum: int | None = None) -> tuple[int, int]:
    """Return an int or a pair of ints as ``(h, w)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w); got {value!r} "
                             f"with {len(value)} entries")
        return (as_int(value[0], f"{name}[0]", minimum=minimum),
                as_int(value[1], f"{name}[1]", minimum=minimum))
    v = as_int(value, name, minimum=minimum)
    return (v, v)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (listed in the message)."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value


def check_data_format(data_format: Any) -> str:
    """``'NHWC'`` or ``'NCHW'``."""
    return check_choice(data_format, "data_format", ("NHWC", "NCHW"))


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """float32 when every array is float32, float64 otherwise."""
    if all(a.dtype == np.float32 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _machine_memory() -> int:
    """Bytes of this machine's memory plus swap (``sys.maxsize`` where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            kib = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[1:2]}
        return (kib["MemTotal"] + kib.get("SwapTotal", 0)) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return sys.maxsize


#: The largest array the engine tries to allocate: NumPy's own limit (an array's bytes
#: must fit in ``np.intp``) and no more than this machine's memory plus swap, beyond
#: which an allocation fails (MemoryError) or, with overcommit, the process is killed.
MAX_ARRAY_BYTES = min(sys.maxsize, _machine_memory())


def check_array_size(shape: Sequence[int], itemsize: int, what: str,
                     cause: str | Callable[[], str]) -> None:
    """Raise ``ValueError`` when an array of ``shape`` would exceed :data:`MAX_ARRAY_BYTES`.

    O(1) arithmetic on Python ints, before any allocation: options that make a padded
    input or an output impossibly large (``padding=10**12``) get a message starting
    with ``cause`` (the operation and the options responsible, with their values) and
    giving the resulting shape, instead of NumPy's "array is too big", "Maximum
    allowed dimension exceeded" or a ``MemoryError``. ``cause`` may be a function
    returning that text, so that valid calls never format it.
    """
    nbytes = span = itemsize  # span: zero axes counted as 1, as NumPy's own size limit does
    for s in shape:  # Python ints: exact, never wraps around (a plain loop: this runs per call)
        s = int(s)
        nbytes *= s
        span *= s or 1
    if nbytes <= MAX_ARRAY_BYTES and span <= sys.maxsize:
        return
    cause = cause() if callable(cause) else cause
    if nbytes <= MAX_ARRAY_BYTES:  # empty, but NumPy refuses its other axes all the same
        raise ValueError(f"{cause}: {what} would have shape {shape_str(shape)}, more than "
                         f"NumPy allows for any array's dimensions")
    why = "NumPy's limit" if MAX_ARRAY_BYTES == sys.maxsize else "this machine's memory plus swap"
    raise ValueError(f"{cause}: {what} would have shape {shape_str(shape)}, {nbytes:.3g} "
                     f"bytes, more than can be allocated ({MAX_ARRAY_BYTES:.3g} bytes, {why})")

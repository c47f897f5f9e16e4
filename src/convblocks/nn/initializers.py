"""Weight initializers: He (Kaiming) and Glorot (Xavier), seeded by a Generator.

Every initializer draws from the ``np.random.Generator`` it is given, directly in the
requested dtype, so a model built twice from the same seed has identical weights.
``fan_in`` is the number of inputs that feed one output unit (``C_in/groups * kh * kw``
for a convolution, ``in_features`` for a dense layer) and ``fan_out`` the number of
outputs one input feeds.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..functional.checks import as_int, check_choice
from .base import as_float_dtype

__all__ = ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "initialize",
           "INITIALIZERS"]


def _check_fans(fan_in: int, fan_out: int) -> tuple[int, int]:
    """Both fans as ints >= 1 (a 0 would divide by zero in the scale)."""
    return as_int(fan_in, "fan_in", minimum=1), as_int(fan_out, "fan_out", minimum=1)


def he_normal(shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator,
              dtype: np.dtype) -> np.ndarray:
    """He normal: ``N(0, 2 / fan_in)``, keeps activations' variance through ReLUs."""
    fan_in, fan_out = _check_fans(fan_in, fan_out)
    std = math.sqrt(2.0 / fan_in)
    w = rng.standard_normal(shape, dtype=dtype)
    w *= std
    return w


def he_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator,
               dtype: np.dtype) -> np.ndarray:
    """He uniform: ``U(-sqrt(6 / fan_in), sqrt(6 / fan_in))`` (same variance as he_normal)."""
    fan_in, fan_out = _check_fans(fan_in, fan_out)
    limit = math.sqrt(6.0 / fan_in)
    return _uniform(shape, limit, rng, dtype)


def glorot_normal(shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator,
                  dtype: np.dtype) -> np.ndarray:
    """Glorot normal: ``N(0, 2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _check_fans(fan_in, fan_out)
    std = math.sqrt(2.0 / (fan_in + fan_out))
    w = rng.standard_normal(shape, dtype=dtype)
    w *= std
    return w


def glorot_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator,
                   dtype: np.dtype) -> np.ndarray:
    """Glorot uniform: ``U(-sqrt(6 / (fan_in + fan_out)), +...)``, Keras' default."""
    fan_in, fan_out = _check_fans(fan_in, fan_out)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(shape, limit, rng, dtype)


def _uniform(shape: tuple[int, ...], limit: float, rng: np.random.Generator,
             dtype: np.dtype) -> np.ndarray:
    w = rng.random(shape, dtype=dtype)  # U[0, 1)
    w *= 2.0 * limit
    w -= limit
    return w


INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot": glorot_uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
}


def check_initializer(name: object, argname: str = "kernel_init") -> str:
    """Raise ``ValueError`` unless ``name`` is a known initializer."""
    return check_choice(name, argname, tuple(INITIALIZERS))


def initialize(name: str, shape: tuple[int, ...], *, fan_in: int, fan_out: int,
               rng: np.random.Generator, dtype: np.dtype = np.float32) -> np.ndarray:
    """Draw an array of ``shape`` with the initializer called ``name``.

    Parameters
    ----------
    name : str
        One of ``'he'`` (= ``'he_normal'``), ``'he_uniform'``, ``'glorot'``
        (= ``'glorot_uniform'``), ``'glorot_normal'``.
    shape : tuple of int
        Shape of the weight array.
    fan_in, fan_out : int
        Inputs per output unit and outputs per input unit (both >= 1).
    rng : numpy.random.Generator
        Source of randomness.
    dtype : numpy dtype
        float32 (default) or float64.
    """
    check_initializer(name, "initializer")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"shape must be a tuple of ints; got {shape!r} ({type(shape).__name__})")
    shape = tuple(as_int(s, f"shape[{i}]", minimum=0) for i, s in enumerate(shape))
    return INITIALIZERS[name](shape, fan_in, fan_out, rng, as_float_dtype(dtype))

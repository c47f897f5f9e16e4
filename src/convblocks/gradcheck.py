"""Numerical gradient checking by central differences.

Point :func:`gradcheck` at a function and its analytic gradient::

    from convblocks import conv_backward, conv_forward, gradcheck
    hp = {"stride": 2, "pad": 1}
    def f(A, W, b):
        return conv_forward(A, W, b, hp)[0]
    def grads(dZ):
        return conv_backward(dZ, (A, W, b, hp))
    result = gradcheck(f, (A, W, b), grads)
    assert result.max_rel_error < 1e-6, result

The scalar being differentiated is ``L = sum(dy * f(*inputs))`` for a fixed random
upstream gradient ``dy``; the analytic side is ``grads(dy)``. Each checked element ``x``
is nudged by ``+-eps`` and ``dL/dx ~ (L(x + eps) - L(x - eps)) / (2 eps)``.

``func`` gets copies of the inputs and ``grads`` a copy of ``dy``, and ``func``'s output
is copied: functions that modify their arguments in place, or return a view of an
input, are checked correctly. A ``func`` that returns float32 (or lower) values gets a
``RuntimeWarning`` when ``eps`` is below the square root of that precision's epsilon:
the rounding would swamp the difference.
"""

from __future__ import annotations

import math
import sys
import types
import warnings
from collections.abc import Mapping, Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .functional.checks import as_int

__all__ = ["gradcheck", "GradcheckResult"]


@dataclass(frozen=True)
class GradcheckResult:
    """Outcome of :func:`gradcheck`.

    Attributes
    ----------
    max_rel_error : float
        Largest ``|analytic - numeric| / max(|analytic|, |numeric|, scale * 1e-3)``
        over every checked element, where ``scale`` is the largest ``|numeric|`` of that
        input (so elements whose gradient is nearly zero are judged against the
        gradient's overall size, not divided by almost nothing).
    argument : int
        Which input (position in ``inputs``) holds the worst element.
    index : tuple of int
        Where in that input.
    analytic, numeric : float
        The two values there.
    checked : int
        How many elements were checked.
    """

    max_rel_error: float
    argument: int
    index: tuple
    analytic: float
    numeric: float
    checked: int

    def __str__(self) -> str:
        return (f"max relative error {self.max_rel_error:.3e} at input {self.argument}, index "
                f"{self.index}: analytic {self.analytic:.10g}, numeric {self.numeric:.10g} "
                f"({self.checked} elements checked)")


def gradcheck(func: Callable[..., Any], inputs: Sequence[Any] | np.ndarray,
              grads: Callable[[np.ndarray], Sequence[Any]] | Sequence[Any], *,
              upstream: np.ndarray | None = None, wrt: Sequence[int] | None = None,
              eps: float = 1e-6, max_points: int | None = 2000, seed: int = 0) -> GradcheckResult:
    """Compare analytic gradients with central differences.

    Parameters
    ----------
    func : callable
        ``func(*inputs)`` returns an array ``y`` (or a tuple whose first item is ``y``,
        as the exercise's forward functions return ``(y, cache)``).
    inputs : sequence of ndarray (or one ndarray)
        The point at which to check. Converted to float64 copies; never modified.
    grads : callable or sequence of ndarray
        ``grads(dy)`` returns the analytic gradients of ``sum(dy * y)`` with respect to
        each input (``None`` for inputs not to check); or those gradients already
        computed for the given ``upstream``. Exactly one per input, in order, each of
        its input's shape (one array alone stands for one input).
    upstream : ndarray, shape of y, optional
        ``dy``. Default: standard normal values from ``seed``.
    wrt : sequence of int, optional
        Which inputs to check (default: every input whose gradient is not None).
    eps : float
        Step of the central difference.
    max_points : int or None
        Check at most this many elements per input, chosen at random (all when None).
    seed : int
        Seeds ``upstream`` and the choice of elements.

    Returns
    -------
    GradcheckResult

    Raises
    ------
    TypeError
        ``func`` not callable, ``grads`` giving something other than a sequence of
        real arrays (or None), a bad ``seed``/``max_points``/``wrt`` type.
    ValueError
        ``grads`` giving more or fewer gradients than there are inputs, a gradient
        whose shape is not its input's, ``upstream`` not of the output's shape, ``wrt``
        naming a missing input or one whose gradient is None, a bad ``eps``, or
        nothing to check. Raised before the first central difference is computed.
    """
    if isinstance(inputs, np.ndarray):
        inputs = (inputs,)
    if not isinstance(inputs, (tuple, list)) or not inputs:
        raise TypeError(f"inputs must be an ndarray or a non-empty sequence of arrays; got "
                        f"{type(inputs).__name__}")
    if not callable(func):
        raise TypeError(f"func must be callable; got {type(func).__name__}")
    if not (isinstance(eps, float) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite float; got {eps!r}")
    if max_points is not None:
        max_points = as_int(max_points, "max_points", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    xs = [np.array(x, dtype=np.float64) for x in inputs]
    rng = np.random.default_rng(seed)

    def raw_output(*args: np.ndarray) -> Any:
        # Copies in: a func that modifies its inputs in place cannot corrupt the point.
        y = func(*(a.copy() for a in args))
        return y[0] if isinstance(y, tuple) else y

    def output(*args: np.ndarray) -> np.ndarray:
        # A copy out: an output that is a view of an input (``a.T``, ``a[1:]``) or a
        # buffer func reuses would otherwise change under the next nudge.
        return np.array(raw_output(*args), dtype=np.float64)

    y_raw = raw_output(*xs)
    y0 = np.array(y_raw, dtype=np.float64)
    y_dtype = getattr(y_raw, "dtype", None)
    if (y_dtype is not None and np.issubdtype(y_dtype, np.floating)
            and np.finfo(y_dtype).eps > np.finfo(np.float64).eps
            and eps < math.sqrt(np.finfo(y_dtype).eps)):
        warnings.warn(f"func returns {y_dtype} values: with eps={eps!r} rounding swamps the "
                      f"central difference and large errors mean nothing; compute in float64, "
                      f"or pass eps >= {math.sqrt(np.finfo(y_dtype).eps):.1e} and expect "
                      f"errors near 1e-3", RuntimeWarning, stacklevel=2)
    if upstream is None:
        dy = rng.standard_normal(y0.shape)
    else:
        dy = np.asarray(upstream, dtype=np.float64)
        if dy.shape != y0.shape:
            raise ValueError(f"upstream must have the shape of func's output {y0.shape}; got "
                             f"{dy.shape}")
    # A copy: a backward that scales or masks its dy in place must not change the L
    # the numeric side differentiates.
    analytic = grads(dy.copy()) if callable(grads) else grads
    if isinstance(analytic, np.ndarray):
        analytic = (analytic,)
    given = type(analytic).__name__
    try:
        if isinstance(analytic, (str, bytes, Mapping, AbstractSet)):
            raise TypeError  # iterable, but not one gradient per input in order
        analytic = list(analytic)
    except TypeError:
        raise TypeError(f"grads must give a sequence of gradients (one per input, None for "
                        f"inputs not to check); got {given}") from None
    if len(analytic) != len(xs):
        raise ValueError(f"grads must give one gradient per input (None for inputs not to "
                         f"check): expected {len(xs)}, as inputs holds {len(xs)} array"
                         f"{'s' if len(xs) != 1 else ''}; got {len(analytic)} gradients")
    if wrt is None:
        wrt = [i for i in range(len(xs)) if analytic[i] is not None]
    else:
        wrt = [as_int(k, "wrt entries", minimum=0) for k in wrt]
        if any(k >= len(xs) for k in wrt) or len(set(wrt)) != len(wrt):
            raise ValueError(f"wrt must name distinct inputs in 0..{len(xs) - 1}; got {wrt}")
    if not wrt:
        raise ValueError("nothing to check: every gradient is None")
    # Every gradient checked before the first (slow) central difference.
    for k in wrt:
        g = analytic[k]
        if g is None:
            raise ValueError(f"wrt names input {k} but grads gave None for it; expected an "
                             f"array of shape {xs[k].shape}")
        try:
            a = np.asarray(g)
        except (TypeError, ValueError):  # e.g. a ragged list
            a = None
        if a is None or a.dtype.kind not in "iuf":
            raise TypeError(f"grads must give arrays of real numbers; gradient {k} is "
                            f"{type(g).__name__}" + ("" if a is None else f" of dtype {a.dtype}"))
        if a.shape != xs[k].shape:
            raise ValueError(f"grads must give gradient {k} in the shape of input {k}, "
                             f"{xs[k].shape}; got shape {a.shape}")
        analytic[k] = a.astype(np.float64)

    worst = GradcheckResult(0.0, wrt[0], (), 0.0, 0.0, 0)
    total = 0
    for k in wrt:
        x = xs[k]
        g = analytic[k]
        if x.size == 0:
            continue  # nothing to nudge
        flat = np.arange(x.size)
        if max_points is not None and x.size > max_points:
            flat = np.sort(rng.choice(x.size, size=max_points, replace=False))
        numeric = np.empty(flat.size)
        for j, i in enumerate(flat):
            idx = np.unravel_index(i, x.shape)
            old = x[idx]
            x[idx] = old + eps
            plus = output(*xs)
            x[idx] = old - eps
            minus = output(*xs)
            x[idx] = old
            # Subtract before summing: outputs the nudge did not reach cancel exactly.
            numeric[j] = np.vdot(dy, plus - minus) / (2 * eps)
        a = g.reshape(-1)[flat]
        floor = 1e-3 * float(np.max(np.abs(numeric), initial=0.0)) or 1e-12
        rel = np.abs(a - numeric) / np.maximum(np.maximum(np.abs(a), np.abs(numeric)), floor)
        rel = np.where(np.isnan(rel), np.inf, rel)
        j = int(np.argmax(rel))
        total += flat.size
        if rel[j] >= worst.max_rel_error:
            worst = GradcheckResult(float(rel[j]), k, tuple(int(v) for v in np.unravel_index(flat[j], x.shape)),
                                    float(a[j]), float(numeric[j]), 0)
    if total == 0:
        raise ValueError(f"nothing to check: the inputs {list(wrt)} are empty (shapes "
                         f"{[xs[k].shape for k in wrt]})")
    return GradcheckResult(worst.max_rel_error, worst.argument, worst.index, worst.analytic,
                           worst.numeric, total)


class _CallableModule(types.ModuleType):
    """``convblocks.gradcheck`` is the function, but importing this submodule (e.g.
    ``from convblocks.gradcheck import GradcheckResult``) makes Python bind the name on
    the package to the module: calling the module then calls the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> GradcheckResult:
        return gradcheck(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

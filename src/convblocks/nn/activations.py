"""Elementwise activations: ReLU and LeakyReLU (any input shape)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..functional.buffers import empty_like as pooled_empty_like
from ..functional.threads import map_slices
from .base import Layer, as_real

__all__ = ["ReLU", "LeakyReLU"]


class ReLU(Layer):
    """``y = max(x, 0)``; the gradient is ``dy`` where ``x > 0`` and 0 elsewhere.

    PyTorch's rules, non-finite values included: a NaN input gives NaN and passes its
    gradient (PyTorch masks where the output ``<= 0``); where ``x <= 0`` the gradient
    is exactly 0 even if ``dy`` is inf or NaN. (``relu(-0.0)`` is +0.0 here, -0.0 in
    PyTorch: equal values.) Both passes are one bitwise AND with a 1-byte mask kept
    from the forward: -1 (all bits set) where not ``x <= 0``, else 0. A float times a
    0/1 mask would turn ``inf * 0`` into NaN; ``np.where`` on random signs is ~30x slower.
    """

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._mask: np.ndarray | None = None

    def _clear_cache(self) -> None:
        self._mask = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x = np.ascontiguousarray(x)
        y = pooled_empty_like(x)
        self._mask = None  # the last step's mask: its memory goes back to the pool first
        mask = pooled_empty_like(x, dtype=np.int8)
        bits = np.dtype(f"int{8 * x.itemsize}")  # same width as the float dtype
        xf, mf = x.reshape(-1), mask.reshape(-1)
        xb, yb = xf.view(bits), y.reshape(-1).view(bits)

        def run(s: slice) -> None:
            np.less_equal(xf[s], 0, out=mf[s].view(bool))
            np.subtract(mf[s], 1, out=mf[s])  # True -> 0, False (x > 0 or NaN) -> -1
            np.bitwise_and(xb[s], mf[s], out=yb[s])  # the int8 mask widens with its sign

        map_slices(run, xf.size, x.itemsize)  # chunks on the engine's threads
        self._mask = mask
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        dy = np.ascontiguousarray(dy)
        dx = pooled_empty_like(dy)
        bits = np.dtype(f"int{8 * dy.itemsize}")
        dyf, dxf, mf = dy.reshape(-1).view(bits), dx.reshape(-1).view(bits), self._mask.reshape(-1)
        map_slices(lambda s: np.bitwise_and(dyf[s], mf[s], out=dxf[s]), dyf.size, dy.itemsize)
        return dx


class LeakyReLU(Layer):
    """``y = x`` where ``x > 0`` else ``negative_slope * x`` (PyTorch's default 0.01).

    Parameters
    ----------
    negative_slope : float
        Any finite number (NaN or an infinity would make every negative input NaN
        or infinite: ``ValueError``).

    Keeps the local slope ``dy/dx`` (1 where ``x > 0``, else ``negative_slope``), one
    value per element in the input's dtype: then ``y = x * slope`` and
    ``dx = dy * slope``, exactly PyTorch's values, NaN and infinities included.
    The slope is built without branching on each element's sign (``np.where`` on
    random signs runs about 30x slower): its bit pattern is that of
    ``negative_slope``, XOR-ed with ``bits(1.0) ^ bits(negative_slope)`` where ``x > 0``.
    """

    def __init__(self, negative_slope: float = 0.01, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.negative_slope = as_real(negative_slope, "negative_slope")
        self._slope: np.ndarray | None = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}

    def _clear_cache(self) -> None:
        self._slope = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x = np.ascontiguousarray(x)
        y = pooled_empty_like(x)
        self._slope = None  # the last step's: its memory goes back to the pool first
        slope = pooled_empty_like(x)
        bits_dtype = np.dtype(f"int{8 * x.itemsize}")  # same width as the float dtype
        one_bits, slope_bits = np.array([1.0, self.negative_slope], dtype=x.dtype).view(bits_dtype)
        flip = one_bits ^ slope_bits
        xf, yf, sf = x.reshape(-1), y.reshape(-1), slope.reshape(-1)
        bf = sf.view(bits_dtype)

        def run(s: slice) -> None:
            np.multiply(xf[s] > 0, flip, out=bf[s])  # flip where x > 0, else 0
            np.bitwise_xor(bf[s], slope_bits, out=bf[s])  # the bits of 1.0 or of the slope
            with np.errstate(invalid="ignore"):  # -inf * 0 is NaN, as in PyTorch: no warning
                np.multiply(xf[s], sf[s], out=yf[s])

        map_slices(run, xf.size, x.itemsize)  # chunks on the engine's threads
        self._slope = slope
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        dy = np.ascontiguousarray(dy)
        dx = pooled_empty_like(dy)
        dyf, dxf, sf = dy.reshape(-1), dx.reshape(-1), self._slope.reshape(-1)

        def run(s: slice) -> None:
            with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in PyTorch: no warning
                np.multiply(dyf[s], sf[s], out=dxf[s])

        map_slices(run, dyf.size, dy.itemsize)
        return dx

"""Elementwise activations: ReLU and LeakyReLU (any input shape)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..functional.buffers import empty_like as pooled_empty_like
from ..functional.threads import map_slices
from .base import Layer

__all__ = ["ReLU", "LeakyReLU"]


class ReLU(Layer):
    """``y = max(x, 0)``; the gradient is ``dy`` where ``x > 0`` and 0 elsewhere
    (0 at ``x == 0``, as PyTorch). Keeps a boolean mask (1 byte per element)."""

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._mask: np.ndarray | None = None

    def _clear_cache(self) -> None:
        self._mask = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x = np.ascontiguousarray(x)
        y = pooled_empty_like(x)
        self._mask = None  # the last step's mask: its memory goes back to the pool first
        mask = pooled_empty_like(x, dtype=bool)
        xf, yf, mf = x.reshape(-1), y.reshape(-1), mask.reshape(-1)

        def run(s: slice) -> None:
            np.greater(xf[s], 0, out=mf[s])
            np.maximum(xf[s], 0, out=yf[s])

        map_slices(run, xf.size, x.itemsize)  # chunks on the engine's threads
        self._mask = mask
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        dy = np.ascontiguousarray(dy)
        dx = pooled_empty_like(dy)
        dyf, dxf, mf = dy.reshape(-1), dx.reshape(-1), self._mask.reshape(-1)
        # bool mask: dy where x > 0, else 0
        map_slices(lambda s: np.multiply(dyf[s], mf[s], out=dxf[s]), dyf.size, dy.itemsize)
        return dx


class LeakyReLU(Layer):
    """``y = x`` where ``x > 0`` else ``negative_slope * x`` (PyTorch's default 0.01).

    Parameters
    ----------
    negative_slope : float
    """

    def __init__(self, negative_slope: float = 0.01, *, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(negative_slope, (bool, np.bool_)) or not isinstance(
                negative_slope, (int, float, np.number)):
            raise TypeError(f"negative_slope must be a number; got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self._mask: np.ndarray | None = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}

    def _clear_cache(self) -> None:
        self._mask = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, x * self.negative_slope)

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        return np.where(self._mask, dy, dy * self.negative_slope)

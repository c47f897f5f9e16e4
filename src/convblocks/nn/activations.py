"""Elementwise activations: ReLU and LeakyReLU (any input shape)."""

from __future__ import annotations

from typing import Any

import numpy as np

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
        self._mask = x > 0
        return np.maximum(x, 0)

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        return np.multiply(dy, self._mask)  # bool mask: dy where x > 0, else 0


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

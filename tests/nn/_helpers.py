"""Shared helpers for the nn tests: torch conversions and closeness checks."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # two shared cores: torch's pool would only compete with NumPy

RTOL = 1e-8


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(max|b|, 1e-30)``: error relative to the reference's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if a.size else 0.0


def assert_close(a, b, tol: float = RTOL, what: str = "") -> None:
    err = rel_err(a, b)
    assert err < tol, f"{what}: relative error {err:.3e} >= {tol:.1e}"


def t(a: np.ndarray, grad: bool = False):
    """float64 torch tensor (a copy), optionally requiring grad."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def nhwc_to_nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, 3, 1))


def nchw_to_nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, 1, 3))


def hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    """Conv kernel (kh, kw, I, O) -> (O, I, kh, kw); transposed (kh, kw, O/g, I) -> (I, O/g, kh, kw)."""
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def run_layer(layer, x: np.ndarray, dy_seed: int = 1, training: bool = True):
    """Forward and backward once; returns (y, dy, dx, grads)."""
    y = layer.forward(x, training=training)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape)
    dx = layer.backward(dy)
    return y, dy, dx, dict(layer.grads)

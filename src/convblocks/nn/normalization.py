"""Batch normalization over the channels of image batches.

Momentum follows PyTorch: ``running = (1 - momentum) * running + momentum * batch``
with ``momentum=0.1`` by default, and the running variance uses the unbiased batch
variance (``* M / (M - 1)``, ``M = N*H*W``) while the batch itself is normalized with the
biased one. Keras' ``momentum=m`` is PyTorch's ``momentum=1 - m`` (Keras' 0.99 is 0.01
here); Keras also keeps the biased variance.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..functional.buffers import empty_like as pooled_empty_like
from ..functional.checks import check_data_format
from ..functional.threads import map_slices
from .base import Layer, as_real, image_channels

__all__ = ["BatchNorm2D"]

#: Longest row (elements) of the NHWC view: the tiled (C,) vectors stay in cache.
_MAX_ROW = 1 << 16


class BatchNorm2D(Layer):
    """Per-channel batch normalization ``y = gamma * (x - mean) / sqrt(var + eps) + beta``.

    In training the mean and (biased) variance are the batch's over ``(N, H, W)`` and
    the running statistics are updated; in inference the running ones are used.
    As ``torch.nn.BatchNorm2d``: an empty batch (N = 0) gives an empty output (and
    backward an empty ``dx`` and zero parameter gradients) and leaves the running
    statistics alone; in training a batch with one value per channel
    (N*H*W = 1), whose variance is undefined, raises ``ValueError``.

    Parameters
    ----------
    momentum : float in [0, 1]
        PyTorch's convention (see the module docstring).
    eps : float > 0 (finite)
    data_format : {'NHWC', 'NCHW'}

    Shapes: input/output ``(N, H, W, C)`` (NHWC) or ``(N, C, H, W)`` (NCHW); params
    ``gamma``, ``beta`` and buffers ``running_mean``, ``running_var`` are ``(C,)``.
    """

    def __init__(self, *, momentum: float = 0.1, eps: float = 1e-5, data_format: str = "NHWC",
                 name: str | None = None) -> None:
        super().__init__(name=name)
        momentum = as_real(momentum, "momentum", finite=False)  # NaN, inf fail the range
        eps = as_real(eps, "eps")  # finite: eps = inf would zero every output
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1]; got {momentum}")
        if not eps > 0.0:
            raise ValueError(f"eps must be > 0; got {eps}")
        self.momentum = momentum
        self.eps = eps
        self.data_format = check_data_format(data_format)
        self._x2: np.ndarray | None = None
        self._xc: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._training_stats = False
        self._period = 1  # R, the pixels per row of the NHWC view (see _view)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "eps": self.eps,
                "data_format": self.data_format}

    def _build(self, input_shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype) -> None:
        c = image_channels(input_shape, self.data_format, self)
        self.params["gamma"] = np.ones(c, dtype=dtype)
        self.params["beta"] = np.zeros(c, dtype=dtype)
        self.buffers["running_mean"] = np.zeros(c, dtype=dtype)
        self.buffers["running_var"] = np.ones(c, dtype=dtype)

    def _clear_cache(self) -> None:
        self._x2 = self._xc = self._inv_std = self._scale = None

    # Channel-wise work on a view whose axis 0 is split into chunks. NHWC is viewed as
    # (M / R, R*C) rows of R pixels (M = N*H*W; R = H*W, W or 1: the first whose row
    # holds at most 2**16 values) with the
    # (C,) vectors tiled R times: a (M, C) view broadcast against (C,) would run
    # C-long inner loops, 2-3x slower for C = 32. Per-channel sums are taken over the
    # rows, then folded from (R*C,) to (C,). NCHW is viewed as (N, C, H*W). Every
    # elementwise pass runs chunk by chunk on the engine's threads
    # (convblocks.functional.threads); a chunk's passes hit the cache. A whole-array
    # sum over the rows is a BLAS matrix-vector product (ones @ a), several times
    # faster than numpy's axis-0 reduction; per-chunk dot products use einsum.
    def _view(self, a: np.ndarray) -> np.ndarray:
        if self.data_format == "NHWC":
            return a.reshape(-1, self._period * a.shape[3])  # (M/R, R*C)
        n, c, h, w = a.shape
        return a.reshape(n, c, h * w)  # (N, C, H*W); not -1, which an empty batch leaves open

    def _set_period(self, shape: tuple[int, ...]) -> None:
        """Choose R, the pixels per row of the NHWC view, for an input of ``shape``."""
        if self.data_format == "NHWC":
            _, H, W, C = shape
            self._period = next((r for r in (H * W, W) if r * C <= _MAX_ROW), 1)

    def _vec(self, v: np.ndarray) -> np.ndarray:
        """A (C,) vector shaped to broadcast against ``_view``: tiled R times, or (C, 1)."""
        return np.tile(v, self._period) if self.data_format == "NHWC" else v[:, None]

    def _fold(self, v: np.ndarray) -> np.ndarray:
        """Per-channel totals, (C,), of sums over the rows of ``_view``: (R*C,) or (C,)."""
        return v.reshape(self._period, -1).sum(axis=0) if self.data_format == "NHWC" else v

    def _channel_sum(self, a: np.ndarray) -> np.ndarray:
        if self.data_format == "NHWC":
            return self._fold(np.ones(a.shape[0], dtype=a.dtype) @ a)  # (M/R,) @ (M/R, R*C)
        return np.einsum("ncs->c", a)

    def _chunks(self, fn: Callable[[slice], Any], a: np.ndarray) -> list[Any]:
        """``fn(s)`` for slices ``s`` of ``a``'s axis 0 (a ``_view``), on the engine's threads."""
        return map_slices(fn, a.shape[0], a[:1].nbytes)

    def _channel_dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``sum over (N, H, W) of a * b`` per channel, (C,), from per-chunk partial sums."""
        return self._fold(np.sum(self._chunks(lambda s: self._chunk_dot(a[s], b[s]), a), axis=0))

    def _chunk_dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Partial sums of ``a * b`` over a chunk's rows: (R*C,) for NHWC, (C,) for NCHW."""
        return np.einsum("ij,ij->j" if self.data_format == "NHWC" else "ncs,ncs->c", a, b)

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        gamma, beta = self.params["gamma"], self.params["beta"]
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        self._set_period(x.shape)
        x2 = self._view(x)
        y = pooled_empty_like(x2)
        m = x.size // gamma.size  # N*H*W values per channel
        if training and m == 1:
            raise ValueError(f"{self.describe()}: expected more than 1 value per channel when "
                             f"training (the batch variance needs two); got input of shape "
                             f"{tuple(x.shape)}, N*H*W = 1")
        if m == 0:  # an empty batch: no statistics to take or update (as PyTorch)
            self._x2, self._xc, self._inv_std, self._scale = x2, None, None, None
            self._training_stats = training
            return np.empty_like(x)
        if training:
            mean_c = self._channel_sum(x2) / m  # (C,)
            mean = self._vec(mean_c)  # as a broadcastable vector
            self._xc = None  # the last step's: its memory goes back to the pool first
            xc = pooled_empty_like(x2)  # centred input, kept for backward

            def centre(s: slice) -> np.ndarray:
                np.subtract(x2[s], mean, out=xc[s])
                return self._chunk_dot(xc[s], xc[s])  # partial sum of squares, (C,)

            var = self._fold(np.sum(self._chunks(centre, x2), axis=0)) / m  # biased batch variance, (C,)
            mom = self.momentum
            rm *= 1.0 - mom
            rm += mom * mean_c
            rv *= 1.0 - mom
            rv += (mom * m / max(m - 1, 1)) * var  # unbiased variance, as PyTorch
            inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
            scale = gamma * inv_std
            scale_v, beta_v = self._vec(scale), self._vec(beta)

            def affine(s: slice) -> None:  # y = xc * scale + beta
                np.multiply(xc[s], scale_v, out=y[s])
                np.add(y[s], beta_v, out=y[s])
        else:
            xc = None  # the backward of an inference forward centres x itself
            inv_std = 1.0 / np.sqrt(rv + self.eps)
            scale = gamma * inv_std
            scale_v, shift_v = self._vec(scale), self._vec(beta - rm * scale)

            def affine(s: slice) -> None:  # y = (x - running_mean) * scale + beta
                np.multiply(x2[s], scale_v, out=y[s])
                np.add(y[s], shift_v, out=y[s])

        self._chunks(affine, x2)
        self._x2, self._xc, self._inv_std, self._scale = x2, xc, inv_std, scale
        self._training_stats = training
        return y.reshape(x.shape)

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        if dy.size == 0:  # the empty batch's forward: nothing depends on the parameters
            self.grads["gamma"] = np.zeros_like(self.params["gamma"])
            self.grads["beta"] = np.zeros_like(self.params["beta"])
            return np.empty_like(dy)
        dy2 = self._view(dy)
        xc, inv_std, scale = self._xc, self._inv_std, self._scale
        if xc is None:
            xc = self._x2 - self._vec(self.buffers["running_mean"])
        m = dy.size // scale.size
        dbeta = self._channel_sum(dy2)  # (C,)
        dgamma = self._channel_dot(dy2, xc) * inv_std  # sum(dy * xhat), (C,)
        self.grads["gamma"] = dgamma
        self.grads["beta"] = dbeta
        scale_v = self._vec(scale)
        dx = pooled_empty_like(dy2)
        if not self._training_stats:
            self._chunks(lambda s: np.multiply(dy2[s], scale_v, out=dx[s]), dy2)  # a fixed affine map
            return dx.reshape(dy.shape)
        # Training: mean and variance depend on x too, which removes from dy its
        # per-channel mean and its projection on xhat = xc * inv_std:
        # dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat))
        #    = dy * scale - (xc * k1 + k0), with per-channel k1, k0.
        k1 = self._vec(scale * inv_std * dgamma / m)
        k0 = self._vec(scale * dbeta / m)

        def grad(s: slice) -> None:
            t = np.multiply(xc[s], k1)  # a chunk-sized temporary
            t += k0
            np.multiply(dy2[s], scale_v, out=dx[s])
            np.subtract(dx[s], t, out=dx[s])

        self._chunks(grad, dy2)
        return dx.reshape(dy.shape)

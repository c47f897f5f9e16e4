"""Layers that call the engine (:mod:`convblocks.functional`) or are a plain matmul.

Conv2D, ConvTranspose2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D,
Flatten, Dense and Dropout. Convolutions and pooling are never re-implemented here:
each layer validates its options, owns its parameters, and hands the arithmetic to
``conv2d``/``max_pool2d``/... and their ``*_backward`` counterparts.

Layouts: ``data_format='NHWC'`` (default) takes ``(N, H, W, C)`` batches and keeps
kernels as HWIO ``(kh, kw, C_in/groups, C_out)`` like Keras; ``'NCHW'`` takes
``(N, C, H, W)`` and keeps OIHW ``(C_out, C_in/groups, kh, kw)`` kernels like PyTorch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..functional import (avg_pool2d, avg_pool2d_backward, conv2d, conv2d_backward,
                          conv_transpose2d, conv_transpose2d_backward, global_avg_pool2d,
                          global_avg_pool2d_backward, global_max_pool2d,
                          global_max_pool2d_backward, max_pool2d, max_pool2d_backward)
from ..functional.checks import as_bool, as_int, as_pair, check_data_format
from ..functional.padding import resolve_padding
from .base import Layer, as_real, image_channels, to_jsonable, to_tuple
from .initializers import check_initializer, initialize

__all__ = ["Conv2D", "ConvTranspose2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D",
           "GlobalMaxPool2D", "Flatten", "Dense", "Dropout"]


def _check_padding(padding: Any, name: str = "padding") -> Any:
    """Validate a padding option early (the engine resolves 'same' per input size)."""
    padding = to_tuple(padding)
    resolve_padding(padding, kernel_size=(1, 1), stride=(1, 1), dilation=(1, 1),
                    in_hw=(1, 1), name=name)
    return padding


class _ConvBase(Layer):
    """Options and parameters shared by Conv2D and ConvTranspose2D."""

    def __init__(self, filters: int, kernel_size: Any, *, stride: Any, padding: Any,
                 dilation: Any, groups: int, use_bias: bool, data_format: str,
                 kernel_init: str, name: str | None) -> None:
        super().__init__(name=name)
        self.filters = as_int(filters, "filters", minimum=1)
        self.kernel_size = as_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = as_pair(stride, "stride", minimum=1)
        self.dilation = as_pair(dilation, "dilation", minimum=1)
        self.groups = as_int(groups, "groups", minimum=1)
        self.padding = _check_padding(padding)
        self.use_bias = as_bool(use_bias, "use_bias")
        self.data_format = check_data_format(data_format)
        self.kernel_init = check_initializer(kernel_init)
        if self.filters % self.groups:
            raise ValueError(f"filters ({self.filters}) must be divisible by groups "
                             f"({self.groups})")
        self._cache: Any = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": to_jsonable(self.padding), "dilation": list(self.dilation),
                "groups": self.groups, "use_bias": self.use_bias,
                "data_format": self.data_format, "kernel_init": self.kernel_init}

    def _clear_cache(self) -> None:
        self._cache = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return self._probe_output_shape(input_shape)

    def _make_params(self, kernel_shape: tuple[int, ...], fan_in: int, fan_out: int,
                     rng: np.random.Generator, dtype: np.dtype) -> None:
        self.params["kernel"] = initialize(self.kernel_init, kernel_shape, fan_in=fan_in,
                                           fan_out=fan_out, rng=rng, dtype=dtype)
        if self.use_bias:
            self.params["bias"] = np.zeros(self.filters, dtype=dtype)

    def _store_grads(self, dw: np.ndarray, db: np.ndarray | None) -> None:
        self.grads["kernel"] = dw
        if self.use_bias:
            self.grads["bias"] = db


class Conv2D(_ConvBase):
    """2-D convolution (cross-correlation, as in every framework).

    Parameters
    ----------
    filters : int
        Output channels ``C_out``.
    kernel_size, stride, dilation : int or (h, w)
    padding : int, (h, w), ((top, bottom), (left, right)), 'valid' or 'same'
    groups : int
        Channel groups; ``C_in`` and ``filters`` must be divisible by it.
    use_bias : bool
    data_format : {'NHWC', 'NCHW'}
    kernel_init : {'he', 'he_uniform', 'glorot', 'glorot_normal', ...}
        Kernel initializer (bias starts at zero). ``fan_in = C_in/groups * kh * kw``.

    Shapes: input ``(N, H, W, C_in)`` (NHWC) or ``(N, C_in, H, W)`` (NCHW); params
    ``kernel`` ``(kh, kw, C_in/groups, C_out)`` (NHWC) or ``(C_out, C_in/groups, kh, kw)``
    (NCHW) and ``bias`` ``(C_out,)``.
    """

    def __init__(self, filters: int, kernel_size: Any, *, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, use_bias: bool = True,
                 data_format: str = "NHWC", kernel_init: str = "he",
                 name: str | None = None) -> None:
        super().__init__(filters, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, use_bias=use_bias,
                         data_format=data_format, kernel_init=kernel_init, name=name)

    def _build(self, input_shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype) -> None:
        c_in = image_channels(input_shape, self.data_format, self)
        if c_in % self.groups:
            raise ValueError(f"{self.describe()}: input channels ({c_in}) must be divisible "
                             f"by groups ({self.groups})")
        kh, kw = self.kernel_size
        cg = c_in // self.groups
        shape = ((kh, kw, cg, self.filters) if self.data_format == "NHWC"
                 else (self.filters, cg, kh, kw))
        self._make_params(shape, cg * kh * kw, self.filters // self.groups * kh * kw, rng, dtype)

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y, self._cache = conv2d(x, self.params["kernel"], self.params.get("bias"),
                                stride=self.stride, padding=self.padding,
                                dilation=self.dilation, groups=self.groups,
                                data_format=self.data_format)
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, dw, db = conv2d_backward(dy, self._cache, compute_dx=self.needs_input_grad)
        self._store_grads(dw, db)
        return dx


class ConvTranspose2D(_ConvBase):
    """2-D transposed convolution ("deconvolution"), PyTorch's semantics.

    Parameters as :class:`Conv2D`, plus ``output_padding`` (int or (h, w)): extra rows
    and columns on the bottom/right of the output, each < stride or < dilation.
    Output size ``(H - 1)*stride - pad_before - pad_after + dilation*(k - 1) +
    output_padding + 1``.

    Shapes: ``kernel`` ``(kh, kw, C_out/groups, C_in)`` (NHWC, Keras) or
    ``(C_in, C_out/groups, kh, kw)`` (NCHW, PyTorch); ``bias`` ``(C_out,)``.
    ``fan_in = C_in/groups * kh * kw`` for the initializer.
    """

    def __init__(self, filters: int, kernel_size: Any, *, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 use_bias: bool = True, data_format: str = "NHWC", kernel_init: str = "he",
                 name: str | None = None) -> None:
        super().__init__(filters, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, use_bias=use_bias,
                         data_format=data_format, kernel_init=kernel_init, name=name)
        self.output_padding = as_pair(output_padding, "output_padding", minimum=0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_padding": list(self.output_padding)}

    def _build(self, input_shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype) -> None:
        c_in = image_channels(input_shape, self.data_format, self)
        if c_in % self.groups:
            raise ValueError(f"{self.describe()}: input channels ({c_in}) must be divisible "
                             f"by groups ({self.groups})")
        kh, kw = self.kernel_size
        og = self.filters // self.groups
        shape = ((kh, kw, og, c_in) if self.data_format == "NHWC" else (c_in, og, kh, kw))
        self._make_params(shape, c_in // self.groups * kh * kw, og * kh * kw, rng, dtype)

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y, self._cache = conv_transpose2d(
            x, self.params["kernel"], self.params.get("bias"), stride=self.stride,
            padding=self.padding, output_padding=self.output_padding,
            dilation=self.dilation, groups=self.groups, data_format=self.data_format)
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, dw, db = conv_transpose2d_backward(dy, self._cache,
                                               compute_dx=self.needs_input_grad)
        self._store_grads(dw, db)
        return dx


class _PoolBase(Layer):
    """Shared parts of the windowed pooling layers."""

    def __init__(self, kernel_size: Any, *, stride: Any, padding: Any, ceil_mode: bool,
                 data_format: str, name: str | None) -> None:
        super().__init__(name=name)
        self.kernel_size = as_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = None if stride is None else as_pair(stride, "stride", minimum=1)
        self.padding = _check_padding(padding)
        self.ceil_mode = as_bool(ceil_mode, "ceil_mode")
        self.data_format = check_data_format(data_format)
        self._cache: Any = None

    def _build(self, input_shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype) -> None:
        image_channels(input_shape, self.data_format, self)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return self._probe_output_shape(input_shape)

    def _clear_cache(self) -> None:
        self._cache = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": list(self.kernel_size),
                "stride": None if self.stride is None else list(self.stride),
                "padding": to_jsonable(self.padding), "ceil_mode": self.ceil_mode,
                "data_format": self.data_format}


class MaxPool2D(_PoolBase):
    """Max pooling over ``kernel_size`` windows (``stride=None`` means ``kernel_size``).

    Pads with -inf; PyTorch's rules for padding (<= kernel/2), dilation and ceil_mode.
    A tied window's gradient goes to its first maximum. Input/output ``(N, H, W, C)``
    (NHWC) or ``(N, C, H, W)`` (NCHW).
    """

    def __init__(self, kernel_size: Any, *, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, ceil_mode: bool = False, data_format: str = "NHWC",
                 name: str | None = None) -> None:
        super().__init__(kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         data_format=data_format, name=name)
        self.dilation = as_pair(dilation, "dilation", minimum=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dilation": list(self.dilation)}

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y, self._cache = max_pool2d(x, self.kernel_size, stride=self.stride,
                                    padding=self.padding, dilation=self.dilation,
                                    ceil_mode=self.ceil_mode, data_format=self.data_format)
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        return max_pool2d_backward(dy, self._cache)


class AvgPool2D(_PoolBase):
    """Average pooling, PyTorch's divisor rules (``count_include_pad``, ceil_mode).

    Input/output ``(N, H, W, C)`` (NHWC) or ``(N, C, H, W)`` (NCHW).
    """

    def __init__(self, kernel_size: Any, *, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 data_format: str = "NHWC", name: str | None = None) -> None:
        super().__init__(kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         data_format=data_format, name=name)
        self.count_include_pad = as_bool(count_include_pad, "count_include_pad")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "count_include_pad": self.count_include_pad}

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y, self._cache = avg_pool2d(x, self.kernel_size, stride=self.stride,
                                    padding=self.padding, ceil_mode=self.ceil_mode,
                                    count_include_pad=self.count_include_pad,
                                    data_format=self.data_format)
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        return avg_pool2d_backward(dy, self._cache)


class _GlobalPoolBase(Layer):
    """Global pooling: ``(N, H, W, C)`` or ``(N, C, H, W)`` -> ``(N, C)``."""

    _fwd: Any
    _bwd: Any

    def __init__(self, *, data_format: str = "NHWC", name: str | None = None) -> None:
        super().__init__(name=name)
        self.data_format = check_data_format(data_format)
        self._cache: Any = None

    def _build(self, input_shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype) -> None:
        image_channels(input_shape, self.data_format, self)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (image_channels(input_shape, self.data_format, self),)

    def _clear_cache(self) -> None:
        self._cache = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y, self._cache = type(self)._fwd(x, data_format=self.data_format)
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        return type(self)._bwd(dy, self._cache)


class GlobalAvgPool2D(_GlobalPoolBase):
    """Mean over the spatial axes: ``(N, H, W, C)`` (or NCHW) -> ``(N, C)``."""

    _fwd = staticmethod(global_avg_pool2d)
    _bwd = staticmethod(global_avg_pool2d_backward)


class GlobalMaxPool2D(_GlobalPoolBase):
    """Max over the spatial axes: ``(N, H, W, C)`` (or NCHW) -> ``(N, C)``."""

    _fwd = staticmethod(global_max_pool2d)
    _bwd = staticmethod(global_max_pool2d_backward)


class Flatten(Layer):
    """``(N, *dims) -> (N, prod(dims))`` in memory order (a view, no copy).

    NHWC batches flatten as ``(h, w, c)`` (Keras' order), NCHW ones as ``(c, h, w)``
    (PyTorch's ``nn.Flatten``), so a Dense layer after it matches the framework whose
    layout the model uses.
    """

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._x_shape = x.shape
        # Not reshape(N, -1): an empty batch (N = 0) leaves -1 undetermined.
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self._x_shape)


class Dense(Layer):
    """Fully connected layer ``y = x @ kernel + bias``.

    Parameters
    ----------
    units : int
        Output features.
    use_bias : bool
    kernel_init : str
        Initializer name (see :mod:`convblocks.nn.initializers`); ``fan_in = features``.

    Shapes: input ``(N, F)``, ``kernel`` ``(F, units)``, ``bias`` ``(units,)``, output
    ``(N, units)``. Put a :class:`Flatten` before it for image batches.
    """

    def __init__(self, units: int, *, use_bias: bool = True, kernel_init: str = "he",
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.units = as_int(units, "units", minimum=1)
        self.use_bias = as_bool(use_bias, "use_bias")
        self.kernel_init = check_initializer(kernel_init)
        self._x: np.ndarray | None = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                "kernel_init": self.kernel_init}

    def _build(self, input_shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype) -> None:
        if len(input_shape) != 1:
            raise ValueError(f"{self.describe()} expects per-example input (features,); got "
                             f"shape {tuple(input_shape)} (put a Flatten layer before it)")
        (features,) = input_shape
        self.params["kernel"] = initialize(self.kernel_init, (features, self.units),
                                           fan_in=features, fan_out=self.units, rng=rng,
                                           dtype=dtype)
        if self.use_bias:
            self.params["bias"] = np.zeros(self.units, dtype=dtype)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.units,)

    def _clear_cache(self) -> None:
        self._x = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._x = x
        y = x @ self.params["kernel"]  # (N, F) @ (F, U) -> (N, U)
        if self.use_bias:
            y += self.params["bias"]
        return y

    def _backward(self, dy: np.ndarray) -> np.ndarray | None:
        self.grads["kernel"] = self._x.T @ dy  # (F, N) @ (N, U) -> (F, U)
        if self.use_bias:
            self.grads["bias"] = dy.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return dy @ self.params["kernel"].T  # (N, U) @ (U, F) -> (N, F)


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``rate`` and
    scale the survivors by ``1 / (1 - rate)``; identity in inference.

    Parameters
    ----------
    rate : float in [0, 1)
    seed : int or None
        Seeds the layer's own generator, used when it runs outside ``Sequential.fit``
        (``fit`` hands every Dropout the epoch's generator so resumed runs repeat).

    Shapes: any; output has the input's shape.
    """

    stochastic = True

    def __init__(self, rate: float, *, seed: int | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        rate = as_real(rate, "rate", finite=False)  # NaN and inf fail the range check
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1); got {rate}")
        self.rate = rate
        self.seed = None if seed is None else as_int(seed, "seed", minimum=0)
        self.rng = np.random.default_rng(self.seed)
        self._mask: np.ndarray | None = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    def _clear_cache(self) -> None:
        self._mask = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        # One uniform draw per element in the activation dtype; the mask holds 0 or
        # 1/(1-rate), so forward and backward are a single multiply each.
        mask = self.rng.random(x.shape, dtype=x.dtype)
        keep = mask >= self.rate
        np.multiply(keep, x.dtype.type(1.0 / (1.0 - self.rate)), out=mask)
        self._mask = mask
        return x * mask

    def _backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self._mask is None else dy * self._mask

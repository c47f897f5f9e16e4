"""2-D convolution and transposed convolution: the validated public API.

``conv2d`` is a cross-correlation (as in PyTorch and Keras)::

    y[n, i, j, k] = b[k] + sum_{p, q, c} xp[n, i*sh + p*dh, j*sw + q*dw, g*Cg + c] * w[p, q, c, k]

with ``xp`` the zero-padded input and ``g = k // (K / groups)`` the group of output
channel ``k``. ``conv_transpose2d`` is its adjoint with respect to the input (PyTorch's
``conv_transpose2d``). Every function here validates its arguments, converts NCHW/OIHW
to the engine's NHWC/HWIO layout, and calls the three kernels of
:mod:`.gemm_conv` (forward, weight gradient, input gradient), which both operators
share: the transposed convolution's forward *is* the convolution's input gradient, and
its backward is the convolution's forward plus the weight-gradient kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .checks import (as_bool, as_float_array, as_int, as_pair, check_array_size, check_data_format, check_ndim,
                     result_dtype, shape_str)
from .gemm_conv import conv_forward, conv_forward_keep_columns, conv_input_grad, conv_weight_grad
from .padding import Padding2D, output_size, resolve_padding, same_padding_1d

__all__ = ["conv2d", "conv2d_backward", "conv2d_cache", "Conv2dCache",
           "conv_transpose2d", "conv_transpose2d_backward", "ConvTranspose2dCache"]

Pair = tuple[int, int]


@dataclass(frozen=True)
class Conv2dCache:
    """What :func:`conv2d_backward` needs, in the engine's layout.

    Attributes
    ----------
    x : ndarray, shape (N, H, W, C_in)
        The input in NHWC (a transposed copy when the caller used NCHW), computation dtype.
    w : ndarray, shape (kh, kw, C_in // groups, C_out)
        The weights in HWIO, computation dtype.
    has_bias : bool
        Whether a bias was given (``db`` is None otherwise).
    stride, dilation : (int, int)
    padding : ((top, bottom), (left, right))
        Resolved padding.
    groups : int
    data_format : {'NHWC', 'NCHW'}
        The caller's layout; gradients are returned in it.
    out_shape : tuple of int
        Shape of ``y`` (and so of ``dy``) in the caller's layout.
    columns : ndarray, shape (N*Ho*Wo, kh*kw*C_in), or None
        The forward's im2col matrix of ``x``, kept when it is small (the whole batch
        in one block, ``groups == 1``) so that the weight gradient reuses it; None
        from :func:`conv2d_cache` or for larger inputs.
    """

    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    stride: Pair
    padding: Padding2D
    dilation: Pair
    groups: int
    data_format: str
    out_shape: tuple[int, int, int, int]
    columns: np.ndarray | None = None


@dataclass(frozen=True)
class ConvTranspose2dCache:
    """What :func:`conv_transpose2d_backward` needs, in the engine's layout.

    Attributes
    ----------
    x : ndarray, shape (N, H, W, C_in)
        The input in NHWC, computation dtype.
    w : ndarray, shape (kh, kw, C_out // groups, C_in)
        The weights in the NHWC transposed layout (Keras's), computation dtype. Read as
        a convolution's HWIO weights they map C_out channels to C_in.
    has_bias : bool
    stride, dilation, output_padding : (int, int)
    padding : ((top, bottom), (left, right))
        Resolved padding, removed from the full output.
    groups : int
    data_format : {'NHWC', 'NCHW'}
    out_shape : tuple of int
        Shape of ``y`` in the caller's layout.
    """

    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    stride: Pair
    padding: Padding2D
    dilation: Pair
    output_padding: Pair
    groups: int
    data_format: str
    out_shape: tuple[int, int, int, int]


# ----------------------------------------------------------------------------- checks


def _check_positive_dims(a: np.ndarray, name: str, axes: tuple[int, ...], what: str) -> None:
    if any(a.shape[ax] == 0 for ax in axes):
        raise ValueError(f"{name} must have non-empty {what}; got shape {shape_str(a.shape)}")


def _common(x: Any, w: Any, b: Any, stride: Any, dilation: Any, groups: Any, data_format: Any):
    """Arrays in the computation dtype and the layout-independent options."""
    data_format = check_data_format(data_format)
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    if data_format == "NHWC":
        check_ndim(x, 4, "x", "(N, H, W, C) for data_format='NHWC'")
        check_ndim(w, 4, "w", "(kh, kw, C_in/groups, C_out) for data_format='NHWC'")
    else:
        check_ndim(x, 4, "x", "(N, C, H, W) for data_format='NCHW'")
        check_ndim(w, 4, "w", "(C_out, C_in/groups, kh, kw) for data_format='NCHW'")
    arrays = [x, w]
    if b is not None:
        b = as_float_array(b, "b")
        arrays.append(b)
    dtype = result_dtype(*arrays)
    x = x.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    if b is not None:
        b = b.astype(dtype, copy=False)
    stride = as_pair(stride, "stride", minimum=1)
    dilation = as_pair(dilation, "dilation", minimum=1)
    groups = as_int(groups, "groups", minimum=1)
    return x, w, b, stride, dilation, groups, data_format


def _to_nhwc(x: np.ndarray, data_format: str) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C) contiguous copy for NCHW; ``x`` itself for NHWC."""
    return x if data_format == "NHWC" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _from_nhwc(y: np.ndarray, data_format: str) -> np.ndarray:
    """(N, H, W, C) -> the caller's layout, contiguous."""
    return y if data_format == "NHWC" else np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def _w_to_hwio(w: np.ndarray, data_format: str) -> np.ndarray:
    """OIHW (K, C, kh, kw) -> HWIO (kh, kw, C, K); the transposed layouts map the same way."""
    return w if data_format == "NHWC" else np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _w_from_hwio(w: np.ndarray, data_format: str) -> np.ndarray:
    """HWIO (kh, kw, C, K) -> the caller's weight layout, contiguous."""
    return w if data_format == "NHWC" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _check_bias(b: np.ndarray | None, channels: int, what: str) -> None:
    if b is not None and b.shape != (channels,):
        raise ValueError(f"b must have shape ({channels},) (one value per {what}); "
                         f"got shape {shape_str(b.shape)}")


def _check_dy(dy: Any, cache: Any, compute_dx: Any, cache_type: type, forward: str) -> np.ndarray:
    """``dy`` in the cache's dtype after checking its shape, the cache and ``compute_dx``."""
    if not isinstance(cache, cache_type):
        raise TypeError(f"cache must be the {cache_type.__name__} returned by {forward}; "
                        f"got {type(cache).__name__}")
    as_bool(compute_dx, "compute_dx")
    dy = as_float_array(dy, "dy")
    if dy.shape != cache.out_shape:
        raise ValueError(f"dy must have the forward output's shape {shape_str(cache.out_shape)} "
                         f"({cache.data_format}); got shape {shape_str(dy.shape)}")
    return dy.astype(cache.x.dtype, copy=False)


# ----------------------------------------------------------------------------- conv2d


def _prepare_conv2d(x, w, b, stride, padding, dilation, groups, data_format
                    ) -> tuple[Conv2dCache, np.ndarray | None]:
    """Validate conv2d's arguments; the cache and the bias in the computation dtype."""
    x, w, b, stride, dilation, groups, data_format = _common(x, w, b, stride, dilation, groups, data_format)
    x = _to_nhwc(x, data_format)
    w = _w_to_hwio(w, data_format)
    N, H, W, C = x.shape
    kh, kw, Cg, K = w.shape
    wname = "w (kh, kw, C_in/groups, C_out)" if data_format == "NHWC" else "w (C_out, C_in/groups, kh, kw)"
    _check_positive_dims(x, "x", (1, 2, 3), "height, width and channels")
    if min(kh, kw, Cg, K) == 0:
        raise ValueError(f"{wname} must have no empty axis; got shape "
                         f"{shape_str(w.shape if data_format == 'NHWC' else (K, Cg, kh, kw))}")
    if C % groups:
        raise ValueError(f"groups={groups} must divide the input channels C_in={C}")
    if K % groups:
        raise ValueError(f"groups={groups} must divide the output channels C_out={K} of {wname}")
    if Cg * groups != C:
        raise ValueError(f"{wname} has C_in/groups={Cg}, but x has C_in={C} channels and "
                         f"groups={groups}, so C_in/groups must be {C // groups}")
    _check_bias(b, K, "output channel")
    pad = resolve_padding(padding, kernel_size=(kh, kw), stride=stride, dilation=dilation, in_hw=(H, W))
    Ho = output_size(H, kh, stride[0], dilation[0], *pad[0])
    Wo = output_size(W, kw, stride[1], dilation[1], *pad[1])
    if Ho <= 0 or Wo <= 0:
        raise ValueError(
            f"the kernel window is larger than the padded input: kernel {(kh, kw)} with dilation "
            f"{dilation} spans {(dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)}, padded input "
            f"is {(H + sum(pad[0]), W + sum(pad[1]))} (input {(H, W)}, padding {pad}); output size would be "
            f"{(Ho, Wo)}")
    out_shape = (N, Ho, Wo, K) if data_format == "NHWC" else (N, K, Ho, Wo)
    cause = lambda: (f"conv2d: padding {pad} with input {(H, W)}, kernel {(kh, kw)}, stride {stride} "
                     f"and dilation {dilation}")
    check_array_size((1, H + sum(pad[0]), W + sum(pad[1]), C), x.itemsize,
                     "one padded input image (1, H, W, C_in)", cause)
    check_array_size(out_shape, x.itemsize, f"the output ({data_format})", cause)
    return Conv2dCache(x=x, w=w, has_bias=b is not None, stride=stride, padding=pad,
                       dilation=dilation, groups=groups, data_format=data_format, out_shape=out_shape), b


def conv2d(x: Any, w: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: Any = 1, data_format: str = "NHWC") -> tuple[np.ndarray, Conv2dCache]:
    """2-D convolution (cross-correlation), forward.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C_in) for NHWC or (N, C_in, H, W) for NCHW
    w : array_like, shape (kh, kw, C_in/groups, C_out) for NHWC or (C_out, C_in/groups, kh, kw) for NCHW
    b : array_like, shape (C_out,), optional
    stride : int or (int, int), keyword-only
    padding : int, (h, w), ((top, bottom), (left, right)), 'valid' or 'same', keyword-only
        Zero padding. 'same' gives ``ceil(H / stride)`` rows (TensorFlow's rule).
    dilation : int or (int, int), keyword-only
        Spacing between kernel taps.
    groups : int, keyword-only
        Input and output channels are split into ``groups`` independent convolutions.
    data_format : {'NHWC', 'NCHW'}, keyword-only

    Returns
    -------
    y : ndarray, shape (N, Ho, Wo, C_out) for NHWC or (N, C_out, Ho, Wo) for NCHW
        ``Ho = floor((H + top + bottom - dilation*(kh-1) - 1) / stride) + 1``, same for ``Wo``.
    cache : Conv2dCache
        For :func:`conv2d_backward`.

    Raises
    ------
    TypeError
        Non-numeric or unsupported dtypes, non-integer options.
    ValueError
        Wrong ndim, channel or bias mismatch, groups not dividing the channels, bad
        padding, a window larger than the padded input.
    """
    cache, b = _prepare_conv2d(x, w, b, stride, padding, dilation, groups, data_format)
    Ho, Wo = _out_hw(cache)
    y, columns = conv_forward_keep_columns(cache.x, cache.w, padding=cache.padding, stride=cache.stride,
                                           dilation=cache.dilation, groups=cache.groups, out_hw=(Ho, Wo))
    if columns is not None:
        cache = replace(cache, columns=columns)
    if b is not None:
        y += b  # (N, Ho, Wo, C_out) + (C_out,)
    return _from_nhwc(y, cache.data_format), cache


def _out_hw(cache: Conv2dCache | ConvTranspose2dCache) -> Pair:
    s = cache.out_shape
    return (s[1], s[2]) if cache.data_format == "NHWC" else (s[2], s[3])


def conv2d_cache(x: Any, w: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: Any = 1, data_format: str = "NHWC") -> Conv2dCache:
    """Validate the arguments of :func:`conv2d` and build its cache without running it.

    ``conv2d_backward(dy, conv2d_cache(x, w, b, ...))`` equals the backward through the
    forward's own cache. Same parameters and errors as :func:`conv2d`.
    """
    cache, _ = _prepare_conv2d(x, w, b, stride, padding, dilation, groups, data_format)
    return cache


def conv2d_backward(dy: Any, cache: Conv2dCache, *, compute_dx: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d`.

    Parameters
    ----------
    dy : array_like, shape of the forward's ``y``
        Gradient of the loss with respect to ``y``; computed in the forward's dtype.
    cache : Conv2dCache
        From :func:`conv2d` or :func:`conv2d_cache`.
    compute_dx : bool, keyword-only
        False skips the input gradient (a network's first layer).

    Returns
    -------
    dx : ndarray, shape of ``x``, or None when ``compute_dx`` is False
    dw : ndarray, shape of ``w`` (in the caller's layout)
    db : ndarray, shape (C_out,), or None when the forward had no bias
    """
    dy = _to_nhwc(_check_dy(dy, cache, compute_dx, Conv2dCache, "conv2d"), cache.data_format)
    kh, kw = cache.w.shape[:2]
    dw = conv_weight_grad(cache.x, dy, kernel_size=(kh, kw), padding=cache.padding, stride=cache.stride,
                          dilation=cache.dilation, groups=cache.groups, columns=cache.columns)
    db = dy.sum(axis=(0, 1, 2)) if cache.has_bias else None
    dx = None
    if compute_dx:
        dx = conv_input_grad(dy, cache.w, in_hw=cache.x.shape[1:3], padding=cache.padding,
                             stride=cache.stride, dilation=cache.dilation, groups=cache.groups)
        dx = _from_nhwc(dx, cache.data_format)
    return dx, _w_from_hwio(dw, cache.data_format), db


# ----------------------------------------------------------------------------- conv_transpose2d


def _transpose_padding(padding: Any, *, in_hw: Pair, kernel_size: Pair, stride: Pair, dilation: Pair,
                       output_padding: Pair) -> tuple[Padding2D, Pair]:
    """Resolved padding and output size ``(Ho, Wo)`` of a transposed convolution.

    Numeric padding follows PyTorch: ``Ho = (H-1)*stride - top - bottom + dilation*(kh-1)
    + output_padding + 1``. 'same' gives ``Ho = H*stride``: the adjoint of a 'same'
    convolution of an ``H*stride`` input.
    """
    if isinstance(padding, str) and padding == "same":
        if output_padding != (0, 0):
            raise ValueError(f"output_padding must be 0 with padding='same' (the output is "
                             f"input * stride); got output_padding={output_padding}")
        pads = tuple(same_padding_1d(n * s, k, s, d)
                     for n, k, s, d in zip(in_hw, kernel_size, stride, dilation))
        return pads, (in_hw[0] * stride[0], in_hw[1] * stride[1])
    pad = resolve_padding(padding, kernel_size=kernel_size, stride=stride, dilation=dilation, in_hw=in_hw)
    out = tuple((n - 1) * s - pb - pa + d * (k - 1) + op + 1
                for n, (pb, pa), k, s, d, op in zip(in_hw, pad, kernel_size, stride, dilation, output_padding))
    return pad, out


def _prepare_transpose(x, w, b, stride, padding, output_padding, dilation, groups, data_format
                       ) -> tuple[ConvTranspose2dCache, np.ndarray | None]:
    """Validate conv_transpose2d's arguments; the cache and the bias in the computation dtype."""
    x, w, b, stride, dilation, groups, data_format = _common(x, w, b, stride, dilation, groups, data_format)
    output_padding = as_pair(output_padding, "output_padding", minimum=0)
    x = _to_nhwc(x, data_format)
    w = _w_to_hwio(w, data_format)  # (kh, kw, C_out/groups, C_in)
    N, H, W, C = x.shape
    kh, kw, Cog, Ci = w.shape
    wname = ("w (kh, kw, C_out/groups, C_in)" if data_format == "NHWC"
             else "w (C_in, C_out/groups, kh, kw)")
    _check_positive_dims(x, "x", (1, 2, 3), "height, width and channels")
    if min(kh, kw, Cog, Ci) == 0:
        raise ValueError(f"{wname} must have no empty axis; got shape "
                         f"{shape_str(w.shape if data_format == 'NHWC' else (Ci, Cog, kh, kw))}")
    if Ci != C:
        raise ValueError(f"{wname} has C_in={Ci}, but x has {C} channels")
    if C % groups:
        raise ValueError(f"groups={groups} must divide the input channels C_in={C}")
    for axis, op, s, d in zip("hw", output_padding, stride, dilation):
        if op >= s and op >= d:
            raise ValueError(f"output_padding ({axis}) must be smaller than the stride or the dilation "
                             f"(as in PyTorch); got output_padding={op} with stride={s}, dilation={d}")
    _check_bias(b, Cog * groups, "output channel")
    pad, (Ho, Wo) = _transpose_padding(padding, in_hw=(H, W), kernel_size=(kh, kw), stride=stride,
                                       dilation=dilation, output_padding=output_padding)
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"padding {pad} removes the whole output of the transposed convolution: "
                         f"output size would be {(Ho, Wo)} (input {(H, W)}, kernel {(kh, kw)}, "
                         f"stride {stride}, dilation {dilation}, output_padding {output_padding})")
    K = Cog * groups
    out_shape = (N, Ho, Wo, K) if data_format == "NHWC" else (N, K, Ho, Wo)
    cause = lambda: (f"conv_transpose2d: stride {stride}, dilation {dilation}, output_padding "
                     f"{output_padding} and padding {pad} with input {(H, W)} and kernel {(kh, kw)}")
    check_array_size(out_shape, x.itemsize, f"the output ({data_format})", cause)
    # the backward pads dy back to the full output before padding is removed
    check_array_size((1, Ho + sum(pad[0]), Wo + sum(pad[1]), K), x.itemsize,
                     "one image of the full output before padding is removed (1, H, W, C_out)", cause)
    cache = ConvTranspose2dCache(x=x, w=w, has_bias=b is not None, stride=stride, padding=pad,
                                 dilation=dilation, output_padding=output_padding, groups=groups,
                                 data_format=data_format, out_shape=out_shape)
    return cache, b


def conv_transpose2d(x: Any, w: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: Any = 1,
                     data_format: str = "NHWC") -> tuple[np.ndarray, ConvTranspose2dCache]:
    """2-D transposed convolution ("deconvolution"), forward, with PyTorch's semantics.

    The adjoint of :func:`conv2d` with respect to its input: every input pixel scatters
    ``w`` scaled by its value into the output, windows ``stride`` apart.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C_in) for NHWC or (N, C_in, H, W) for NCHW
    w : array_like, shape (kh, kw, C_out/groups, C_in) for NHWC (Keras) or
        (C_in, C_out/groups, kh, kw) for NCHW (PyTorch)
    b : array_like, shape (C_out,), optional
    stride, dilation : int or (int, int), keyword-only
    padding : int, (h, w), ((top, bottom), (left, right)), 'valid' or 'same', keyword-only
        Rows/columns removed from each side of the full output. 'same' gives an output
        of ``H*stride`` (the adjoint of a 'same' convolution).
    output_padding : int or (int, int), keyword-only
        Extra rows/columns added at the bottom/right; must be smaller than the stride
        or the dilation.
    groups : int, keyword-only
    data_format : {'NHWC', 'NCHW'}, keyword-only

    Returns
    -------
    y : ndarray, shape (N, Ho, Wo, C_out) for NHWC or (N, C_out, Ho, Wo) for NCHW
        ``Ho = (H-1)*stride - top - bottom + dilation*(kh-1) + output_padding + 1``.
    cache : ConvTranspose2dCache
        For :func:`conv_transpose2d_backward`.
    """
    cache, b = _prepare_transpose(x, w, b, stride, padding, output_padding, dilation, groups, data_format)
    y = conv_input_grad(cache.x, cache.w, in_hw=_out_hw(cache), padding=cache.padding, stride=cache.stride,
                        dilation=cache.dilation, groups=cache.groups)
    if b is not None:
        y += b  # (N, Ho, Wo, C_out) + (C_out,)
    return _from_nhwc(y, cache.data_format), cache


def conv_transpose2d_backward(dy: Any, cache: ConvTranspose2dCache, *, compute_dx: bool = True
                              ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv_transpose2d`.

    ``dx`` is :func:`conv2d`'s forward of ``dy`` with the same weights, and ``dw`` the
    convolution's weight gradient with the roles of input and output swapped.

    Parameters
    ----------
    dy : array_like, shape of the forward's ``y``
    cache : ConvTranspose2dCache
    compute_dx : bool, keyword-only

    Returns
    -------
    dx : ndarray, shape of ``x``, or None when ``compute_dx`` is False
    dw : ndarray, shape of ``w`` (in the caller's layout)
    db : ndarray, shape (C_out,), or None when the forward had no bias
    """
    dy = _to_nhwc(_check_dy(dy, cache, compute_dx, ConvTranspose2dCache, "conv_transpose2d"),
                  cache.data_format)  # (N, Ho, Wo, C_out)
    kh, kw = cache.w.shape[:2]
    H, W = cache.x.shape[1:3]
    # dW[p, q, o, i] = sum dyp[n, i*s + p*d, j*s + q*d, o] x[n, i, j, i]: the conv weight
    # gradient with dy as the "input" and x as the "output gradient".
    dw = conv_weight_grad(dy, cache.x, kernel_size=(kh, kw), padding=cache.padding, stride=cache.stride,
                          dilation=cache.dilation, groups=cache.groups)
    db = dy.sum(axis=(0, 1, 2)) if cache.has_bias else None
    dx = None
    if compute_dx:
        dx = conv_forward(dy, cache.w, padding=cache.padding, stride=cache.stride,
                          dilation=cache.dilation, groups=cache.groups, out_hw=(H, W))
        dx = _from_nhwc(dx, cache.data_format)
    return dx, _w_from_hwio(dw, cache.data_format), db

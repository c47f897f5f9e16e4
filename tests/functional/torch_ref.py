"""PyTorch references for the engine's oracle tests (test-only: torch never enters src/).

Each ``*_ref`` function runs one engine configuration through ``torch.nn.functional``
and returns the forward output and the gradients with respect to every input, in the
ENGINE's layout (NHWC activations with HWIO weights, or NCHW with OIHW weights), so a
test compares arrays directly. The translation done here:

* activations: NHWC (N, H, W, C) <-> torch's NCHW (N, C, H, W);
* conv weights: HWIO (kh, kw, C_in/groups, C_out) <-> OIHW (C_out, C_in/groups, kh, kw);
  transposed-conv weights: (kh, kw, C_out/groups, C_in) <-> (C_in, C_out/groups, kh, kw);
* padding: every form (int, (h, w), ((top, bottom), (left, right)), 'valid', 'same') is
  resolved HERE, independently of convblocks.functional.padding, into explicit
  ((top, bottom), (left, right)); convolution applies it with ``F.pad`` (torch supports
  'same' only at stride 1 and never asymmetric padding), transposed convolution crops
  the full output, pooling hands symmetric padding to torch and pads asymmetric
  padding itself (-inf for max, zeros plus a mask of ones for average).

References always compute in float64 (float32 inputs are widened exactly), so a float32
engine result is judged against the exact answer, not against torch's own rounding.
Gradients come from torch autograd with the upstream gradient ``dy`` supplied by the test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

torch = pytest.importorskip("torch")
F = torch.nn.functional

# Two shared cores: torch's own thread pool would only compete with NumPy's.
torch.set_num_threads(1)

__all__ = [
    "oracle_settings", "random_array", "distinct_array", "rel_err", "assert_close",
    "tolerance", "pair", "explicit_padding", "same_padding", "to_nchw", "from_nchw",
    "conv2d_ref", "conv_transpose2d_ref", "max_pool2d_ref", "avg_pool2d_ref",
    "global_avg_pool2d_ref", "global_max_pool2d_ref",
]


# --------------------------------------------------------------------------- test data
def oracle_settings(max_examples: int):
    """Hypothesis settings of the oracle tests: reproducible (derandomized, so CI sees the
    same examples every run), no deadline (the first torch call is slow), small budget."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Standard-normal values of ``dtype``."""
    return rng.standard_normal(shape).astype(dtype)


def distinct_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Pairwise-distinct values: a random permutation of ``k / 2**m`` in [-0.5, 0.5), all
    exact in float32, so a max never ties and every argmax is unique."""
    n = int(np.prod(shape))
    scale = 2.0 ** -int(np.ceil(np.log2(max(n, 1))))
    return ((rng.permutation(n) - n // 2) * scale).reshape(shape).astype(dtype)


# --------------------------------------------------------------------------- comparison
def tolerance(dtype: Any) -> float:
    """Largest accepted relative error for a result of ``dtype`` (see :func:`rel_err`)."""
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    """``max |got - ref| / max |ref|`` (absolute error when ``ref`` is all zeros); the
    relative error of a scalar or of arrays of any shape."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ref.size == 0:
        return 0.0
    scale = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(got - ref))) / (scale if scale > 0 else 1.0)


def assert_close(got: Any, ref: np.ndarray, *, dtype: Any, name: str, config: Any = None) -> None:
    """Assert ``got`` has ``ref``'s shape, exactly ``dtype``, and relative error within
    :func:`tolerance` of ``dtype``; the message names the quantity and the configuration."""
    where = f" for {config}" if config is not None else ""
    assert isinstance(got, np.ndarray), \
        f"{name}: expected an ndarray, got {type(got).__name__}{where}"
    assert got.shape == ref.shape, f"{name}: shape {got.shape}, expected {ref.shape}{where}"
    assert got.dtype == np.dtype(dtype), \
        f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}{where}"
    # Non-finite values (a max-pool window lying wholly in the -inf padding, a NaN that
    # propagates) must match exactly; the finite ones are compared with the tolerance.
    finite = np.isfinite(ref)
    bad = ~finite & (got != ref) & ~(np.isnan(got) & np.isnan(ref))
    wrong = np.argwhere(bad | ~np.isfinite(got) & finite)[:5].tolist()
    assert not wrong, f"{name}: non-finite values differ at {wrong}{where}"
    err = rel_err(got[finite], ref[finite])
    assert err < tolerance(dtype), \
        f"{name}: relative error {err:.3e} >= {tolerance(dtype):.0e}{where}"


# --------------------------------------------------------------------------- options
def pair(v: Any) -> tuple[int, int]:
    """An int or an (h, w) pair as a tuple of two ints."""
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def same_padding(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same' along one axis: output ceil(n / stride), extra pad after."""
    out = -(-n // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def explicit_padding(padding: Any, *, kernel_size: Any, stride: Any, dilation: Any,
                     in_hw: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Any accepted padding form as ((top, bottom), (left, right))."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        (kh, kw), (sh, sw), (dh, dw) = pair(kernel_size), pair(stride), pair(dilation)
        return same_padding(in_hw[0], kh, sh, dh), same_padding(in_hw[1], kw, sw, dw)
    if isinstance(padding, (tuple, list)):
        return tuple(pair(p) for p in padding)  # type: ignore[return-value]
    p = int(padding)
    return (p, p), (p, p)


# --------------------------------------------------------------------------- layouts
def to_nchw(x: np.ndarray, data_format: str) -> np.ndarray:
    """(N, H, W, C) -> (N, C, H, W) for NHWC; NCHW unchanged."""
    return x.transpose(0, 3, 1, 2) if data_format == "NHWC" else x


def from_nchw(x: np.ndarray, data_format: str) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C) for NHWC; NCHW unchanged."""
    return x.transpose(0, 2, 3, 1) if data_format == "NHWC" else x


def _leaf(a: np.ndarray) -> "torch.Tensor":
    """A float64 leaf tensor (own memory) that records its gradient."""
    return torch.tensor(np.ascontiguousarray(a, dtype=np.float64)).requires_grad_(True)


def _grad(t: "torch.Tensor") -> np.ndarray:
    return t.grad.detach().numpy().copy()


def _backward(y: "torch.Tensor", dy: np.ndarray | None) -> None:
    if dy is not None:
        y.backward(torch.tensor(np.ascontiguousarray(dy, dtype=np.float64)))


# --------------------------------------------------------------------------- convolution
def _conv_outputs(y: "torch.Tensor", xt: "torch.Tensor", wt: "torch.Tensor",
                  bt: "torch.Tensor | None", dy: np.ndarray | None,
                  data_format: str) -> dict[str, np.ndarray | None]:
    """Backpropagate ``dy`` (if given) from a torch convolution's output ``y``; return
    ``y``, ``dx``, ``dw``, ``db`` in the engine's layouts (``db`` None without bias)."""
    _backward(y, None if dy is None else to_nchw(dy, data_format))
    out: dict[str, np.ndarray | None] = {"y": from_nchw(y.detach().numpy(), data_format)}
    if dy is not None:
        dw = _grad(wt)
        out["dx"] = from_nchw(_grad(xt), data_format)
        out["dw"] = dw.transpose(2, 3, 1, 0) if data_format == "NHWC" else dw
        out["db"] = _grad(bt) if bt is not None else None
    return out


def assert_bias_grad_and_inputs_kept(db: np.ndarray | None, ref: dict, b: np.ndarray | None,
                                     originals: list, inputs: list, cfg: dict) -> None:
    """``db`` is None without bias, else close to ``ref["db"]``; and no input changed."""
    if b is None:
        assert db is None, f"db must be None without bias for {cfg}"
    else:
        assert_close(db, ref["db"], dtype=cfg["dtype"], name="db", config=cfg)
    for before, after in zip(originals, [a for a in inputs if a is not None]):
        np.testing.assert_array_equal(after, before, err_msg=f"an input was modified for {cfg}")


def conv2d_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, dy: np.ndarray | None, *,
               stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1,
               data_format: str = "NHWC") -> dict[str, np.ndarray | None]:
    """Reference for ``conv2d`` and ``conv2d_backward``.

    ``x`` and ``dy`` are in ``data_format``; ``w`` is HWIO (kh, kw, C_in/groups, C_out)
    for NHWC and OIHW (C_out, C_in/groups, kh, kw) for NCHW. Returns ``{"y", "dx", "dw",
    "db"}`` in the same layouts (gradients only when ``dy`` is given; ``db`` None without
    bias).
    """
    w_oihw = w.transpose(3, 2, 0, 1) if data_format == "NHWC" else w
    kernel = w_oihw.shape[2:]
    (t, bo), (l, r) = explicit_padding(padding, kernel_size=kernel, stride=stride,
                                       dilation=dilation, in_hw=to_nchw(x, data_format).shape[2:])
    xt, wt = _leaf(to_nchw(x, data_format)), _leaf(w_oihw)
    bt = _leaf(b) if b is not None else None
    # (N, C, H, W) -> (N, C, t+H+b, l+W+r), then an unpadded torch convolution.
    y = F.conv2d(F.pad(xt, (l, r, t, bo)), wt, bt, stride=pair(stride),
                 dilation=pair(dilation), groups=groups)
    return _conv_outputs(y, xt, wt, bt, dy, data_format)


def conv_transpose2d_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                         dy: np.ndarray | None, *, stride: Any = 1, padding: Any = 0,
                         output_padding: Any = 0, dilation: Any = 1, groups: int = 1,
                         data_format: str = "NHWC") -> dict[str, np.ndarray | None]:
    """Reference for ``conv_transpose2d`` and its backward.

    ``w`` is (kh, kw, C_out/groups, C_in) for NHWC and torch's (C_in, C_out/groups, kh,
    kw) for NCHW. Symmetric numeric padding is handed to torch as is. Other forms follow
    the engine's documented extension of torch's rule: ``padding`` rows are removed from
    each side of the full (unpadded) output, ``Ho = (H-1)*stride - top - bottom +
    dilation*(kh-1) + output_padding + 1``; 'same' gives ``Ho = H*stride`` with TF's
    'same' padding of an ``H*stride`` input (the adjoint of a 'same' conv2d).
    """
    w_t = w.transpose(3, 2, 0, 1) if data_format == "NHWC" else w
    xt, wt = _leaf(to_nchw(x, data_format)), _leaf(w_t)
    bt = _leaf(b) if b is not None else None
    (sh, sw), (dh, dw_), (oh, ow) = pair(stride), pair(dilation), pair(output_padding)
    h, w_in = xt.shape[2:]
    kh, kw = w_t.shape[2:]
    if padding == "same":
        out_hw = (h * sh, w_in * sw)
        pads = (same_padding(out_hw[0], kh, sh, dh), same_padding(out_hw[1], kw, sw, dw_))
    else:
        pads = explicit_padding(padding, kernel_size=(kh, kw), stride=stride,
                                dilation=dilation, in_hw=(h, w_in))
        out_hw = ((h - 1) * sh - sum(pads[0]) + dh * (kh - 1) + oh + 1,
                  (w_in - 1) * sw - sum(pads[1]) + dw_ * (kw - 1) + ow + 1)
    (t, bo), (l, r) = pads
    if padding != "same" and t == bo and l == r:
        y = F.conv_transpose2d(xt, wt, bt, stride=(sh, sw), padding=(t, l),
                               output_padding=(oh, ow), groups=groups, dilation=(dh, dw_))
    else:
        # Full output (N, C_out, (H-1)*sh + dh*(kh-1) + 1, ...), then rows [t, t + Ho) and
        # columns [l, l + Wo): F.pad with negative pads crops, positive ones append the
        # zero rows no input reaches; bias added afterwards covers every output pixel.
        full = F.conv_transpose2d(xt, wt, None, stride=(sh, sw), groups=groups, dilation=(dh, dw_))
        hf, wf = full.shape[2:]
        y = F.pad(full, (-l, l + out_hw[1] - wf, -t, t + out_hw[0] - hf))
        if bt is not None:
            y = y + bt.view(1, -1, 1, 1)
    return _conv_outputs(y, xt, wt, bt, dy, data_format)


# --------------------------------------------------------------------------- pooling
def _pool_padding(x: "torch.Tensor", padding: Any, kernel_size: Any, stride: Any,
                  dilation: Any, ceil_mode: bool, fill: float):
    """``(xp, torch_padding, f_pad)`` for any padding form: ``xp`` is ``x`` itself with
    torch's symmetric ``torch_padding`` (h, w) and ``f_pad`` None, or ``x`` padded with
    ``fill`` by ``F.pad``'s ``f_pad`` (left, right, top, bottom) and ``torch_padding`` 0.

    Symmetric padding goes to torch itself (its ceil_mode rule depends on it). Asymmetric
    padding (explicit, or 'same' with an odd total) is applied with ``F.pad`` and pooled
    unpadded: the same windows, as long as ceil_mode is off.
    """
    stride = kernel_size if stride is None else stride
    (t, b), (l, r) = explicit_padding(padding, kernel_size=kernel_size, stride=stride,
                                      dilation=dilation, in_hw=tuple(x.shape[2:]))
    if t == b and l == r:
        return x, (t, l), None
    if ceil_mode:
        raise NotImplementedError("asymmetric pooling padding with ceil_mode: no torch reference")
    return F.pad(x, (l, r, t, b), value=fill), (0, 0), (l, r, t, b)


def max_pool2d_ref(x: np.ndarray, dy: np.ndarray | None, *, kernel_size: Any, stride: Any = None,
                   padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                   data_format: str = "NHWC") -> dict[str, np.ndarray]:
    """Reference for ``max_pool2d``/``max_pool2d_backward`` (-inf padding, any form).

    Returns ``{"y", "indices", "dx"}`` (``dx`` only when ``dy`` is given): ``indices``
    is torch's ``return_indices``, the flat position ``h*W + w`` of each window's
    maximum in the unpadded input, output-shaped in ``data_format``.
    """
    xt = _leaf(to_nchw(x, data_format))
    xp, pad, f_pad = _pool_padding(xt, padding, kernel_size, stride, dilation, ceil_mode, -np.inf)
    y, idx = F.max_pool2d(xp, pair(kernel_size), stride=None if stride is None else pair(stride),
                          padding=pad, dilation=pair(dilation), ceil_mode=ceil_mode,
                          return_indices=True)
    idx = idx.numpy()
    if f_pad is not None:          # positions in the F.pad-ded input -> the unpadded one
        l, _, t, _ = f_pad
        row, col = np.divmod(idx, xp.shape[3])
        idx = (row - t) * xt.shape[3] + (col - l)
    _backward(y, None if dy is None else to_nchw(dy, data_format))
    out = {"y": from_nchw(y.detach().numpy(), data_format), "indices": from_nchw(idx, data_format)}
    if dy is not None:
        out["dx"] = from_nchw(_grad(xt), data_format)
    return out


def avg_pool2d_ref(x: np.ndarray, dy: np.ndarray | None, *, kernel_size: Any, stride: Any = None,
                   padding: Any = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                   data_format: str = "NHWC") -> dict[str, np.ndarray]:
    """Reference for ``avg_pool2d``/``avg_pool2d_backward`` (any padding form).

    Asymmetric padding (no ceil_mode): every window lies inside the padded input, so the
    divisor is kh*kw with ``count_include_pad``, else the number of real pixels in the
    window: the window mean of x padded with zeros over that of a padded mask of ones.
    """
    xt = _leaf(to_nchw(x, data_format))
    xp, pad, f_pad = _pool_padding(xt, padding, kernel_size, stride, 1, ceil_mode, 0.0)
    opts = dict(kernel_size=pair(kernel_size), stride=None if stride is None else pair(stride),
                padding=pad, ceil_mode=ceil_mode)
    if f_pad is None or count_include_pad:
        y = F.avg_pool2d(xp, count_include_pad=count_include_pad, **opts)
    else:
        mask = F.pad(torch.ones_like(xt[:1, :1]).detach(), f_pad, value=0.0)
        # (window mean of padded x) / (window mean of the padded mask of ones)
        y = F.avg_pool2d(xp, **opts) / F.avg_pool2d(mask, **opts)
    _backward(y, None if dy is None else to_nchw(dy, data_format))
    out = {"y": from_nchw(y.detach().numpy(), data_format)}
    if dy is not None:
        out["dx"] = from_nchw(_grad(xt), data_format)
    return out


def _global_ref(reduce: str, x: np.ndarray, dy: np.ndarray | None, data_format: str) -> dict:
    xt = _leaf(to_nchw(x, data_format))
    # (N, C, H, W) -> (N, C)
    y = xt.mean(dim=(2, 3)) if reduce == "mean" else xt.amax(dim=(2, 3))
    _backward(y, dy)
    out = {"y": y.detach().numpy()}
    if dy is not None:
        out["dx"] = from_nchw(_grad(xt), data_format)
    return out


def global_avg_pool2d_ref(x: np.ndarray, dy: np.ndarray | None, *,
                          data_format: str = "NHWC") -> dict[str, np.ndarray]:
    """Reference for ``global_avg_pool2d``: mean over H and W, (N, C)."""
    return _global_ref("mean", x, dy, data_format)


def global_max_pool2d_ref(x: np.ndarray, dy: np.ndarray | None, *,
                          data_format: str = "NHWC") -> dict[str, np.ndarray]:
    """Reference for ``global_max_pool2d``: max over H and W, (N, C) (distinct values
    expected: torch's amax splits a tied gradient evenly)."""
    return _global_ref("amax", x, dy, data_format)

"""Padding rules and output sizes, one place for every operator.

``padding`` may be an int, ``(h, w)``, ``((top, bottom), (left, right))``, ``"valid"``
(no padding) or ``"same"``. ``"same"`` follows TensorFlow for any stride: the output
has ``ceil(n / stride)`` rows, and when the total padding is odd the extra row
(column) goes at the bottom (right).
"""

from __future__ import annotations

from typing import Any

from .checks import as_int

Padding2D = tuple[tuple[int, int], tuple[int, int]]

__all__ = ["Padding2D", "resolve_padding", "output_size", "same_padding_1d"]


def output_size(n: int, k: int, stride: int, dilation: int, pad_before: int, pad_after: int,
                *, ceil_mode: bool = False) -> int:
    """Number of windows along one axis.

    ``floor((n + pad_before + pad_after - dilation*(k-1) - 1) / stride) + 1``, or with
    ``ceil_mode`` PyTorch's rule: ``ceil`` instead of ``floor`` (so a window may reach
    past the padded input, even when it is longer than the padded input), but the last
    window must start inside the input or the left padding. May be 0 when the window
    does not fit; callers check that.
    """
    span = dilation * (k - 1) + 1
    total = n + pad_before + pad_after - span
    if ceil_mode:
        out = (total + stride - 1) // stride + 1  # floor division: rounds toward -inf
        if (out - 1) * stride >= n + pad_before:
            out -= 1
        return max(out, 0)
    if total < 0:
        return 0
    return total // stride + 1


def same_padding_1d(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one axis: output ``ceil(n / stride)``."""
    out = -(-n // stride)
    span = dilation * (k - 1) + 1
    total = max((out - 1) * stride + span - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: Any, *, kernel_size: tuple[int, int], stride: tuple[int, int],
                    dilation: tuple[int, int], in_hw: tuple[int, int],
                    name: str = "padding") -> Padding2D:
    """Turn any accepted ``padding`` form into ``((top, bottom), (left, right))``."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            return (same_padding_1d(in_hw[0], kernel_size[0], stride[0], dilation[0]),
                    same_padding_1d(in_hw[1], kernel_size[1], stride[1], dilation[1]))
        raise ValueError(f"{name} must be an int, (h, w), ((top, bottom), (left, right)), "
                         f"'valid' or 'same'; got {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"{name} must be an int, (h, w) or ((top, bottom), (left, right)); "
                             f"got {padding!r}")
        out = []
        for axis, p in zip(("h", "w"), padding):
            if isinstance(p, (tuple, list)):
                if len(p) != 2:
                    raise ValueError(f"{name} for axis {axis} must be (before, after); got {p!r}")
                out.append((as_int(p[0], f"{name} ({axis}, before)", minimum=0),
                            as_int(p[1], f"{name} ({axis}, after)", minimum=0)))
            else:
                v = as_int(p, f"{name} ({axis})", minimum=0)
                out.append((v, v))
        return (out[0], out[1])
    v = as_int(padding, name, minimum=0)
    return ((v, v), (v, v))

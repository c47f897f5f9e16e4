"""Inputs the grader tries, from the smallest up, and how a failing one is shrunk.

Every case is a few integers (``m, H, W, C, K, f, stride, pad``, ...) plus a kind of
values; its arrays are drawn from a generator seeded by the case itself, so a case is
reproducible from its label alone. The suites go beyond the exercise's own checks on
purpose: pad 0, stride 1 to 3, windows that overlap (f > stride), leave gaps
(f < stride) or tile (f == stride), f = 1, H != W, one example, one channel, large
negative values (a max started at 0 is wrong), and tied maxima.

Value kinds: ``random`` (standard normal), ``ints`` (distinct small integers: easy to
read in a report, no ties), ``negative`` (all in [-1000, -1]), ``ties`` (integers 0..2,
so windows have several maxima).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

__all__ = ["Case", "suite", "make_args", "shrink_candidates", "valid", "out_size"]

# Parameters of each function's cases, in the order they are shrunk.
PARAMS = {
    "zero_pad": ("m", "C", "H", "W", "pad"),
    "conv_single_step": ("C", "f"),
    "create_mask_from_window": ("h", "w"),
    "distribute_value": ("h", "w"),
    "conv_forward": ("m", "C", "K", "H", "W", "pad", "stride", "f"),
    "conv_backward": ("m", "C", "K", "H", "W", "pad", "stride", "f"),
    "pool_forward": ("m", "C", "H", "W", "stride", "f"),
    "pool_backward": ("m", "C", "H", "W", "stride", "f"),
}
_MINIMUM = {"pad": 0}


@dataclass(frozen=True)
class Case:
    """One input: ``function``, integer parameters, a value kind and (pooling) a mode."""

    function: str
    params: tuple[tuple[str, int], ...]
    values: str = "random"
    mode: str = "max"
    dz: float = 2.0   # distribute_value's dz

    def get(self, key: str) -> int:
        return dict(self.params)[key]

    def replace(self, **changes: Any) -> "Case":
        params = dict(self.params)
        other = {k: v for k, v in changes.items() if k not in params}
        params.update({k: v for k, v in changes.items() if k in params})
        return Case(self.function, tuple(params.items()), other.get("values", self.values),
                    other.get("mode", self.mode), other.get("dz", self.dz))

    @property
    def label(self) -> str:
        p = dict(self.params)
        text = " ".join(f"{k}={v}" for k, v in p.items())
        if self.function in ("pool_forward", "pool_backward"):
            text += f" mode={self.mode}"
        if self.function == "distribute_value":
            text = f"dz={self.dz:g} " + text
        return f"{text} values={self.values}"

    @property
    def overlapping(self) -> bool:
        """Windows overlap: some input element lies in more than one window."""
        p = dict(self.params)
        return "f" in p and "stride" in p and p["f"] > p["stride"]

    @property
    def identity_geometry(self) -> bool:
        """The output has the input's shape (f = 1, stride 1, pad 0, as many channels)."""
        p = dict(self.params)
        return (p.get("f") == 1 and p.get("stride") == 1 and p.get("pad", 0) == 0
                and p.get("K", p.get("C")) == p.get("C"))


def out_size(n: int, f: int, stride: int, pad: int = 0) -> int:
    """The exercise's output size: ``floor((n + 2*pad - f) / stride) + 1``."""
    return (n + 2 * pad - f) // stride + 1


def valid(case: Case) -> bool:
    """Whether ``case`` has at least one window and every size is positive."""
    p = dict(case.params)
    if any(v < _MINIMUM.get(k, 1) for k, v in p.items()):
        return False
    if "f" in p and "H" in p:
        pad = p.get("pad", 0)
        return p["H"] + 2 * pad >= p["f"] and p["W"] + 2 * pad >= p["f"]
    return True


def _case(function: str, values: str = "random", mode: str = "max", dz: float = 2.0,
          **params: int) -> Case:
    order = PARAMS[function]
    return Case(function, tuple((k, params[k]) for k in order), values, mode, dz)


def _conv(function: str) -> list[Case]:
    geometries = [  # m, H, W, C, K, f, stride, pad
        (1, 3, 3, 1, 1, 1, 1, 0), (1, 4, 4, 1, 1, 2, 1, 0), (1, 4, 4, 1, 1, 2, 1, 1),
        (1, 3, 4, 2, 2, 1, 1, 0), (2, 5, 4, 2, 3, 3, 1, 1), (1, 4, 5, 2, 2, 3, 1, 0),
        (1, 6, 6, 1, 1, 2, 2, 0), (1, 6, 5, 2, 2, 2, 2, 1), (1, 7, 6, 2, 2, 3, 2, 1),
        (1, 7, 7, 1, 2, 2, 3, 0), (2, 5, 7, 3, 2, 3, 3, 2), (1, 5, 6, 2, 2, 1, 2, 0),
        (2, 5, 5, 2, 2, 3, 1, 2),
        # padded, one filter, windows that do not overlap, two examples: pad and m
        # mistakes are not confused with overlapping windows or several filters
        (2, 4, 5, 1, 1, 2, 2, 1),
    ]
    cases = [_case(function, m=m, H=H, W=W, C=C, K=K, f=f, stride=s, pad=p)
             for m, H, W, C, K, f, s, p in geometries]
    cases.append(_case(function, "negative", m=2, H=5, W=4, C=2, K=3, f=3, stride=1, pad=1))
    cases.append(_case(function, "ints", m=1, H=5, W=5, C=1, K=2, f=3, stride=2, pad=0))
    return cases


def _pool(function: str) -> list[Case]:
    geometries = [  # m, H, W, C, f, stride
        (1, 2, 2, 1, 2, 2), (1, 4, 4, 1, 2, 2), (1, 3, 3, 1, 2, 1), (1, 5, 5, 1, 1, 1),
        (2, 5, 4, 2, 3, 1), (1, 6, 5, 2, 3, 2), (1, 7, 7, 1, 2, 3), (2, 7, 6, 3, 3, 3),
        (1, 5, 7, 2, 1, 2),
    ]
    cases = [_case(function, mode=mode, m=m, H=H, W=W, C=C, f=f, stride=s)
             for mode in ("max", "average") for m, H, W, C, f, s in geometries]
    cases.append(_case(function, "negative", m=2, H=5, W=4, C=2, f=3, stride=1))
    cases.append(_case(function, "negative", "average", m=2, H=5, W=4, C=2, f=3, stride=1))
    cases.append(_case(function, "ties", m=1, H=4, W=4, C=1, f=2, stride=2))
    cases.append(_case(function, "ties", m=1, H=4, W=5, C=2, f=3, stride=1))
    return cases


def suite(function: str) -> list[Case]:
    """The cases ``function`` is graded on, smallest first within each group."""
    if function == "zero_pad":
        return [_case(function, m=1, H=2, W=2, C=1, pad=1), _case(function, m=1, H=3, W=3, C=1, pad=0),
                _case(function, m=2, H=3, W=4, C=2, pad=2), _case(function, m=1, H=2, W=5, C=3, pad=3),
                _case(function, "negative", m=2, H=3, W=2, C=2, pad=1)]
    if function == "conv_single_step":
        return [_case(function, f=1, C=1), _case(function, f=2, C=1), _case(function, f=3, C=2),
                _case(function, f=4, C=3), _case(function, "negative", f=3, C=3)]
    if function == "create_mask_from_window":
        return [_case(function, h=1, w=1), _case(function, h=2, w=2), _case(function, "ints", h=3, w=3),
                _case(function, h=2, w=3), _case(function, "negative", h=3, w=3),
                _case(function, "ties", h=2, w=2), _case(function, "ties", h=3, w=3)]
    if function == "distribute_value":
        return [_case(function, dz=2.0, h=2, w=2), _case(function, dz=3.0, h=3, w=3),
                _case(function, dz=1.5, h=2, w=3), _case(function, dz=-4.0, h=1, w=1),
                _case(function, dz=6.0, h=4, w=1)]
    if function in ("conv_forward", "conv_backward"):
        return _conv(function)
    if function in ("pool_forward", "pool_backward"):
        return _pool(function)
    raise ValueError(f"function must be one of the exercise's eight; got {function!r}")


def _draw(rng: np.random.Generator, kind: str, shape: tuple[int, ...], *, main: bool) -> np.ndarray:
    size = int(np.prod(shape))
    if kind == "ints":
        if main:  # distinct values: no ties
            return (rng.permutation(size) - size // 2).astype(np.float64).reshape(shape)
        return rng.integers(-3, 4, shape).astype(np.float64)
    if kind == "negative":
        return -rng.uniform(1.0, 1000.0, shape)
    if kind == "ties":
        if main:
            return rng.integers(0, 3, shape).astype(np.float64)
        return rng.integers(1, 4, shape).astype(np.float64)
    return rng.standard_normal(shape)


def make_args(case: Case) -> dict[str, Any]:
    """The canonical (NHWC, HWIO) inputs of ``case``, by argument name."""
    rng = np.random.default_rng(zlib.crc32(case.label.encode() + case.function.encode()))
    p = dict(case.params)
    fn, kind = case.function, case.values
    if fn == "zero_pad":
        return {"X": _draw(rng, kind, (p["m"], p["H"], p["W"], p["C"]), main=True), "pad": p["pad"]}
    if fn == "conv_single_step":
        shape = (p["f"], p["f"], p["C"])
        return {"a_slice_prev": _draw(rng, kind, shape, main=True),
                "W": _draw(rng, kind, shape, main=False), "b": _draw(rng, kind, (1, 1, 1), main=False)}
    if fn == "create_mask_from_window":
        x = _draw(rng, kind, (p["h"], p["w"]), main=True)
        if kind == "ties" and x.size > 1:  # make sure the maximum is tied
            x.flat[-1] = x.flat[0] = x.max()
            if min(x.shape) >= 3:
                # tied at (0, 1), (1, 0) and the last: the first maximum in row-major order
                # is not the first in column-major order (np.argmax(x.T))
                x[0, 0] = x.min() - 1
                x[0, 1] = x[1, 0] = x.flat[-1] = x.max() + 1
        return {"x": x}
    if fn == "distribute_value":
        return {"dz": float(case.dz), "shape": (p["h"], p["w"])}
    if fn in ("conv_forward", "conv_backward"):
        f, s, pad = p["f"], p["stride"], p["pad"]
        args = {"A_prev": _draw(rng, kind, (p["m"], p["H"], p["W"], p["C"]), main=True),
                "W": _draw(rng, kind, (f, f, p["C"], p["K"]), main=False),
                "b": _draw(rng, kind, (1, 1, 1, p["K"]), main=False),
                "hparameters": {"stride": s, "pad": pad}}
        if fn == "conv_backward":
            shape = (p["m"], out_size(p["H"], f, s, pad), out_size(p["W"], f, s, pad), p["K"])
            args["dZ"] = _draw(rng, kind, shape, main=False)
        return args
    f, s = p["f"], p["stride"]
    args = {"A_prev": _draw(rng, kind, (p["m"], p["H"], p["W"], p["C"]), main=True),
            "hparameters": {"stride": s, "f": f}, "mode": case.mode}
    if fn == "pool_backward":
        shape = (p["m"], out_size(p["H"], f, s), out_size(p["W"], f, s), p["C"])
        args["dA"] = _draw(rng, kind, shape, main=False)
    return args


def shrink_candidates(case: Case) -> Iterator[Case]:
    """Smaller variants of ``case``, biggest reductions first, all valid."""
    p = dict(case.params)
    for key in PARAMS[case.function]:
        low = _MINIMUM.get(key, 1)
        for value in sorted({low, p[key] - 1, p[key] // 2}):
            if low <= value < p[key]:
                candidate = case.replace(**{key: value})
                if valid(candidate):
                    yield candidate
    if case.values == "random":
        yield case.replace(values="ints")
    if case.function == "distribute_value" and case.dz != 1.0:
        yield case.replace(dz=1.0)

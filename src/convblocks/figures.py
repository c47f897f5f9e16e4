"""The exercise's printed figures: each recipe, run on either implementation.

``expected_outputs.json`` (shipped in ``convblocks/data``) lists every figure printed in
the exercise documents with its input recipe. :func:`compute` runs one recipe with a
given implementation (``convblocks.loops`` or ``convblocks.course``) and returns the
same keys as the file's ``values``; :func:`compare` says which of them match.
``convblocks steps`` and the tests both use these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Any, Callable

import numpy as np

__all__ = ["load_expected", "compute", "compare", "FigureCheck", "RECIPES"]


def load_expected() -> dict:
    """The shipped ``expected_outputs.json`` as a dict."""
    text = resources.files("convblocks").joinpath("data/expected_outputs.json").read_text()
    return json.loads(text)


def _zero_pad(L: ModuleType) -> dict:
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = L.zero_pad(x, 2)
    return {"x_pad.shape": x_pad.shape, "x[1,1]": x[1, 1], "x_pad[1,1]": x_pad[1, 1]}


def _conv_single_step(L: ModuleType) -> dict:
    np.random.seed(1)
    a_slice_prev = np.random.randn(4, 4, 3)
    W = np.random.randn(4, 4, 3)
    b = np.random.randn(1, 1, 1)
    return {"Z": L.conv_single_step(a_slice_prev, W, b)}


def _conv_forward(shape: tuple, pad: int) -> Callable[[ModuleType], dict]:
    def run(L: ModuleType) -> dict:
        np.random.seed(1)
        A_prev = np.random.randn(*shape)
        W = np.random.randn(3, 3, 4, 8)
        b = np.random.randn(1, 1, 1, 8)
        Z, cache = L.conv_forward(A_prev, W, b, {"pad": pad, "stride": 2})
        return {"Z.shape": Z.shape, "Z_mean": np.mean(Z), "Z[3,2,1]": Z[3, 2, 1],
                "cache[0][1][2][3]": cache[0][1][2][3]}
    return run


def _pool_forward(stride: int) -> Callable[[ModuleType], dict]:
    def run(L: ModuleType) -> dict:
        np.random.seed(1)
        A_prev = np.random.randn(2, 5, 5, 3)
        A_max, _ = L.pool_forward(A_prev, {"stride": stride, "f": 3})
        A_avg, _ = L.pool_forward(A_prev, {"stride": stride, "f": 3}, mode="average")
        return {"A.shape": A_max.shape, "A (max)": A_max, "A (average)": A_avg}
    return run


def _conv_backward(n_C: int) -> Callable[[ModuleType], dict]:
    def run(L: ModuleType) -> dict:
        np.random.seed(1)
        A_prev = np.random.randn(10, 4, 4, 3)
        W = np.random.randn(2, 2, 3, n_C)
        b = np.random.randn(1, 1, 1, n_C)
        Z, cache_conv = L.conv_forward(A_prev, W, b, {"pad": 2, "stride": 2})
        dA, dW, db = L.conv_backward(Z, cache_conv)
        return {"dA_mean": np.mean(dA), "dW_mean": np.mean(dW), "db_mean": np.mean(db)}
    return run


def _create_mask(L: ModuleType) -> dict:
    np.random.seed(1)
    x = np.random.randn(2, 3)
    return {"mask": L.create_mask_from_window(x)}


def _distribute_value(L: ModuleType) -> dict:
    return {"a": L.distribute_value(2, (2, 2))}


def _pool_backward(L: ModuleType) -> dict:
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    A, cache = L.pool_forward(A_prev, {"stride": 1, "f": 2})
    dA = np.random.randn(5, 4, 2, 2)
    return {"mean of dA": np.mean(dA),
            "dA_prev[1,1] (max)": L.pool_backward(dA, cache, mode="max")[1, 1],
            "dA_prev[1,1] (average)": L.pool_backward(dA, cache, mode="average")[1, 1]}


RECIPES: dict[str, Callable[[ModuleType], dict]] = {
    "zero_pad": _zero_pad,
    "conv_single_step": _conv_single_step,
    "conv_forward.v2020": _conv_forward((10, 5, 7, 4), pad=1),
    "conv_forward.blog": _conv_forward((10, 8, 8, 4), pad=2),
    "pool_forward.stride1": _pool_forward(1),
    "pool_forward.stride2": _pool_forward(2),
    "conv_backward": _conv_backward(8),
    "conv_backward.blog": _conv_backward(6),
    "create_mask_from_window": _create_mask,
    "distribute_value": _distribute_value,
    "pool_backward": _pool_backward,
}


def compute(case_id: str, impl: ModuleType) -> dict:
    """Run the recipe ``case_id`` with ``impl``; returns the figures by name."""
    return RECIPES[case_id](impl)


@dataclass(frozen=True)
class FigureCheck:
    """One figure: what was computed, what was expected, and whether they match."""

    case: str
    key: str
    actual: Any
    expected: Any
    match: bool
    max_abs_error: float


def compare(case: dict, actual: dict, *, rtol: float = 1e-10, atol: float = 1e-12) -> list[FigureCheck]:
    """Compare computed figures with one case of the expected file, key by key."""
    checks = []
    for key, expected in case["values"].items():
        got = actual.get(key)
        exp = np.asarray(expected)
        act = np.asarray(got) if got is not None else None
        if act is None or act.shape != exp.shape:
            checks.append(FigureCheck(case["id"], key, got, expected, False, float("inf")))
            continue
        if exp.dtype == bool or act.dtype == bool:
            ok = bool(np.array_equal(act, exp))
            err = 0.0 if ok else 1.0
        else:
            act_f, exp_f = act.astype(np.float64), exp.astype(np.float64)
            err = float(np.max(np.abs(act_f - exp_f), initial=0.0))
            ok = bool(np.allclose(act_f, exp_f, rtol=rtol, atol=atol))
        checks.append(FigureCheck(case["id"], key, got, expected, ok, err))
    return checks

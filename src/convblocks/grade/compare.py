"""Judge one call: the reference's answer, the learner's, and a case verdict.

A case is ``pass`` (every output matches to ``rtol=1e-5``), ``ties`` (it differs only
where a max window has several maxima, and exactly as "mark every tied maximum" or
"mark the last maximum" would: the spec asks for "the maximum", and convblocks' choice
of the first one, as PyTorch's, is a convention, not a requirement), ``fail`` (a wrong shape, type or value, or an argument modified in place) or
``error`` (an exception, a crash, a timeout). A function's verdict is the worst of its
cases': error > fail > ties > pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cases import Case
from .conventions import Conventions
from .isolation import Outcome
from .truth import reference
from .wire import Opaque

__all__ = ["CaseResult", "expected_output", "judge", "aggregate", "OUTPUT_NAMES",
           "tied_pool_gradient", "input_size"]

OUTPUT_NAMES = {
    "zero_pad": ("X_pad",), "conv_single_step": ("Z",),
    "create_mask_from_window": ("mask",), "distribute_value": ("a",),
    "conv_forward": ("Z", "cache"), "pool_forward": ("A", "cache"),
    "conv_backward": ("dA_prev", "dW", "db"), "pool_backward": ("dA_prev",),
}
ARG_NAMES = {
    "zero_pad": ("X", "pad"), "conv_single_step": ("a_slice_prev", "W", "b"),
    "create_mask_from_window": ("x",), "distribute_value": ("dz", "shape"),
    "conv_forward": ("A_prev", "W", "b", "hparameters"),
    "pool_forward": ("A_prev", "hparameters", "mode"),
    "conv_backward": ("dZ", ("A_prev", "W", "b", "hparameters")),
    "pool_backward": ("dA", ("A_prev", "hparameters"), "mode"),
}
# Tolerances: float64 loops agree with the reference to ~1e-15; float32 code to ~1e-6.
RTOL, ATOL = 1e-5, 1e-8
_RANK = {"pass": 0, "ties": 1, "fail": 2, "error": 3}


@dataclass
class CaseResult:
    """The verdict on one case, with what is needed to explain it.

    ``expected``/``actual``: output name -> value in the exercise's conventions;
    ``bad``: the outputs that are wrong; ``problems``: one line each; ``ties``: for a
    ``ties`` case, which maxima the learner marked (``"all"`` or ``"last"``).
    """

    case: Case
    status: str
    outcome: Outcome
    args: dict[str, Any]
    expected: dict[str, Any]
    actual: dict[str, Any] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    ties: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")


def expected_output(function: str, args: dict[str, Any]) -> dict[str, Any]:
    """The reference's outputs for canonical ``args``, by output name."""
    ref = reference
    if function == "zero_pad":
        out = (ref.zero_pad(args["X"], args["pad"]),)
    elif function == "conv_single_step":
        out = (ref.conv_single_step(args["a_slice_prev"], args["W"], args["b"]),)
    elif function == "create_mask_from_window":
        out = (ref.create_mask_from_window(args["x"]),)
    elif function == "distribute_value":
        out = (ref.distribute_value(args["dz"], args["shape"]),)
    elif function == "conv_forward":
        out = (ref.conv_forward(args["A_prev"], args["W"], args["b"], args["hparameters"])[0], None)
    elif function == "pool_forward":
        out = (ref.pool_forward(args["A_prev"], args["hparameters"], args["mode"])[0], None)
    elif function == "conv_backward":
        cache = (args["A_prev"], args["W"], args["b"], args["hparameters"])
        out = ref.conv_backward(args["dZ"], cache)
    else:
        out = (ref.pool_backward(args["dA"], (args["A_prev"], args["hparameters"]), args["mode"]),)
    return dict(zip(OUTPUT_NAMES[function], out))


def input_size(args: dict[str, Any]) -> int:
    """How big a case's inputs are: the number of array elements (distribute_value: of
    the requested shape). Used to show the smallest of several counterexamples."""
    size = sum(int(v.size) for v in args.values() if isinstance(v, np.ndarray))
    if isinstance(args.get("shape"), tuple):
        size += int(np.prod(args["shape"]))
    return size


def _last_max(window: np.ndarray) -> tuple[int, ...]:
    flat = window.ravel()
    return np.unravel_index(flat.size - 1 - int(np.argmax(flat[::-1])), window.shape)


def tied_pool_gradient(args: dict[str, Any], expected: np.ndarray, which: str) -> np.ndarray:
    """Max-pool backward as "mark every tied maximum" (``which="all"``) or "mark the
    last maximum" (``"last"``, an ``if x >= best`` loop) computes it.

    Starts from the reference (first maximum only) and moves or copies each tied
    window's gradient to its other maxima; windows without ties are untouched.
    """
    A, dA = args["A_prev"], args["dA"]
    f, s = args["hparameters"]["f"], args["hparameters"]["stride"]
    out = expected.copy()
    m, n_H, n_W, n_C = dA.shape
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    window = A[i, h * s:h * s + f, w * s:w * s + f, c]
                    rows, cols = np.nonzero(window == window.max())
                    if len(rows) < 2:
                        continue
                    g = dA[i, h, w, c]
                    if which == "last":
                        out[i, h * s + rows[0], w * s + cols[0], c] -= g
                        out[i, h * s + rows[-1], w * s + cols[-1], c] += g
                        continue
                    for r, q in zip(rows[1:], cols[1:]):  # every maximum after the first
                        out[i, h * s + r, w * s + q, c] += g
    return out


def _describe(value: Any) -> str:
    if isinstance(value, Opaque):
        return f"a {value.type} ({value.repr[:80]})"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__} ({value!r})"


def _array_problem(name: str, actual: Any, expected: np.ndarray) -> str | None:
    if not isinstance(actual, np.ndarray):
        if isinstance(actual, (float, int, np.generic)) and expected.size == 1:
            actual = np.asarray(actual)
        else:
            return f"{name} is {_describe(actual)}, expected an array of shape {expected.shape}"
    if actual.shape != expected.shape:
        return f"{name} has shape {actual.shape}, expected {expected.shape}"
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    scale = max(1.0, float(np.max(np.abs(e), initial=0.0)))
    close = np.isclose(a, e, rtol=RTOL, atol=ATOL * scale)
    if close.all():
        return None
    if e.ndim == 0:
        return f"{name} is {a.item():.6g}, expected {e.item():.6g}"
    bad = np.argwhere(~close)
    where = tuple(int(i) for i in bad[0])
    return (f"{name}: {len(bad)} of {e.size} values wrong, e.g. at {list(where)} "
            f"{a[where]:.6g} instead of {e[where]:.6g}")


def _arg_name(function: str, path: str) -> str:
    """``"args[1][0]"`` -> ``"cache[0] (A_prev)"``."""
    indices = [int(p.rstrip("]")) for p in path.split("[")[1:]]
    names: Any = ARG_NAMES[function]
    if len(indices) == 1:
        entry = names[indices[0]]
        return entry if isinstance(entry, str) else "cache"
    return f"cache[{indices[1]}] ({names[indices[0]][indices[1]]})"


def _check_cache(function: str, cache: Any, call_args: list[Any]) -> str | None:
    """The forward's cache must be ``(A_prev, W, b, hparameters)`` / ``(A_prev, hparameters)``."""
    want = ("(A_prev, W, b, hparameters)" if function == "conv_forward"
            else "(A_prev, hparameters)")
    inputs = call_args[:4] if function == "conv_forward" else call_args[:2]
    if not isinstance(cache, (tuple, list)) or len(cache) != len(inputs):
        return f"cache is {_describe(cache)}, expected the tuple {want}"
    for got, given in zip(cache, inputs):
        if isinstance(given, np.ndarray):
            if not isinstance(got, np.ndarray) or got.shape != given.shape \
                    or not np.allclose(got, given):
                return f"cache is not {want}: an array differs from the input"
        elif got != given:
            return f"cache is not {want}: hparameters differs from the input"
    return None


def judge(function: str, case: Case, args: dict[str, Any], call_args: list[Any],
          outcome: Outcome, expected: dict[str, Any], conventions: Conventions) -> CaseResult:
    """Compare the learner's ``outcome`` with ``expected`` (see the module docstring)."""
    result = CaseResult(case, "pass", outcome, args, expected)
    if outcome.status != "ok":
        error = outcome.error or {}
        result.status = "error"
        result.problems.append(f"{error.get('type', 'Error')}: {error.get('message', '')}")
        return result
    names = OUTPUT_NAMES[function]
    value = conventions.result_from(function, outcome.value)
    if len(names) > 1:
        if not isinstance(value, (tuple, list)) or len(value) != len(names):
            result.status = "fail"
            result.problems.append(f"returns {_describe(value)}, expected the tuple "
                                   f"({', '.join(names)})")
            result.actual = {names[0]: value}
            return result
        result.actual = dict(zip(names, value))
    else:
        result.actual = {names[0]: value}

    for name in names:
        actual, want = result.actual[name], expected[name]
        if name == "cache":
            problem = _check_cache(function, actual, call_args)
        elif function == "conv_single_step":
            value = actual
            if isinstance(actual, np.ndarray) and actual.size == 1 and actual.dtype.kind in "biuf":
                value = actual.reshape(())  # Z + b is a (1, 1, 1) array: judge its value
            problem = _array_problem(name, value, np.asarray(want))
            if problem is None and not isinstance(actual, (float, np.floating)):
                problem = f"Z is {_describe(actual)}; the exercise returns a Python float"
                result.problems.append(problem)
                continue  # the value is right: a type problem, not a wrong output
        else:
            problem = _array_problem(name, actual, np.asarray(want))
        if problem:
            result.bad.add(name)
            result.problems.append(problem)

    # Only create_mask_from_window and pool_backward can be "ties"; they have one output.
    result.ties = _only_ties(function, args, result) if result.bad else ""
    ties = bool(result.ties)
    if ties:
        result.problems = ["differs only at tied maxima: "
                           + ("every tied maximum is marked" if result.ties == "all"
                              else "the last maximum is marked, not the first")]
    if outcome.modified:
        result.problems.append("modifies its input in place: "
                               + ", ".join(_arg_name(function, p) for p in outcome.modified))
    if ties and not outcome.modified:
        result.status = "ties"
    elif result.problems and not (ties and len(result.problems) == 1):
        result.status = "fail"
    return result


def _only_ties(function: str, args: dict[str, Any], result: CaseResult) -> str:
    """``"all"`` or ``"last"`` when the output is the reference with tied maxima
    handled that way (and the input has ties); ``""`` otherwise."""
    if function not in ("create_mask_from_window", "pool_backward") or (
            function == "pool_backward" and args["mode"] != "max"):
        return ""
    name = OUTPUT_NAMES[function][0]
    for which in ("all", "last"):
        if function == "create_mask_from_window":
            x = args["x"]
            alternative = x == x.max()
            if which == "last":
                alternative = np.zeros(x.shape, dtype=bool)
                alternative[_last_max(x)] = True
        else:
            alternative = tied_pool_gradient(args, result.expected[name], which)
        if np.array_equal(alternative, result.expected[name]):
            return ""  # no ties in this input
        if _array_problem(name, result.actual[name], alternative) is None:
            return which
    return ""


def aggregate(results: list[CaseResult]) -> str:
    """The worst case verdict (``pass`` when there are none)."""
    worst = "pass"
    for r in results:
        if _RANK[r.status] > _RANK[worst]:
            worst = r.status
    return worst

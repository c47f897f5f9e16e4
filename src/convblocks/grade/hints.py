"""Name the bug: plain-language hints from which cases fail and how.

A hint is earned by behaviour, never by reading source text: either a pattern over the
suite (every stride-1 case passes and a stride-2 case fails -> "stride ignored"; only
pad 0 fails -> "pad-0 un-padding"; only overlapping windows fail -> "overwrite instead
of accumulate"), or an exact model of the bug built from the reference (the output
equals the reference run at stride 1 and cropped -> the stride is ignored; ``dW`` equals
``W * sum(dZ)`` -> the slice and ``W`` are swapped), or an extra call (the same input
twice gives two answers -> an uninitialised buffer; NCHW input passes -> wrong layout).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .cases import Case, out_size
from .compare import ATOL, RTOL, CaseResult, input_size
from .conventions import KEY_SYNONYMS, Conventions
from .truth import reference as ref

__all__ = ["Evidence", "find_hints"]

_SIGNATURES = {
    "zero_pad": "zero_pad(X, pad)", "conv_single_step": "conv_single_step(a_slice_prev, W, b)",
    "create_mask_from_window": "create_mask_from_window(x)",
    "distribute_value": "distribute_value(dz, shape)",
    "conv_forward": "conv_forward(A_prev, W, b, hparameters)",
    "pool_forward": "pool_forward(A_prev, hparameters, mode)",
    "conv_backward": "conv_backward(dZ, cache)", "pool_backward": "pool_backward(dA, cache, mode)",
}
_ARRAY_FUNCTIONS = ("zero_pad", "conv_forward", "conv_backward", "pool_forward", "pool_backward")


@dataclass
class Evidence:
    """What the hints look at: one function's case results, and a way to run more."""

    function: str
    results: list[CaseResult]
    conventions: Conventions
    load_notes: list[dict[str, Any]]
    timeout: float
    rerun: Callable[[Case, Conventions], CaseResult]
    shown: CaseResult | None = None  # the counterexample the report shows

    @property
    def failing(self) -> list[CaseResult]:
        return [r for r in self.results if r.failed]

    @property
    def quotable(self) -> list[CaseResult]:
        """The failing cases a hint may quote numbers from, the shown one first."""
        rest = [r for r in self.failing if self.shown is None or r.case != self.shown.case]
        return ([self.shown] if self.shown is not None and self.shown.failed else []) + rest

    def where(self, r: CaseResult) -> str:
        """Nothing when ``r`` is the shown case, else which case a hint's numbers are from."""
        if self.shown is None or r.case == self.shown.case:
            return ""
        return f" (in case {r.case.label})"

    @property
    def passing(self) -> list[CaseResult]:
        return [r for r in self.results if not r.failed]

    def explains(self, pred: Callable[[Case], bool],
                 failed: Callable[[CaseResult], bool] | None = None) -> bool:
        """Every failing case has ``pred``, and some case without it passes.

        With a custom ``failed`` (e.g. "dA_prev is wrong"), a case that raised is neither:
        it says nothing about that output, so it cannot be the passing case.
        """
        failed = failed or (lambda r: r.failed)
        bad = [r for r in self.results if failed(r)]
        good = [r for r in self.results if not failed(r) and r.status != "error"]
        return bool(bad) and all(pred(r.case) for r in bad) and any(not pred(r.case) for r in good)


def _close(a: Any, b: Any) -> bool:
    """``a`` is a numeric array of ``b``'s shape and values (anything else: False)."""
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
            and a.dtype.kind in "biuf" and b.dtype.kind in "biuf"
            and np.allclose(a, b, rtol=RTOL, atol=ATOL * max(1.0, float(np.max(np.abs(b), initial=0)))))


# -- errors --------------------------------------------------------------------------------
def _errors(ev: Evidence) -> list[str]:
    hints, seen = [], set()
    for r in ev.failing:
        if r.status != "error":
            continue
        err = r.outcome.error or {}
        kind, msg = err.get("type", ""), err.get("message", "")
        if kind in seen:
            continue
        seen.add(kind)
        if r.outcome.status == "timeout":
            size = input_size(r.args)
            if any(input_size(p.args) < size for p in ev.passing):
                hints.append(f"too slow: smaller cases pass; this case ({r.case.label}) took over "
                             f"{ev.timeout:g} s (--timeout); if it is only slow, speed it up or "
                             "grade with a larger --timeout")
            else:
                hints.append(f"never returned within {ev.timeout:g} s, even on a tiny input "
                             f"({r.case.label}): an infinite loop? (a while loop whose condition "
                             "never changes)")
        elif r.outcome.status == "crashed":
            hints.append(f"{msg}. Something ended the process: os._exit(), or a crash in "
                         "native code (ctypes, a C extension); grading went on in a fresh process")
        elif kind == "MemoryError":
            hints.append("ran out of memory under the grader's limit (--memory) on a tiny input: "
                         "an array sized from values instead of shapes, or a list that grows forever")
        elif kind == "SystemExit":
            hints.append("calls sys.exit(): return the result instead of ending the program")
        elif kind == "TypeError" and any(t in msg for t in ("only 0-dimensional arrays",
                                                             "only length-1 arrays",
                                                             "only size-1 arrays")):
            hints.append("float() of an array under NumPy 2: NumPy 2 refuses float() of a "
                         "(1, 1, 1) array such as Z + b; take the scalar with Z.item() or "
                         "float(np.squeeze(Z))")
        elif kind == "TypeError" and "cannot be interpreted as an integer" in msg:
            hints.append("a size is a float (e.g. n_H = (n_H_prev - f + 2*pad) / stride + 1): "
                         "use // or int() in the output-size formula")
        elif kind == "KeyError":
            key = msg.strip("'\"")
            canonical = [k for k, syn in KEY_SYNONYMS.items() if key in syn]
            use = canonical[0] if canonical else "KEY"
            if key in ev.conventions.key_conflicts:
                right, other = ev.conventions.key_conflicts[key]
                hints.append(f"reads hparameters[{key!r}], but your {other} reads "
                             f"hparameters[{right!r}], the exercise's key: a typo? "
                             f"read {right!r} here too")
                continue
            hints.append(f"reads hparameters[{key!r}], which the exercise's dict does not have "
                         f"(its keys are 'stride', 'pad' / 'f', 'stride'); if your course uses "
                         f"that name, grade with --keys {use}={key}")
        elif kind == "TypeError" and "positional argument" in msg:
            hints.append(f"{msg}: the exercise calls {_SIGNATURES[ev.function]}")
        elif kind == "NameError" and ev.load_notes:
            first = ev.load_notes[0]
            hints.append(f"{msg}: loading the code had failures (first: {first['unit']} line "
                         f"{first.get('line')}: {first['error']['type']}), which may have left "
                         "this name undefined")
        elif kind == "NameError":
            hints.append(f"{msg}: the function uses a name defined nowhere in the submission")
    return hints


def _modified(ev: Evidence) -> list[str]:
    for r in ev.results:
        if r.outcome.modified:
            what = [p for p in r.problems if p.startswith("modifies")]
            return [f"input modified in place ({what[0].split(': ', 1)[1]}): the caller's "
                    "array changes; work on a copy or write into a new array"]
    return []


# -- shapes --------------------------------------------------------------------------------
def _types(ev: Evidence) -> list[str]:
    for r in ev.quotable:
        for name, got in r.actual.items():
            if isinstance(got, np.ndarray) and got.dtype.kind == "f" and np.isnan(got).any():
                return [f"{name} contains NaN: an uninitialised buffer (np.empty) or 0/0?"]
        got = r.actual.get("Z")
        if ev.function == "conv_single_step" and isinstance(got, np.ndarray) and "Z" not in r.bad:
            what = "a 0-d array" if got.ndim == 0 else f"an array of shape {got.shape}"
            return [f"returns {what}, not a float: the value is right; return Z.item() "
                    "(or float(np.squeeze(Z)))"]
    return []


def _order(ev: Evidence) -> list[str]:
    """conv_backward's three gradients, each right, returned in another order."""
    if ev.function != "conv_backward":
        return []
    names = ("dA_prev", "dW", "db")
    fails = [r for r in ev.failing if r.status == "fail"]
    if not fails or len(fails) != len(ev.failing):
        return []
    for perm in itertools.permutations(range(3)):  # expected names[k] is at perm[k]
        if perm != (0, 1, 2) and all(
                all(_close(r.actual.get(names[perm[k]]), r.expected[names[k]]) for k in range(3))
                for r in fails):
            order = [names[perm.index(j)] for j in range(3)]
            return [f"returns its gradients in another order, ({', '.join(order)}): "
                    "the exercise returns dA_prev, dW, db"]
    return []


def _shapes(ev: Evidence) -> list[str]:
    fn = ev.function
    order = _order(ev)
    if order:
        return order
    for r in ev.quotable:
        if r.status != "fail":
            continue
        for name in sorted(r.bad):
            got, want = r.actual.get(name), r.expected.get(name)
            if not isinstance(got, np.ndarray) or not isinstance(want, np.ndarray) \
                    or got.shape == want.shape:
                continue
            p = dict(r.case.params)
            if fn == "zero_pad" and got.ndim == 4 and all(
                    g == w + (2 * p["pad"] if i in (0, 3) else 0)
                    for i, (g, w) in enumerate(zip(got.shape, want.shape))):
                return ["pads every axis: pad only H and W, e.g. "
                        "np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))"]
            if fn in ("conv_forward", "pool_forward") and got.ndim == 4:
                pad = p.get("pad", 0)
                if got.shape[1:3] == want.shape[2:0:-1]:
                    return ["wrong output size: n_H and n_W are swapped (H != W shows it)"]
                axis = 1 if got.shape[1] != want.shape[1] else 2
                dim, size = ("H", p["H"]) if axis == 1 else ("W", p["W"])
                return [f"wrong output-size formula: for n_{dim}_prev={size}, f={p['f']}, "
                        f"stride={p['stride']}, pad={pad} the output has n_{dim} = "
                        f"floor((n_{dim}_prev + 2*pad - f) / stride) + 1 = "
                        f"{want.shape[axis]}, yours {got.shape[axis]}{ev.where(r)}"]
            if fn in ("conv_backward", "pool_backward"):
                grad = r.args.get("dZ", r.args.get("dA"))
                of = {"dA_prev": "A_prev", "dW": "W", "db": "b"}[name]
                if name == "dA_prev" and got.shape == grad.shape:
                    return ["wrong-shape initial buffer: dA_prev was made with the output's "
                            f"shape {grad.shape}{ev.where(r)}; start it as np.zeros(A_prev.shape)"]
                return [f"wrong-shape initial buffer: {name} has shape {got.shape}{ev.where(r)}; "
                        f"start it as np.zeros({of}.shape) = {want.shape}"]
            return [f"{name} has shape {got.shape}, expected {want.shape}{ev.where(r)}"]
    if fn in ("conv_backward", "pool_backward") and all(r.status == "error" for r in ev.failing) \
            and ev.explains(lambda c: not c.identity_geometry) \
            and all(r.failed for r in ev.results if not r.case.identity_geometry):
        return ["fails everywhere except where the output has the input's shape (f = 1, stride 1): "
                "a gradient buffer made with the output's shape instead of A_prev.shape?"]
    return []


# -- geometry ------------------------------------------------------------------------------
def _stride_model(r: CaseResult, fn: str) -> Any:
    """The output of ``fn`` if window (h, w) started at (h, w) instead of (h*s, w*s)."""
    a, p = r.args, dict(r.case.params)
    hp1 = dict(a["hparameters"], stride=1)
    n_H, n_W = (out_size(p["H"], p["f"], p["stride"], p.get("pad", 0)),
                out_size(p["W"], p["f"], p["stride"], p.get("pad", 0)))
    if fn == "conv_forward":
        return "Z", ref.conv_forward(a["A_prev"], a["W"], a["b"], hp1)[0][:, :n_H, :n_W]
    if fn == "pool_forward":
        return "A", ref.pool_forward(a["A_prev"], hp1, a["mode"])[0][:, :n_H, :n_W]
    grad = a["dZ"] if fn == "conv_backward" else a["dA"]
    pad = p.get("pad", 0)
    full = np.zeros((grad.shape[0], out_size(p["H"], p["f"], 1, pad),
                     out_size(p["W"], p["f"], 1, pad), grad.shape[3]))
    full[:, :n_H, :n_W] = grad
    if fn == "conv_backward":
        return "dA_prev", ref.conv_backward(full, (a["A_prev"], a["W"], a["b"], hp1))[0]
    return "dA_prev", ref.pool_backward(full, (a["A_prev"], hp1), a["mode"])


def _stride(ev: Evidence) -> list[str]:
    if ev.function not in ("conv_forward", "pool_forward", "conv_backward", "pool_backward"):
        return []
    if not ev.explains(lambda c: c.get("stride") > 1):
        return []
    if any(isinstance(r.actual.get(n), np.ndarray) and isinstance(r.expected.get(n), np.ndarray)
           and r.actual[n].shape != r.expected[n].shape for r in ev.failing for n in r.bad):
        return []  # a wrong output shape: the output-size formula, not the window placement
    for r in ev.failing:
        if r.status == "fail":
            name, model = _stride_model(r, ev.function)
            if _close(r.actual.get(name), model):
                return ["stride ignored: the output is what windows at (h, w) instead of "
                        "(h*stride, w*stride) give; start window (h, w) at vert_start = h*stride, "
                        "horiz_start = w*stride"]
    return ["stride ignored? every stride-1 case passes and stride > 1 fails: check that "
            "window (h, w) starts at (h*stride, w*stride)"]


def _pad0(ev: Evidence) -> list[str]:
    if ev.function not in ("zero_pad", "conv_forward", "conv_backward"):
        return []
    if ev.explains(lambda c: c.get("pad") == 0):
        if ev.function == "zero_pad":
            return ["wrong when pad == 0: zero_pad(X, 0) must return X's values unchanged"]
        return ["pad-0 un-padding: fails only when pad == 0; X[pad:-pad] is empty when pad is 0 "
                "(-0 == 0), use X[pad:pad + n_H_prev] or skip un-padding when pad == 0"]
    return []


def _overwrite(ev: Evidence) -> list[str]:
    fn = ev.function
    message = ("overwrite instead of accumulate: overlapping windows (f > stride) must add "
               "their share, +=, not = (note that =+ is = followed by unary +)")
    if fn == "pool_backward" and ev.explains(lambda c: c.overlapping):
        return [message]
    if fn != "conv_backward":
        return []
    kept = {}  # gradient -> what it keeps of the last window only, and where seen
    for r in ev.quotable:
        if r.status != "fail":
            continue
        dZ, A = r.args["dZ"], r.args["A_prev"]
        if dZ.shape[1] * dZ.shape[2] < 2:
            continue  # one window per example: "the last window" is also "the last example"
        p = dict(r.case.params)
        s, f, pad = p["stride"], p["f"], p["pad"]
        last = dZ[-1, -1, -1, :]  # (n_C,)
        if "dW" in r.bad:
            A_pad = np.pad(A, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            h0, w0 = (dZ.shape[1] - 1) * s, (dZ.shape[2] - 1) * s
            window = A_pad[-1, h0:h0 + f, w0:w0 + f, :]  # (f, f, n_C_prev)
            if _close(r.actual["dW"], window[..., None] * last):
                kept.setdefault("dW", f"a_slice * dZ{ev.where(r)}")
        if "db" in r.bad and _close(r.actual["db"], last.reshape(1, 1, 1, -1)):
            kept.setdefault("db", f"dZ{ev.where(r)}")
    if kept:
        return [message.replace("overlapping windows (f > stride) must add their share",
                                "every window must add its share")
                + "".join(f"; {name} keeps only the last window's {what}"
                          for name, what in sorted(kept.items()))]
    one_filter = [r for r in ev.results if r.case.overlapping and r.case.get("K") == 1
                  and r.args["dZ"].shape[1] * r.args["dZ"].shape[2] > 1]
    if any(r.status == "error" for r in ev.failing) or (
            one_filter and not any("dA_prev" in r.bad for r in one_filter)):
        return []  # an exception, or only several filters fail: a wrong index, not =
    if ev.explains(lambda c: c.overlapping or c.get("K") > 1, lambda r: "dA_prev" in r.bad):
        return [message + "; in dA_prev, windows that overlap and filters that share a window "
                "must all add up"]
    return []


# -- values ------------------------------------------------------------------------------
def _buffers(ev: Evidence) -> list[str]:
    if ev.function not in ("conv_backward", "pool_backward", "conv_forward", "pool_forward",
                           "zero_pad"):
        return []
    # The same constant error everywhere, in every failing case: the buffer's start value.
    offsets: dict[str, list[np.ndarray]] = {}
    for r in ev.failing:
        for name in r.bad:
            got, want = r.actual.get(name), r.expected.get(name)
            if isinstance(got, np.ndarray) and isinstance(want, np.ndarray) \
                    and got.shape == want.shape and got.dtype.kind in "biuf":
                offsets.setdefault(name, []).append((got - want).ravel())
    for name, diffs in sorted(offsets.items()):
        flat = np.concatenate(diffs)
        if len(diffs) >= 2 and flat.size >= 4 and np.allclose(flat, flat[0]) and abs(flat[0]) > 1e-9:
            return [f"non-zero initial buffer: {name} is off by {flat[0]:g} everywhere; "
                    "start it with np.zeros, not np.ones / np.empty"]
    first = next((r for r in ev.failing if r.status == "fail"), None)
    if first is not None:
        again = ev.rerun(first.case, ev.conventions)
        for name in first.bad:
            a, b = first.actual.get(name), again.actual.get(name)
            if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape \
                    and not np.array_equal(a, b, equal_nan=True):
                return [f"non-zero initial buffer: {name} changes between two calls with the same "
                        "input (np.empty or random start values); start it with np.zeros"]
    return []


def _swapped(ev: Evidence) -> list[str]:
    if ev.function != "conv_backward":
        return []
    for r in ev.failing:
        if "dW" in r.bad:
            W, dZ = r.args["W"], r.args["dZ"]
            if _close(r.actual["dW"], W * dZ.sum(axis=(0, 1, 2))):
                return ["dZ and the slice swapped with W: dW gets W * dZ and dA_prev gets "
                        "a_slice * dZ; it is dA_prev += W[:, :, :, c] * dZ[i, h, w, c] and "
                        "dW[:, :, :, c] += a_slice * dZ[i, h, w, c]"]
    return []


def _divisor(ev: Evidence) -> list[str]:
    fn = ev.function
    if fn == "distribute_value":
        for r in ev.quotable:
            got, want = r.actual.get("a"), r.expected["a"]
            if isinstance(got, np.ndarray) and got.shape == want.shape and np.all(got != 0):
                divisor = r.args["dz"] / got.flat[0]
                n_H, n_W = r.args["shape"]
                if np.allclose(got, got.flat[0]):
                    return [f"wrong divisor: for shape ({n_H}, {n_W}) yours divides dz by "
                            f"{divisor:g}; the average spreads dz over n_H * n_W = {n_H * n_W} entries"]
        return []
    if fn != "pool_backward" or not ev.explains(lambda c: c.mode == "average"):
        return []

    def factor(r: CaseResult) -> float | None:
        """The one positive factor between ``r``'s dA_prev and the truth, if any."""
        got, want = r.actual.get("dA_prev"), r.expected["dA_prev"]
        if not isinstance(got, np.ndarray) or got.shape != want.shape:
            return None
        nz = want != 0
        ratio = got[nz] / want[nz]
        if ratio.size and np.allclose(ratio, ratio[0]) and np.allclose(got[~nz], 0) \
                and ratio[0] > 0 and not np.isclose(ratio[0], 1):
            return float(ratio[0])
        return None

    average = [r for r in ev.quotable if r.case.mode == "average" and r.status == "fail"]
    factors = [factor(r) for r in average]
    if not average or any(k is None for k in factors):
        return []  # not a constant factor in every case: something other than the divisor
    r, ratio = average[0], factors[0]
    f = r.case.get("f")
    n_out = r.args["dA"].shape[1] * r.args["dA"].shape[2]
    if n_out != f * f and np.isclose(f * f / ratio, n_out):
        return [f"wrong divisor in average backward: yours divides each window's dA "
                f"by n_H * n_W = {n_out}, the output's size{ev.where(r)}, not by the "
                f"window's f*f = {f * f} (distribute_value(dA[i, h, w, c], (f, f)))"]
    return [f"wrong divisor in average backward: yours is {ratio:g} times the "
            f"gradient{ev.where(r)}; each window's dA is spread over its f*f = "
            f"{f * f} entries (distribute_value(dA[i, h, w, c], (f, f)))"]


def _bias(ev: Evidence) -> list[str]:
    fn = ev.function
    for r in ev.failing:
        if r.status != "fail":
            continue
        a = r.args
        if fn == "conv_single_step":
            got = r.actual.get("Z")
            plain = float(np.sum(a["a_slice_prev"] * a["W"]))
            inside = plain + float(a["b"].item()) * a["W"].size
            models = {"missing": plain, "inside": inside}
        elif fn == "conv_forward":
            got = r.actual.get("Z")
            size = a["W"].shape[0] * a["W"].shape[1] * a["W"].shape[2]
            models = {"missing": ref.conv_forward(a["A_prev"], a["W"], 0 * a["b"], a["hparameters"])[0],
                      "inside": ref.conv_forward(a["A_prev"], a["W"], size * a["b"], a["hparameters"])[0]}
        else:
            return []
        try:
            got = np.asarray(got, dtype=np.float64).reshape(np.shape(models["missing"]))
        except (TypeError, ValueError):
            continue
        want = np.asarray(r.expected["Z"], dtype=np.float64)
        if _close(np.asarray(models["inside"], dtype=np.float64), want):
            continue  # b = 0, or one element per window: this input cannot tell
        if _close(got, np.asarray(models["missing"])):
            return ["missing bias: the output is sum(a_slice_prev * W) without + b"]
        if _close(got, np.asarray(models["inside"])):
            return ["bias inside the sum: np.sum(a_slice_prev * W + b) adds b once per element "
                    "(f*f*n_C_prev times); add it once, after the sum"]
    return []


def _maximum(ev: Evidence) -> list[str]:
    """A max started at 0 (or a ReLU), or a mask at the minimum: the model must explain
    every failing case (one case can match by chance: an all-zero output of a branch that
    never runs, a misplaced mask that lands on the minimum of a small window)."""
    failing = ev.failing
    if not failing or any(r.status != "fail" for r in failing):
        return []
    if ev.function == "pool_forward":
        if any(r.case.mode != "max" for r in failing):
            return []
        if any((r.expected["A"] < 0).any() for r in failing) and all(
                _close(r.actual.get("A"), np.maximum(r.expected["A"], 0)) for r in failing):
            return ["a maximum that starts at 0: windows whose values are all negative give "
                    "0; start from the window's first element, or use np.max(a_prev_slice)"]
    if ev.function == "create_mask_from_window":
        def at_minimum(r: CaseResult) -> bool:
            x, mask = r.args["x"], r.actual.get("mask")
            if not isinstance(mask, np.ndarray) or mask.shape != x.shape \
                    or mask.dtype.kind not in "biuf":
                return False
            marked = mask != 0
            return bool(marked.any()) and bool(np.all(x[marked] == x.min()))
        if all(at_minimum(r) for r in failing):
            return ["marks the minimum of the window, not the maximum"]
    return []


def _modes(ev: Evidence) -> list[str]:
    if ev.function not in ("pool_forward", "pool_backward"):
        return []
    for mode in ("average", "max"):
        if ev.explains(lambda c: c.mode == mode):
            name = "A" if ev.function == "pool_forward" else "dA_prev"
            # every failing case returned all zeros (one that raised ran its branch)
            zeros = all(r.status == "fail" and isinstance(r.actual.get(name), np.ndarray)
                        and not np.any(r.actual[name]) for r in ev.failing)
            if zeros and ev.failing:
                return [f"mode {mode!r} gives all zeros: its branch never ran; the exercise "
                        f"names the modes 'max' and 'average' (grade with --modes {mode}=NAME if "
                        "your course uses another name)"]
            return [f"only mode {mode!r} fails; the other mode passes"]
    return []


def _layout(ev: Evidence) -> list[str]:
    fn = ev.function
    if fn not in _ARRAY_FUNCTIONS or not ev.failing:
        return []
    conv = ev.conventions
    layouts = ["NHWC", "NCHW"]
    weights = ["HWIO", "OIHW", "IOHW"] if fn in ("conv_forward", "conv_backward") else [conv.weights]
    # Probe on the failing case whose sizes differ most: there a layout mix-up shows.
    case = max(ev.failing, key=lambda r: len(set(dict(r.case.params).values()))).case
    for layout in layouts:
        for weight in weights:
            if (layout, weight) == (conv.layout, conv.weights):
                continue
            other = conv.with_layout(layout, weight)
            if ev.rerun(case, other).status == "pass":
                opts = f"--layout {layout}" + (f" --weights {weight}" if weight != conv.weights else "")
                return [f"wrong layout: it passes when given {layout} activations"
                        + (f" and {weight} weights" if weight != conv.weights else "")
                        + f"; the exercise uses {conv.layout}"
                        + (f"/{conv.weights}" if len(weights) > 1 else "")
                        + f". If your course does too, fix the indexing; otherwise grade with {opts}"]
    return []


_DETECTORS = (_errors, _modified, _types, _stride, _shapes, _pad0, _overwrite, _swapped, _buffers,
              _divisor, _bias, _maximum, _modes)


def find_hints(ev: Evidence) -> list[str]:
    """Every hint that applies to ``ev``, most specific first."""
    try:
        layout = _layout(ev)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError):
        layout = []
    if layout:  # everything else would describe the consequences of the layout
        return _errors(ev) + layout
    hints: list[str] = []
    for detector in _DETECTORS:
        try:
            found = detector(ev)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            continue  # a learner's output too odd for this model: no hint from it
        for hint in found:
            if hint not in hints:
                hints.append(hint)
    specific = [h for h in hints if not h.startswith("only mode")]
    return specific or hints

"""Reports: a terminal one per file plus a class table, and the ``--json`` document.

JSON schema (``schema`` 1)::

    {"schema": 1, "passed": bool,
     "files": [{"path": str, "kind": "python" | "notebook", "passed": bool,
                "conventions": str, "assumed": [str], "problem": str | null,
                "load": {"problems": [{"unit", "line", "code", "error": {"type", "message"}}],
                         "output": str},
                "functions": {NAME: {"verdict": "pass" | "ties" | "fail" | "error" | "missing",
                                     "hint": str | null, "hints": [str], "notes": [str],
                                     "learner_name": str,
                                     "counterexample": null | {"case": str, "inputs": {..},
                                        "expected": {..}, "actual": {..}, "problems": [str],
                                        "output": str}}}}]}

Arrays in a counterexample are ``{"shape": [...], "values": nested lists | null}``
(values only up to 100 elements).
"""

from __future__ import annotations

import json
import os
from typing import Any, TextIO

import numpy as np

from .compare import CaseResult
from .conventions import FUNCTIONS
from .grader import FileReport
from .wire import Opaque

__all__ = ["to_json", "dumps", "print_file", "print_summary", "use_color"]

_COLORS = {"pass": "32", "ties": "36", "fail": "31", "error": "31;1", "missing": "33"}
_SHORT = {"zero_pad": "pad", "conv_single_step": "step", "create_mask_from_window": "mask",
          "distribute_value": "distr", "conv_forward": "conv_f", "pool_forward": "pool_f",
          "conv_backward": "conv_b", "pool_backward": "pool_b"}
_MAX_VALUES = 100


def use_color(stream: TextIO, no_color: bool = False) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return (not no_color and "NO_COLOR" not in os.environ and hasattr(stream, "isatty")
            and stream.isatty())


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        data = value.astype(np.float64) if value.dtype.kind == "b" else value
        return {"shape": list(value.shape),
                "values": np.round(data, 6).tolist() if value.size <= _MAX_VALUES else None}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else repr(value)
    if isinstance(value, Opaque):
        return {"type": value.type, "repr": value.repr}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _counterexample(r: CaseResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"case": f"{r.case.function}: {r.case.label}", "inputs": _plain(r.args),
            "expected": _plain({k: v for k, v in r.expected.items() if v is not None}),
            "actual": _plain(r.actual), "problems": r.problems,
            "output": r.outcome.output[:2000]}


def to_json(reports: list[FileReport]) -> dict[str, Any]:
    """The ``--json`` document (schema in the module docstring)."""
    files = []
    for rep in reports:
        files.append({
            "path": rep.path, "kind": rep.kind, "passed": rep.passed,
            "conventions": rep.conventions, "assumed": rep.assumed, "problem": rep.problem,
            "load": {"problems": [{"unit": n["unit"], "line": n.get("line"), "code": n.get("code", ""),
                                   "error": {"type": n["error"]["type"],
                                             "message": n["error"]["message"]}}
                                  for n in rep.load_problems],
                     "output": rep.load_output[:2000]},
            "functions": {name: {"verdict": f.verdict, "learner_name": f.learner_name,
                                 "hint": "\n".join(f.hints) or None, "hints": f.hints,
                                 "notes": f.notes,
                                 "counterexample": _counterexample(f.counterexample)}
                          for name, f in rep.functions.items()},
        })
    return {"schema": 1, "passed": all(r.passed for r in reports), "files": files}


def dumps(reports: list[FileReport]) -> str:
    """The ``--json`` document as text."""
    return json.dumps(to_json(reports), indent=1)


def _fmt_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size > 60:
            return f"array of shape {value.shape}"
        with np.printoptions(precision=4, suppress=True, linewidth=100, threshold=60):
            text = np.array2string(value, separator=" ")
        return f"shape {value.shape}\n" + text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_fmt_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_fmt_value(v).split("\n")[0] for v in value)
        return f"({inner})"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def print_file(rep: FileReport, out: TextIO, *, color: bool = False) -> None:
    """The terminal report of one file."""
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    out.write(paint(rep.path, "1") + f"  ({rep.kind}; {rep.conventions or 'not graded'})\n")
    if rep.problem:
        out.write(f"  could not grade: {rep.problem}\n")
    for text in rep.assumed:
        out.write(f"  assumed: {text}\n")
    for note in rep.load_problems:
        out.write(f"  while loading, {note['unit']} line {note.get('line')}: "
                  f"{note.get('code', '')[:60]!s}  -> {note['error']['type']}: "
                  f"{note['error']['message'][:120]}\n")
    if "characters cut]" in rep.load_output:
        out.write("  while loading, printed too much; kept the first 4000 characters\n")
    width = max(len(n) for n in FUNCTIONS)
    for name, f in rep.functions.items():
        label = name if f.learner_name == name else f"{name} ({f.learner_name})"
        verdict = f.verdict.upper() if f.verdict in ("fail", "error") else f.verdict
        out.write(f"  {label:<{width + 2}} {paint(verdict, _COLORS[f.verdict])}\n")
        for hint in f.hints:
            out.write(_indent(hint, "      hint: ").replace("\n      hint: ", "\n            ") + "\n")
        for note in f.notes:
            out.write(f"      note: {note}\n")
        r = f.counterexample
        if r is not None:
            out.write(f"      smallest failing input: {r.case.label}\n")
            for problem in r.problems[:3]:
                out.write(f"        {problem}\n")
            for key, value in r.args.items():
                out.write(_indent(f"{key} = {_fmt_value(value)}", "        ") + "\n")
            if r.status == "error":
                for key, want in r.expected.items():
                    if want is not None:
                        out.write(_indent(f"expected {key} = {_fmt_value(want)}", "        ") + "\n")
            if r.status == "fail":
                for key, want in r.expected.items():
                    if key in r.bad and want is not None:
                        out.write(_indent(f"expected {key} = {_fmt_value(want)}", "        ") + "\n")
                        out.write(_indent(f"actual   {key} = {_fmt_value(r.actual.get(key))}",
                                          "        ") + "\n")
            if r.outcome.error and r.outcome.error.get("where"):
                out.write(_indent("\n".join(r.outcome.error["where"]), "      ") + "\n")
    passing = sum(f.verdict in ("pass", "ties") for f in rep.functions.values())
    out.write(f"  {passing}/{len(rep.functions)} passing ({rep.seconds:.1f} s)\n\n")


def print_summary(reports: list[FileReport], out: TextIO, *, color: bool = False) -> None:
    """The class table: one row per file, one column per function."""
    names = [n for n in FUNCTIONS if any(n in r.functions for r in reports)]
    width = min(40, max(len(os.path.basename(r.path)) for r in reports))
    head = f"{'file':<{width}} " + " ".join(f"{_SHORT[n]:>7}" for n in names) + "  passing"
    out.write(head + "\n" + "-" * len(head) + "\n")
    for rep in reports:
        cells = []
        for n in names:
            v = rep.functions[n].verdict if n in rep.functions else "-"
            text = f"{v:>7}"
            cells.append(f"\033[{_COLORS[v]}m{text}\033[0m" if color and v in _COLORS else text)
        passing = sum(f.verdict in ("pass", "ties") for f in rep.functions.values())
        out.write(f"{os.path.basename(rep.path)[:width]:<{width}} " + " ".join(cells)
                  + f"  {passing}/{len(rep.functions)}\n")
    total = sum(r.passed for r in reports)
    out.write(f"{total} of {len(reports)} files pass every function\n")

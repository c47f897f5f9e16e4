"""Grade submissions: run every case of every function, shrink, explain, blame helpers.

For each file: start a :class:`~convblocks.grade.isolation.Sandbox`, detect what can
be detected unambiguously (a function named with the same words in another order, a
hyperparameter key revealed by a ``KeyError``), then grade the eight functions, helpers
first. A function that fails while a helper it may call fails is graded again with
convblocks' helper substituted into its module globals: if it then passes, the fault
is the helper's; if not, the hints describe its own bug. A helper that timed out is not
called again: functions using it are graded with convblocks' helper only.
"""

from __future__ import annotations

import difflib
import os
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator

from .cases import Case, make_args, shrink_candidates, suite
from .compare import CaseResult, aggregate, expected_output, input_size, judge
from .conventions import FUNCTIONS, KEY_SYNONYMS, Conventions, name_tokens
from .hints import Evidence, find_hints
from .isolation import Sandbox
from .load import read_submission

__all__ = ["FunctionReport", "FileReport", "grade_file", "grade_files", "HELPERS"]

# Learner helpers each function is expected to call (the exercise's structure).
HELPERS = {
    "conv_forward": ("zero_pad", "conv_single_step"),
    "conv_backward": ("zero_pad",),
    "pool_backward": ("create_mask_from_window", "distribute_value"),
}
_SHRINK_CALLS = 40


@dataclass
class FunctionReport:
    """One function's verdict, hints, notes and smallest failing case."""

    name: str
    verdict: str
    learner_name: str
    hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counterexample: CaseResult | None = None
    cases_run: int = 0
    timed_out: bool = False  # some call did not return within --timeout


@dataclass
class FileReport:
    path: str
    kind: str
    conventions: str = ""
    assumed: list[str] = field(default_factory=list)
    load_problems: list[dict[str, Any]] = field(default_factory=list)
    load_output: str = ""
    functions: dict[str, FunctionReport] = field(default_factory=dict)
    problem: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.problem is None and all(f.verdict in ("pass", "ties")
                                            for f in self.functions.values())


class _Runner:
    """Runs cases of one file's functions through its sandbox, caching the truth."""

    def __init__(self, box: Sandbox, conventions: Conventions) -> None:
        self.box = box
        self.conventions = conventions
        self._truth: dict[Case, tuple[dict, dict]] = {}
        self.calls = 0

    def run(self, case: Case, conventions: Conventions | None = None,
            substitute: dict[str, str] | None = None) -> CaseResult:
        conv = conventions or self.conventions
        if case not in self._truth:
            args = make_args(case)
            self._truth[case] = (args, expected_output(case.function, args))
        args, expected = self._truth[case]
        call_args = conv.call_args(case.function, args)
        self.calls += 1
        outcome = self.box.call(conv.name(case.function), call_args, substitute=substitute)
        return judge(case.function, case, args, call_args, outcome, expected, conv)

    def run_suite(self, function: str, substitute: dict[str, str] | None = None
                  ) -> list[CaseResult]:
        results = []
        for case in suite(function):
            result = self.run(case, substitute=substitute)
            results.append(result)
            if result.outcome.status in ("timeout", "crashed"):
                break  # another call would cost the same; the smallest such case is shown
        return results

    def shrink(self, first: CaseResult, substitute: dict[str, str] | None = None) -> CaseResult:
        """A smaller case that fails the same way (same verdict, same exception type)."""
        if first.outcome.status in ("timeout", "crashed"):
            return first
        kind = (first.outcome.error or {}).get("type")
        current, budget, improved = first, _SHRINK_CALLS, True
        while improved and budget > 0:
            improved = False
            for candidate in shrink_candidates(current.case):
                budget -= 1
                result = self.run(candidate, substitute=substitute)
                if result.status == first.status and (result.outcome.error or {}).get("type") == kind:
                    current, improved = result, True
                    break
                if budget <= 0:
                    break
        return current


_STATUS_RANK = {"error": 0, "fail": 1}
_TIE_NOTES = {
    "all": "marks every tied maximum: allowed by the exercise (a note, not a failure); "
           "convblocks sends the gradient to the first maximum only, as PyTorch does",
    "last": "differs only at tied maxima: yours marks the last maximum (>=); convblocks and "
            "PyTorch mark the first (> or np.argmax). Allowed (a note, not a failure): the "
            "gradient still goes to one maximum",
}


def _smallest_failure(runner: _Runner, results: list[CaseResult],
                      substitute: dict[str, str] | None = None) -> CaseResult:
    """The smallest failing input: the first failure of each way of failing (status and
    exception type; the worst first, at most three) is shrunk, and the smallest wins.

    Shrinking keeps the way of failing, so a function that raises on some inputs and
    returns a wrong shape on smaller ones (a wrong output-size formula) shows the
    smaller one.
    """
    firsts: dict[tuple, CaseResult] = {}
    for r in results:
        if r.failed:
            firsts.setdefault((r.status, (r.outcome.error or {}).get("type")), r)
    order = sorted(firsts.values(), key=lambda r: _STATUS_RANK[r.status])[:3]
    shrunk = [runner.shrink(r, substitute) for r in order]
    return min(shrunk, key=lambda r: input_size(r.args))  # ties: the worst status


def _grade_function(runner: _Runner, function: str, reports: dict[str, FunctionReport],
                    load_notes: list[dict], timeout: float) -> FunctionReport:
    conv = runner.conventions
    learner = conv.name(function)
    report = FunctionReport(function, "pass", learner)
    helpers = [h for h in HELPERS.get(function, ())
               if h in reports and reports[h].verdict not in ("pass", "ties")]
    if learner not in runner.box.callables:
        broken = [n for n in load_notes if n["error"]["type"] in ("SyntaxError", "IndentationError",
                                                                  "Timeout", "Exit")]
        if broken:
            n = broken[0]
            report.verdict = "error"
            report.hints.append(f"{learner} is not defined, and the code failed to load: "
                                f"{n['unit']} line {n.get('line')}: {n['error']['type']}: "
                                f"{n['error']['message']}")
        else:
            report.verdict = "missing"
            words = name_tokens(function) - {"from", "value", "step", "single"}
            similar = [c for c in runner.box.callables if name_tokens(c) & words]
            similar += [c for c in difflib.get_close_matches(learner, runner.box.callables, n=3,
                                                             cutoff=0.6) if c not in similar]
            report.hints.append(f"no function named {learner!r}"
                                + (f"; defined: {', '.join(similar[:6])} (if one of them is it, "
                                   f"grade with --map {function}={similar[0]})" if similar else ""))
        return report

    substitute = {conv.name(h): h for h in helpers}
    names = ", ".join(helpers)
    results: list[CaseResult] | None = None
    own: list[CaseResult] | None = None  # the run the hints describe
    hung = [h for h in helpers if reports[h].timed_out]
    if hung:
        # Calling a helper that hangs costs --timeout per call: try convblocks' first.
        trial = runner.run_suite(function, substitute)
        called = {name for r in trial for name in r.outcome.called}
        hung_called = [h for h in hung if h in called]
        if not called:  # no substituted helper ran: this is the function's own result
            results = own = trial
        elif hung_called:
            report.cases_run = len(trial)
            hung_names = ", ".join(hung_called)
            if aggregate(trial) in ("pass", "ties"):
                report.verdict = "error"
                report.hints.append(f"fails only because your {names} fails: not run with your "
                                    f"{hung_names}, which never returned (see {hung_names}); "
                                    f"with convblocks' {names} substituted it passes; "
                                    f"fix {names} first")
                return report
            results = own = trial
            report.notes.append(f"graded with convblocks' {names} substituted, as your "
                                f"{hung_names} never returned: it still fails, so the hints and "
                                "the smallest failing input below are about this function itself")
    if results is None:
        results = runner.run_suite(function)
    report.cases_run = report.cases_run or len(results)
    report.timed_out = any(r.outcome.status == "timeout" for r in results)
    report.verdict = aggregate(results)
    if report.verdict == "ties":
        for which in sorted({r.ties for r in results if r.status == "ties"}):
            report.notes.append(_TIE_NOTES[which])
    if report.verdict in ("pass", "ties"):
        return report

    if own is None:
        own = results
        if substitute:
            own = runner.run_suite(function, substitute)
            if aggregate(own) in ("pass", "ties"):
                report.hints.append(f"fails only because your {names} fails: with convblocks' "
                                    f"{names} substituted it passes; fix {names} first")
                report.counterexample = _smallest_failure(runner, results)
                return report
            report.notes.append(f"also graded with convblocks' {names} substituted: it still "
                                "fails, so the hints and the smallest failing input below are "
                                "about this function itself")
    first = _smallest_failure(runner, own, substitute or None)
    report.counterexample = first
    evidence = Evidence(function, own, conv, load_notes, timeout,
                        lambda case, c: runner.run(case, c, substitute or None), shown=first)
    if any(r.outcome.status in ("timeout", "crashed") for r in own):
        evidence.rerun = lambda case, c: CaseResult(case, "error", own[-1].outcome, {}, {})
    report.hints.extend(find_hints(evidence))
    return report


def _detect_names(box: Sandbox, conv: Conventions) -> None:
    """Map a missing function to the one callable named with the same words, if unique."""
    for function in FUNCTIONS:
        if function in conv.names or function in box.callables:
            continue
        same = [c for c in box.callables if name_tokens(c) == name_tokens(function)
                and c not in conv.names.values()]
        if len(same) == 1:
            conv.names[function] = same[0]
            conv.assumed.append(f"{function} is your {same[0]} (same words)")


# The exercise's functions that read each hyperparameter key.
_KEY_READERS = {"pad": ("conv_forward", "conv_backward"),
                "stride": ("conv_forward", "conv_backward", "pool_forward", "pool_backward"),
                "f": ("pool_forward", "pool_backward")}


def _key_error(runner: _Runner, conv: Conventions, function: str) -> str | None:
    """The key of the KeyError ``function`` raises on a small case, if any."""
    if conv.name(function) not in runner.box.callables:
        return None
    error = runner.run(suite(function)[4], conv).outcome.error or {}
    return error.get("message", "").strip("'\"") if error.get("type") == "KeyError" else None


def _detect_keys(runner: _Runner, conv: Conventions) -> None:
    """Learn hyperparameter keys from the KeyError the exercise's keys provoke.

    A name is adopted for the whole file only if the other functions reading that key
    still run with it: when one of them then asks for the exercise's key (the file
    mixes ``'padding'`` and ``'pad'``), it is a typo in one function, not the course's
    convention; ``conv.key_conflicts`` records it for that function's hint.
    """
    for _ in range(len(_KEY_READERS)):  # one key per round
        found = None
        for function in ("conv_forward", "pool_forward", "conv_backward", "pool_backward"):
            key = _key_error(runner, conv, function)
            match = [k for k, syn in KEY_SYNONYMS.items() if key in syn and k not in conv.keys
                     and k in _KEY_READERS and function in _KEY_READERS[k]]
            if len(match) == 1 and key not in conv.key_conflicts:
                found = function, match[0], key
                break
        if found is None:
            return
        function, canonical, key = found
        trial = conv.copy()
        trial.keys[canonical] = key
        others = [g for g in _KEY_READERS[canonical]
                  if g != function and _key_error(runner, trial, g) == canonical]
        if others:
            conv.key_conflicts[key] = (canonical, others[0])
            continue
        conv.keys[canonical] = key
        conv.assumed.append(f"hparameters key {canonical!r} is your {key!r} "
                            f"({function} reads hparameters[{key!r}])")


def grade_file(path: str, conventions: Conventions, *, timeout: float = 10.0,
               memory: int = 2 << 30, only: tuple[str, ...] = FUNCTIONS) -> FileReport:
    """Grade one submission file (see the module docstring)."""
    import time
    start = time.perf_counter()
    submission = read_submission(path)
    report = FileReport(path, submission.kind)
    conv = conventions.copy()
    if submission.problem:
        report.problem = submission.problem
        for function in only:
            report.functions[function] = FunctionReport(function, "error", conv.name(function),
                                                        hints=[submission.problem])
        return report
    with Sandbox(submission, timeout=timeout, memory=memory, layout=conv.layout) as box:
        try:
            box.start()
        except RuntimeError as exc:
            report.problem = str(exc)
            for function in only:
                report.functions[function] = FunctionReport(function, "error", function,
                                                            hints=[str(exc)])
            return report
        report.load_problems, report.load_output = box.notes, box.load_output
        _detect_names(box, conv)
        runner = _Runner(box, conv)
        _detect_keys(runner, conv)
        for function in FUNCTIONS:
            if function not in only:
                continue
            try:
                report.functions[function] = _grade_function(runner, function, report.functions,
                                                              box.notes, timeout)
            except Exception as exc:  # a grader bug must not stop the class's grading
                where = traceback.extract_tb(exc.__traceback__)[-1]
                report.functions[function] = FunctionReport(
                    function, "error", conv.name(function),
                    hints=[f"the grader itself failed on this function ({type(exc).__name__}: "
                           f"{exc}, at {os.path.basename(where.filename)}:{where.lineno}); "
                           f"this is a convblocks bug, please report it"])
    report.conventions = conv.describe()
    report.assumed = conv.assumed
    report.seconds = time.perf_counter() - start
    return report


def grade_files(paths: list[str], conventions: Conventions, *, timeout: float = 10.0,
                memory: int = 2 << 30, jobs: int = 2,
                only: tuple[str, ...] = FUNCTIONS) -> Iterator[FileReport]:
    """Grade ``paths`` with ``jobs`` files at a time; yields reports in ``paths`` order."""
    def one(path: str) -> FileReport:
        return grade_file(path, conventions, timeout=timeout, memory=memory, only=only)

    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield one(path)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(one, paths)

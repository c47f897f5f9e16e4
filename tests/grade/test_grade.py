"""The grader against its corpus: every submission gets exactly its expected verdicts.

The corpus is graded once per session (two files at a time) and each submission is one
parametrized test. Correct submissions must pass everything (no false failures).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from convblocks.grade import FUNCTIONS, Conventions, grade_files
from convblocks.grade.cases import Case, make_args, shrink_candidates, suite, valid
from convblocks.grade.load import read_submission, strip_magics
from convblocks.grade.wire import Opaque, pack, unpack, HEADER

from .bugs import BUGS, CORPUS, write_bug_submissions

TIMEOUT = 3.0  # per call; generous: a loaded machine must not turn slow into "hung"
# Hand-written files: path, options, {function: (verdict, hint fragment)} for the non-passing.
HANDWRITTEN = [
    ("correct_loops.py", {}, {}),
    ("correct_vectorized.py", {}, {}),
    ("correct_notebook.ipynb", {}, {}),
    ("correct_nchw.py", {"layout": "NCHW", "weights": "OIHW"}, {}),
    ("correct_nchw.py", {}, {fn: (v, "wrong layout") for fn, v in [
        ("zero_pad", "fail"), ("conv_forward", "error"), ("pool_forward", "fail"),
        ("conv_backward", "error"), ("pool_backward", "error")]}),
    ("syntax_error.py", {}, {fn: ("error", "SyntaxError") for fn in FUNCTIONS}),
    ("notebook_broken_cell.ipynb", {}, {
        "conv_single_step": ("error", "SyntaxError"),
        "conv_forward": ("error", "fails only because your conv_single_step fails")}),
    ("weird_returns.py", {}, {
        "zero_pad": ("fail", ""), "conv_single_step": ("fail", "returns a 0-d array, not a float"),
        "create_mask_from_window": ("fail", ""), "distribute_value": ("fail", ""),
        "conv_forward": ("fail", ""), "pool_forward": ("error", "the exercise calls pool_forward("),
        "conv_backward": ("fail", ""), "pool_backward": ("fail", "contains NaN")}),
]


def _key(options: dict) -> tuple:
    return tuple(sorted(options.items()))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole corpus once: (file name, options) -> FileReport."""
    directory = tmp_path_factory.mktemp("bugs")
    paths = write_bug_submissions(directory)
    jobs: dict[tuple, list[tuple[str, str]]] = {}
    for name, _, _, options in BUGS:
        jobs.setdefault(_key(options), []).append((name, str(paths[name])))
    for file, options, _ in HANDWRITTEN:
        jobs.setdefault(_key(options), []).append((file, str(CORPUS / file)))
    reports = {}
    for key, entries in jobs.items():
        conv = Conventions.from_options(**dict(key))
        for (name, _), report in zip(entries, grade_files([p for _, p in entries], conv,
                                                           timeout=TIMEOUT, jobs=2)):
            reports[(name, key)] = report
    return reports


def _check(report, expected: dict) -> None:
    verdicts = {n: f.verdict for n, f in report.functions.items()}
    assert set(verdicts) == set(FUNCTIONS)
    wrong = {n: v for n, v in verdicts.items() if v != "pass"}
    # on failure, every non-passing function's verdict and hints in full (a grader
    # error says its exception there)
    assert wrong == {n: v for n, (v, _) in expected.items()}, \
        "\n".join(f"{n}: {f.verdict}: {f.hints}" for n, f in report.functions.items()
                  if f.verdict != "pass")
    for name, (_, fragment) in expected.items():
        text = " ".join(report.functions[name].hints + report.functions[name].notes)
        assert fragment in text, (name, text)
    for name, f in report.functions.items():
        if f.verdict in ("fail", "error") and f.counterexample is None:
            # only functions that never ran, or were not run with a helper that hangs
            assert f.cases_run == 0 or "not run with your" in " ".join(f.hints)


@pytest.mark.parametrize("bug", BUGS, ids=[b[0] for b in BUGS])
def test_bug_submission_gets_its_verdicts(graded, bug):
    name, _, expected, options = bug
    _check(graded[(name, _key(options))], expected)


@pytest.mark.parametrize("entry", HANDWRITTEN, ids=[f"{e[0]}{e[1] or ''}" for e in HANDWRITTEN])
def test_handwritten_submission_gets_its_verdicts(graded, entry):
    file, options, expected = entry
    _check(graded[(file, _key(options))], expected)


def test_load_problems_and_assumptions_are_reported(graded):
    exits = {n: graded[(n, ())] for n in ("sys_exit_at_import", "os_exit_at_import",
                                          "correct_notebook.ipynb", "print_flood")}
    assert [p["error"]["type"] for p in exits["sys_exit_at_import"].load_problems] == ["SystemExit"]
    assert [p["error"]["type"] for p in exits["os_exit_at_import"].load_problems] == ["Exit"]
    hang = graded[("infinite_loop_at_import", ())].load_problems
    assert [(p["error"]["type"], p["code"]) for p in hang] == [("Timeout", "while True:")]
    assert "No module named 'public_tests'" in str(exits["correct_notebook.ipynb"].load_problems)
    assert "characters cut" in exits["print_flood"].load_output
    assert graded[("keys_detected", ())].assumed == [
        "hparameters key 'pad' is your 'padding' (conv_forward reads hparameters['padding'])"]
    assert "forward_conv" in graded[("name_words_swapped_detected", ())].assumed[0]
    for typo in ("key_typo_conv_forward_only", "key_typo_conv_backward_only"):
        assert graded[(typo, ())].assumed == []  # a typo in one function changes no key


def test_counterexamples_are_shrunk(graded):
    r = graded[("stride_ignored_pool_backward", ())].functions["pool_backward"].counterexample
    p = dict(r.case.params)
    assert p["stride"] > 1 and p["m"] == 1 and p["C"] == 1
    assert r.args["A_prev"].size <= 12


def _function(graded, bug, function):
    return graded[(bug, ())].functions[function]


def test_output_size_hint_quotes_the_shown_smallest_case_and_not_stride(graded):
    f = _function(graded, "output_size_ceil", "conv_forward")
    assert not any(h.startswith("stride ignored") for h in f.hints), f.hints
    r = f.counterexample
    p = dict(r.case.params)
    # the smallest input shows the wrong shape itself, not a broadcast error on a bigger one
    assert r.status == "fail" and any("has shape" in x for x in r.problems), r.problems
    assert p["stride"] > 1 and r.args["A_prev"].size <= 2
    quoted = [h for h in f.hints if h.startswith("wrong output-size formula")]
    assert len(quoted) == 1
    assert any(f"for n_{d}_prev={p[d]}, f={p['f']}, stride={p['stride']}, pad={p['pad']} " in quoted[0]
               for d in "HW"), (quoted, r.case.label)


def test_hints_quote_the_numbers_of_the_shown_case(graded):
    f = _function(graded, "wrong_divisor_output_size_average_backward", "pool_backward")
    dA = f.counterexample.args["dA"]
    assert f.counterexample.case.mode == "average"
    assert f"by n_H * n_W = {dA.shape[1] * dA.shape[2]}, " in " ".join(f.hints), f.hints
    f = _function(graded, "wrong_divisor_average_backward", "pool_backward")  # / f, not / f*f
    k = f.counterexample.case.get("f")
    assert f.counterexample.case.mode == "average"
    assert f"yours is {k:g} times the gradient; " in " ".join(f.hints), (f.hints, k)
    f = _function(graded, "wrong_divisor_distribute_value", "distribute_value")
    h, w = f.counterexample.args["shape"]
    assert f"for shape ({h}, {w}) yours divides dz by {h + w:g};" in " ".join(f.hints), f.hints


def test_overwriting_dW_and_db_names_both(graded):
    text = " ".join(_function(graded, "overwrite_dW_and_db", "conv_backward").hints)
    assert "dW keeps only the last window's a_slice * dZ" in text, text
    assert "db keeps only the last window's dZ" in text, text


def test_a_helper_that_hangs_is_not_called_again(graded):
    report = graded[("infinite_loop", ())]
    assert report.functions["distribute_value"].timed_out
    pool = report.functions["pool_backward"]  # graded with convblocks' helper only: no timeout
    assert pool.counterexample is None and not pool.timed_out and "not run with your" in pool.hints[0]


def test_magics_become_pass_and_cells_keep_order(tmp_path):
    assert strip_magics("%time x = 1\n  !ls\ny = 2") == "pass  # time x = 1\n  pass  # ls\ny = 2"
    nb = {"cells": [{"cell_type": "code", "source": ["%%bash\n", "ls"]},
                    {"cell_type": "markdown", "source": "text"},
                    {"cell_type": "code", "source": "a = 1"}], "nbformat": 4}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(nb))
    sub = read_submission(str(path))
    assert [u.label for u in sub.units] == ["n.ipynb [cell 3]"]
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    assert read_submission(str(bad)).problem.startswith("not a readable notebook")


def test_wire_round_trip_never_unpickles():
    value = (np.arange(6.0).reshape(2, 3), {"stride": 2}, [1, 2.5, None, "s"], np.float32(1.5),
             float("nan"), object())
    frame = pack({"op": "x"}, value)
    n_text, n_blob = HEADER.unpack(frame[:HEADER.size])
    back = unpack(frame[HEADER.size:HEADER.size + n_text], frame[HEADER.size + n_text:])["data"]
    assert np.array_equal(back[0], value[0]) and back[1] == {"stride": 2}
    assert back[2] == [1, 2.5, None, "s"] and back[3] == np.float32(1.5) and np.isnan(back[4])
    assert isinstance(back[5], Opaque) and back[5].type == "object"


def _round_trip(value):
    frame = pack({"op": "x"}, value)
    n_text, _ = HEADER.unpack(frame[:HEADER.size])
    return unpack(frame[HEADER.size:HEADER.size + n_text], frame[HEADER.size + n_text:])["data"]


def test_wire_arrays_keep_dtype_shape_and_values_without_parsing_python(monkeypatch):
    # The grader unpacks frames in two threads at once (jobs=2); np.load's .npy header
    # parser calls ast.literal_eval, and CPython 3.11's AST construction is not
    # thread-safe ("AST constructor recursion depth mismatch"): frames never parse Python.
    import ast

    parsed = []
    original = ast.parse
    monkeypatch.setattr(ast, "parse", lambda *a, **k: parsed.append(a) or original(*a, **k))
    arrays = [np.arange(6.0).reshape(2, 3), np.float32(2.5) * np.ones((0, 4), np.float32),
              np.array(7, dtype=np.int16), np.asfortranarray(np.arange(12).reshape(3, 4)),
              np.array([True, False]), np.arange(5, dtype=">u4"), np.arange(10.0)[::3]]
    back = _round_trip(arrays)
    monkeypatch.undo()
    assert parsed == []
    for a, b in zip(arrays, back, strict=True):
        assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
        assert b.flags.writeable and b.flags.owndata


@pytest.mark.parametrize("meta, blob, message", [
    ([["|O", [1]]], b"\0" * 8, "expected \\[numeric dtype, shape\\]"),
    ([["<f8", [-1]]], b"", "expected"),
    ([["<f8", [2]]], b"\0" * 8, "need more than its 8 bytes"),
    ([["<f8", [1]]], b"\0" * 9, "1 bytes that no array describes"),
    ([["not a dtype", [1]]], b"\0", "expected"),
    (["<f8"], b"", "expected"),
])
def test_wire_refuses_frames_whose_arrays_do_not_match_their_bytes(meta, blob, message):
    text = json.dumps({"op": "x", "$arrays": meta}).encode()
    with pytest.raises(ValueError, match=message):
        unpack(text, blob)


def test_cases_are_valid_reproducible_and_shrink_to_valid_cases():
    for function in FUNCTIONS:
        for case in suite(function):
            assert valid(case), case
            a, b = make_args(case), make_args(case)
            for key in a:
                if isinstance(a[key], np.ndarray):
                    assert np.array_equal(a[key], b[key])
            assert all(valid(c) for c in shrink_candidates(case))
    ties = [c for c in suite("pool_backward") if c.values == "ties"]
    assert ties and isinstance(ties[0], Case)


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "convblocks", "grade", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_exit_codes_json_and_no_color(tmp_path):
    good = _cli(str(CORPUS / "correct_loops.py"), "--json")
    assert good.returncode == 0, good.stderr
    doc = json.loads(good.stdout)
    entry = doc["files"][0]
    assert doc["passed"] and set(entry["functions"]) == set(FUNCTIONS)
    assert all(f["verdict"] == "pass" and f["hint"] is None and f["counterexample"] is None
               for f in entry["functions"].values())
    paths = write_bug_submissions(tmp_path, ["pad0_unpadding"])
    bad = _cli(str(paths["pad0_unpadding"]), "--json")
    assert bad.returncode == 1
    cb = json.loads(bad.stdout)["files"][0]["functions"]["conv_backward"]
    assert cb["verdict"] == "error" and "pad-0" in cb["hint"]
    assert cb["counterexample"]["inputs"]["hparameters"]["pad"] == 0
    text = _cli(str(paths["pad0_unpadding"]), env_extra={"NO_COLOR": "1"})
    assert "\033[" not in text.stdout and "pad-0 un-padding" in text.stdout
    for args in (["nowhere.py"], [str(CORPUS / "correct_loops.py"), "--keys", "bad"],
                 [str(CORPUS / "correct_loops.py"), "--layout", "CHWN"],
                 [str(CORPUS / "correct_loops.py"), "--timeout", "0"]):
        usage = _cli(*args)
        assert usage.returncode == 2, (args, usage.stdout, usage.stderr)


@pytest.mark.slow
def test_grading_a_class_of_twenty_takes_under_a_minute(tmp_path):
    """20 submissions (bugs, crashes, a hang, notebooks) with the default limits."""
    names = [b[0] for b in BUGS if not b[3]][:13] + [
        "infinite_loop", "segfault_in_function", "memory_bomb", "os_exit_at_import"]
    write_bug_submissions(tmp_path, names)
    for file in ("correct_loops.py", "correct_vectorized.py", "correct_notebook.ipynb"):
        (tmp_path / file).write_bytes((CORPUS / file).read_bytes())
    start = time.perf_counter()
    result = _cli(str(tmp_path), "--json")
    seconds = time.perf_counter() - start
    files = json.loads(result.stdout)["files"]
    assert len(files) == 20 and result.returncode == 1
    print(f"graded 20 submissions in {seconds:.1f} s")
    assert seconds <= 60


def test_a_grader_bug_is_reported_per_function_with_its_place(monkeypatch):
    """An exception inside the grader becomes that function's 'error' with the exception
    and where it was raised; the other functions are still graded."""
    from convblocks.grade import grader

    real = grader._grade_function

    def flaky(runner, function, *args, **kwargs):
        if function == "zero_pad":
            raise RuntimeError("boom")
        return real(runner, function, *args, **kwargs)
    monkeypatch.setattr(grader, "_grade_function", flaky)
    report = grader.grade_file(str(CORPUS / "correct_loops.py"), Conventions(), timeout=TIMEOUT,
                               only=("zero_pad", "conv_single_step"))
    hint = report.functions["zero_pad"].hints[0]
    assert report.functions["zero_pad"].verdict == "error"
    assert "the grader itself failed on this function (RuntimeError: boom, at test_grade.py:" in hint
    assert report.functions["conv_single_step"].verdict == "pass"


def test_a_process_that_cannot_be_restarted_is_that_call_s_crash(tmp_path, monkeypatch):
    """After a call kills the process, the next call restarts it; if the restart fails
    (say, a machine so loaded that NumPy does not import in time) that call is reported
    as crashed, not as a grader bug."""
    from convblocks.grade.isolation import Sandbox

    path = tmp_path / "sub.py"
    path.write_text("import os\n\ndef die():\n    os._exit(3)\n\ndef ok():\n    return 1\n")
    with Sandbox(read_submission(str(path)), timeout=TIMEOUT, memory=0) as box:
        box.start()
        first = box.call("die", [])
        assert first.status == "crashed" and "status 3" in first.error["message"]

        def fail() -> None:
            raise RuntimeError("the grading process failed to start (timed out)")
        monkeypatch.setattr(box, "start", fail)
        second = box.call("ok", [])
        assert second.status == "crashed"
        assert second.error["message"] == ("the grading process could not be restarted: the "
                                           "grading process failed to start (timed out)")
        monkeypatch.undo()
        assert box.call("ok", []).status == "ok"  # a later call restarts it again


def test_frames_larger_than_a_pipe_buffer_cross_both_ways(tmp_path):
    """A 2 MiB argument and result (pipes hold 64 KiB) arrive whole and unchanged."""
    from convblocks.grade.isolation import Sandbox

    path = tmp_path / "sub.py"
    path.write_text("def twice(a):\n    return a * 2\n")
    a = np.random.default_rng(0).standard_normal((512, 512))
    with Sandbox(read_submission(str(path)), timeout=TIMEOUT, memory=0) as box:
        out = box.call("twice", [a])
    assert out.status == "ok"
    np.testing.assert_array_equal(out.value, a * 2)


# Hints each of these submissions drew before the evidence had to show the bug in every
# failing case (mutation fuzzing): none of them may come back.
WRONG_HINTS = {
    "mode_branch_raises": ("pool_backward", "its branch never ran"),
    "mode_branch_never_runs_no_max_at_zero": ("pool_forward", "a maximum that starts at 0"),
    "mode_not_max_branch_swapped": ("pool_forward", "a maximum that starts at 0"),
    "mask_transposed_index": ("create_mask_from_window", "marks the minimum"),
    "unpadding_without_offset": ("conv_backward", "overwrite instead of accumulate"),
    "unpadding_one_bound_unpadded": ("conv_backward", "fails everywhere except"),
    "wrong_filter_in_dA_prev": ("conv_backward", "overwrite instead of accumulate"),
    "filters_loop_over_input_channels": ("conv_backward", "overwrite instead of accumulate"),
    "average_backward_shifted_row": ("pool_backward", "wrong divisor"),
}


@pytest.mark.parametrize("bug", sorted(WRONG_HINTS))
def test_hints_do_not_name_a_bug_the_evidence_does_not_show(graded, bug):
    function, wrong = WRONG_HINTS[bug]
    f = _function(graded, bug, function)
    assert f.verdict in ("fail", "error")
    assert not any(wrong in h for h in f.hints), f.hints

"""Tests of the benchmark harness: timing logic, ratio math, tables, JSON, the CLI.

No assertion here depends on how fast anything runs: timings are checked with a fake
clock, and the end-to-end runs only check the shape of what comes out.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import types

import numpy as np
import pytest

from convblocks.bench import harness, ops
from convblocks.bench.harness import (Settings, Target, Workload, evaluate_target,
                                      format_markdown_table, format_ms, gflops, ratio, share,
                                      time_interleaved)
from convblocks.cli import bench as cli_bench
from convblocks.cli.main import main


# --------------------------------------------------------------------------- timing

class FakeClock:
    """A clock that only moves when a fake workload 'runs'."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.log.append("sleep")

    def work(self, name: str, seconds: float):
        def fn():
            self.log.append(name)
            self.now += seconds
        return fn


def test_time_interleaved_alternates_and_reports_seconds_per_call():
    clock = FakeClock()
    fns = {"ours": clock.work("ours", 0.001), "torch": clock.work("torch", 0.004)}
    out = time_interleaved(fns, repeats=3, warmup=2, pause=0.15, min_sample_s=0.02,
                           sleep=clock.sleep, clock=clock)
    assert set(out) == {"ours", "torch"}
    # 0.02 s per sample: 20 calls of 1 ms, 5 calls of 4 ms.
    assert out["ours"].number == 20 and out["torch"].number == 5
    assert out["ours"].seconds == pytest.approx((0.001,) * 3)
    assert out["torch"].seconds == pytest.approx((0.004,) * 3)
    assert out["ours"].median == pytest.approx(0.001)
    assert out["torch"].to_json() == {"median_ms": pytest.approx(4.0), "min_ms": pytest.approx(4.0),
                                      "samples_ms": pytest.approx([4.0] * 3), "calls_per_sample": 5}
    # Every round runs ours then torch, each after its own pause (round 0 calibrates).
    after_pause = [clock.log[i + 1] for i, item in enumerate(clock.log) if item == "sleep"]
    assert after_pause == ["ours", "torch"] * (2 + 3)
    assert clock.sleeps == [0.15] * (2 * (2 + 3))


def test_calibration_ignores_a_slow_first_call():
    clock = FakeClock()
    calls = {"n": 0}

    def fn():
        calls["n"] += 1
        clock.now += 0.5 if calls["n"] == 1 else 0.001   # lazy initialisation once
    out = time_interleaved({"f": fn}, repeats=2, pause=0.0, min_sample_s=0.01,
                           sleep=clock.sleep, clock=clock)
    # The 0.5 s call is the untimed first one: calibration sees 1 ms calls.
    assert out["f"].number == 10
    assert out["f"].seconds == pytest.approx((0.001, 0.001))


@pytest.mark.parametrize("first, minimum, expected", [
    (0.001, 0.02, 20), (0.03, 0.02, 1), (0.0, 0.02, 10_000), (0.007, 0.02, 3),
    (1e-9, 0.02, 10_000), (0.0, 0.0, 1), (0.5, 0.0, 1)])
def test_calls_per_sample(first, minimum, expected):
    assert harness.calls_per_sample(first, minimum) == expected


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"repeats": 1, "warmup": 0}])
def test_time_interleaved_rejects_bad_counts(kwargs):
    with pytest.raises(ValueError, match="repeats|warmup"):
        time_interleaved({"f": lambda: None}, pause=0.0, **kwargs)


# --------------------------------------------------------------------------- arithmetic

def test_ratio_gflops_share():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None
    assert gflops(4e9, 2.0) == 2.0
    assert gflops(None, 1.0) is None and gflops(1e9, 0.0) is None
    assert share(50.0, 200.0) == 0.25 and share(None, 1.0) is None and share(1.0, None) is None


def test_evaluate_target_pass_miss_na():
    t = Target("fwd+bwd ratio", "fwdbwd_ratio", 1.5)
    assert evaluate_target(t, 1.5)["status"] == "PASS"      # the limit itself passes
    assert evaluate_target(t, 1.51)["status"] == "MISS"
    assert evaluate_target(t, None)["status"] == "N/A"
    assert evaluate_target(t, 0.2) == {"name": "fwd+bwd ratio", "metric": "fwdbwd_ratio",
                                       "limit": 1.5, "unit": "", "value": 0.2, "status": "PASS"}


def test_conv_flops_and_case_shapes_follow_the_spec():
    d = next(c for c in ops.CONV_CASES if c.id == "d")
    assert d.flops_fwd() == 2 * 32 * 32 * 32 * 64 * 3 * 3 * 64
    a = ops.CONV_CASES[0]
    assert a.out_shape == (10, 4, 4, 8)            # (4 + 4 - 2) // 2 + 1 = 4
    e = ops.CONV_CASES[-1]
    assert e.out_shape == (16, 28, 28, 128)
    pool_inputs = sorted({c.shape for c in ops.POOL_CASES})
    assert pool_inputs == sorted([(64, 28, 28, 6), (64, 10, 10, 16), (32, 32, 32, 64),
                                  (16, 28, 28, 128)])
    assert len(ops.POOL_CASES) == 12
    limits = {c.id: {t.metric: t.limit for t in c.targets()} for c in ops.ALL_CASES}
    assert [limits[k]["fwdbwd_ratio"] for k in "abcde"] == [0.5, 2.0, 2.0, 1.5, 1.5]
    assert limits["d"]["temp_mib"] == 64.0 and "temp_mib" not in limits["e"]
    assert all(limits[k]["f64_over_f32"] == 2.0 for k in "abcde")
    assert all(limits[c.id] == {"fwdbwd_ratio": 1.25} for c in ops.POOL_CASES)


@pytest.mark.parametrize("spec, ids", [
    (None, [c.id for c in ops.ALL_CASES]),
    ("a, b.max2", ["a", "b.max2"]),
    ("b.max2,a", ["a", "b.max2"]),                  # canonical order
    ("conv", list("abcde")),
    ("d*", ["d", "d.max2", "d.avg2", "d.max3"]),
    ("*.avg2", ["b.avg2", "c.avg2", "d.avg2", "e.avg2"]),
    ("none", []),
    ("a,a", ["a"]),
])
def test_select_cases(spec, ids):
    assert [c.id for c in ops.select_cases(spec)] == ids


def test_select_cases_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"cases: 'f' matches no case"):
        ops.select_cases("a,f")
    with pytest.raises(TypeError, match="cases"):
        ops.select_cases(["a"])


def test_max_rel_err():
    ref = np.array([1.0, -4.0, 2.0])
    assert ops.max_rel_err(ref + [0, 0.4, 0], ref) == pytest.approx(0.1)
    assert ops.max_rel_err(np.zeros(2), np.zeros(2)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        ops.max_rel_err(np.zeros(2), np.zeros(3))


# --------------------------------------------------------------------------- memory

def test_measure_temp_memory_counts_temporaries_not_outputs():
    def fn():
        temp = np.ones(1_000_000)            # 8 MB, freed before returning
        out = np.full(125_000, temp[0])      # 1 MB, kept
        return out, None, out                # duplicates and None are ignored
    mem = harness.measure_temp_memory(fn)
    assert mem["kept_bytes"] == 1_000_000
    assert 9_000_000 <= mem["peak_bytes"] < 9_100_000
    assert 8_000_000 <= mem["temp_bytes"] < 8_100_000


# --------------------------------------------------------------------------- one case

class _FakeCase:
    id, kind, title = "z", "conv", "fake 1×2×3"

    def params(self):
        return {"n": 1}

    def flops_fwd(self):
        return 2_000_000

    def targets(self):
        return [Target("fwd+bwd ratio", "fwdbwd_ratio", 1.5),
                Target("float64/float32", "f64_over_f32", 2.0)]


def _fake_workload(clock: FakeClock) -> Workload:
    return Workload(
        ours_fwd=clock.work("ours", 0.002),
        ours_fwdbwd=lambda: (clock.work("ours_fb", 0.006)(), np.zeros(4))[1:],
        ours64_fwdbwd=clock.work("ours64", 0.009),
        torch_fwd={"nchw": clock.work("t", 0.001), "channels_last": clock.work("t", 0.004)},
        torch_fwdbwd={"nchw": clock.work("t", 0.008), "channels_last": clock.work("t", 0.003)},
        check=lambda: 1e-6)


def test_run_case_metrics_and_schema(monkeypatch):
    clock = FakeClock()
    real = harness.time_interleaved
    monkeypatch.setattr(harness, "time_interleaved",
                        lambda fns, **kw: real(fns, sleep=clock.sleep, clock=clock, **kw))
    res = harness.run_case(_FakeCase(), _fake_workload(clock),
                           settings=Settings(repeats=2, pause=0.0), peak_gflops=4.0)
    m = res["metrics"]
    assert res["torch_layout"] == {"fwd": "nchw", "fwdbwd": "channels_last"}
    assert m["ours_fwd_ms"] == pytest.approx(2.0) and m["torch_fwd_ms"] == pytest.approx(1.0)
    assert m["fwd_ratio"] == pytest.approx(2.0)
    assert m["fwdbwd_ratio"] == pytest.approx(2.0)            # 6 ms / 3 ms (the faster layout)
    assert m["f64_over_f32"] == pytest.approx(1.5)            # 9 ms / 6 ms
    assert m["gflops_fwd"] == pytest.approx(1.0)              # 2e6 FLOP in 2 ms
    assert m["gflops_fwdbwd"] == pytest.approx(1.0)           # 6e6 FLOP in 6 ms
    assert m["peak_share_fwdbwd"] == pytest.approx(0.25)
    assert [t["status"] for t in res["targets"]] == ["MISS", "PASS"]
    assert res["check"] == {"max_rel_err": 1e-6, "tolerance": 1e-3, "ok": True}
    assert set(res["timings"]["fwdbwd"]) == {"ours", "torch.nchw", "torch.channels_last", "ours64"}
    assert res["flops_fwdbwd"] == 6_000_000
    json.dumps(res)                                           # JSON-ready as it is


def test_summary_and_report_rows():
    clock = FakeClock()
    res = harness.run_case(_FakeCase(), _fake_workload(clock),
                           settings=Settings(repeats=1, pause=0.0, min_sample_s=0.0),
                           peak_gflops=None)
    res["check"] = {"max_rel_err": 0.5, "tolerance": 1e-3, "ok": False}
    summary = harness.summarize([res])
    assert summary["check_failures"] == ["z"]
    assert summary["pass"] + summary["miss"] + summary["not_available"] == 2
    row = harness.case_row(res)
    assert row[0] == "z (WRONG)" and len(row) == len(harness.TABLE_HEADERS)
    assert row[9] == "—"                                      # no GEMM peak, no share
    text = harness.format_report({"cases": [res], "command": "convblocks bench --cases z",
                                  "settings": {"repeats": 1, "threads": 2}})
    assert "WRONG RESULTS" in text and "Produced by: `convblocks bench --cases z`" in text


# --------------------------------------------------------------------------- formatting

def test_format_markdown_table():
    text = format_markdown_table(["case", "ms"], [["a", "1.5"], ["long", "12.25"]])
    assert text.splitlines() == ["| case |    ms |",
                                 "| ---- | ----: |",
                                 "| a    |   1.5 |",
                                 "| long | 12.25 |"]
    with pytest.raises(ValueError, match=r"rows\[0\] has 1 cells; expected 2"):
        format_markdown_table(["a", "b"], [["x"]])


@pytest.mark.parametrize("value, text", [(None, "—"), (0.05234, "0.0523"), (3.214, "3.21"),
                                         (45.66, "45.7"), (123.4, "123"), (1234.5, "1234")])
def test_format_ms(value, text):
    assert format_ms(value) == text


def test_environment_lines_flag_blas_variables():
    env = {"convblocks": "0", "blas": [{"internal_api": "openblas", "architecture": "Haswell",
                                        "num_threads": 2, "version": "0.3"}],
           "blas_env": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": None}}
    text = harness.format_environment(env, threads=2)
    assert "kernel Haswell, num_threads 2" in text and "Threads: NumPy's BLAS 2" in text
    assert "OPENBLAS_CORETYPE=Haswell SET" in text


# --------------------------------------------------------------------------- env, JSON

def test_cleaned_environ_removes_blas_variables_and_marks():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512", "PATH": "/bin"}
    assert harness.blas_env_overrides(env) == {"OPENBLAS_CORETYPE": "Haswell",
                                               "OPENBLAS_L2_SIZE": "512"}
    clean = harness.cleaned_environ(env)
    assert clean == {"PATH": "/bin",
                     harness.REEXEC_MARKER: "OPENBLAS_CORETYPE=Haswell,OPENBLAS_L2_SIZE=512"}
    assert harness.blas_env_overrides(clean) == {}


def test_write_json_converts_numpy_and_default_path(tmp_path):
    import datetime as dt
    path = harness.write_json(tmp_path / "sub" / "r.json",
                              {"x": np.float32(1.5), "a": np.arange(3), "n": np.int64(2)})
    assert json.loads(path.read_text()) == {"x": 1.5, "a": [0, 1, 2], "n": 2}
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert str(harness.default_json_path(when)) == "bench-results/bench-20260102-030405.json"


# --------------------------------------------------------------------------- CLI

def _parse(argv):
    parser = argparse.ArgumentParser()
    cli_bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_command_argv_round_trips():
    argv = ["--cases", "a,d*", "--quick", "--repeats", "4", "--threads", "2", "--pause", "0.1",
            "--gemm-size", "512", "--no-torch", "--no-reexec", "--train", "--batches", "5",
            "--batch-size", "16", "--json", "out.json"]
    args = _parse(argv)
    assert vars(_parse(cli_bench.command_argv(args))) == vars(args)
    assert cli_bench.command_argv(_parse([])) == []


@pytest.mark.parametrize("argv, message", [(["--repeats", "0"], "positive integer"),
                                           (["--pause", "-1"], ">= 0"),
                                           (["--threads", "two"], "positive integer")])
def test_bad_options_are_rejected(argv, message, capsys):
    with pytest.raises(SystemExit):
        _parse(argv)
    assert message in capsys.readouterr().err


def test_reexec_drops_blas_variables(monkeypatch):
    calls = {}

    def fake_execve(path, argv, env):
        calls.update(path=path, argv=argv, env=env)
        raise SystemExit(0)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv(harness.REEXEC_MARKER, raising=False)
    monkeypatch.setattr(cli_bench.os, "execve", fake_execve)
    with pytest.raises(SystemExit):
        main(["bench", "--cases", "a", "--repeats", "2"])
    assert calls["argv"] == [sys.executable, "-m", "convblocks", "bench", "--cases", "a",
                             "--repeats", "2"]
    assert "OPENBLAS_CORETYPE" not in calls["env"] and "OPENBLAS_L2_SIZE" not in calls["env"]
    assert calls["env"][harness.REEXEC_MARKER].startswith("OPENBLAS_CORETYPE=Haswell")


_TINY = ["--repeats", "1", "--pause", "0", "--gemm-size", "64", "--no-reexec"]


@pytest.fixture
def one_call_samples(monkeypatch):
    """Samples of a single call (no 20 ms calibration): keeps the CLI tests fast."""
    monkeypatch.setattr(harness, "Settings", functools.partial(harness.Settings, min_sample_s=0.0))


@pytest.mark.torch
def test_cli_end_to_end_json_schema(tmp_path, capsys, one_call_samples):
    pytest.importorskip("torch")
    out = tmp_path / "r.json"
    assert main(["bench", "--cases", "a,c.avg2", *_TINY, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| case" in text and "f+b ratio" in text and "Produced by: `" in text
    assert "--cases a,c.avg2" in text and f"JSON: {out}" in text
    r = json.loads(out.read_text())
    assert r["schema"] == harness.SCHEMA
    assert set(r) >= {"created", "command", "environment", "settings", "gemm_peak", "cases",
                      "summary"}
    assert r["environment"]["numpy"] == np.__version__ and r["environment"]["torch"]
    assert r["settings"]["repeats"] == 1 and r["gemm_peak"]["n"] == 64
    assert r["settings"]["min_sample_s"] == 0.0
    assert [c["id"] for c in r["cases"]] == ["a", "c.avg2"]
    for case in r["cases"]:
        assert case["check"]["ok"], case["check"]             # ours agrees with torch
        m = case["metrics"]
        assert m["fwdbwd_ratio"] == pytest.approx(m["ours_fwdbwd_ms"] / m["torch_fwdbwd_ms"])
        assert case["torch_layout"]["fwd"] in ("nchw", "channels_last")
        assert all(len(t["samples_ms"]) == 1 for t in case["timings"]["fwd"].values())
    conv = r["cases"][0]
    assert conv["flops_fwd"] == 2 * 10 * 4 * 4 * 8 * 2 * 2 * 3
    assert conv["metrics"]["f64_over_f32"] is not None
    assert r["summary"]["pass"] + r["summary"]["miss"] == 3   # a: ratio, f64; c.avg2: ratio


def test_cli_without_torch_reports_na(tmp_path, capsys, one_call_samples):
    out = tmp_path / "r.json"
    assert main(["bench", "--cases", "b.max2", *_TINY, "--no-torch", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    case = r["cases"][0]
    assert case["metrics"]["fwdbwd_ratio"] is None and case["check"] is None
    assert [t["status"] for t in case["targets"]] == ["N/A"]
    assert "N/A (no PyTorch)" in capsys.readouterr().out


def test_cli_missing_torch_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)          # import torch -> ImportError
    assert main(["bench", "--cases", "a", *_TINY]) == 2
    assert "--no-torch" in capsys.readouterr().err


def test_cli_bad_cases_is_a_clear_error(capsys):
    assert main(["bench", "--cases", "q", *_TINY]) == 2
    assert "'q' matches no case" in capsys.readouterr().err


def test_cli_train_without_module_is_a_clear_error(monkeypatch, capsys):
    import convblocks.bench as pkg
    monkeypatch.setitem(sys.modules, "convblocks.bench.train", None)   # import -> not found
    monkeypatch.delattr(pkg, "train", raising=False)
    assert main(["bench", "--train", *_TINY]) == 2
    assert "training benchmark" in capsys.readouterr().err


def test_cli_train_report_and_json(monkeypatch, tmp_path, capsys):
    seen = {}

    def run_train_bench(*, batches, batch_size, seed, repeats, pause):
        seen.update(batches=batches, batch_size=batch_size, seed=seed, repeats=repeats,
                    pause=pause)
        return {"ours_epoch_s": np.float64(2.0), "torch_epoch_s": 1.0}
    fake = types.ModuleType("convblocks.bench.train")
    fake.run_train_bench = run_train_bench
    fake.format_train_report = lambda r: f"epoch ratio {r['ours_epoch_s'] / r['torch_epoch_s']:.1f}"
    monkeypatch.setitem(sys.modules, "convblocks.bench.train", fake)
    import convblocks.bench as pkg
    monkeypatch.setattr(pkg, "train", fake, raising=False)
    out = tmp_path / "t.json"
    assert main(["bench", "--train", "--batches", "3", *_TINY, "--json", str(out)]) == 0
    assert seen == {"batches": 3, "batch_size": None, "seed": 0, "repeats": 1,  # --repeats 1
                    "pause": 0.0}                                           # --pause 0
    text = capsys.readouterr().out
    assert "epoch ratio 2.0" in text and "| case" not in text   # --train alone: no op cases
    r = json.loads(out.read_text())
    assert r["train"] == {"ours_epoch_s": 2.0, "torch_epoch_s": 1.0} and r["cases"] == []


# ------------------------------------------------------------ audit findings (bench)
def test_temp_memory_counts_a_forward_peak_before_the_gradients_exist(monkeypatch):
    """A 16 MB forward temporary (the cache) that is gone before dx exists: the fwd+bwd
    peak minus every output would miss it; the forward measured alone sees it."""
    clock = FakeClock()
    tick = clock.work("ours", 0.05)                  # one sample per call: few real calls

    def fwd():
        tick()
        cache = np.ones(2_000_000)                   # 16 MB, kept by the forward
        return np.zeros(10), cache

    def fwdbwd():
        y, _ = fwd()
        return y, np.zeros(2_000_000)                # dx: 16 MB, an output
    real = harness.time_interleaved
    monkeypatch.setattr(harness, "time_interleaved",
                        lambda fns, **kw: real(fns, sleep=clock.sleep, clock=clock, **kw))
    load = Workload(ours_fwd=fwd, ours_fwdbwd=fwdbwd, ours64_fwdbwd=None,
                    torch_fwd={"nchw": clock.work("t", 0.001)},
                    torch_fwdbwd={"nchw": clock.work("t", 0.003)}, check=None)
    res = harness.run_case(_FakeCase(), load, settings=Settings(repeats=1, pause=0.0),
                           peak_gflops=None)
    assert res["memory"]["fwd_temp_bytes"] >= 16_000_000
    assert res["memory"]["temp_bytes"] == max(res["memory"]["fwd_temp_bytes"],
                                             res["memory"]["fwdbwd_temp_bytes"])
    assert res["metrics"]["temp_mib"] >= 15.2


def test_check_marks_mismatches_and_a_fake_float64_run_wrong():
    def out(dtype, n=4):
        return (np.ones(n, dtype), np.ones(n, dtype))
    ok = Workload(ours_fwd=None, ours_fwdbwd=lambda: out(np.float32),
                  ours64_fwdbwd=lambda: out(np.float64), check=lambda: 1e-6)
    assert harness._run_check(ok, 1e-3)["ok"] is True
    fake64 = Workload(ours_fwd=None, ours_fwdbwd=lambda: out(np.float32),
                      ours64_fwdbwd=lambda: out(np.float32), check=lambda: 1e-6)
    res = harness._run_check(fake64, 1e-3)
    assert res["ok"] is False and "float64 run returned float32" in res["error"]

    def shapes():
        return ops.max_rel_err(np.ones(3), np.ones(4))
    bad = Workload(ours_fwd=None, ours_fwdbwd=None, ours64_fwdbwd=None, check=shapes)
    res = harness._run_check(bad, 1e-3)
    assert res["ok"] is False and "shapes differ" in res["error"]
    nan = Workload(ours_fwd=None, ours_fwdbwd=None, ours64_fwdbwd=None,
                   check=lambda: float("nan"))
    assert harness._run_check(nan, 1e-3)["ok"] is False


def test_write_json_is_strict(tmp_path):
    path = harness.write_json(tmp_path / "r.json", {"a": float("nan"), "b": [np.float64("inf")]})
    assert json.loads(path.read_text()) == {"a": None, "b": [None]}


@pytest.mark.parametrize("argv,message", [
    (["bench", "--train", "--no-torch"], "cannot run with --no-torch"),
    (["bench", "--cases", ","], "names no case"),
])
def test_option_combinations_are_refused(argv, message, capsys):
    assert main([*argv, "--no-reexec"]) == 2  # no re-exec: this machine may set the variables
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [(["--pause", "inf"], "at most 86400 seconds"),
                                          (["--ca", "a"], "unrecognized arguments: --ca")])
def test_infinite_pause_and_abbreviations_are_refused(argv, message, capsys):
    """An abbreviation (--ca for --cases) would dodge the check that keeps the kernel
    cases off the training commands' OPENBLAS_THREAD_TIMEOUT, so none is accepted."""
    with pytest.raises(SystemExit):
        main(["bench", *argv])
    assert message in capsys.readouterr().err


def test_reexec_keeps_the_exact_pause():
    args = argparse.Namespace(cases=None, quick=False, repeats=None, threads=None,
                              pause=0.1234567, gemm_size=2048, no_torch=False, no_reexec=False,
                              train=False, batches=50, batch_size=None, json=None)
    argv = cli_bench.command_argv(args)
    assert argv[argv.index("--pause") + 1] == "0.1234567"


def test_kept_blas_variables_are_named_in_the_command_and_flagged(tmp_path, capsys, monkeypatch,
                                                                  one_call_samples):
    """With --no-reexec the variables stay set: the 'Produced by' command shows them and
    the report says the numbers are not representative."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    out = tmp_path / "r.json"
    assert main(["bench", "--cases", "a", "--no-torch", *_TINY, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].startswith("OPENBLAS_CORETYPE=Haswell convblocks bench")
    report = harness.format_report(result)
    assert "NOT REPRESENTATIVE: run with OPENBLAS_CORETYPE=Haswell set" in report
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    result["environment"]["blas_env"] = {}
    assert "NOT REPRESENTATIVE" not in harness.format_report(result)

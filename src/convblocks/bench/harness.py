"""Benchmark machinery: environment report, interleaved timing, memory, targets, output.

Nothing here knows about convolution: a *case* (see :mod:`convblocks.bench.ops`) hands
over a :class:`Workload` of zero-argument callables, and :func:`run_case` times them
against each other, measures our peak temporary memory, checks the targets and returns a
JSON-ready dict. :func:`format_report` turns a whole run's dict back into the Markdown
table, so a saved JSON file can always be re-rendered.

How a timing is taken (:func:`time_interleaved`): every callable runs once to warm up
and to choose how many calls make one sample (at least ``min_sample_s`` of work, so tiny
ops are not lost in timer noise); then rounds go ours, torch, ours, torch, ..., each
sample preceded by a ``pause`` (OpenBLAS worker threads spin about 0.1 s after a GEMM and
would slow whatever runs next). The reported number is the median seconds per call.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .._atomic import write_json as _write_json

__all__ = [
    "BLAS_ENV_VARS", "REEXEC_MARKER", "SCHEMA",
    "Samples", "Workload", "Target", "Settings",
    "blas_info", "blas_env_overrides", "cleaned_environ", "environment_info",
    "calls_per_sample", "time_interleaved", "median_s", "median_ms",
    "measure_gemm_peak", "measure_temp_memory",
    "ratio", "gflops", "share", "evaluate_target",
    "run_case", "run_suite", "summarize",
    "format_ms", "format_markdown_table", "format_environment", "format_report",
    "default_json_path", "write_json", "echo",
]

#: Read by OpenBLAS when it loads; both slow NumPy down on this project's machines.
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: Set by ``convblocks bench`` in the environment of its own re-exec: the removed variables.
REEXEC_MARKER = "CONVBLOCKS_BENCH_REEXEC"
#: Version tag of the JSON layout written by :func:`write_json`.
SCHEMA = "convblocks-bench/1"

MiB = 1024 * 1024


# --------------------------------------------------------------------------- environment

def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries loaded in this process, as threadpoolctl reports them.

    Returns
    -------
    list of dict
        One dict per BLAS library with ``internal_api`` (e.g. ``'openblas'``),
        ``architecture`` (the kernel OpenBLAS picked, e.g. ``'SkylakeX'``),
        ``num_threads``, ``version``, ``threading_layer``, ``prefix`` and ``filepath``.
        Empty when threadpoolctl is not installed.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "architecture", "num_threads", "version", "threading_layer",
            "prefix", "filepath")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()
            if info.get("user_api") == "blas"]


def blas_env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Which of :data:`BLAS_ENV_VARS` are set in ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in BLAS_ENV_VARS if name in environ}


def cleaned_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` without :data:`BLAS_ENV_VARS`, marked as re-executed.

    The marker :data:`REEXEC_MARKER` holds the removed ``NAME=value`` pairs, so the
    re-executed process can report them and never re-executes a second time.
    """
    environ = os.environ if environ is None else environ
    removed = blas_env_overrides(environ)
    env = {k: v for k, v in environ.items() if k not in BLAS_ENV_VARS}
    env[REEXEC_MARKER] = ",".join(f"{k}={v}" for k, v in removed.items()) or "none"
    return env


def environment_info(torch: Any = None) -> dict[str, Any]:
    """Everything that decides the numbers: versions, BLAS kernel, threads, env vars."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "blas": blas_info(),
        "blas_env": {name: os.environ.get(name) for name in BLAS_ENV_VARS},
        "reexec_removed": os.environ.get(REEXEC_MARKER),
        "blas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "engine_threads": _engine_threads(),
    }
    from convblocks import __version__
    info["convblocks"] = __version__
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --------------------------------------------------------------------------- timing

@dataclass(frozen=True)
class Samples:
    """Timed samples of one callable.

    Attributes
    ----------
    seconds : tuple of float
        Seconds per call, one entry per sample (each sample averages ``number`` calls).
    number : int
        Calls per sample.
    """

    seconds: tuple[float, ...]
    number: int

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.seconds)

    def to_json(self) -> dict[str, Any]:
        return {"median_ms": self.median * 1e3, "min_ms": min(self.seconds) * 1e3,
                "samples_ms": [s * 1e3 for s in self.seconds], "calls_per_sample": self.number}


def calls_per_sample(first_call_s: float, min_sample_s: float, *, cap: int = 10_000) -> int:
    """How many calls make a sample of at least ``min_sample_s`` (1 .. ``cap``)."""
    if min_sample_s <= 0:
        return 1
    if first_call_s <= 0:
        return cap
    # round() first: 0.02 / 0.001 is 20.000000000000004 in floating point, not 21 calls.
    return int(min(cap, max(1, math.ceil(round(min_sample_s / first_call_s, 6)))))


def _calibrate(fn: Callable[[], Any], min_sample_s: float, clock: Callable[[], float],
               *, cap: int = 10_000) -> int:
    """Calls per sample: run 1, 2, 4, ... calls until a batch lasts ``min_sample_s``.

    One untimed call comes first and the per-call time of the last batch decides, so a
    slow first call (lazy initialisation) does not make a fast callable look slow.
    """
    fn()
    n = 1
    while True:
        t0 = clock()
        for _ in range(n):
            fn()
        elapsed = clock() - t0
        if elapsed >= min_sample_s or n >= cap:
            return calls_per_sample(elapsed / n, min_sample_s, cap=cap)
        n = min(2 * n, cap)


def time_interleaved(fns: Mapping[str, Callable[[], Any]], *, repeats: int, warmup: int = 1,
                     pause: float = 0.15, min_sample_s: float = 0.02,
                     sleep: Callable[[float], Any] = time.sleep,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, Samples]:
    """Time several callables against each other, interleaved.

    Parameters
    ----------
    fns : mapping of str to callable
        Zero-argument callables, timed in this order within each round.
    repeats : int
        Timed rounds (samples per callable), >= 1.
    warmup : int
        Untimed rounds first, >= 1; the first also picks each callable's calls per sample
        (running it 1, 2, 4, ... times until a batch lasts ``min_sample_s``).
    pause : float
        Seconds to sleep before every sample (lets BLAS worker threads go idle).
    min_sample_s : float
        Minimum duration of one sample; faster callables are called several times.
    sleep, clock
        Injected for tests.

    Returns
    -------
    dict of str to Samples
        Same keys as ``fns``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    if warmup < 1:
        raise ValueError(f"warmup must be >= 1; got {warmup}")
    number: dict[str, int] = {}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            sleep(pause)
            if round_ == 0:
                number[name] = _calibrate(fn, min_sample_s, clock)
                continue
            n = number[name]
            t0 = clock()
            for _ in range(n):
                fn()
            elapsed = clock() - t0
            if round_ >= warmup:
                samples[name].append(elapsed / n)
    return {name: Samples(tuple(s), number[name]) for name, s in samples.items()}


def median_s(samples: Samples | None) -> float | None:
    """Median seconds per call, or None."""
    return None if samples is None else samples.median


def median_ms(samples: Samples | None) -> float | None:
    """Median milliseconds per call, or None."""
    return None if samples is None else samples.median * 1e3


def measure_gemm_peak(*, n: int = 2048, repeats: int = 5, pause: float = 0.15,
                      seed: int = 0) -> dict[str, Any]:
    """The machine's float32 GEMM speed: ``np.matmul`` of two ``(n, n)`` matrices.

    Returns
    -------
    dict
        ``n``, ``gflops`` (median of ``repeats`` samples, ``2*n**3`` FLOP each) and
        ``samples_ms``.
    """
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    timed = time_interleaved({"gemm": lambda: np.matmul(a, b, out=out)}, repeats=repeats,
                             pause=pause, min_sample_s=0.0)["gemm"]
    return {"n": n, "gflops": gflops(2 * n ** 3, timed.median),
            "samples_ms": [s * 1e3 for s in timed.seconds]}


def measure_temp_memory(fn: Callable[[], Iterable[Any]]) -> dict[str, int]:
    """Peak temporary memory of ``fn``, traced by ``tracemalloc``.

    ``fn`` runs once with tracing on and returns the arrays the caller asked for (for a
    forward+backward: ``y, dx, dw, db``; None entries are skipped). Its inputs exist
    before tracing starts and are not counted. NumPy reports every array buffer to
    tracemalloc; BLAS-internal buffers and other libraries' memory are not seen. The
    engine's buffer pool is off during the call, so every temporary is a new allocation.

    Returns
    -------
    dict
        ``peak_bytes`` (highest traced total during the call), ``kept_bytes`` (the
        returned arrays' sizes) and ``temp_bytes = max(peak - kept, 0)``: what the call
        costs beyond the arrays it must produce.
    """
    from convblocks.functional.buffers import pool_disabled

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        with pool_disabled():
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            outputs = fn()
            _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    seen: set[int] = set()
    kept = 0
    for arr in outputs:
        if isinstance(arr, np.ndarray) and id(arr) not in seen:
            seen.add(id(arr))
            kept += arr.nbytes
    peak -= base
    return {"peak_bytes": int(peak), "kept_bytes": int(kept), "temp_bytes": int(max(peak - kept, 0))}


# --------------------------------------------------------------------------- arithmetic

def ratio(ours: float | None, theirs: float | None) -> float | None:
    """``ours / theirs`` (time ratio: below 1 means ours is faster); None if unknown."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def gflops(flop: float | None, seconds: float | None) -> float | None:
    """``flop / seconds / 1e9``; None if unknown."""
    if flop is None or seconds is None or seconds <= 0:
        return None
    return flop / seconds / 1e9


def share(value: float | None, peak: float | None) -> float | None:
    """``value / peak`` (e.g. GFLOP/s as a fraction of the GEMM peak); None if unknown."""
    if value is None or peak is None or peak <= 0:
        return None
    return value / peak


@dataclass(frozen=True)
class Target:
    """A goal from the project issue: ``metric <= limit``.

    Attributes
    ----------
    name : str
        Shown in the report, e.g. ``'fwd+bwd ratio'``.
    metric : str
        Key of the value in the case's ``metrics`` dict.
    limit : float
        The value must be <= this.
    unit : str
        Appended to the limit when printed (``''`` or ``' MiB'``).
    """

    name: str
    metric: str
    limit: float
    unit: str = ""


def evaluate_target(target: Target, value: float | None) -> dict[str, Any]:
    """``{'name', 'metric', 'limit', 'value', 'status'}``; status PASS, MISS or N/A."""
    if value is None:
        status = "N/A"
    else:
        status = "PASS" if value <= target.limit else "MISS"
    return {"name": target.name, "metric": target.metric, "limit": target.limit,
            "unit": target.unit, "value": value, "status": status}


# --------------------------------------------------------------------------- one case

@dataclass
class Workload:
    """The callables of one case, built on fixed random inputs.

    Attributes
    ----------
    ours_fwd, ours_fwdbwd : callable
        Our float32 forward, and forward then backward. ``ours_fwdbwd`` returns the
        arrays it produced (``y, dx, dw, db`` or ``y, dx``) for the memory measurement.
    ours64_fwdbwd : callable or None
        The same forward+backward in float64 (None when the case has no float64 target).
    torch_fwd, torch_fwdbwd : dict of str to callable
        PyTorch's float32 forward and forward+backward, one entry per memory layout
        (``'nchw'``, ``'channels_last'``); empty without torch.
    check : callable or None
        Returns the largest error of ours against torch over y and every gradient,
        relative to that array's largest magnitude.
    """

    ours_fwd: Callable[[], Any]
    ours_fwdbwd: Callable[[], Sequence[Any]]
    ours64_fwdbwd: Callable[[], Any] | None = None
    torch_fwd: dict[str, Callable[[], Any]] = field(default_factory=dict)
    torch_fwdbwd: dict[str, Callable[[], Any]] = field(default_factory=dict)
    check: Callable[[], float] | None = None


@dataclass(frozen=True)
class Settings:
    """How cases are run (see ``convblocks bench --help``)."""

    repeats: int = 7
    warmup: int = 1
    pause: float = 0.15
    min_sample_s: float = 0.02
    check_tolerance: float = 1e-3


def _fastest(samples: Mapping[str, Samples]) -> tuple[str | None, Samples | None]:
    if not samples:
        return None, None
    layout = min(samples, key=lambda k: samples[k].median)
    return layout, samples[layout]


def _first(value: Any) -> list[Any]:
    """A forward's output alone: ``(y, cache)`` -> ``[y]`` (the cache is temporary)."""
    return [value[0]] if isinstance(value, tuple) else [value]


def _run_check(workload: Any, tolerance: float) -> dict[str, Any]:
    """Ours vs PyTorch (float32), and our float64 run vs our float32 one.

    A failing comparison (a shape mismatch, NaN) marks the case wrong instead of
    stopping the run. The float64 run must return float64 arrays that agree with the
    float32 ones to float32 precision (1e-4), so its timing measures a float64 computation.
    """
    out: dict[str, Any] = {"max_rel_err": None, "tolerance": tolerance, "ok": False}
    try:
        err = float(workload.check())
        out["max_rel_err"] = err
        out["ok"] = bool(err <= tolerance)  # False for NaN
        if workload.ours64_fwdbwd is not None:
            from convblocks.bench.ops import max_rel_err
            got64, got32 = workload.ours64_fwdbwd(), workload.ours_fwdbwd()
            if not (isinstance(got64, (tuple, list)) and isinstance(got32, (tuple, list))):
                return out  # nothing to compare (a workload that returns no arrays)
            wrong = [a.dtype for a in got64 if isinstance(a, np.ndarray) and a.dtype != np.float64]
            if wrong:
                raise TypeError(f"the float64 run returned {wrong[0]} arrays")
            err64 = max(max_rel_err(a, b) for a, b in zip(got32, got64)
                        if isinstance(a, np.ndarray))
            out["f64_vs_f32_rel_err"] = err64
            out["ok"] = out["ok"] and bool(err64 <= 1e-4)
    except (ValueError, TypeError, FloatingPointError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["ok"] = False
    return out


def run_case(case: Any, workload: Workload, *, settings: Settings,
             peak_gflops: float | None) -> dict[str, Any]:
    """Time, measure and judge one case; returns its JSON-ready result.

    ``case`` provides ``id``, ``kind``, ``title``, ``params()``, ``flops_fwd()`` (None
    when FLOP/s are meaningless, as for pooling) and ``targets()`` (:class:`Target` list).
    Forward and forward+backward are timed in two separate interleaved groups; the
    float64 forward+backward joins the second group.
    """
    fwd_fns = {"ours": workload.ours_fwd}
    fwd_fns.update({f"torch.{k}": fn for k, fn in workload.torch_fwd.items()})
    fb_fns = {"ours": workload.ours_fwdbwd}
    fb_fns.update({f"torch.{k}": fn for k, fn in workload.torch_fwdbwd.items()})
    if workload.ours64_fwdbwd is not None:
        fb_fns["ours64"] = workload.ours64_fwdbwd
    opts = dict(repeats=settings.repeats, warmup=settings.warmup, pause=settings.pause,
                min_sample_s=settings.min_sample_s)
    fwd = time_interleaved(fwd_fns, **opts)
    fb = time_interleaved(fb_fns, **opts)

    torch_fwd = {k.split(".", 1)[1]: v for k, v in fwd.items() if k.startswith("torch.")}
    torch_fb = {k.split(".", 1)[1]: v for k, v in fb.items() if k.startswith("torch.")}
    fwd_layout, torch_fwd_best = _fastest(torch_fwd)
    fb_layout, torch_fb_best = _fastest(torch_fb)

    flop = case.flops_fwd()
    ours_fwd_s, ours_fb_s = fwd["ours"].median, fb["ours"].median
    ours64 = fb.get("ours64")
    # The peak may come in the forward, before dx, dw, db exist: measure the forward
    # alone too (beyond y; its cache counts as temporary) and report the larger excess.
    memory = measure_temp_memory(workload.ours_fwdbwd)
    memory_fwd = measure_temp_memory(lambda: _first(workload.ours_fwd()))
    memory["fwdbwd_temp_bytes"], memory["fwd_temp_bytes"] = (memory["temp_bytes"],
                                                             memory_fwd["temp_bytes"])
    memory["temp_bytes"] = max(memory["temp_bytes"], memory_fwd["temp_bytes"])
    metrics = {
        "ours_fwd_ms": ours_fwd_s * 1e3,
        "torch_fwd_ms": median_ms(torch_fwd_best),
        "fwd_ratio": ratio(ours_fwd_s, median_s(torch_fwd_best)),
        "ours_fwdbwd_ms": ours_fb_s * 1e3,
        "torch_fwdbwd_ms": median_ms(torch_fb_best),
        "fwdbwd_ratio": ratio(ours_fb_s, median_s(torch_fb_best)),
        "ours64_fwdbwd_ms": median_ms(ours64),
        "f64_over_f32": ratio(median_s(ours64), ours_fb_s),
        "gflops_fwd": gflops(flop, ours_fwd_s),
        "gflops_fwdbwd": gflops(None if flop is None else 3 * flop, ours_fb_s),
        "temp_mib": memory["temp_bytes"] / MiB,
    }
    metrics["peak_share_fwd"] = share(metrics["gflops_fwd"], peak_gflops)
    metrics["peak_share_fwdbwd"] = share(metrics["gflops_fwdbwd"], peak_gflops)

    check = None
    if workload.check is not None:
        check = _run_check(workload, settings.check_tolerance)
    return {
        "id": case.id,
        "kind": case.kind,
        "title": case.title,
        "params": case.params(),
        "flops_fwd": flop,
        "flops_fwdbwd": None if flop is None else 3 * flop,
        "timings": {
            "fwd": {k: v.to_json() for k, v in fwd.items()},
            "fwdbwd": {k: v.to_json() for k, v in fb.items()},
        },
        "torch_layout": {"fwd": fwd_layout, "fwdbwd": fb_layout},
        "metrics": metrics,
        "memory": memory,
        "check": check,
        "targets": [evaluate_target(t, metrics.get(t.metric)) for t in case.targets()],
    }


def summarize(cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of target statuses and correctness-check failures over all cases."""
    counts = {"PASS": 0, "MISS": 0, "N/A": 0}
    for case in cases:
        for t in case["targets"]:
            counts[t["status"]] += 1
    mismatches = [c["id"] for c in cases if c.get("check") and not c["check"]["ok"]]
    return {"pass": counts["PASS"], "miss": counts["MISS"], "not_available": counts["N/A"],
            "missed": [f"{c['id']}: {t['name']}" for c in cases for t in c["targets"]
                       if t["status"] == "MISS"],
            "check_failures": mismatches}


def run_suite(cases: Sequence[Any], *, settings: Settings, torch: Any = None,
              peak_gflops: float | None = None, float64: bool = True,
              progress: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Build and run every case in turn (inputs of one case are freed before the next).

    ``progress`` receives one line per finished case.
    """
    results = []
    for i, case in enumerate(cases, 1):
        load = case.workload(torch=torch, float64=float64)
        res = run_case(case, load, settings=settings, peak_gflops=peak_gflops)
        del load
        results.append(res)
        if progress is not None:
            m = res["metrics"]
            counter = f"[{i}/{len(cases)}]".ljust(len(f"[{len(cases)}/{len(cases)}]"))
            line = (f"{counter} {case.id:<7} {case.title:<34} ours f+b "
                    f"{format_ms(m['ours_fwdbwd_ms'])} ms, torch {format_ms(m['torch_fwdbwd_ms'])} ms, "
                    f"ratio {_num(m['fwdbwd_ratio'], '.2f')}")
            if res["check"] is not None and not res["check"]["ok"]:
                line += f"  WRONG: max rel err {res['check']['max_rel_err']:.2e} vs torch"
            progress(line)
    return results


# --------------------------------------------------------------------------- formatting

def format_ms(value: float | None) -> str:
    """Milliseconds with three significant digits (``'0.0523'``, ``'3.21'``, ``'123'``)."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def format_markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                          *, align: Sequence[str] | None = None) -> str:
    """A Markdown table, columns padded to equal width.

    ``align`` holds ``'l'`` or ``'r'`` per column (default: first left, the rest right).
    """
    ncol = len(headers)
    for i, row in enumerate(rows):
        if len(row) != ncol:
            raise ValueError(f"rows[{i}] has {len(row)} cells; expected {ncol} (one per header)")
    if align is None:
        align = ["l"] + ["r"] * (ncol - 1)
    widths = [max(len(str(h)), *(len(str(r[j])) for r in rows)) if rows else len(str(h))
              for j, h in enumerate(headers)]
    widths = [max(w, 3) for w in widths]

    def line(cells: Sequence[str]) -> str:
        out = [str(c).ljust(w) if a == "l" else str(c).rjust(w)
               for c, w, a in zip(cells, widths, align)]
        return "| " + " | ".join(out) + " |"

    rule = ["-" * (w - 1) + ":" if a == "r" else "-" * w for w, a in zip(widths, align)]
    return "\n".join([line(headers), "| " + " | ".join(rule) + " |", *(line(r) for r in rows)])


def _judged(value: float | None, fmt: str, target: Mapping[str, Any] | None) -> str:
    text = _num(value, fmt)
    if target is None or value is None:
        return text
    return f"{text} ≤{target['limit']:g} {target['status']}"


TABLE_HEADERS = ("case", "shape", "ours fwd ms", "torch fwd ms", "fwd ratio",
                 "ours f+b ms", "torch f+b ms", "f+b ratio", "GFLOP/s f+b", "% peak",
                 "f64/f32", "temp MiB", "torch layout")


def case_row(case: Mapping[str, Any]) -> list[str]:
    """One table row for a case result (see :data:`TABLE_HEADERS`)."""
    m = case["metrics"]
    targets = {t["metric"]: t for t in case["targets"]}
    layout = case["torch_layout"]
    if layout["fwd"] is None:
        layout_text = "—"
    elif layout["fwd"] == layout["fwdbwd"]:
        layout_text = layout["fwd"]
    else:
        layout_text = f"{layout['fwd']} / {layout['fwdbwd']}"
    share_text = _num(None if m["peak_share_fwdbwd"] is None else 100 * m["peak_share_fwdbwd"], ".0f")
    name = case["id"]
    if case.get("check") and not case["check"]["ok"]:
        name += " (WRONG)"
    return [name, case["title"], format_ms(m["ours_fwd_ms"]), format_ms(m["torch_fwd_ms"]),
            _judged(m["fwd_ratio"], ".2f", targets.get("fwd_ratio")),
            format_ms(m["ours_fwdbwd_ms"]), format_ms(m["torch_fwdbwd_ms"]),
            _judged(m["fwdbwd_ratio"], ".2f", targets.get("fwdbwd_ratio")),
            _num(m["gflops_fwdbwd"], ".1f"), share_text,
            _judged(m["f64_over_f32"], ".2f", targets.get("f64_over_f32")),
            _judged(m["temp_mib"], ".1f", targets.get("temp_mib")),
            layout_text]


def _engine_threads() -> int:
    from convblocks.functional.threads import get_num_threads
    return get_num_threads()


def format_environment(env: Mapping[str, Any], *, threads: int | None = None,
                       gemm: Mapping[str, Any] | None = None) -> str:
    """The lines printed before timing: versions, BLAS kernel, threads, env vars, peak."""
    lines = [f"convblocks {env.get('convblocks')} on {env.get('processor')} "
             f"({env.get('cpu_count')} logical cores), Python {env.get('python')}",
             f"NumPy {env.get('numpy')}, PyTorch {env.get('torch') or 'not used'}"]
    if not env.get("blas"):
        lines.append("BLAS: unknown (threadpoolctl not installed)")
    for b in env.get("blas", []):
        lines.append(f"BLAS: {b.get('internal_api')} {b.get('version')} ({b.get('prefix')}), "
                     f"kernel {b.get('architecture')}, num_threads {b.get('num_threads')}, "
                     f"threading {b.get('threading_layer')}")
    set_vars = [f"{k}={v}" for k, v in env.get("blas_env", {}).items() if v is not None]
    lines.append("BLAS environment: " + (", ".join(set_vars) + " SET (slows NumPy; numbers "
                 "are not representative)" if set_vars else
                 " and ".join(BLAS_ENV_VARS) + " unset"))
    removed = env.get("reexec_removed")
    if removed and removed != "none":
        lines.append(f"(re-executed once without {removed})")
    timeout = env.get("blas_thread_timeout")
    lines.append("OPENBLAS_THREAD_TIMEOUT=" + (f"{timeout} (idle BLAS threads sleep after "
                 f"2**{timeout} cycles)" if timeout else "unset (idle BLAS threads spin ~0.1 s)"))
    if threads is not None:
        lines.append(f"Threads: NumPy's BLAS {threads}, convblocks' own {env.get('engine_threads')}"
                     + (f", PyTorch {env.get('torch_threads')}" if env.get("torch") else ""))
    if gemm is not None:
        lines.append(f"GEMM peak: float32 np.matmul {gemm['n']}x{gemm['n']}, median "
                     f"{gemm['gflops']:.1f} GFLOP/s")
    return "\n".join(lines)


def format_report(result: Mapping[str, Any]) -> str:
    """The Markdown block for the README: table, verdicts, and the producing command."""
    cases = result.get("cases", [])
    parts = []
    if cases:
        table = format_markdown_table(TABLE_HEADERS, [case_row(c) for c in cases],
                                      align=["l", "l"] + ["r"] * (len(TABLE_HEADERS) - 3) + ["l"])
        parts.append(table)
        s = result.get("summary") or summarize(cases)
        verdict = f"Targets: {s['pass']} PASS, {s['miss']} MISS"
        if s["not_available"]:
            verdict += f", {s['not_available']} N/A (no PyTorch)"
        if s["missed"]:
            verdict += " (missed: " + "; ".join(s["missed"]) + ")"
        parts.append(verdict + ".")
        if s["check_failures"]:
            parts.append("WRONG RESULTS (ours differs from PyTorch): " + ", ".join(s["check_failures"]))
        env = result.get("environment", {})
        blas = ", ".join(f"{b.get('internal_api')} {b.get('architecture')}" for b in env.get("blas", []))
        gemm = result.get("gemm_peak") or {}
        parts.append(
            f"float32, median of {result.get('settings', {}).get('repeats')} interleaved samples; "
            f"threads {result.get('settings', {}).get('threads')}; BLAS {blas or 'unknown'}; "
            f"GEMM peak {_num(gemm.get('gflops'), '.0f')} GFLOP/s; {env.get('processor')}. "
            "ratio = ours / torch (lower is better).")
        set_vars = [f"{k}={v}" for k, v in env.get("blas_env", {}).items() if v is not None]
        if set_vars:
            parts.append(f"NOT REPRESENTATIVE: run with {', '.join(set_vars)} set (they slow "
                         f"NumPy's BLAS).")
    if result.get("train_report"):
        parts.append(result["train_report"])
    if result.get("command"):
        parts.append(f"Produced by: `{result['command']}`")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- JSON

def default_json_path(now: _dt.datetime | None = None, *, directory: str | os.PathLike = "bench-results") -> Path:
    """``bench-results/bench-YYYYmmdd-HHMMSS.json`` (UTC)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return Path(directory) / f"bench-{now.strftime('%Y%m%d-%H%M%S')}.json"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, _dt.datetime)):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, result: Mapping[str, Any]) -> Path:
    """Write ``result`` as indented strict JSON (atomically; NaN and infinities become
    null), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, result, default=_jsonable)
    return path


def echo(*parts: Any) -> None:
    """Print and flush (progress lines appear while a long run goes on)."""
    print(*parts, flush=True)
    sys.stdout.flush()

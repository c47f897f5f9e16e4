"""``convblocks bench``: time the engine against PyTorch and check the project's targets.

See docs/benchmarks.md for what each column means. The BLAS reads
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` when it loads, so when either is set the
command re-executes itself once without them (``--no-reexec`` keeps them and says so).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import sys
from typing import Any

from convblocks.cli.argtypes import non_negative_seconds, positive_int_at_most

HELP = "time convolution and pooling (and optionally training) against PyTorch"

_DEFAULT_REPEATS, _QUICK_REPEATS = 7, 3
_TRAIN_REPEATS = 5  # timed epochs per side for --train
_DEFAULT_GEMM_REPEATS, _QUICK_GEMM_REPEATS = 5, 3
#: Upper bounds of the integer options, far beyond any real benchmark: an absurd value
#: gets argparse's message naming the option, not a traceback from a C int overflow
#: (--threads), an allocation (--gemm-size, --batch-size) or a run that never ends.
MAX_REPEATS, MAX_THREADS, MAX_GEMM_SIZE, MAX_BATCHES, MAX_BATCH_SIZE = (
    1000, 1024, 16384, 100_000, 65536)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", metavar="LIST",
                        help="comma-separated case ids (a-e, b.max2, ...), groups (all, conv, "
                             "pool, none) or patterns ('d*'); default all, or none with --train")
    parser.add_argument("--repeats", type=positive_int_at_most(MAX_REPEATS), metavar="N",
                        help=f"timed samples per measurement, 1 to {MAX_REPEATS} (default "
                             f"{_DEFAULT_REPEATS}, {_QUICK_REPEATS} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats: a smoke run for CI, not for publishing")
    parser.add_argument("--json", metavar="PATH",
                        help="where to write the results (default bench-results/bench-<UTC time>.json)")
    parser.add_argument("--no-torch", action="store_true",
                        help="time ours only (no ratios; targets show —; not with --train)")
    parser.add_argument("--threads", type=positive_int_at_most(MAX_THREADS), metavar="N",
                        help=f"threads for NumPy's BLAS and for PyTorch, 1 to {MAX_THREADS} "
                             f"(default: NumPy's BLAS thread count, i.e. the cores)")
    parser.add_argument("--pause", type=non_negative_seconds, default=0.15, metavar="S",
                        help="seconds to sleep before each timed sample (default 0.15)")
    parser.add_argument("--gemm-size", type=positive_int_at_most(MAX_GEMM_SIZE), default=2048,
                        metavar="N", help=f"matrix size of the float32 GEMM peak measurement, "
                                          f"1 to {MAX_GEMM_SIZE} (default 2048)")
    parser.add_argument("--no-reexec", action="store_true",
                        help="do not re-run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE when set")
    train = parser.add_argument_group("training benchmark (convblocks.bench.train)")
    train.add_argument("--train", action="store_true",
                       help="also time CNN training, ours vs PyTorch: 5 epochs of --batches "
                            "mini-batches per side, alternating, after a warm-up (3 with "
                            "--quick); alone unless --cases is given")
    train.add_argument("--batches", type=positive_int_at_most(MAX_BATCHES), default=50,
                       metavar="N", help=f"mini-batches per timed epoch, 1 to {MAX_BATCHES} "
                                         f"(default 50)")
    train.add_argument("--batch-size", type=positive_int_at_most(MAX_BATCH_SIZE), metavar="N",
                       help=f"mini-batch size, 1 to {MAX_BATCH_SIZE} (default: the training "
                            f"module's)")


def command_argv(args: argparse.Namespace) -> list[str]:
    """The options of ``args`` as a command line (used for the re-exec and the report)."""
    argv: list[str] = []
    if args.cases is not None:
        argv += ["--cases", args.cases]
    if args.quick:
        argv.append("--quick")
    if args.repeats is not None:
        argv += ["--repeats", str(args.repeats)]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    if args.pause != 0.15:
        argv += ["--pause", repr(args.pause)]  # exact: the re-exec must not round it
    if args.gemm_size != 2048:
        argv += ["--gemm-size", str(args.gemm_size)]
    if args.no_torch:
        argv.append("--no-torch")
    if args.no_reexec:
        argv.append("--no-reexec")
    if args.train:
        argv += ["--train", "--batches", str(args.batches)]
        if args.batch_size is not None:
            argv += ["--batch-size", str(args.batch_size)]
    if args.json is not None:
        argv += ["--json", args.json]
    return argv


def _reexec_without_blas_overrides(args: argparse.Namespace) -> None:
    """Replace this process by the same command without the BLAS variables (never returns)."""
    from convblocks.bench.harness import blas_env_overrides, cleaned_environ

    found = ", ".join(f"{k}={v}" for k, v in blas_env_overrides().items())
    print(f"convblocks bench: {found} set; OpenBLAS reads them when it loads, so re-running "
          "once without them (--no-reexec to keep them)", file=sys.stderr, flush=True)
    argv = [sys.executable, "-m", "convblocks", "bench", *command_argv(args)]
    os.execve(sys.executable, argv, cleaned_environ())


def _import_torch(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(torch or None, error message or None)."""
    if args.no_torch:
        return None, None
    try:
        import torch
    except ImportError as exc:
        return None, (f"convblocks bench: PyTorch is needed as the reference ({exc}). Install "
                      "the pinned version with `pip install 'convblocks[bench]'` "
                      "(torch==2.13.0), or pass --no-torch to time ours only.")
    return torch, None


def _default_threads() -> int:
    from convblocks.bench.harness import blas_info

    counts = [b["num_threads"] for b in blas_info() if b.get("num_threads")]
    return int(counts[0]) if counts else (os.cpu_count() or 1)


def _load_train(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(the training benchmark module or None, error message or None)."""
    if not args.train:
        return None, None
    try:
        from convblocks.bench import train
    except ModuleNotFoundError as exc:
        if exc.name == "convblocks.bench.train":
            return None, ("convblocks bench --train: the training benchmark "
                          "(convblocks/bench/train.py, run_train_bench) is not available "
                          "in this installation")
        raise
    return train, None


def run(args: argparse.Namespace) -> int:
    from convblocks.bench import harness, ops

    if (not args.no_reexec and harness.blas_env_overrides()
            and harness.REEXEC_MARKER not in os.environ):
        _reexec_without_blas_overrides(args)

    if args.train and args.no_torch:
        print("convblocks bench: --train compares our training with PyTorch's; it cannot "
              "run with --no-torch", file=sys.stderr)
        return 2
    if args.cases is not None and not args.cases.replace(",", "").strip():
        print(f"convblocks bench: --cases {args.cases!r} names no case; give ids such as "
              f"'a,d' or a group (all, conv, pool, none)", file=sys.stderr)
        return 2
    spec = args.cases if args.cases is not None else ("none" if args.train else None)
    try:
        cases = ops.select_cases(spec)
    except ValueError as exc:
        print(f"convblocks bench: {exc}", file=sys.stderr)
        return 2
    torch, error = _import_torch(args)
    train, train_error = _load_train(args)
    error = error or train_error
    if error:
        print(error, file=sys.stderr)
        return 2

    threads = args.threads or _default_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
        if args.threads is not None:
            print("convblocks bench: --threads needs threadpoolctl to set NumPy's BLAS "
                  "threads (pip install threadpoolctl)", file=sys.stderr)
            return 2
    limiter = threadpool_limits(limits=threads, user_api="blas") if threadpool_limits else None
    torch_threads = torch.get_num_threads() if torch is not None else None
    from convblocks.functional.threads import set_num_threads
    engine_threads = set_num_threads(threads)  # convblocks' own threads: the same count
    try:
        if torch is not None:
            torch.set_num_threads(threads)
        return _run(args, cases, torch, train, threads)
    finally:                      # leave the process as it was (run() is called in tests)
        set_num_threads(engine_threads)
        if limiter is not None:
            limiter.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(torch_threads)


def _run(args: argparse.Namespace, cases: list, torch: Any, train: Any, threads: int) -> int:
    from convblocks.bench import harness

    quick = args.quick
    repeats = args.repeats or (_QUICK_REPEATS if quick else _DEFAULT_REPEATS)
    settings = harness.Settings(repeats=repeats, pause=args.pause)
    started = _dt.datetime.now(_dt.timezone.utc)
    env = harness.environment_info(torch)
    kept = harness.blas_env_overrides()  # set only with --no-reexec (or an inherited marker)
    prefix = (" ".join(f"{k}={shlex.quote(str(v))}" for k, v in kept.items()) + " " if kept
              else "env " + " ".join(f"-u {v}" for v in harness.BLAS_ENV_VARS) + " ")
    command = prefix + shlex.join(["convblocks", "bench", *command_argv(args)])
    harness.echo(harness.format_environment(env, threads=threads))

    gemm = None
    if cases:
        gemm = harness.measure_gemm_peak(
            n=args.gemm_size, pause=args.pause,
            repeats=_QUICK_GEMM_REPEATS if quick else _DEFAULT_GEMM_REPEATS)
        harness.echo(f"GEMM peak: float32 np.matmul {gemm['n']}x{gemm['n']}, median "
                     f"{gemm['gflops']:.1f} GFLOP/s")
        harness.echo(f"Timing {len(cases)} cases, median of {repeats} interleaved samples, "
                     f"{args.pause:g} s pause before each ...")
    results = harness.run_suite(cases, settings=settings, torch=torch,
                                peak_gflops=gemm["gflops"] if gemm else None,
                                progress=harness.echo)

    result: dict[str, Any] = {
        "schema": harness.SCHEMA,
        "created": started.isoformat(timespec="seconds"),
        "command": command,
        "environment": env,
        "settings": {"repeats": repeats, "warmup": settings.warmup, "pause_s": settings.pause,
                     "min_sample_s": settings.min_sample_s, "threads": threads, "quick": quick,
                     "torch": torch is not None, "check_tolerance": settings.check_tolerance},
        "gemm_peak": gemm,
        "cases": results,
        "summary": harness.summarize(results),
    }
    if train is not None:
        harness.echo(f"Training benchmark: {args.batches} batches per epoch ...")
        # epochs per side: 5 (the median of 3 moved with single slow epochs), 3 with --quick
        result["train"] = train.run_train_bench(
            batches=args.batches, batch_size=args.batch_size, seed=0,
            repeats=args.repeats or (_QUICK_REPEATS if quick else _TRAIN_REPEATS),
            pause=args.pause)
        result["train_report"] = train.format_train_report(result["train"])

    harness.echo("")
    harness.echo(harness.format_report(result))
    path = harness.write_json(args.json or harness.default_json_path(started), result)
    harness.echo(f"\nJSON: {path}")
    return 1 if result["summary"]["check_failures"] else 0

"""Benchmarks: our engine against PyTorch, same process, same threads.

``convblocks bench`` (see :mod:`convblocks.cli.bench` and docs/benchmarks.md) runs the
cases of :mod:`convblocks.bench.ops` through the machinery of
:mod:`convblocks.bench.harness`; ``convblocks bench --train`` adds the training
benchmark of :mod:`convblocks.bench.train`. PyTorch is needed only to compare against
(``--no-torch`` times ours alone).
"""

from .harness import Settings, Target, Workload, format_report, run_case, run_suite
from .ops import ALL_CASES, CONV_CASES, POOL_CASES, select_cases

__all__ = ["ALL_CASES", "CONV_CASES", "POOL_CASES", "select_cases", "Settings", "Target",
           "Workload", "run_case", "run_suite", "format_report"]

"""The engine's own threads: batch chunks and elementwise passes run in parallel.

NumPy releases the GIL inside every ufunc call on numeric arrays, so chunks of an
array processed on Python threads run in parallel, as PyTorch's intra-op threads do.
Pooling (:mod:`.pool`) and the elementwise layers (BatchNorm, ReLU in
:mod:`convblocks.nn`) use this pool; the GEMMs use BLAS's own threads.

Three lines of the trick: the calling thread works too (``t`` threads cost ``t - 1``
hand-offs); every thread takes the next chunk not yet taken, so a late thread does
fewer chunks instead of holding up the call; and the workers are kept off the
caller's CPU (below).
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .checks import as_int

__all__ = ["set_num_threads", "get_num_threads", "threads_for", "run_chunks", "parallel_slices",
           "map_slices"]

_num_threads = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else (os.cpu_count() or 1))
_MIN_ELEMENTS_PER_THREAD = 1 << 17  # below this, handing work to a thread costs more than it saves
# Elementwise chunks: a few passes over a chunk this size stay in a core's L2 cache,
# and it is large enough that the per-call overhead (a few microseconds) is small.
_ELEMENTWISE_BLOCK = 512 << 10
_executor: ThreadPoolExecutor | None = None
_executor_workers = 0
_executor_lock = threading.Lock()

# After the machine has been idle for a while, Linux tends to wake a worker on the CPU
# of the thread that woke it: both share one CPU and the "parallel" chunks run one
# after the other (measured here: no speed-up for tens of milliseconds after a 0.15 s
# pause). So the workers are kept off the calling thread's current CPU; the check is a
# vDSO call (~0.2 us) and the affinity changes only when the caller has moved.
try:
    _sched_getcpu = ctypes.CDLL(None).sched_getcpu if hasattr(os, "sched_setaffinity") else None
except (OSError, AttributeError, TypeError):  # not Linux/glibc: leave placement to the OS
    _sched_getcpu = None
_worker_tids: list[int] = []  # native ids of the current pool's workers
_placed: tuple[int, int] | None = None  # (caller's CPU, workers) at the last placement


def _register_worker() -> None:
    _worker_tids.append(threading.get_native_id())


def _keep_workers_off_this_cpu() -> None:
    global _placed
    if _sched_getcpu is None:
        return
    cpu = _sched_getcpu()
    if (cpu, len(_worker_tids)) == _placed:
        return
    _placed = (cpu, len(_worker_tids))
    others = os.sched_getaffinity(0) - {cpu}
    if not others:  # the caller may run on one CPU only: nothing to separate
        return
    for tid in list(_worker_tids):
        try:
            os.sched_setaffinity(tid, others)
        except OSError:  # a worker that has just exited
            pass


def _forget_executor() -> None:
    """A forked child has none of its parent's threads: start a fresh pool on demand."""
    global _executor, _executor_workers, _executor_lock, _placed
    _executor, _executor_workers, _executor_lock = None, 0, threading.Lock()
    _worker_tids.clear()
    _placed = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def set_num_threads(n: int) -> int:
    """Set how many threads the engine's own kernels may use (>= 1); returns the previous value.

    Default ``min(4, usable cores)``. BLAS has its own setting (e.g. threadpoolctl).
    """
    global _num_threads
    n = as_int(n, "n", minimum=1)
    previous, _num_threads = _num_threads, n
    return previous


def get_num_threads() -> int:
    """How many threads the engine's own kernels may use."""
    return _num_threads


def threads_for(n_elements: int) -> int:
    """Threads worth using on ``n_elements`` of work (1 for small arrays)."""
    return max(1, min(_num_threads, n_elements // _MIN_ELEMENTS_PER_THREAD))


def _pool(threads: int) -> ThreadPoolExecutor:
    global _executor, _executor_workers
    with _executor_lock:
        if _executor is None or _executor_workers < threads - 1:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _worker_tids.clear()
            _executor = ThreadPoolExecutor(_num_threads - 1, thread_name_prefix="convblocks",
                                           initializer=_register_worker)
            _executor_workers = _num_threads - 1
        _keep_workers_off_this_cpu()
        return _executor


def run_chunks(fn: Callable[[slice], Any], chunks: list[slice]) -> list[Any]:
    """``fn(chunk)`` for every chunk, on up to ``get_num_threads()`` threads.

    Returns the results in the order of ``chunks``. A worker's exception is re-raised
    here after every thread has stopped.
    """
    threads = min(_num_threads, len(chunks))
    if threads <= 1:  # one chunk, or none (an empty batch)
        return [fn(chunk) for chunk in chunks]
    executor = _pool(threads)
    results: list[Any] = [None] * len(chunks)
    pending = iter(enumerate(chunks))  # shared: next() on an iterator is atomic under the GIL

    def drain() -> None:
        for i, chunk in pending:
            results[i] = fn(chunk)

    futures = [executor.submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        for future in futures:
            future.result()
    return results


def parallel_slices(n: int, item_bytes: int, *, block_bytes: int = _ELEMENTWISE_BLOCK) -> list[slice]:
    """Contiguous slices of ``range(n)`` for elementwise passes.

    About ``block_bytes`` each (``item_bytes`` per index, e.g. a row of a 2-D array), a
    multiple of the threads worth using on the whole, and at least one (also for ``n == 0``).
    """
    threads = threads_for(n * max(item_bytes, 1) // 4)  # work in float32-sized elements
    count = max(1, -(-n * item_bytes // block_bytes)) if n else 1
    count = min(max(n, 1), -(-count // threads) * threads)
    step = max(1, -(-n // count))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)] or [slice(0, 0)]


def map_slices(fn: Callable[[slice], Any], n: int, item_bytes: int) -> list[Any]:
    """``[fn(s) for s in parallel_slices(n, item_bytes)]``, the calls spread over the threads."""
    return run_chunks(fn, parallel_slices(n, item_bytes))

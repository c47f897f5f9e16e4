"""Reusable arrays: ``np.empty`` that recycles the memory of results nobody holds.

A training step allocates the same multi-megabyte arrays again and again: every
layer's output and input gradient, every im2col workspace. Fresh memory from the
operating system costs a page fault per 4 KiB page on first touch (measured on this
project's 2-core VM: 1-10 us each, i.e. more than the arithmetic of a max pooling), and
``malloc`` hands large blocks back to the system as soon as they are freed. So the
engine keeps the arrays it allocates (big ones only) in a small pool and hands one out
again once NOTHING else refers to it.

The trick, in three lines: every array handed out is a view whose ``base`` is a pooled
1-D byte buffer, and NumPy makes every further view (reshape, slice, transpose,
memoryview) refer to that same buffer; so the buffer's reference count is exactly
"the pool's own reference" once every view is gone, and only then is it reused.
Reuse can therefore never overwrite an array a user (or a cache) still holds.

The pool holds at most :func:`get_buffer_pool_limit` bytes (default 256 MiB; 0
disables it) and forgets its oldest buffers beyond that; :func:`clear_buffer_pool`
releases everything it holds that is no longer used.
"""

from __future__ import annotations

import math
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from .checks import as_int

__all__ = ["empty", "zeros", "empty_like", "copy", "set_buffer_pool_limit",
           "get_buffer_pool_limit", "clear_buffer_pool", "buffer_pool_bytes", "pool_disabled"]

#: Smaller arrays come from NumPy directly: malloc keeps and reuses small blocks itself.
MIN_POOLED_BYTES = 1 << 16
#: Buffers kept at most, so that a lookup stays a short scan.
_MAX_BUFFERS = 64
_DEFAULT_LIMIT = 256 * 1024 * 1024

_limit = _DEFAULT_LIMIT
_pool: list[np.ndarray] = []  # 1-D uint8 buffers, least recently handed out first
_lock = threading.Lock()


def _free_count() -> int | None:
    """``sys.getrefcount(_pool[i])`` of a buffer that only the pool refers to.

    Measured, not assumed: the same expression on a probe list. None (pool disabled)
    where reference counts are not reliable (no ``sys.getrefcount``, or a view that
    does not raise its buffer's count).
    """
    getrefcount = getattr(sys, "getrefcount", None)
    if getrefcount is None:
        return None
    probe = [np.empty(8, dtype=np.uint8)]
    free = getrefcount(probe[0])
    view = probe[0].view(np.float32).reshape(2)
    held = getrefcount(probe[0])
    del view
    if held != free + 1 or getrefcount(probe[0]) != free:
        return None
    return free


_FREE = _free_count()


def set_buffer_pool_limit(nbytes: int) -> int:
    """Set the bytes the pool may keep (0 disables reuse); returns the previous limit."""
    global _limit
    nbytes = as_int(nbytes, "nbytes", minimum=0)
    with _lock:
        previous, _limit = _limit, nbytes
        _shrink(0)
    return previous


def get_buffer_pool_limit() -> int:
    """The bytes the pool may keep."""
    return _limit


def buffer_pool_bytes() -> int:
    """Bytes of the buffers the pool holds now (in use or free)."""
    with _lock:
        return sum(b.nbytes for b in _pool)


def clear_buffer_pool() -> None:
    """Forget every buffer (arrays still in use live on, as ordinary arrays)."""
    with _lock:
        _pool.clear()


@contextmanager
def pool_disabled() -> Iterator[None]:
    """Within the block every array is fresh (as ``np.empty``), e.g. to measure memory.

    Memory measurements with ``tracemalloc`` see only new allocations: a reused buffer
    would hide a temporary. The pool is emptied on entry; its limit is restored on exit.
    """
    previous = set_buffer_pool_limit(0)
    try:
        yield
    finally:
        set_buffer_pool_limit(previous)


def _shrink(incoming: int) -> None:
    """Drop the oldest buffers until ``incoming`` more bytes fit (caller holds the lock).

    Dropping is always safe: a buffer still in use just stops being pooled.
    """
    total = sum(b.nbytes for b in _pool)
    while _pool and (total + incoming > _limit or len(_pool) >= _MAX_BUFFERS):
        total -= _pool.pop(0).nbytes


def empty(shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """``np.empty(shape, dtype)`` (C order), on reused memory when the pool has some.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : data-type

    Returns
    -------
    numpy.ndarray
        Uninitialized, C-contiguous, writeable. Its memory is never handed out again
        while this array or any view of it is alive.
    """
    dtype = np.dtype(dtype)
    if type(shape) is not tuple:
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if _FREE is None or nbytes < MIN_POOLED_BYTES or nbytes > _limit:
        return np.empty(shape, dtype=dtype)
    getrefcount, free = sys.getrefcount, _FREE
    with _lock:
        for i in range(len(_pool) - 1, -1, -1):  # most recently used first
            buffer = _pool[i]
            if buffer.nbytes == nbytes and getrefcount(buffer) == free + 1:  # the pool and `buffer` only
                del _pool[i]
                _pool.append(buffer)
                break
        else:
            _shrink(nbytes)
            buffer = np.empty(nbytes, dtype=np.uint8)
            _pool.append(buffer)
    return buffer.view(dtype).reshape(shape)


def zeros(shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """``np.zeros(shape, dtype)`` on reused memory (see :func:`empty`)."""
    a = empty(shape, dtype)
    a.fill(0)
    return a


def empty_like(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """``np.empty`` shaped like ``a`` (C order), dtype ``a.dtype`` unless given."""
    return empty(a.shape, a.dtype if dtype is None else dtype)


def copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` on reused memory."""
    out = empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out

"""The workspace limit: the largest temporary array a kernel may allocate.

Kernels that would need a larger temporary (an im2col matrix, a window copy) process
the batch in chunks instead. The default is 256 MiB.
"""

from __future__ import annotations

from .checks import as_int

__all__ = ["set_workspace_limit", "get_workspace_limit", "batch_chunk"]

_DEFAULT = 256 * 1024 * 1024
_limit = _DEFAULT


def set_workspace_limit(nbytes: int) -> int:
    """Set the workspace limit in bytes (>= 1 MiB); returns the previous limit."""
    global _limit
    nbytes = as_int(nbytes, "nbytes", minimum=1 << 20)
    previous, _limit = _limit, nbytes
    return previous


def get_workspace_limit() -> int:
    """The current workspace limit in bytes."""
    return _limit


def batch_chunk(n: int, bytes_per_example: int) -> int:
    """How many examples fit in one chunk under the limit (at least 1, at most ``n``)."""
    if bytes_per_example <= 0:
        return max(n, 1)
    return max(1, min(n, _limit // bytes_per_example))

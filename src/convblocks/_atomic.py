"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Everything convblocks writes for a user (models, checkpoints, downloads, metrics,
benchmark results, figures) goes through :func:`atomic_write`: the bytes go to a
temporary sibling of the destination, are flushed and fsynced, and the temporary file
is renamed over the destination (``os.replace``, atomic on one file system). On any
failure, an interrupt included, the temporary file is removed and the destination is
untouched. :func:`write_json` writes strict JSON that way.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from contextlib import contextmanager
from typing import Any, BinaryIO, Callable, Iterator, Mapping

import numpy as np

__all__ = ["atomic_write", "write_json", "finite"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Open a binary file whose content replaces ``path`` when the block ends cleanly.

    Parameters
    ----------
    path : str or os.PathLike
        The destination. Through a symbolic link the link's target is replaced (in the
        target's folder) and the link stays. The folder must exist.
    suffix : str
        Of the temporary file's name (``.<name>.<random><suffix>`` beside the target).

    The new file keeps the permission bits of the file it replaces (a new one gets
    ``0o666`` less the umask, as ``open`` would), and the rename is made durable by
    fsyncing the folder where the platform allows it.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=suffix,
                                   dir=directory)
    except OSError as exc:  # name the destination, not the random temporary name
        raise type(exc)(exc.errno, f"cannot write {os.fspath(path)!r}: no temporary file in "
                        f"its folder ({exc.strerror})", directory) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; harmless to skip elsewhere)
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (strict JSON has neither),
    NumPy scalars and arrays as Python numbers and lists."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any, *,
               default: Callable[[Any], Any] | None = None) -> None:
    """Write ``obj`` as indented strict JSON (NaN and infinities become null), atomically.

    ``default`` converts objects ``json`` cannot (as ``json.dumps``'s ``default``); what
    it returns is made strict the same way.
    """
    strict = None if default is None else (lambda o: finite(default(o)))
    text = json.dumps(finite(obj), indent=2, allow_nan=False, default=strict) + "\n"
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))

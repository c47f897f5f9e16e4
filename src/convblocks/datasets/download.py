"""Atomic, checksum-verified downloads.

The file is streamed into a temporary file in the destination's directory while its
MD5 is computed; only when the checksum matches is it flushed, fsynced and renamed
over the destination (``os.replace`` is atomic on one file system). On any failure
(network error, checksum mismatch, Ctrl-C) the temporary file is removed, so the
destination is either absent, the previous file, or the complete verified file.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import numbers
import os
import urllib.error
import urllib.request
from pathlib import Path

from .._atomic import atomic_write

__all__ = ["download", "md5_of_file", "DownloadError"]

_CHUNK = 1 << 20


class DownloadError(OSError):
    """A download failed: the server could not be reached or answered with an error."""


def check_timeout(timeout) -> float:
    """``timeout`` as a float; anything but a finite number of seconds > 0 raises."""
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds; got {timeout!r} "
                        f"({type(timeout).__name__})")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds > 0; got {timeout!r}")
    return float(timeout)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def check_md5(md5, name: str = "md5", *, none_ok: bool = True) -> str | None:
    """``md5`` unchanged if it is an MD5 digest written as 32 hex digits (either case),
    or ``None`` where ``none_ok``.

    Parameters
    ----------
    md5 : object
        The value to check.
    name : str, optional
        The argument's name for the messages, e.g. ``"md5['train-images-idx3-ubyte.gz']"``.
    none_ok : bool, optional
        Whether ``None`` (no checksum) is allowed.

    Returns
    -------
    str or None
        ``md5``.

    Raises
    ------
    TypeError
        ``md5`` is not a str (nor ``None`` where allowed), e.g. bytes or an int.
    ValueError
        A str that is not 32 hex digits.
    """
    if md5 is None and none_ok:
        return None
    if not isinstance(md5, str):
        what = "a 32-hex-digit MD5 string" + (" or None" if none_ok else "")
        raise TypeError(f"{name} must be {what}; got {md5!r} ({type(md5).__name__})")
    if len(md5) != 32 or not _HEX_DIGITS.issuperset(md5):
        raise ValueError(f"{name} must be an MD5 digest of 32 hex digits (0-9, a-f); got "
                         f"{md5!r} ({len(md5)} characters)")
    return md5


def md5_of_file(path: str | os.PathLike) -> str:
    """Hex MD5 digest of a file's content."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, *, md5: str | None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its MD5.

    Parameters
    ----------
    url : str
        Where to fetch from (``http://``, ``https://`` or ``file://``).
    dest : str or os.PathLike
        The destination file; its directory is created if needed.
    md5 : str or None
        Expected MD5 of the downloaded bytes, 32 hex digits (either case), checked
        before anything is fetched; ``None`` skips the check (only for files that have
        no published checksum).
    timeout : float, optional
        Seconds to wait for the server on connect and on each read.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        The server could not be reached, answered with an HTTP error or not in HTTP,
        or the transfer broke off (fewer bytes than its Content-Length).
    ValueError
        The checksum does not match (the downloaded bytes are discarded), or ``md5`` is
        a str but not 32 hex digits, or ``timeout`` is not > 0.
    TypeError
        ``md5`` is neither a str nor ``None``, or ``timeout`` not a number.
    """
    md5 = check_md5(md5, "md5")
    timeout = check_timeout(timeout)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    with atomic_write(dest, suffix=".part") as out:  # any error below discards the part
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                received = 0
                for block in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(block)
                    out.write(block)
                    received += len(block)
        except http.client.HTTPException as exc:  # IncompleteRead, BadStatusLine, ...
            raise DownloadError(f"could not download {url}: {exc!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadError(f"could not download {url}: {reason}") from None
        # http.client returns b"" (no error) when the server closes the connection
        # before Content-Length bytes came: a truncated file must not pass.
        if length is not None and length.strip().isdigit() and received != int(length):
            raise DownloadError(f"could not download {url}: the connection closed after "
                                f"{received} of {int(length)} bytes")
        got = digest.hexdigest()
        if md5 is not None and got != md5.lower():
            raise ValueError(f"checksum mismatch for {url}: MD5 {got}, expected {md5}; "
                             f"the download was discarded (a corrupt transfer or a "
                             f"changed file on the server)")
    return dest

"""The IDX file format of MNIST and Fashion-MNIST, read strictly.

An IDX file is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM`` big-endian
uint32 dimensions, then the payload: ``prod(dims)`` big-endian items of ``TYPE``.
Files may be gzip-compressed; compression is detected from the gzip magic bytes
(``1f 8b``), never from the file name. Every deviation (bad magic, unknown type code,
a short or over-long payload, a truncated or corrupt gzip stream) raises a
``ValueError`` that names the file, so a damaged download is never half-used.

gzip data is decompressed incrementally into an array of exactly the size the header
declares, never beyond it: a stream longer than its header says (a decompression bomb)
is refused after at most 1 MiB more, and a header declaring more than ``max_bytes``
(default :data:`MAX_DECOMPRESSED_BYTES`, 2 GiB) is refused before anything is allocated.
"""

from __future__ import annotations

import gzip
import io
import math
import numbers
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "parse_idx", "IDX_TYPES", "write_idx", "MAX_DECOMPRESSED_BYTES"]

#: IDX type code -> big-endian NumPy dtype of one item.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"

#: Default ``max_bytes`` of :func:`parse_idx` / :func:`read_idx`: the most a gzip IDX
#: file may decompress to (header included), 2 GiB. The largest IDX data sets in use
#: are far smaller (Fashion-MNIST's training images: 47 MB; EMNIST ByClass: 0.55 GB),
#: and it stays well below the memory of a machine that trains on them; a header that
#: declares more is refused before anything is allocated.
MAX_DECOMPRESSED_BYTES = 1 << 31

_TRAILING_COUNT = 1 << 20  # trailing bytes counted (then discarded) for the message


class _Gunzip:
    """Bounded reads of in-memory gzip data, one or more members, as :func:`gzip.decompress`.

    :class:`gzip.GzipFile` decompresses only as much as each read asks for, so the
    caller decides how much is ever held; a damaged stream raises ``ValueError``.
    """

    def __init__(self, raw: bytes, where: str):
        self._file = gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb")
        self._where = where

    def _call(self, method, arg):
        try:
            return method(arg)
        except (EOFError, OSError, zlib.error) as exc:  # truncated, bad CRC, bad header
            raise ValueError(f"{self._where}: corrupt or truncated gzip data ({exc}); delete "
                             f"the file and fetch it again") from None

    def read_upto(self, n: int) -> bytes:
        """``n`` bytes, fewer only where the data ends."""
        return self._call(self._file.read, n)

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as the data goes; returns the bytes written."""
        got = 0
        while got < len(buffer):
            n = self._call(self._file.readinto, buffer[got:])
            if not n:
                break
            got += n
        return got


def _parse_header(head4: bytes, source: str, size: int):
    """Check the 4-byte magic number; return ``(dtype, ndim)``. ``size`` is the data's
    whole length, for the message when it is shorter than 4 bytes."""
    if len(head4) < 4:
        raise ValueError(f"{source}: not an IDX file: {size} bytes, shorter than the "
                         f"4-byte magic number")
    zero, type_code, ndim = struct.unpack(">HBB", head4)
    if zero != 0:
        raise ValueError(f"{source}: not an IDX file: magic number starts with "
                         f"0x{zero:04x}, expected 0x0000")
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise ValueError(f"{source}: unknown IDX type code 0x{type_code:02x}; expected one "
                         f"of {known}")
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions; expected at least 1")
    return IDX_TYPES[type_code], ndim


def _check_max_bytes(max_bytes) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be an int number of bytes; got {max_bytes!r} "
                        f"({type(max_bytes).__name__})")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be a number of bytes >= 1; got {max_bytes!r}")
    return int(max_bytes)


def _parse_plain(raw: bytes, source: str) -> np.ndarray:
    dtype, ndim = _parse_header(raw[:4], source, len(raw))
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{source}: truncated IDX header: {len(raw)} bytes, the "
                         f"{ndim}-dimension header needs {header}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims) * dtype.itemsize  # exact: np.prod would wrap around
    got = len(raw) - header
    if got < expected:
        raise ValueError(f"{source}: truncated IDX payload: dims {dims} need {expected} "
                         f"bytes, the file holds {got}")
    if got > expected:
        raise ValueError(f"{source}: {got - expected} trailing bytes after the IDX payload "
                         f"(dims {dims} need {expected} bytes, the file holds {got})")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def _parse_gzip(raw: bytes, source: str, max_bytes: int) -> np.ndarray:
    """Decompress into an array of exactly the header's size: never more than that
    plus :data:`_TRAILING_COUNT` bytes, is ever held."""
    stream = _Gunzip(raw, source)
    head4 = stream.read_upto(4)
    dtype, ndim = _parse_header(head4, source, len(head4))
    dims_raw = stream.read_upto(4 * ndim)
    header = 4 + 4 * ndim
    if len(dims_raw) < 4 * ndim:
        raise ValueError(f"{source}: truncated IDX header: {4 + len(dims_raw)} bytes "
                         f"decompressed, the {ndim}-dimension header needs {header}")
    dims = struct.unpack(f">{ndim}I", dims_raw)
    expected = math.prod(dims) * dtype.itemsize  # exact: np.prod would wrap around
    if header + expected > max_bytes:
        raise ValueError(f"{source}: the IDX header declares dims {dims} of {dtype.name}, "
                         f"{header + expected} bytes decompressed, more than the limit of "
                         f"max_bytes={max_bytes}; refused before decompressing (a corrupt "
                         f"header or a decompression bomb; for a genuine file that large "
                         f"pass a larger max_bytes)")
    out = np.empty(dims, dtype=dtype.newbyteorder("="))
    got = stream.readinto(memoryview(out.reshape(-1).view(np.uint8)))  # the array's own memory
    if got < expected:
        raise ValueError(f"{source}: truncated IDX payload: dims {dims} need {expected} "
                         f"bytes, the file holds {got} (decompressed)")
    # The stream must end here (reading to its end also verifies its CRC): count what
    # follows, up to a bound, without keeping it.
    extra = len(stream.read_upto(_TRAILING_COUNT + 1))
    if extra > _TRAILING_COUNT:
        total = header + expected
        raise ValueError(f"{source}: the decompressed data is longer than its IDX header "
                         f"says: dims {dims} need {total} bytes with the header, the gzip "
                         f"stream holds more than {total + _TRAILING_COUNT} (stopped "
                         f"decompressing there: a corrupt file or a decompression bomb)")
    if extra:
        raise ValueError(f"{source}: {extra} trailing bytes after the IDX payload (dims "
                         f"{dims} need {expected} bytes, the file holds {expected + extra} "
                         f"decompressed)")
    if dtype.itemsize > 1 and not dtype.isnative:
        out.byteswap(inplace=True)  # the bytes were big-endian
    return out


def parse_idx(raw: bytes, *, source: str = "<bytes>",
              max_bytes: int = MAX_DECOMPRESSED_BYTES) -> np.ndarray:
    """Parse the bytes of an IDX file (gzip-compressed or plain).

    Parameters
    ----------
    raw : bytes
        The whole file's content.
    source : str, optional
        A name for the data in error messages (the file name).
    max_bytes : int, optional
        The most gzip-compressed data may decompress to, IDX header included
        (default :data:`MAX_DECOMPRESSED_BYTES`, 2 GiB). gzip data is decompressed
        incrementally into an array of the size the header declares, never further:
        a header that declares more than ``max_bytes``, or a stream longer than its
        header says (a decompression bomb), is refused without holding more than the
        declared size plus 1 MiB. Plain data is not limited (it is all in ``raw``).

    Returns
    -------
    numpy.ndarray
        Shape ``dims`` as the header declares, in native byte order (uint8 for the
        MNIST files); a fresh writable array that owns its memory.

    Raises
    ------
    ValueError
        Bad magic number, unknown type code, a payload whose length differs from
        ``prod(dims) * itemsize`` (too short: truncated; too long: trailing bytes),
        corrupt or truncated gzip data, or a gzip file declaring more than
        ``max_bytes``.
    TypeError
        ``raw`` is not bytes-like, or ``max_bytes`` not an int.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"raw must be the bytes of an IDX file; got {type(raw).__name__}")
    max_bytes = _check_max_bytes(max_bytes)
    if not isinstance(raw, bytes):
        raw = bytes(raw)
    if raw[:2] == _GZIP_MAGIC:
        return _parse_gzip(raw, source, max_bytes)
    return _parse_plain(raw, source)


def read_idx(path: str | os.PathLike, *, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> np.ndarray:
    """Read an IDX file, gzip-compressed or plain; see :func:`parse_idx`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    max_bytes : int, optional
        The most a gzip-compressed file may decompress to (default
        :data:`MAX_DECOMPRESSED_BYTES`, 2 GiB); see :func:`parse_idx`.

    Returns
    -------
    numpy.ndarray
        The array of the header's shape, e.g. ``(60000, 28, 28)`` uint8 images or
        ``(60000,)`` uint8 labels.
    """
    max_bytes = _check_max_bytes(max_bytes)
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the IDX file ({exc.strerror or exc})") from None
    return parse_idx(raw, source=str(path), max_bytes=max_bytes)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool = True) -> None:
    """Write ``array`` as an IDX file (gzip-compressed unless ``compress=False``).

    The inverse of :func:`read_idx`; tests use it to build small data sets.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file, overwritten.
    array : numpy.ndarray
        Any shape with 1 to 255 dimensions, of a dtype listed in :data:`IDX_TYPES`.
    compress : bool, optional
        gzip the file (the MNIST distribution's ``.gz`` files).
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(f"array dtype {array.dtype} has no IDX type code; expected one of "
                        f"{sorted(str(d) for d in codes)}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array must have 1 to 255 dimensions; got {array.ndim}")
    code = codes[native]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if compress:
        payload = gzip.compress(payload, mtime=0)
    Path(path).write_bytes(payload)

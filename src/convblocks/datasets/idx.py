"""The IDX file format of MNIST and Fashion-MNIST, read strictly.

An IDX file is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM`` big-endian
uint32 dimensions, then the payload: ``prod(dims)`` big-endian items of ``TYPE``.
Files may be gzip-compressed; compression is detected from the gzip magic bytes
(``1f 8b``), never from the file name. Every deviation (bad magic, unknown type code,
a short or over-long payload, a truncated or corrupt gzip stream) raises a
``ValueError`` that names the file, so a damaged download is never half-used.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "parse_idx", "IDX_TYPES", "write_idx"]

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


def _decompress(raw: bytes, where: str) -> bytes:
    """Return the gzip-decompressed ``raw``; a damaged stream raises ``ValueError``."""
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:  # truncated, bad CRC, bad header
        raise ValueError(f"{where}: corrupt or truncated gzip data ({exc}); delete the "
                         f"file and fetch it again") from None


def parse_idx(raw: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file (gzip-compressed or plain).

    Parameters
    ----------
    raw : bytes
        The whole file's content.
    source : str, optional
        A name for the data in error messages (the file name).

    Returns
    -------
    numpy.ndarray
        Shape ``dims`` as the header declares, in native byte order (uint8 for the
        MNIST files); a fresh writable array that owns its memory.

    Raises
    ------
    ValueError
        Bad magic number, unknown type code, or a payload whose length differs from
        ``prod(dims) * itemsize`` (too short: truncated; too long: trailing bytes).
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"raw must be the bytes of an IDX file; got {type(raw).__name__}")
    raw = bytes(raw)
    if raw[:2] == _GZIP_MAGIC:
        raw = _decompress(raw, source)
    if len(raw) < 4:
        raise ValueError(f"{source}: not an IDX file: {len(raw)} bytes, shorter than the "
                         f"4-byte magic number")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise ValueError(f"{source}: not an IDX file: magic number starts with "
                         f"0x{zero:04x}, expected 0x0000")
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise ValueError(f"{source}: unknown IDX type code 0x{type_code:02x}; expected one "
                         f"of {known}")
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{source}: truncated IDX header: {len(raw)} bytes, the "
                         f"{ndim}-dimension header needs {header}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_TYPES[type_code]
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


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or plain; see :func:`parse_idx`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    numpy.ndarray
        The array of the header's shape, e.g. ``(60000, 28, 28)`` uint8 images or
        ``(60000,)`` uint8 labels.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the IDX file ({exc.strerror or exc})") from None
    return parse_idx(raw, source=str(path))


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

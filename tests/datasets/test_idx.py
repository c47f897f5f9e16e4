"""The IDX reader on hand-made valid and corrupt files."""

from __future__ import annotations

import gzip
import re
import struct

import numpy as np
import pytest

from convblocks.datasets import idx
from convblocks.datasets.idx import IDX_TYPES, parse_idx, read_idx, write_idx


@pytest.mark.parametrize("code", sorted(IDX_TYPES))
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_every_type(tmp_path, code, compress):
    dtype = IDX_TYPES[code].newbyteorder("=")
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype.kind == "u":
        arr = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    write_idx(tmp_path / "a", arr, compress=compress)
    got = read_idx(tmp_path / "a")
    assert got.dtype == dtype and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, arr)


def test_hand_written_header_big_endian():
    # 0x0000, type 0x0B (int16), 1 dimension of 2 items: 0x0102 and -2, big-endian.
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    np.testing.assert_array_equal(parse_idx(raw), np.array([258, -2], dtype=np.int16))


def test_compression_detected_by_magic_not_extension(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "plain.gz", arr, compress=False)      # plain, named .gz
    write_idx(tmp_path / "packed.idx", arr, compress=True)     # gzip, no .gz
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.idx"), arr)


def _valid_bytes():
    return struct.pack(">HBBII", 0, 0x08, 2, 2, 3) + bytes(range(6))


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00", "shorter than the 4-byte magic"),
    (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x07", "expected 0x0000"),
    (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x07", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02", "truncated IDX header"),
    (_valid_bytes()[:-1], "truncated IDX payload"),
    (_valid_bytes() + b"\x00\x00", "2 trailing bytes"),
])
def test_corrupt_plain(tmp_path, raw, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_inside_gzip_is_named(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(_valid_bytes()[:-2]))
    with pytest.raises(ValueError, match=r"short\.gz: truncated IDX payload"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    packed = gzip.compress(_valid_bytes() * 50)
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_gzip_crc_mismatch(tmp_path):
    packed = bytearray(gzip.compress(_valid_bytes()))
    packed[-8] ^= 0xFF                                 # flip a byte of the CRC32 trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_missing_file_is_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="nope.gz: cannot read"):
        read_idx(tmp_path / "nope.gz")


def test_write_idx_rejects_unknown_dtype(tmp_path):
    with pytest.raises(TypeError, match="no IDX type code"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


def test_dims_whose_product_overflows_int64_are_a_clear_error(tmp_path):
    # 65536**4 == 2**64 wrapped to 0 in int64, so an empty payload "matched".
    path = tmp_path / "huge"
    path.write_bytes(struct.pack(">HBB4I", 0, 0x08, 4, 65536, 65536, 65536, 65536))
    with pytest.raises(ValueError, match=r"huge: truncated IDX payload.*need "
                                         r"18446744073709551616 bytes, the file holds 0"):
        read_idx(path)


def test_parse_idx_refuses_text():
    with pytest.raises(TypeError, match="raw must be the bytes of an IDX file; got str"):
        parse_idx("\x00\x00\x08\x01\x00\x00\x00\x01\x07")


# --- gzip decompression is bounded by the header ------------------------------------

def _peak_bytes_of(fn):
    """Run ``fn``; return (its exception or None, peak bytes Python allocated meanwhile)."""
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - handed back to the test
        error = exc
    else:
        error = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak


def test_gzip_stream_longer_than_its_header_is_refused_without_inflating_it(tmp_path):
    # The header declares 10 bytes; the stream holds 10 MB more (a small gzip bomb:
    # ~10 KB on disk). It used to be decompressed whole before the length check.
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(struct.pack(">HBBI", 0, 0x08, 1, 10) + bytes(10)
                                   + bytes(10 << 20)))
    error, peak = _peak_bytes_of(lambda: read_idx(path))
    assert isinstance(error, ValueError)
    assert re.search(r"bomb\.gz: the decompressed data is longer than its IDX header says: "
                     r"dims \(10,\) need 18 bytes with the header, the gzip stream holds "
                     r"more than 1048594 \(stopped decompressing", str(error)), str(error)
    assert peak < 4 << 20, f"{peak} bytes allocated for an 18-byte file"


def test_gzip_header_declaring_an_absurd_size_is_refused_before_decompressing(tmp_path):
    # 2**20 x 2**20 uint8 = 2**40 bytes declared; the stream holds 8 MB of zeros.
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(struct.pack(">HBB2I", 0, 0x08, 2, 1 << 20, 1 << 20)
                                   + bytes(8 << 20)))
    error, peak = _peak_bytes_of(lambda: read_idx(path))
    assert isinstance(error, ValueError)
    assert re.search(r"huge\.gz: the IDX header declares dims \(1048576, 1048576\) of uint8, "
                     r"1099511627788 bytes decompressed, more than the limit of "
                     r"max_bytes=2147483648; refused before decompressing", str(error)), \
        str(error)
    assert peak < 1 << 20, f"{peak} bytes allocated before refusing"
    assert idx.MAX_DECOMPRESSED_BYTES == 1 << 31


def test_max_bytes_bounds_the_whole_decompressed_file(tmp_path):
    arr = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", arr)                  # 8-byte header + 100 bytes
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz", max_bytes=108), arr)
    with pytest.raises(ValueError, match=r"a\.gz: .*dims \(100,\) of uint8, 108 bytes "
                                         r"decompressed, more than the limit of max_bytes=107"):
        read_idx(tmp_path / "a.gz", max_bytes=107)
    write_idx(tmp_path / "plain", arr, compress=False)  # plain data is all on disk already
    np.testing.assert_array_equal(read_idx(tmp_path / "plain", max_bytes=1), arr)


@pytest.mark.parametrize("max_bytes, error, message", [
    (0, ValueError, "max_bytes must be a number of bytes >= 1; got 0"),
    (1.5, TypeError, r"max_bytes must be an int number of bytes; got 1.5 \(float\)"),
    (True, TypeError, r"max_bytes must be an int number of bytes; got True \(bool\)"),
])
def test_max_bytes_is_checked(tmp_path, max_bytes, error, message):
    write_idx(tmp_path / "a.gz", np.arange(3, dtype=np.uint8))
    with pytest.raises(error, match=message):
        read_idx(tmp_path / "a.gz", max_bytes=max_bytes)
    with pytest.raises(error, match=message):
        parse_idx((tmp_path / "a.gz").read_bytes(), max_bytes=max_bytes)


@pytest.mark.parametrize("code", sorted(IDX_TYPES))
def test_gunzip_of_several_members_and_zero_padding(code):
    # Members split inside the header and the payload, zero padding between and after.
    dtype = IDX_TYPES[code]
    arr = (np.random.default_rng(code).standard_normal((17, 5, 3)) * 50).astype(dtype)
    plain = struct.pack(">HBB3I", 0, code, 3, *arr.shape) + arr.tobytes()
    for raw in (gzip.compress(plain),
                gzip.compress(plain[:7]) + gzip.compress(plain[7:100]) + gzip.compress(plain[100:]),
                gzip.compress(plain[:50]) + bytes(9) + gzip.compress(plain[50:]) + bytes(11),
                gzip.compress(plain, compresslevel=0)):
        got = parse_idx(raw)
        assert got.dtype == dtype.newbyteorder("=") and got.flags.owndata
        np.testing.assert_array_equal(got, arr)


def test_data_after_the_gzip_stream_must_be_another_member():
    packed = gzip.compress(_valid_bytes()) + b"\x00\x00junk"
    with pytest.raises(ValueError, match="x.gz: corrupt or truncated gzip data .*Not a "
                                         "gzipped file"):
        parse_idx(packed, source="x.gz")


def test_gzip_trailing_bytes_are_counted():
    with pytest.raises(ValueError, match=r"3 trailing bytes after the IDX payload \(dims "
                                         r"\(2, 3\) need 6 bytes, the file holds 9"):
        parse_idx(gzip.compress(_valid_bytes() + b"abc"))

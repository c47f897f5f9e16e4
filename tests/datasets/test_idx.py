"""The IDX reader on hand-made valid and corrupt files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

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

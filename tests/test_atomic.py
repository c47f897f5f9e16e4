"""convblocks._atomic.atomic_write: the destination holds the old bytes or all the new."""

from __future__ import annotations

import os
import stat

import pytest

from convblocks._atomic import atomic_write


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(type(error)):
        with atomic_write(path) as f:
            f.write(b"half of the new")
            raise error
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_clean_write_replaces_the_file_keeping_its_mode(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o640


def test_writes_through_a_symlink_and_keeps_the_link(tmp_path):
    target = tmp_path / "data" / "real.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with atomic_write(link) as f:
        f.write(b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["real.bin"]


def test_the_file_and_its_folder_are_fsynced(tmp_path, monkeypatch):
    """Durability: the data before the rename, and the folder (the rename) after it."""
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"x")
    assert synced == [False, True]


def test_write_json_makes_numpy_values_and_default_results_strict(tmp_path):
    import json

    import numpy as np

    from convblocks._atomic import write_json
    path = tmp_path / "m.json"
    write_json(path, {"a": {"b": np.array([1.5, np.nan, np.inf])}, "n": np.int64(3),
                      "ok": np.bool_(True), "f": np.float32(np.nan), "m": np.eye(2, dtype=int)})
    assert json.loads(path.read_text()) == {"a": {"b": [1.5, None, None]}, "n": 3, "ok": True,
                                            "f": None, "m": [[1, 0], [0, 1]]}
    # What ``default`` returns is made strict too (harness.write_json passes one).
    write_json(path, {"s": {0.5}}, default=lambda o: [float("nan")] + sorted(o))
    assert json.loads(path.read_text()) == {"s": [None, 0.5]}


def test_a_missing_folder_is_named_not_the_temporary_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot write .*out\.bin.*no temporary") as info:
        with atomic_write(tmp_path / "missing" / "out.bin") as f:
            f.write(b"x")
    assert info.value.filename == str(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_concurrent_writers_leave_one_whole_file(tmp_path):
    import threading
    path = tmp_path / "out.bin"

    def writer(i):
        for _ in range(20):
            with atomic_write(path) as f:
                f.write(bytes([i]) * 50_000)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = path.read_bytes()
    assert len(data) == 50_000 and len(set(data)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]

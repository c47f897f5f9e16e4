"""save/load: exact round trip, optimizer state, and every kind of bad file."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import convblocks
from convblocks import nn
from convblocks.nn import serialization


def trained_model(seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((32, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 32)
    model = nn.Sequential([
        nn.Conv2D(4, 3, padding="same"), nn.BatchNorm2D(), nn.LeakyReLU(0.1),
        nn.AvgPool2D(2), nn.ConvTranspose2D(3, 2, stride=2), nn.GlobalAvgPool2D(),
        nn.Dropout(0.1), nn.Dense(3, kernel_init="glorot")], input_shape=(6, 6, 2), seed=seed)
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(0.05, momentum=0.9),
                  schedule=nn.StepSchedule(4, gamma=0.5), clip_norm=2.0)
    model.fit(x, y, epochs=2, batch_size=8, seed=1)
    return model, x, y


def test_round_trip_is_exact(tmp_path):
    model, x, y = trained_model()
    path = tmp_path / "m.npz"
    model.save(path, extra={"epoch": 2, "history": {"loss": [1.5, 1.2]}})
    loaded = convblocks.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_config() == model.get_config()
    assert loaded.extra == {"epoch": 2, "history": {"loss": [1.5, 1.2]}}
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 8
    assert loaded.schedule.get_config() == model.schedule.get_config()
    assert loaded.clip_norm == 2.0 and isinstance(loaded.loss, nn.SoftmaxCrossEntropy)
    for key, value in model.optimizer.state_dict().items():
        np.testing.assert_array_equal(loaded.optimizer.state_dict()[key], value)
    # Training both one more epoch keeps them identical.
    h1 = model.fit(x, y, epochs=3, initial_epoch=2, batch_size=8, seed=1)
    h2 = loaded.fit(x, y, epochs=3, initial_epoch=2, batch_size=8, seed=1)
    assert h1["loss"] == h2["loss"]


def test_without_optimizer_loads_uncompiled(tmp_path):
    model, x, _ = trained_model()
    model.save(tmp_path / "w.npz", include_optimizer=False)
    loaded = nn.load_model(tmp_path / "w.npz")
    assert loaded.optimizer is None and loaded.extra is None
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    model, x, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path, extra={"version": "old"})
    before = path.read_bytes()

    def exploding_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(serialization.np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path, extra={"version": "new"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # temp file removed
    monkeypatch.undo()
    assert nn.load_model(path).extra == {"version": "old"}


def test_truncated_file(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        nn.load_model(path)


def test_corrupted_member(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    data = bytearray(path.read_bytes())
    # Flip bytes in the middle of the stored data: the member's CRC no longer matches.
    mid = len(data) // 3
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted|not a convblocks"):
        nn.load_model(path)


def test_foreign_files(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(ValueError, match="not a convblocks model file"):
        nn.load_model(other)
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ValueError, match="not a convblocks model file"):
        nn.load_model(npy)
    text = tmp_path / "t.npz"
    text.write_text("hello, I am not an archive")
    with pytest.raises(ValueError, match="not a convblocks model file|corrupted"):
        nn.load_model(text)
    with pytest.raises(FileNotFoundError):
        nn.load_model(tmp_path / "missing.npz")


def _rewrite(path, change):
    """Load every array of ``path``, let ``change`` edit the dict, write it back."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


def test_missing_entries_and_newer_version(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    _rewrite(path, lambda a: a.pop("param/0.kernel"))
    with pytest.raises(ValueError, match="missing 'param/0.kernel'"):
        nn.load_model(path)
    model.save(path)
    _rewrite(path, lambda a: a.pop("architecture"))
    with pytest.raises(ValueError, match=r"missing \['architecture'\]"):
        nn.load_model(path)
    model.save(path)
    _rewrite(path, lambda a: a.update(format_version=np.array(serialization.FORMAT_VERSION + 1)))
    with pytest.raises(ValueError, match="newer"):
        nn.load_model(path)
    model.save(path)
    _rewrite(path, lambda a: a.update(architecture=np.array("{not json")))
    with pytest.raises(ValueError, match="not valid JSON"):
        nn.load_model(path)


def test_file_is_a_plain_npz_without_pickles(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
    assert {"convblocks_format.npy", "format_version.npy", "architecture.npy"} <= names
    with np.load(path, allow_pickle=False) as f:
        arch = json.loads(str(f["architecture"][()]))
    assert [c["class"] for c in arch["layers"]][:2] == ["Conv2D", "BatchNorm2D"]


def test_save_errors(tmp_path):
    with pytest.raises(ValueError, match="unbuilt"):
        nn.Sequential([nn.Dense(2)]).save(tmp_path / "x.npz")
    model, _, _ = trained_model()
    with pytest.raises(TypeError, match="extra"):
        model.save(tmp_path / "x.npz", extra={"a": io.BytesIO()})
    assert not list(tmp_path.iterdir())

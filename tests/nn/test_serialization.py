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


# ------------------------------------------------- the loss without the optimizer
def test_mse_model_saved_without_optimizer_predicts_raw_outputs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    model = nn.Sequential([nn.Dense(3)], input_shape=(4,), seed=0)
    model.compile(loss=nn.MSE(), optimizer=nn.SGD(0.1))
    model.fit(x, rng.standard_normal((5, 3)), batch_size=5)
    model.save(tmp_path / "w.npz", include_optimizer=False)
    loaded = nn.load_model(tmp_path / "w.npz")
    assert isinstance(loaded.loss, nn.MSE) and loaded.optimizer is None
    raw = model.predict(x)
    assert (raw < 0).any()  # not probabilities
    np.testing.assert_array_equal(loaded.predict(x), raw)
    with pytest.raises(ValueError, match="compile"):  # evaluate works, training needs compile
        loaded.fit(x, raw)
    assert loaded.evaluate(x, raw)["loss"] == 0.0
    # saved again with include_optimizer=True (it has none): the loss survives
    loaded.save(tmp_path / "w2.npz")
    np.testing.assert_array_equal(nn.load_model(tmp_path / "w2.npz").predict(x), raw)
    with np.load(tmp_path / "w.npz") as f:
        assert int(f["format_version"]) == serialization.FORMAT_VERSION == 2
        training = json.loads(str(f["training"][()]))
    assert training == {"loss": {"class": "MSE"}, "optimizer": None, "schedule": None,
                        "clip_norm": None}


def test_version_1_files_still_load(tmp_path):
    """Version 1 stored the loss only with the optimizer; both kinds of file still load."""
    model, x, y = trained_model()
    for include in (True, False):
        path = tmp_path / f"v1_{include}.npz"
        model.save(path, include_optimizer=include)

        def to_v1(a, include=include):
            a["format_version"] = np.array(1, dtype=np.int64)
            if not include:
                a["training"] = np.array(json.dumps({"loss": None, "optimizer": None,
                                                     "schedule": None, "clip_norm": None}))
        _rewrite(path, to_v1)
        loaded = nn.load_model(path)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        assert (loaded.optimizer is not None) == include
        assert (loaded.loss is not None) == include
    loaded = nn.load_model(tmp_path / "v1_True.npz")
    assert loaded.optimizer.iterations == 8


# ---------------------------------------------------------- every entry checked
def _saved(tmp_path, optimizer):
    rng = np.random.default_rng(0)
    model = nn.Sequential([nn.Conv2D(2, 3), nn.Flatten(), nn.Dense(3)], input_shape=(5, 5, 1),
                          seed=0)
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=optimizer)
    x, y = rng.standard_normal((8, 5, 5, 1)), rng.integers(0, 3, 8)
    model.fit(x, y, batch_size=4)
    path = tmp_path / "m.npz"
    model.save(path)
    return path


@pytest.mark.parametrize("change,match", [
    (lambda a: a.pop("optim/exp_avg/0.kernel"),
     r"corrupted: optimizer state lacks 'optim/exp_avg/0.kernel': after 2 steps Adam keeps "
     r"\['exp_avg', 'exp_avg_sq'\]"),
    (lambda a: a.update({"optim/exp_avg_sq/2.bias": np.zeros((2, 2), np.float32)}),
     r"'optim/exp_avg_sq/2.bias' has shape \(2, 2\) float32; its parameter has \(3,\) float32"),
    (lambda a: a.update({"optim/exp_avg/0.bias": np.zeros(2, np.float64)}),
     r"'optim/exp_avg/0.bias' has shape \(2,\) float64; its parameter has \(2,\) float32"),
    (lambda a: a.update({"optim/exp_avg/7.kernel": np.zeros(2, np.float32)}),
     r"unexpected entries \['optim/exp_avg/7.kernel'\]"),
    (lambda a: a.update({"optim/iterations": np.array(-5)}),
     r"'optim/iterations' must be an integer >= 0; got -5"),
    (lambda a: a.update({"optim/iterations": np.array(2.0)}),
     r"'optim/iterations' must be an integer >= 0; got 2.0"),
    (lambda a: a.pop("optim/iterations"), r"optimizer state lacks 'optim/iterations'"),
    (lambda a: a.update(format_version=np.array("x")),
     r"entry 'format_version' must be an integer; got 'x'"),
    (lambda a: a.update(format_version=np.array([1, 2])),
     r"entry 'format_version' must be an integer; got \[1, 2\]"),
    (lambda a: a.update(format_version=np.array(1.5)),
     r"entry 'format_version' must be an integer; got 1.5"),
    (lambda a: a.update(format_version=np.array(0)), r"invalid format version 0"),
    (lambda a: a.update(training=np.array("[1]")),
     r"entry 'training' must hold a JSON object; got list"),
    (lambda a: a.update(training=np.array(3.0)), r"entry 'training' must be a JSON string"),
    (lambda a: a.update(architecture=np.array('"text"')),
     r"entry 'architecture' must hold a JSON object; got str"),
    (lambda a: a.update(training=np.array('{"loss": 3, "optimizer": null}')),
     r"entry 'training' holds a 'loss' that is not a JSON object"),
    (lambda a: a.update({"param/0.kernel": a["param/0.kernel"].astype(np.float64)}),
     r"'param/0.kernel' .*float64; the architecture needs \(3, 3, 1, 2\) float32"),
])
def test_load_checks_every_entry(tmp_path, change, match):
    path = _saved(tmp_path, nn.Adam())
    _rewrite(path, change)
    with pytest.raises(ValueError, match=r"^'.*m\.npz' .*" + match):
        nn.load_model(path)


def test_sgd_slots_checked_too(tmp_path):
    path = _saved(tmp_path, nn.SGD(0.1, momentum=0.9))
    _rewrite(path, lambda a: a.pop("optim/momentum/2.kernel"))
    with pytest.raises(ValueError, match="lacks 'optim/momentum/2.kernel'"):
        nn.load_model(path)
    path = _saved(tmp_path, nn.SGD(0.1))  # no momentum, no slot
    assert nn.load_model(path).optimizer.state == {}
    _rewrite(path, lambda a: a.update({"optim/momentum/0.bias": np.zeros(2, np.float32)}))
    with pytest.raises(ValueError, match=r"unexpected entries \['optim/momentum/0.bias'\]"):
        nn.load_model(path)


def test_garbage_member_is_a_clear_error(tmp_path):
    path = _saved(tmp_path, nn.Adam())
    members = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            members[name] = z.read(name)
    members["convblocks_format.npy"] = b"garbage, not an .npy"
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    with pytest.raises(ValueError, match=r"corrupted: entry 'convblocks_format' is not a NumPy "
                                         r"array"):
        nn.load_model(path)


# ------------------------------------------------------ permissions and symlinks
def test_save_keeps_the_mode_and_writes_through_symlinks(tmp_path):
    import os
    import stat

    model, x, _ = trained_model()
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "m.npz"
    model.save(target)
    os.chmod(target, 0o600)
    model.save(target, extra={"n": 1})
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    os.chmod(target, 0o640)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    model.save(link, extra={"n": 2})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert nn.load_model(target).extra == {"n": 2}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert sorted(p.name for p in real_dir.iterdir()) == ["m.npz"]  # no temp file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "real"]
    # a dangling link: the target is created, with the usual mode, and the link kept
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(real_dir / "new.npz")
    model.save(dangling)
    assert dangling.is_symlink() and (real_dir / "new.npz").is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(real_dir / "new.npz").st_mode) == 0o666 & ~umask
    np.testing.assert_array_equal(nn.load_model(dangling).predict(x), model.predict(x))


def test_include_optimizer_must_be_a_bool(tmp_path):
    model, _, _ = trained_model()
    with pytest.raises(TypeError, match=r"include_optimizer must be True or False; got 'no'"):
        model.save(tmp_path / "m.npz", include_optimizer="no")
    assert not list(tmp_path.iterdir())


def test_optimizer_state_without_an_optimizer_is_refused(tmp_path):
    model = nn.Sequential([nn.Flatten(), nn.Dense(3)], input_shape=(2, 2, 1), seed=0)
    path = tmp_path / "m.npz"
    model.save(path)
    _rewrite(path, lambda a: a.update({"optim/iterations": np.array(3)}))
    with pytest.raises(ValueError, match=r"corrupted: it holds optimizer state "
                                         r"\(\['optim/iterations'\]\) but no optimizer"):
        nn.load_model(path)

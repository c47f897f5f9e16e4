"""SIGNS from small .h5 files of the course's structure."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from convblocks.datasets import load_signs

h5py = pytest.importorskip("h5py")


def _write(folder, n_train=5, n_test=3, *, drop=None, x_dtype=np.uint8, y_dtype=np.int64,
           scale=1):
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = (rng.integers(0, 256, (n, 64, 64, 3)) * scale).astype(x_dtype)
        y = rng.integers(0, 6, n).astype(y_dtype)
        with h5py.File(folder / f"{split}_signs.h5", "w") as f:
            for key, value in ((f"{split}_set_x", x), (f"{split}_set_y", y),
                               ("list_classes", np.arange(6))):
                if key != drop:
                    f[key] = value
        data[split] = (x, y)
    return data


def test_load_signs(tmp_path):
    data = _write(tmp_path)
    (x, y), (xt, yt) = load_signs(tmp_path)
    assert x.shape == (5, 64, 64, 3) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, data["train"][0] / np.float32(255))
    np.testing.assert_array_equal(yt, data["test"][1])


def test_missing_key(tmp_path):
    _write(tmp_path, drop="train_set_y")
    with pytest.raises(ValueError, match="missing dataset.*train_set_y"):
        load_signs(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_signs.h5 and test_signs.h5"):
        load_signs(tmp_path)


def test_missing_h5py_names_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install 'convblocks\[cli\]'"):
        load_signs(tmp_path)


@pytest.mark.parametrize("x_dtype,y_dtype,scale,message", [
    (np.float64, np.int64, 1 / 255, r"train_set_x must hold 8-bit pixel values.*got dtype float64"),
    (np.uint16, np.int64, 256, r"train_set_x pixel values must lie in 0\.\.255; got 0\.\.65280"),
    (np.uint8, np.float64, 1, r"train_set_y must hold integer class labels; got dtype float64"),
])
def test_wrong_pixel_or_label_types_are_refused(tmp_path, x_dtype, y_dtype, scale, message):
    """Already-scaled floats would be divided by 255 again, 16-bit pixels exceed 1, float
    labels would be truncated: each is a clear error instead."""
    _write(tmp_path, x_dtype=x_dtype, y_dtype=y_dtype, scale=scale)
    with pytest.raises(ValueError, match=message):
        load_signs(tmp_path)


def test_int16_pixels_within_0_255_load(tmp_path):
    data = _write(tmp_path, x_dtype=np.int16)
    (x, _), _ = load_signs(tmp_path)
    np.testing.assert_array_equal(x, data["train"][0] / np.float32(255))


def _write_raw(folder, train, test=None):
    """Write both files from dicts key -> array (None: a group under that name)."""
    for split, entries in (("train", train), ("test", test or {})):
        defaults = {f"{split}_set_x": np.zeros((4, 64, 64, 3), np.uint8),
                    f"{split}_set_y": np.arange(4), "list_classes": np.arange(6)}
        with h5py.File(folder / f"{split}_signs.h5", "w") as f:
            for key, value in {**defaults, **entries}.items():
                if value is None:
                    f.create_group(key)
                else:
                    f[key] = value


def test_course_label_row_loads(tmp_path):
    _write_raw(tmp_path, {"train_set_y": np.array([[3, 1, 4, 1]])})
    (_, y), _ = load_signs(tmp_path)
    np.testing.assert_array_equal(y, [3, 1, 4, 1])


def test_labels_of_another_shape_are_refused_not_flattened(tmp_path):
    # (2, 2) labels for 4 images used to be reshaped to 4 labels in a wrong order.
    _write_raw(tmp_path, {"train_set_y": np.array([[0, 1], [2, 3]])})
    with pytest.raises(ValueError, match=r"train_set_y must hold one label per image, "
                                         r"shape \(4,\).*got shape \(2, 2\)"):
        load_signs(tmp_path)


def test_a_group_instead_of_a_dataset_is_a_clear_error(tmp_path):
    _write_raw(tmp_path, {"train_set_x": None})
    with pytest.raises(ValueError, match="train_set_x must be HDF5 datasets"):
        load_signs(tmp_path)


def test_huge_unsigned_labels_are_reported_as_they_are(tmp_path):
    _write_raw(tmp_path, {"train_set_y": np.full(4, 2**63, np.uint64)})
    with pytest.raises(ValueError, match="got 9223372036854775808..9223372036854775808"):
        load_signs(tmp_path)


def test_test_images_must_match_training_size(tmp_path):
    _write_raw(tmp_path, {}, {"test_set_x": np.zeros((4, 32, 32, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"test images of shape \(32, 32, 3\) do not match "
                                         r"the training images' \(64, 64, 3\)"):
        load_signs(tmp_path)


def test_signs_search_folder_that_cannot_be_examined_is_skipped(tmp_path, monkeypatch):
    # Path.is_file() raises for a name too long (or EACCES) instead of returning False.
    monkeypatch.setenv("CONVBLOCKS_DATA", str(tmp_path / ("a" * 300)))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="train_signs.h5 and test_signs.h5 were not found"):
        load_signs()


"""The SIGNS data set of the deep-learning course: hand signs for the digits 0 to 5.

Two HDF5 files, ``train_signs.h5`` (keys ``train_set_x``, ``train_set_y``,
``list_classes``) and ``test_signs.h5`` (``test_set_x``, ``test_set_y``,
``list_classes``), with uint8 RGB images of shape (N, 64, 64, 3). Reading them needs
h5py, an optional dependency (``pip install 'convblocks[cli]'``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .fashion_mnist import path_is

__all__ = ["load_signs", "SIGNS_CLASSES", "signs_search_dirs"]

SIGNS_CLASSES = tuple(str(d) for d in range(6))
_FILES = {"train": "train_signs.h5", "test": "test_signs.h5"}


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading the SIGNS .h5 files needs h5py: "
                          "pip install 'convblocks[cli]'") from None
    return h5py


def signs_search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for the SIGNS files: ``data_dir`` (and ``data_dir/signs``)
    when given, else ``$CONVBLOCKS_DATA`` (and its ``signs/``) and the current folder's
    ``datasets/`` (where the course keeps them)."""
    if data_dir is not None:
        return [Path(data_dir), Path(data_dir) / "signs"]
    dirs = []
    env = os.environ.get("CONVBLOCKS_DATA")
    if env:
        dirs += [Path(env), Path(env) / "signs"]
    dirs.append(Path("datasets"))
    return dirs


def _read_split(h5py, path: Path, split: str):
    kx, ky = f"{split}_set_x", f"{split}_set_y"
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        missing = [k for k in (kx, ky, "list_classes") if k not in f]
        if missing:
            raise ValueError(f"{path}: missing dataset(s) {', '.join(missing)}; a SIGNS file "
                             f"holds {kx}, {ky} and list_classes")
        groups = [k for k in (kx, ky, "list_classes") if not isinstance(f[k], h5py.Dataset)]
        if groups:
            raise ValueError(f"{path}: {', '.join(groups)} must be HDF5 datasets (arrays); "
                             f"the file holds group(s) under these names")
        x = np.asarray(f[kx][()])
        y = np.asarray(f[ky][()])
        n_classes = int(np.asarray(f["list_classes"][()]).size)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{path}: {kx} must be RGB images of shape (N, H, W, 3); got shape "
                         f"{x.shape}")
    n = x.shape[0]
    # (N,), or the course's (1, N) / a column (N, 1); any other shape of N labels
    # (e.g. (2, N/2)) would be flattened into a wrong pairing of images and labels.
    if y.shape not in ((n,), (1, n), (n, 1)):
        raise ValueError(f"{path}: {ky} must hold one label per image, shape ({n},) or "
                         f"(1, {n}); got shape {y.shape} for {n} images")
    if y.dtype.kind not in "iu":
        raise ValueError(f"{path}: {ky} must hold integer class labels; got dtype {y.dtype}")
    y = y.reshape(-1)
    if y.size and (y.min() < 0 or y.max() >= n_classes):  # before the int64 cast
        raise ValueError(f"{path}: labels must lie in 0..{n_classes - 1} (list_classes has "
                         f"{n_classes} entries); got {y.min()}..{y.max()}")
    y = y.astype(np.int64)
    # The course's files hold uint8 pixels: any integer pixels must lie in 0..255.
    if x.dtype.kind not in "iu":
        raise ValueError(f"{path}: {kx} must hold 8-bit pixel values (uint8, as the course's "
                         f"files); got dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise ValueError(f"{path}: {kx} pixel values must lie in 0..255; got "
                         f"{x.min()}..{x.max()}")
    # -> float32 in [0, 1] in one pass.
    return np.divide(x, np.float32(255), dtype=np.float32), y


def load_signs(data_dir: str | os.PathLike | None = None):
    """Load SIGNS from ``train_signs.h5`` and ``test_signs.h5``.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder holding both files (or a ``signs/`` subfolder); see
        :func:`signs_search_dirs` for the default search.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        x float32 in [0, 1] of shape (N, H, W, 3) (64x64 in the course's files), from
        uint8 pixels; y int64 of shape (N,) in 0..len(list_classes)-1 (0..5).

    Raises
    ------
    ImportError
        h5py is not installed (the message says how to install it).
    FileNotFoundError
        The files are not in any searched folder (the message lists them).
    ValueError
        A file is not HDF5, lacks a key, or holds inconsistent shapes or labels.
    """
    h5py = _h5py()
    dirs = signs_search_dirs(data_dir)
    for folder in dirs:
        paths = {s: folder / f for s, f in _FILES.items()}
        if all(path_is(p, "is_file") for p in paths.values()):
            train = _read_split(h5py, paths["train"], "train")
            test = _read_split(h5py, paths["test"], "test")
            if train[0].shape[1:] != test[0].shape[1:]:
                raise ValueError(f"{paths['test']}: test images of shape "
                                 f"{test[0].shape[1:]} do not match the training images' "
                                 f"{train[0].shape[1:]} in {paths['train']}")
            return train, test
    looked = "\n".join(f"  {d}" for d in dirs)
    raise FileNotFoundError(
        f"signs: train_signs.h5 and test_signs.h5 were not found in:\n{looked}\n"
        f"They come with the course's convolutional-network assignment (its datasets/ "
        f"folder); pass that folder as data_dir / --data-dir or set CONVBLOCKS_DATA.")

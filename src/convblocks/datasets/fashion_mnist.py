"""Fashion-MNIST and MNIST: find the four IDX files locally, or download them.

Search order (the first directory holding all four files wins):

1. ``data_dir`` when given -- and then ONLY there (and in its ``<name>/`` subfolder):
   an explicit directory that lacks the files is an error, never a silent fallback;
2. ``$CONVBLOCKS_DATA`` and ``$CONVBLOCKS_DATA/<name>/``;
3. ``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist`` package);
4. the user cache ``$XDG_CACHE_HOME/convblocks/<name>/`` (default ``~/.cache/...``);
5. a download from the official mirror into that cache, each file checked against its
   published MD5 and written atomically (:func:`convblocks.datasets.download.download`).
   The base URL can be replaced with ``base_url=`` or ``$CONVBLOCKS_<NAME>_URL``
   (e.g. ``CONVBLOCKS_FASHION_MNIST_URL``); ``download=False`` or
   ``CONVBLOCKS_OFFLINE`` set to anything but empty or ``0`` disables the download.

Only downloaded files are checksummed: distributions recompress the files (Debian's
differ byte-wise from upstream), so local files are validated by their IDX structure
instead: uint8, the expected shapes and counts, labels within the classes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convblocks.functional.checks import as_bool

from .download import DownloadError, check_md5, check_timeout, download as _download
from .idx import read_idx

__all__ = ["load_fashion_mnist", "load_mnist", "load_idx_dataset", "IdxDataset",
           "FASHION_MNIST", "MNIST", "FASHION_MNIST_CLASSES", "MNIST_CLASSES",
           "search_dirs", "cache_dir"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))

_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class IdxDataset:
    """An MNIST-style data set: four IDX files, their official mirror and MD5s.

    Attributes
    ----------
    name : str
        Folder name (``"fashion-mnist"``), also used in ``$CONVBLOCKS_DATA/<name>``.
    url : str
        Official base URL; a file's URL is ``url + file name``.
    md5 : dict
        File name -> published MD5 of the upstream ``.gz`` file.
    classes : tuple of str
        Class names, index = label.
    image_shape : tuple of int
        (height, width) of every image.
    """

    name: str
    url: str
    md5: dict
    classes: tuple
    image_shape: tuple = (28, 28)

    @property
    def env_url(self) -> str:
        """Environment variable that overrides :attr:`url`."""
        return "CONVBLOCKS_" + self.name.upper().replace("-", "_") + "_URL"


# Published by Zalando Research (github.com/zalandoresearch/fashion-mnist, README).
FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
         "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    classes=FASHION_MNIST_CLASSES)

# LeCun's files as mirrored by PyTorch (torchvision.datasets.MNIST uses these MD5s).
MNIST = IdxDataset(
    name="mnist",
    url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
         "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    classes=MNIST_CLASSES)


def cache_dir(name: str) -> Path:
    """The user cache folder for data set ``name``: ``$XDG_CACHE_HOME/convblocks/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convblocks" / name


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The local folders searched for data set ``name``, in order (see the module doc)."""
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir must be a folder (str or os.PathLike) or None; got "
                            f"{data_dir!r} ({type(data_dir).__name__})")
        return [Path(data_dir), Path(data_dir) / name]
    dirs = []
    env = os.environ.get("CONVBLOCKS_DATA")
    if env:
        dirs += [Path(env), Path(env) / name]
    dirs.append(Path("/usr/share/datasets") / name)
    dirs.append(cache_dir(name))
    return dirs


def path_is(path: Path, kind: str) -> bool:
    """``path.is_file()`` / ``is_dir()``, False where the path cannot even be examined
    (a folder without search permission, a name too long): Path raises there."""
    try:
        return getattr(path, kind)()
    except OSError:
        return False


def _find_file(folder: Path, file_name: str) -> Path | None:
    """``file_name`` in ``folder``, or its uncompressed twin (no ``.gz``)."""
    for candidate in (folder / file_name, folder / file_name.removesuffix(".gz")):
        if path_is(candidate, "is_file"):
            return candidate
    return None


def _find_local(spec: IdxDataset, dirs: list[Path]) -> dict[str, Path] | None:
    for folder in dirs:
        found = {f: _find_file(folder, f) for f in _FILES}
        if all(found.values()):
            return found
    return None


def check_md5_map(md5, name: str = "md5") -> Mapping:
    """``md5`` unchanged if it maps some of the four IDX file names to MD5 digests of
    32 hex digits; anything else raises, naming ``name`` and the offending key.

    ``None`` is no valid digest here: every download is verified (omit the whole
    ``md5`` argument to use the published checksums).
    """
    expected = (f"a dict of file name -> 32-hex-digit MD5 string (file names "
                f"{', '.join(_FILES)})")
    if not isinstance(md5, Mapping):
        raise TypeError(f"{name} must be {expected}, or None for the published "
                        f"checksums; got {md5!r} ({type(md5).__name__})")
    for key, value in md5.items():
        if key not in _FILES:
            raise ValueError(f"{name} has the key {key!r}, which is none of the file "
                             f"names; expected {expected}")
        if value is None:
            raise TypeError(f"{name}[{key!r}] must be a 32-hex-digit MD5 string; got None "
                            f"(every download is verified: leave out the whole md5 "
                            f"argument to use the published checksums)")
        check_md5(value, f"{name}[{key!r}]", none_ok=False)
    return md5


def _fetch(spec: IdxDataset, base_url: str, md5: dict, timeout: float) -> dict[str, Path]:
    target = cache_dir(spec.name)
    if not base_url.endswith("/"):
        base_url += "/"
    paths = {}
    for f in _FILES:
        dest = target / f
        if not path_is(dest, "is_file"):
            if f not in md5:
                raise ValueError(f"{spec.name}: no MD5 given for {f}; every download is "
                                 f"verified")
            _download(base_url + f, dest, md5=md5[f], timeout=timeout)
        paths[f] = dest
    return paths


def _not_found(spec: IdxDataset, dirs: list[Path], explicit: bool, reason: str) -> FileNotFoundError:
    def state(d: Path) -> str:
        if not path_is(d, "is_dir"):
            return " (no such folder, or it cannot be read)"
        missing = [f for f in _FILES if _find_file(d, f) is None]
        return f" (lacks {', '.join(missing)})" if missing else ""
    looked = "\n".join(f"  {d}{state(d)}" for d in dirs)
    files = ", ".join(_FILES)
    how = "Get the data with ONE of:\n"
    if spec.name == FASHION_MNIST.name:
        how += ("  - Debian/Ubuntu: apt-get install dataset-fashion-mnist (installs "
                "/usr/share/datasets/fashion-mnist)\n")
    how += (f"  - put {files} (from {spec.url}) in a folder and pass it as data_dir / "
            f"--data-dir, or set CONVBLOCKS_DATA to it (or to its parent holding "
            f"{spec.name}/)\n"
            f"  - allow the download (needs network), or point {spec.env_url} at a mirror")
    where = "the given data_dir" if explicit else "these folders"
    return FileNotFoundError(f"{spec.name}: the four IDX files were not found in {where}:\n"
                             f"{looked}\n{reason}\n{how}")


def _validate(spec: IdxDataset, paths: dict[str, Path]):
    """Read and check the four files: uint8, image size, matching counts, label range.

    The counts need not be the official ones (a subset is fine), but images and labels
    must agree.
    """
    arrays = {f: read_idx(p) for f, p in paths.items()}
    h, w = spec.image_shape
    out = []
    for fx, fy in (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                   ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
        x, y = arrays[fx], arrays[fy]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (h, w) or x.shape[0] == 0:
            raise ValueError(f"{paths[fx]}: expected uint8 images of shape (N, {h}, {w}) "
                             f"with N >= 1; the file holds {x.dtype} of shape {x.shape}")
        if y.dtype != np.uint8 or y.shape != (x.shape[0],):
            raise ValueError(f"{paths[fy]}: expected {x.shape[0]} uint8 labels (one per "
                             f"image of {paths[fx].name}); the file holds {y.dtype} of "
                             f"shape {y.shape}")
        if int(y.max()) >= len(spec.classes):
            raise ValueError(f"{paths[fy]}: label {int(y.max())} out of range; expected "
                             f"0..{len(spec.classes) - 1}")
        # One pass uint8 -> float32 in [0, 1]; the channel axis makes it (N, 28, 28, 1).
        xf = np.divide(x, np.float32(255), dtype=np.float32)[..., None]
        out.append((xf, y.astype(np.int64)))
    return tuple(out)


def load_idx_dataset(spec: IdxDataset, data_dir: str | os.PathLike | None = None, *,
                     download: bool = True, base_url: str | None = None,
                     md5: dict | None = None, timeout: float = 30.0):
    """Load an MNIST-style data set described by ``spec``; see the module doc.

    Parameters
    ----------
    spec : IdxDataset
        :data:`FASHION_MNIST`, :data:`MNIST` or one of the same layout.
    data_dir, download, base_url, md5, timeout
        As :func:`load_fashion_mnist` (folder ``spec.name``, ``spec.env_url``).

    Returns and raises as :func:`load_fashion_mnist`.
    """
    download = as_bool(download, "download")
    check_timeout(timeout)
    if md5 is None:
        md5 = check_md5_map(spec.md5, f"the md5 of data set {spec.name!r}")
    else:
        md5 = check_md5_map(md5, "md5")
    explicit = data_dir is not None
    dirs = search_dirs(spec.name, data_dir)
    paths = _find_local(spec, dirs)
    if paths is None:
        if explicit:
            raise _not_found(spec, dirs, True, "(an explicit data_dir is not searched "
                             "further; omit it to use the default search and download)")
        if not download or os.environ.get("CONVBLOCKS_OFFLINE", "") not in ("", "0"):
            raise _not_found(spec, dirs, False, "(download disabled)")
        url = base_url or os.environ.get(spec.env_url) or spec.url
        try:
            paths = _fetch(spec, url, md5, timeout)
        except DownloadError as exc:
            raise _not_found(spec, dirs, False, f"and the download failed: {exc}") from None
        except OSError as exc:  # creating or writing the cache folder, not the network
            raise _not_found(spec, dirs, False, f"and the cache folder "
                             f"{cache_dir(spec.name)} cannot be written ({exc}); point "
                             f"XDG_CACHE_HOME at a writable folder") from None
    return _validate(spec, paths)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True,
                       base_url: str | None = None, md5: dict | None = None,
                       timeout: float = 30.0):
    """Fashion-MNIST: 60,000 training and 10,000 test 28x28 grayscale clothing images.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Look only here (and in ``data_dir/fashion-mnist``). Without it: ``$CONVBLOCKS_DATA``,
        /usr/share/datasets/fashion-mnist/ (Debian's dataset-fashion-mnist), the user
        cache ~/.cache/convblocks, then a download into the cache.
    download : bool, optional
        Allow downloading into the cache when nothing is found locally.
    base_url : str, optional
        Download from here instead of the official location
        (also ``$CONVBLOCKS_FASHION_MNIST_URL``).
    md5 : dict, optional
        File name -> expected MD5 as 32 hex digits (either case), replacing the
        published ones (for private mirrors); checked on every call, before anything
        is searched or fetched. Keys must be among the four file names; a file
        missing from it cannot be downloaded.
    timeout : float, optional
        Network timeout in seconds.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        x float32 in [0, 1] of shape (N, 28, 28, 1); y int64 of shape (N,) in 0..9
        (names in :data:`FASHION_MNIST_CLASSES`).

    Raises
    ------
    FileNotFoundError
        Nothing found and no download possible (the message lists the folders searched
        and how to get the data).
    ValueError
        A corrupt, truncated or wrongly shaped file, a download whose checksum does
        not match, or an ``md5`` with an unknown key or a value that is not 32 hex
        digits.
    TypeError
        ``md5`` is not a dict, or one of its values not a str (the message names the
        key).
    """
    return load_idx_dataset(FASHION_MNIST, data_dir, download=download, base_url=base_url,
                            md5=md5, timeout=timeout)


def load_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True,
               base_url: str | None = None, md5: dict | None = None, timeout: float = 30.0):
    """MNIST: 60,000 training and 10,000 test 28x28 handwritten digits.

    Parameters, returns and errors as :func:`load_fashion_mnist` (folder ``mnist``,
    ``$CONVBLOCKS_MNIST_URL``; labels 0..9, the digits).
    """
    return load_idx_dataset(MNIST, data_dir, download=download, base_url=base_url, md5=md5,
                            timeout=timeout)

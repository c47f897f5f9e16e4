"""Data sets: Fashion-MNIST, MNIST (IDX files) and the course's SIGNS (HDF5).

Every loader returns ``(x_train, y_train), (x_test, y_test)`` with float32 images in
[0, 1] in NHWC layout and int64 labels. See :mod:`convblocks.datasets.fashion_mnist`
for where the files are looked for and how they are downloaded.
"""

from .batches import batch_indices, iterate_batches
from .download import DownloadError, download, md5_of_file
from .fashion_mnist import (
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    MNIST,
    MNIST_CLASSES,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
)
from .idx import parse_idx, read_idx, write_idx
from .signs import SIGNS_CLASSES, load_signs, signs_search_dirs

#: data set name -> class names (index = label).
CLASS_NAMES = {"fashion-mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES,
               "signs": SIGNS_CLASSES}


def load_dataset(name: str, data_dir=None, **kwargs):
    """Load a data set by name (``"fashion-mnist"``, ``"mnist"`` or ``"signs"``)."""
    loaders = {"fashion-mnist": load_fashion_mnist, "mnist": load_mnist, "signs": load_signs}
    if not isinstance(name, str) or name not in loaders:
        raise ValueError(f"dataset must be one of {', '.join(map(repr, loaders))}; got {name!r}")
    return loaders[name](data_dir, **kwargs)


__all__ = ["read_idx", "parse_idx", "write_idx", "download", "md5_of_file", "DownloadError",
           "load_fashion_mnist", "load_mnist", "load_signs", "load_dataset", "load_idx_dataset",
           "signs_search_dirs", "FASHION_MNIST",
           "MNIST", "FASHION_MNIST_CLASSES", "MNIST_CLASSES", "SIGNS_CLASSES", "CLASS_NAMES",
           "batch_indices", "iterate_batches"]

"""Mini-batches with seeded shuffling.

A seed may be an int, a sequence of ints (e.g. ``(seed, epoch)``: NumPy mixes them
into one independent stream per epoch, which is what makes a resumed run identical
to an uninterrupted one) or an existing ``np.random.Generator``.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from convblocks.functional.checks import as_bool, as_int, check_array_size

__all__ = ["batch_indices", "iterate_batches"]


def batch_indices(n: int, batch_size: int, *, shuffle: bool = False,
                  seed: int | Sequence[int] | np.random.Generator | None = None,
                  drop_last: bool = False) -> Iterator[np.ndarray]:
    """Yield the example indices of each mini-batch.

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
        Examples per batch (the last one may be smaller unless ``drop_last``).
    shuffle : bool, optional
        Visit the examples in a random order drawn from ``seed``.
    seed : int, sequence of int or numpy.random.Generator, optional
        The shuffle's randomness; ``None`` draws fresh entropy (not repeatable).
    drop_last : bool, optional
        Skip a final batch smaller than ``batch_size``.

    Yields
    ------
    numpy.ndarray
        int64 indices of shape (b,), b <= batch_size.
    """
    # Checked (and the order drawn) now, not at the first next(): a plain function
    # returning a generator, so a bad argument fails where it is given.
    n = as_int(n, "n", minimum=0)
    # the order is an int64 array of n indices: a message naming n, not NumPy's
    # "Maximum allowed size exceeded" or a MemoryError
    check_array_size((n,), 8, "the order of the examples (int64 indices)", f"batch_indices: n={n}")
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    shuffle = as_bool(shuffle, "shuffle")
    drop_last = as_bool(drop_last, "drop_last")
    if shuffle:
        if isinstance(seed, np.random.Generator):
            rng = seed
        elif isinstance(seed, (bool, np.bool_, np.timedelta64)):
            # NumPy takes True as the seed 1 (and a timedelta64 as its count): not a seed
            raise TypeError(f"seed must be None, an int >= 0, a sequence of them or a "
                            f"numpy.random.Generator; got {seed!r} ({type(seed).__name__})")
        else:
            try:
                rng = np.random.default_rng(seed)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"seed must be None, an int >= 0, a sequence of them or a "
                                f"numpy.random.Generator; got {seed!r} ({exc})") from None
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return (order[start:start + batch_size] for start in range(0, stop, batch_size))


def iterate_batches(x: np.ndarray, y: np.ndarray | None, batch_size: int, *,
                    shuffle: bool = False,
                    seed: int | Sequence[int] | np.random.Generator | None = None,
                    drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield ``(x_batch, y_batch)`` pairs; see :func:`batch_indices`.

    Parameters
    ----------
    x : numpy.ndarray
        Examples, shape (N, ...).
    y : numpy.ndarray or None
        Targets, shape (N, ...), or None (then ``y_batch`` is None).

    Yields
    ------
    (numpy.ndarray, numpy.ndarray or None)
        Shapes (b, ...) each; copies when shuffled, views otherwise.
    """
    for name, a in (("x", x), ("y", y)):
        if (a is not None or name == "x") and (not isinstance(a, np.ndarray) or a.ndim == 0):
            raise TypeError(f"{name} must be a numpy array of shape (N, ...); got "
                            f"{type(a).__name__}"
                            f"{' of shape ()' if isinstance(a, (np.ndarray, np.generic)) else ''}")
    if y is not None and len(y) != len(x):
        raise ValueError(f"x and y must hold the same number of examples; got {len(x)} "
                         f"and {len(y)}")
    batches = batch_indices(len(x), batch_size, shuffle=shuffle, seed=seed,
                            drop_last=drop_last)
    return (_take(x, y, idx, shuffle) for idx in batches)


def _take(x, y, idx, shuffle):
    if not shuffle:  # contiguous range: slice (a view) instead of gathering
        s = slice(int(idx[0]), int(idx[-1]) + 1)
        return x[s], (None if y is None else y[s])
    return x[idx], (None if y is None else y[idx])

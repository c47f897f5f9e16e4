"""The seeded batch iterator."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convblocks.datasets import batch_indices, iterate_batches


def test_unshuffled_covers_in_order_with_short_last_batch():
    batches = list(batch_indices(10, 4))
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(b) for b in batch_indices(10, 4, drop_last=True)] == [4, 4]


def test_shuffle_is_a_permutation_and_repeatable():
    a = np.concatenate(list(batch_indices(103, 16, shuffle=True, seed=(7, 2))))
    b = np.concatenate(list(batch_indices(103, 16, shuffle=True, seed=(7, 2))))
    c = np.concatenate(list(batch_indices(103, 16, shuffle=True, seed=(7, 3))))
    assert sorted(a.tolist()) == list(range(103))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a, np.random.default_rng([7, 2]).permutation(103))


def test_iterate_batches_pairs_match():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10
    for xb, yb in iterate_batches(x, y, 3, shuffle=True, seed=1):
        np.testing.assert_array_equal(xb[:, 0] // 2 * 10, yb)
    views = list(iterate_batches(x, None, 4))
    assert views[0][1] is None and np.shares_memory(views[0][0], x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(batch_indices(5, 0))
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        list(batch_indices(5, 2.0))
    with pytest.raises(ValueError, match="same number of examples; got 3 and 2"):
        list(iterate_batches(np.zeros(3), np.zeros(2), 2))


@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 11])
def test_unshuffled_batches_give_back_every_example_in_order(batch_size):
    x = np.arange(10) * 2
    y = np.arange(10)
    got = list(iterate_batches(x, y, batch_size, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in got]), x)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in got]), y)


@pytest.mark.parametrize("flag", ["shuffle", "drop_last"])
def test_flags_are_not_read_by_truthiness(flag):
    # shuffle="no" used to shuffle, drop_last="no" to drop.
    with pytest.raises(TypeError, match=f"{flag} must be True or False; got 'no'"):
        list(batch_indices(5, 2, **{flag: "no"}))


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("a", TypeError)])
def test_bad_seed_names_the_argument(seed, error):
    with pytest.raises(error, match=f"seed must be None, an int >= 0.*got {seed!r}"):
        list(batch_indices(5, 2, shuffle=True, seed=seed))


def test_bad_arguments_fail_at_the_call_not_at_the_first_batch():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        batch_indices(5, 0)
    with pytest.raises(ValueError, match="same number of examples"):
        iterate_batches(np.zeros(3), np.zeros(2), 2)


@pytest.mark.parametrize("shuffle", [False, True])
def test_x_and_y_must_be_arrays_with_an_example_axis(shuffle):
    # A list worked unshuffled and failed deep in NumPy's indexing when shuffled.
    with pytest.raises(TypeError, match="x must be a numpy array of shape \\(N, ...\\); got list"):
        list(iterate_batches([1, 2, 3], None, 2, shuffle=shuffle, seed=0))
    with pytest.raises(TypeError, match="y must be a numpy array.*ndarray of shape \\(\\)"):
        list(iterate_batches(np.zeros(3), np.array(1), 2, shuffle=shuffle, seed=0))


def test_batch_larger_than_n_and_empty_data():
    assert [b.tolist() for b in batch_indices(3, 10)] == [[0, 1, 2]]
    assert list(batch_indices(3, 10, drop_last=True)) == []
    assert list(iterate_batches(np.zeros((0, 2)), np.zeros(0), 4, shuffle=True, seed=0)) == []


@pytest.mark.parametrize("shuffle", [False, True])
def test_x_none_names_x(shuffle):
    # was "object of type 'NoneType' has no len()"
    with pytest.raises(TypeError, match="x must be a numpy array of shape \\(N, ...\\); got NoneType$"):
        iterate_batches(None, None, 2, shuffle=shuffle, seed=0)


@pytest.mark.parametrize("seed", [True, False, np.timedelta64(3)])
def test_bool_and_timedelta_seeds_are_refused(seed):
    # NumPy took True as the seed 1 (np.True_ was refused) and a timedelta64 as its count.
    with pytest.raises(TypeError, match=f"seed must be None, an int >= 0.*got {re.escape(repr(seed))} "):
        batch_indices(5, 2, shuffle=True, seed=seed)


@pytest.mark.parametrize("n", [10**13, 10**30])
def test_impossibly_many_examples_names_n(n):
    # was a MemoryError (10**13) or NumPy's "Maximum allowed size exceeded" (10**30)
    with pytest.raises(ValueError, match=f"batch_indices: n={n}: .*would have shape"):
        batch_indices(n, 2)

"""The buffer pool: memory is reused only when nothing refers to it any more."""

import gc
import threading
import time

import numpy as np
import pytest

from convblocks.functional import buffers, conv2d, conv2d_backward, max_pool2d, max_pool2d_backward

BIG = (64, 64, 64)  # 1 MiB of float32: pooled


@pytest.fixture(autouse=True)
def fresh_pool():
    buffers.clear_buffer_pool()
    previous = buffers.set_buffer_pool_limit(256 << 20)
    yield
    buffers.set_buffer_pool_limit(previous)
    buffers.clear_buffer_pool()


def _owner(a: np.ndarray) -> np.ndarray:
    return a if a.base is None else a.base


def test_memory_of_a_dropped_array_is_reused():
    a = buffers.empty(BIG, np.float32)
    owner = id(_owner(a))  # the pool keeps the owner alive: its id stays its own
    del a
    b = buffers.empty(BIG, np.float32)
    assert id(_owner(b)) == owner
    c = buffers.empty((256, 1024), np.float32)  # the same bytes, but b holds them
    assert id(_owner(c)) != owner
    del b
    d = buffers.empty((256, 1024), np.float32)  # same bytes, other shape: reused
    assert id(_owner(d)) == owner and d.shape == (256, 1024)


@pytest.mark.parametrize("hold", ["array", "reshape", "slice", "transpose", "memoryview",
                                  "dtype_view", "in_list", "ravel"])
def test_memory_still_referenced_is_never_handed_out(hold):
    a = buffers.empty(BIG, np.float32)
    a[...] = 7.0
    holders = {"array": a, "reshape": a.reshape(-1), "slice": a[1:3, ::2], "transpose": a.T,
               "memoryview": memoryview(a), "dtype_view": a.view(np.int32), "in_list": [a],
               "ravel": np.ravel(a)}
    keep = holders[hold]
    del a, holders  # only `keep` refers to the memory now
    gc.collect()
    others = [buffers.empty(BIG, np.float32) for _ in range(3)]
    for o in others:
        o.fill(-1.0)
    held = np.asarray(keep[0] if hold == "in_list" else keep)
    if hold == "dtype_view":
        held = held.view(np.float32)
    assert np.all(held == 7.0)


def test_small_arrays_and_a_zero_limit_bypass_the_pool():
    small = buffers.empty((10,), np.float64)
    assert small.base is None and buffers.buffer_pool_bytes() == 0
    buffers.set_buffer_pool_limit(0)
    a = buffers.empty(BIG, np.float32)
    assert a.base is None and buffers.buffer_pool_bytes() == 0


def test_pool_stays_under_its_limit():
    buffers.set_buffer_pool_limit(3 << 20)
    arrays = [buffers.empty(BIG, np.float32) for _ in range(5)]  # 5 MiB held
    assert buffers.buffer_pool_bytes() <= 3 << 20
    for a in arrays:  # every array is still intact and distinct
        a.fill(1.0)
    assert len({id(_owner(a)) for a in arrays}) == 5
    assert all(np.all(a == 1.0) for a in arrays)


def test_zeros_copy_and_empty_like():
    a = buffers.empty(BIG, np.float64)
    a.fill(5.0)
    del a
    z = buffers.zeros(BIG, np.float64)  # likely the same memory: must be zeroed
    assert z.dtype == np.float64 and z.shape == BIG and not z.any()
    src = np.arange(np.prod(BIG), dtype=np.float32).reshape(BIG)[:, ::-1]
    c = buffers.copy(src)
    assert c.flags.c_contiguous and np.array_equal(c, src)
    e = buffers.empty_like(src, dtype=np.int64)
    assert e.shape == BIG and e.dtype == np.int64


def test_limit_is_validated():
    with pytest.raises(ValueError, match="nbytes"):
        buffers.set_buffer_pool_limit(-1)
    with pytest.raises(TypeError, match="nbytes"):
        buffers.set_buffer_pool_limit("big")


def test_threads_never_share_a_buffer():
    errors = []

    def work(value: float) -> None:
        for _ in range(50):
            a = buffers.empty(BIG, np.float32)
            a.fill(value)
            time.sleep(0)  # let the other threads allocate meanwhile
            if not np.all(a == value):
                errors.append(value)

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_engine_results_held_across_calls_stay_intact(rng):
    """Outputs kept by the caller (and caches) survive later calls of the same op."""
    x = rng.standard_normal((8, 32, 32, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    y1, c1 = conv2d(x, w, padding=1)
    p1, pc1 = max_pool2d(y1, 2)
    snap_y, snap_p = y1.copy(), p1.copy()
    dy = rng.standard_normal(y1.shape).astype(np.float32)
    dx1 = conv2d_backward(dy, c1)[0]
    dp1 = max_pool2d_backward(np.ones_like(p1), pc1)
    snap_dx, snap_dp = dx1.copy(), dp1.copy()
    for _ in range(3):  # the same shapes again: the pool is asked for the same sizes
        y2, c2 = conv2d(-x, w, padding=1)
        p2, pc2 = max_pool2d(y2, 2)
        max_pool2d_backward(np.ones_like(p2), pc2)
        conv2d_backward(-dy, c2)
    assert np.array_equal(y1, snap_y) and np.array_equal(p1, snap_p)
    assert np.array_equal(dx1, snap_dx) and np.array_equal(dp1, snap_dp)
    # the first caches still give the first gradients
    assert np.array_equal(max_pool2d_backward(np.ones_like(p1), pc1), snap_dp)
    assert np.array_equal(conv2d_backward(dy, c1)[0], snap_dx)


def test_pool_disabled_makes_every_array_fresh_and_restores_the_limit():
    a = buffers.empty(BIG, np.float32)
    del a
    with buffers.pool_disabled():
        assert buffers.get_buffer_pool_limit() == 0 and buffers.buffer_pool_bytes() == 0
        b = buffers.empty(BIG, np.float32)
        assert b.base is None
    assert buffers.get_buffer_pool_limit() == 256 << 20

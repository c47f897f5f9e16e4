"""Options that make a padded input or an output too large to allocate, and masked arrays.

Found by fuzzing the public API: ``padding=10**12`` on a 5x5 input used to fail deep
inside with NumPy's "array is too big", "Maximum allowed dimension exceeded", a
``MemoryError`` (175 TiB) or an ``OverflowError`` (``np.arange`` of a 10**30 window),
and ``conv2d_cache`` accepted such options silently. Each is now a ``ValueError`` at
the boundary naming the options and the resulting shape. A ``numpy.ma.MaskedArray``
used to be read without its mask (a silent wrong answer).
"""

from __future__ import annotations

import numpy as np
import pytest

from convblocks.functional import (avg_pool2d, conv2d, conv2d_backward, conv2d_cache, conv_transpose2d,
                                   global_avg_pool2d, global_max_pool2d, max_pool2d)
from convblocks.functional import checks

X = np.ones((2, 5, 5, 4))
W = np.ones((3, 3, 4, 2))
WT = np.ones((3, 3, 2, 4))
TOO_BIG = r"would have shape .* bytes, more than can be allocated"


@pytest.mark.parametrize("fn", [conv2d, conv2d_cache])
@pytest.mark.parametrize("padding, shape", [
    (10**12, r"\(1, 2000000000005, 2000000000005, 4\)"),  # past NumPy's limit
    (10**30, r"\(1, 2000000000000000000000000000005, "),
    (((10**12, 0), (0, 0)), r"\(1, 1000000000005, 5, 4\)"),  # 160 TB: was a MemoryError
])
def test_conv2d_huge_padding_names_padding_and_the_padded_shape(fn, padding, shape):
    with pytest.raises(ValueError, match=r"conv2d: padding \(\(.*with input \(5, 5\).*padded input image.*"
                                         + shape + ".*more than can be allocated"):
        fn(X, W, padding=padding)


def test_conv2d_huge_dilation_with_same_padding():
    with pytest.raises(ValueError, match=r"conv2d: padding .*dilation \(1000000000000, 1000000000000\).*" + TOO_BIG):
        conv2d(X, W, padding="same", dilation=10**12)


@pytest.mark.parametrize("option", [{"stride": 10**6}, {"stride": 10**30, "padding": "same"},
                                    {"dilation": 10**12}, {"stride": 10**6 + 1, "output_padding": 10**6}])
def test_conv_transpose2d_huge_output_names_the_options(option):
    with pytest.raises(ValueError, match=r"conv_transpose2d: stride .*dilation .*output_padding .*"
                                         r"the output \(NHWC\) " + TOO_BIG):
        conv_transpose2d(X, WT, **option)


@pytest.mark.parametrize("fwd, kwargs, words", [
    (max_pool2d, dict(kernel_size=10**12, padding="same"), "max_pool2d: kernel_size"),
    (avg_pool2d, dict(kernel_size=10**30, padding="same"), "avg_pool2d: kernel_size"),  # was OverflowError
    (max_pool2d, dict(kernel_size=(1, 10**12), ceil_mode=True), r"max_pool2d: kernel_size \(1, 1000000000000\)"),
    (max_pool2d, dict(kernel_size=2, dilation=10**12, padding="same"), r"dilation \(1000000000000"),
])
def test_pool_huge_window_names_the_options(fwd, kwargs, words):
    with pytest.raises(ValueError, match=words + ".*padded input image.* " + TOO_BIG):
        fwd(X, **kwargs)


def test_limit_is_checked_against_max_array_bytes(monkeypatch):
    # a modest padding that a tiny limit turns into "too big": the check uses the limit
    monkeypatch.setattr(checks, "MAX_ARRAY_BYTES", 10_000)
    with pytest.raises(ValueError, match=r"padding \(\(10, 10\), \(10, 10\)\).*\(1, 25, 25, 4\), 2e\+04 bytes"):
        conv2d(X, W, padding=10)
    monkeypatch.undo()
    y, cache = conv2d(X, W, padding=10)  # the same call is fine under the real limit
    assert y.shape == (2, 23, 23, 2)
    conv2d_backward(y, cache)


def test_huge_strides_selecting_one_window_still_work():
    assert conv2d(X, W, stride=10**30)[0].shape == (2, 1, 1, 2)
    assert max_pool2d(X, 2, stride=10**30)[0].shape == (2, 1, 1, 4)
    assert avg_pool2d(X, 2, stride=10**12, padding="same")[0].shape == (2, 1, 1, 4)


@pytest.mark.parametrize("call", [
    lambda x: conv2d(x, W), lambda x: conv2d(X, x[:, :3, :3, :2].reshape(3, 3, 4, 1)),
    lambda x: conv_transpose2d(x, WT), lambda x: max_pool2d(x, 2), lambda x: avg_pool2d(x, 2),
    lambda x: global_max_pool2d(x), lambda x: global_avg_pool2d(x),
])
def test_masked_arrays_are_refused_not_read_without_their_mask(call):
    x = np.ma.masked_array(np.ones((2, 5, 5, 4)), mask=False)
    x[0, 0, 0, 0] = np.ma.masked
    with pytest.raises(TypeError, match=r"(x|w) must be a plain numeric array; got a numpy.ma.MaskedArray"):
        call(x)

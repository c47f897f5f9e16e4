"""Hypothesis strategies for the exercise's functions."""

import numpy as np
from hypothesis import strategies as st


@st.composite
def conv_case(draw, dtype=None):
    """A valid conv_forward input: (A_prev, W, b, hparameters)."""
    f = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    m = draw(st.integers(1, 3))
    c_in = draw(st.integers(1, 3))
    c_out = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, f - 2 * pad), 7))
    w = draw(st.integers(max(1, f - 2 * pad), 7))
    dtype = dtype or draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, h, w, c_in)).astype(dtype)
    W = rng.standard_normal((f, f, c_in, c_out)).astype(dtype)
    b = rng.standard_normal((1, 1, 1, c_out)).astype(dtype)
    return A, W, b, {"stride": stride, "pad": pad}


@st.composite
def pool_case(draw, dtype=None, ties=False):
    """A valid pool_forward input: (A_prev, hparameters)."""
    f = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    m = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    h = draw(st.integers(f, 8))
    w = draw(st.integers(f, 8))
    dtype = dtype or draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if ties:
        A = rng.integers(0, 3, size=(m, h, w, c)).astype(dtype)
    else:
        A = rng.standard_normal((m, h, w, c)).astype(dtype)
    return A, {"f": f, "stride": stride}

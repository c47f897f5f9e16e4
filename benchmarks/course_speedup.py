"""How much faster the vectorized exercise functions are than the literal loops.

Conv forward + backward on the issue's shape: A_prev (8, 20, 20, 4), W (3, 3, 4, 8),
pad 1, stride 1; median of repeats. Run as:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/course_speedup.py
"""

import time

import numpy as np

from convblocks import course, loops


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 20, 20, 4))
    W = rng.standard_normal((3, 3, 4, 8))
    b = rng.standard_normal((1, 1, 1, 8))
    hp = {"stride": 1, "pad": 1}

    def step(impl):
        Z, cache = impl.conv_forward(A, W, b, hp)
        return impl.conv_backward(Z, cache)

    for got, want in zip(step(course), step(loops)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    t_loops = median_seconds(lambda: step(loops), 3)
    t_fast = median_seconds(lambda: step(course), 50)
    print(f"conv forward+backward, A_prev (8, 20, 20, 4), 8 3x3 filters: loops {t_loops * 1e3:.1f} ms, "
          f"vectorized {t_fast * 1e3:.3f} ms, {t_loops / t_fast:.0f}x faster")


if __name__ == "__main__":
    main()

"""Ad-hoc timing of convblocks' conv2d against PyTorch (float32, fwd and fwd+bwd).

Run with OpenBLAS's environment overrides removed:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/conv_timing.py \
        [--repeats 7] [--only d,e] [--float64] [--threads 1 --cpu-time] [--winograd]

On a loaded shared machine, wall-clock samples with 2 BLAS threads vary by 10x; one
thread with process CPU time (--threads 1 --cpu-time) gives stable ratios.

Ours runs NHWC input with HWIO weights; PyTorch runs NCHW on the same data. Samples
alternate between the two, each after a 0.15 s pause (OpenBLAS workers spin ~0.1 s
after a GEMM and would slow whatever runs next); the ratio reported is the median of
the per-pair ratios.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import torch

from convblocks.functional import conv2d, conv2d_backward

# name: (batch, H, W, C_in, kernel, C_out, pad, stride)
SHAPES = {
    "a": (10, 4, 4, 3, 2, 8, 2, 2),
    "b": (64, 28, 28, 1, 5, 6, 2, 1),
    "c": (64, 14, 14, 6, 5, 16, 0, 1),
    "d": (32, 32, 32, 64, 3, 64, 1, 1),
    "e": (16, 56, 56, 64, 3, 128, 1, 2),
}


CLOCK = time.perf_counter


def _sample(fn, inner: int) -> float:
    time.sleep(0.15)
    t0 = CLOCK()
    for _ in range(inner):
        fn()
    return (CLOCK() - t0) / inner


def bench(name: str, dtype, repeats: int) -> dict:
    N, H, W, C, k, K, pad, s = SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    w = (rng.standard_normal((k, k, C, K)) / np.sqrt(k * k * C)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    y, _ = conv2d(x, w, b, stride=s, padding=pad)
    dy = rng.standard_normal(y.shape).astype(dtype)

    tdt = torch.float32 if dtype == np.float32 else torch.float64
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), dtype=tdt, requires_grad=True)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).copy(), dtype=tdt, requires_grad=True)
    bt = torch.tensor(b, dtype=tdt, requires_grad=True)
    dyt = torch.tensor(dy.transpose(0, 3, 1, 2).copy(), dtype=tdt)

    def ours_f():
        conv2d(x, w, b, stride=s, padding=pad)

    def ours_fb():
        y, c = conv2d(x, w, b, stride=s, padding=pad)
        conv2d_backward(dy, c)

    def torch_f():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=pad)

    def torch_fb():
        xt.grad = wt.grad = bt.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=pad).backward(dyt)

    # enough inner iterations for a ~50 ms sample
    t = _sample(ours_fb, 1)
    inner = max(1, int(0.05 / max(t, 1e-6)))
    res = {}
    for label, ours, theirs in (("fwd", ours_f, torch_f), ("fwd+bwd", ours_fb, torch_fb)):
        o, p = [], []
        for _ in range(repeats):
            o.append(_sample(ours, inner))
            p.append(_sample(theirs, inner))
        # the ratio of each adjacent pair is robust to load that drifts between pairs
        res[label] = (float(np.median(o)), float(np.median(p)),
                      float(np.median(np.array(o) / np.array(p))))
    tracemalloc.start()
    ours_fb()
    res["peak_MiB"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", default="a,b,c,d,e")
    ap.add_argument("--float64", action="store_true", help="also time float64 (ratio to our float32)")
    ap.add_argument("--threads", type=int, default=2, help="BLAS and torch threads (default 2)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="process CPU time instead of wall time (robust to a loaded machine with --threads 1)")
    ap.add_argument("--winograd", action="store_true", help="enable Winograd for 3x3 stride-1 layers")
    args = ap.parse_args()
    from convblocks.functional.winograd import set_winograd
    set_winograd(args.winograd)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    for name in args.only.split(","):
        r = bench(name, np.float32, args.repeats)
        line = (f"({name}) f32 fwd {r['fwd'][0]*1e3:8.2f} ms / torch {r['fwd'][1]*1e3:8.2f} = "
                f"{r['fwd'][2]:5.2f}   fwd+bwd {r['fwd+bwd'][0]*1e3:8.2f} / "
                f"{r['fwd+bwd'][1]*1e3:8.2f} = {r['fwd+bwd'][2]:5.2f}   "
                f"peak {r['peak_MiB']:6.1f} MiB")
        if args.float64:
            r64 = bench(name, np.float64, args.repeats)
            line += (f"   f64/f32 fwd {r64['fwd'][0]/r['fwd'][0]:4.2f} "
                     f"fwd+bwd {r64['fwd+bwd'][0]/r['fwd+bwd'][0]:4.2f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()

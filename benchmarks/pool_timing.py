"""Ad-hoc timing of convblocks' pooling against PyTorch (CPU), forward and forward+backward.

Run with
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/pool_timing.py``.
Torch runs on ``--threads`` threads (default 2, as do our kernels) on the same data,
both in NCHW-contiguous and channels_last memory; calls are interleaved and the median
(and the minimum) of ``--repeats`` rounds is reported. Every sample is preceded by a
``--pause`` (0.15 s, as in ``convblocks bench``): PyTorch's OpenMP workers busy-wait for
a few milliseconds after each call and would otherwise take a core from whatever is
timed next. On a machine shared with other work, ``--clock cpu --threads 1`` compares
CPU time, which other processes disturb less.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from convblocks.functional import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from convblocks.functional import set_num_threads

SHAPES = [(64, 28, 28, 6), (64, 10, 10, 16), (32, 32, 32, 64), (16, 28, 28, 128)]
CASES = [("max", 2, 2), ("avg", 2, 2), ("max", 3, 2)]


def ours(kind, x, k, s, dy, backward):
    if kind == "max":
        y, c = max_pool2d(x, k, stride=s)
        return max_pool2d_backward(dy, c) if backward else y
    y, c = avg_pool2d(x, k, stride=s)
    return avg_pool2d_backward(dy, c) if backward else y


def theirs(kind, xt, k, s, dyt, backward):
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    if not backward:
        with torch.no_grad():
            return fn(xt, k, s)
    xt.grad = None
    y = fn(xt, k, s)
    y.backward(dyt)
    return xt.grad


_TIMER = time.perf_counter


def clock(fn, inner):
    t0 = _TIMER()
    for _ in range(inner):
        fn()
    return (_TIMER() - t0) / inner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--pause", type=float, default=0.15,
                    help="seconds to sleep before every sample (lets torch's threads go idle)")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=2, help="threads for torch and for ours")
    ap.add_argument("--cases", default="max2,avg2,max3", help="comma-separated: max2, avg2, max3")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: process CPU time, robust to other processes on a shared "
                         "machine (use with --threads 1: it sums all threads' time)")
    ap.add_argument("--relu", action="store_true",
                    help="time on max(x, 0), as after a ReLU: many tied (all-zero) windows")
    args = ap.parse_args()
    global _TIMER
    _TIMER = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    wanted = {f"{kind}{k}" for kind, k, _ in CASES} & set(args.cases.split(","))
    rng = np.random.default_rng(0)
    print(f"{args.clock} time, medians (min in brackets) of {args.repeats} interleaved rounds, "
          f"{args.dtype}{' after ReLU' if args.relu else ''}, {args.threads} threads; "
          f"ratio = ours / faster torch layout")
    print(f"{'case':>10} {'shape':>18} {'mode':>7} {'ours ms':>8} {'nchw ms':>8} {'cl ms':>8} "
          f"{'ratio':>6} {'(min)':>6}")
    for kind, k, s in CASES:
        if f"{kind}{k}" not in wanted:
            continue
        for shape in SHAPES:
            x = rng.standard_normal(shape).astype(args.dtype)
            if args.relu:
                x = np.maximum(x, 0)
            y = ours(kind, x, k, s, None, False)
            dy = rng.standard_normal(y.shape).astype(args.dtype)
            xt_nchw = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
            xt_cl = torch.tensor(x.transpose(0, 3, 1, 2)).contiguous(
                memory_format=torch.channels_last).requires_grad_(True)
            dyt_nchw = torch.tensor(dy.transpose(0, 3, 1, 2).copy())
            dyt_cl = torch.tensor(dy.transpose(0, 3, 1, 2)).contiguous(
                memory_format=torch.channels_last)
            for backward in (False, True):
                fns = [lambda: ours(kind, x, k, s, dy, backward),
                       lambda: theirs(kind, xt_nchw, k, s, dyt_nchw, backward),
                       lambda: theirs(kind, xt_cl, k, s, dyt_cl, backward)]
                t1 = clock(fns[0], 1)
                inner = max(1, int(0.02 / max(t1, 1e-6)))
                times = [[], [], []]
                for _ in range(args.repeats):
                    for i, fn in enumerate(fns):
                        time.sleep(args.pause)
                        times[i].append(clock(fn, inner))
                med = [float(np.median(t)) * 1e3 for t in times]
                low = [float(np.min(t)) * 1e3 for t in times]
                ratio = med[0] / min(med[1], med[2])
                ratio_min = low[0] / min(low[1], low[2])
                print(f"{kind} {k}x{k}/{s} {str(shape):>18} {'fwd+bwd' if backward else 'fwd':>7} "
                      f"{med[0]:8.3f} {med[1]:8.3f} {med[2]:8.3f} {ratio:6.2f} ({ratio_min:4.2f})",
                      flush=True)


if __name__ == "__main__":
    main()

"""The benchmark cases: which convolutions and poolings are timed, and how.

Conv cases (NHWC; batch, H, W, C_in, kernel, C_out, padding, stride):

* a: 10, 4, 4, 3, 2x2, 8, pad 2, stride 2: the exercise's own example (pure overhead);
* b: 64, 28, 28, 1, 5x5, 6, pad 2, stride 1: LeNet layer 1 on MNIST;
* c: 64, 14, 14, 6, 5x5, 16, pad 0, stride 1: LeNet layer 2;
* d: 32, 32, 32, 64, 3x3, 64, pad 1, stride 1: a VGG/ResNet block (GEMM-bound);
* e: 16, 56, 56, 64, 3x3, 128, pad 1, stride 2: a ResNet down-sampling layer.

Pooling cases ``<conv id>.<max2|avg2|max3>`` run 2x2/2 max, 2x2/2 avg and 3x3/2 max on
the output shapes of b-e. Every case builds a :class:`~convblocks.bench.harness.Workload`
from fixed random inputs: ours on NHWC arrays, PyTorch on NCHW and channels_last tensors
holding the same numbers (the harness reports the faster layout).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .harness import Target, Workload

__all__ = ["ConvCase", "PoolCase", "CONV_CASES", "POOL_CASES", "ALL_CASES", "select_cases",
           "max_rel_err"]

#: fwd+bwd time ratio (ours / torch) targets from the project issue, per conv case.
CONV_RATIO_TARGETS = {"a": 0.5, "b": 2.0, "c": 2.0, "d": 1.5, "e": 1.5}
POOL_RATIO_TARGET = 1.25
F64_TARGET = 2.0
#: Peak temporary memory target (MiB) of our fwd+bwd, per conv case.
MEMORY_TARGETS = {"d": 64.0}


def max_rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """``max|ours - ref| / max|ref|`` (absolute error when ``ref`` is all zeros)."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise ValueError(f"shapes differ: ours {ours.shape}, reference {ref.shape}")
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = float(np.max(np.abs(ours - ref))) if ref.size else 0.0
    return err / scale if scale > 0 else err


def _nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))       # (N, H, W, C) -> (N, C, H, W)


def _torch_layouts(torch: Any, arrays: dict[str, np.ndarray], grad: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The same NCHW/OIHW numbers as torch tensors, in both memory layouts.

    ``arrays`` maps names to NCHW (or OIHW, or 1-D) arrays; those named in ``grad``
    require gradients. 4-D tensors become channels_last in the second layout.
    """
    out: dict[str, dict[str, Any]] = {}
    for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        tensors = {}
        for name, a in arrays.items():
            t = torch.from_numpy(np.array(a, order="C", copy=True))
            if t.dim() == 4:
                t = t.contiguous(memory_format=fmt)
            if name in grad:
                t.requires_grad_(True)
            tensors[name] = t
        out[layout] = tensors
    return out


@dataclass(frozen=True)
class ConvCase:
    """One convolution: NHWC input ``(batch, h, w, c_in)``, HWIO ``(k, k, c_in, c_out)``."""

    id: str
    batch: int
    h: int
    w: int
    c_in: int
    k: int
    c_out: int
    pad: int
    stride: int
    kind: str = "conv"

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width (floor rule)."""
        return ((self.h + 2 * self.pad - self.k) // self.stride + 1,
                (self.w + 2 * self.pad - self.k) // self.stride + 1)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        """Output shape, NHWC."""
        return (self.batch, *self.out_hw, self.c_out)

    @property
    def title(self) -> str:
        return (f"{self.batch}×{self.h}×{self.w}×{self.c_in} {self.k}×{self.k}→{self.c_out} "
                f"p{self.pad} s{self.stride}")

    def params(self) -> dict[str, Any]:
        return {"batch": self.batch, "h": self.h, "w": self.w, "c_in": self.c_in,
                "kernel": [self.k, self.k], "c_out": self.c_out, "padding": self.pad,
                "stride": self.stride, "input_shape": [self.batch, self.h, self.w, self.c_in],
                "output_shape": list(self.out_shape), "data_format": "NHWC"}

    def flops_fwd(self) -> int:
        """``2 * N * Ho * Wo * C_out * kh * kw * C_in`` (groups = 1); fwd+bwd is 3x this."""
        ho, wo = self.out_hw
        return 2 * self.batch * ho * wo * self.c_out * self.k * self.k * self.c_in

    def targets(self) -> list[Target]:
        out = [Target("fwd+bwd ratio", "fwdbwd_ratio", CONV_RATIO_TARGETS[self.id]),
               Target("float64/float32", "f64_over_f32", F64_TARGET)]
        if self.id in MEMORY_TARGETS:
            out.append(Target("temp memory", "temp_mib", MEMORY_TARGETS[self.id], " MiB"))
        return out

    def _arrays(self, dtype: type, seed: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.batch, self.h, self.w, self.c_in)).astype(dtype)
        # He-style scale keeps outputs O(1) whatever the fan-in.
        scale = np.sqrt(2.0 / (self.k * self.k * self.c_in))
        w = (rng.standard_normal((self.k, self.k, self.c_in, self.c_out)) * scale).astype(dtype)
        b = rng.standard_normal(self.c_out).astype(dtype)
        dy = rng.standard_normal(self.out_shape).astype(dtype)
        return x, w, b, dy

    def workload(self, *, torch: Any = None, float64: bool = True, seed: int = 0) -> Workload:
        """Our float32 (and float64) fwd / fwd+bwd, and torch's in both layouts."""
        from convblocks.functional import conv2d, conv2d_backward

        opts = dict(stride=self.stride, padding=self.pad)

        def ours(dtype: type) -> tuple[Callable[[], Any], Callable[[], tuple]]:
            x, w, b, dy = self._arrays(dtype, seed)

            def fwd() -> Any:
                return conv2d(x, w, b, **opts)

            def fwdbwd() -> tuple:
                y, cache = conv2d(x, w, b, **opts)
                dx, dw, db = conv2d_backward(dy, cache)
                return y, dx, dw, db
            return fwd, fwdbwd

        fwd32, fb32 = ours(np.float32)
        load = Workload(ours_fwd=fwd32, ours_fwdbwd=fb32,
                        ours64_fwdbwd=ours(np.float64)[1] if float64 else None)
        if torch is None:
            return load

        import torch.nn.functional as F
        x, w, b, dy = self._arrays(np.float32, seed)
        layouts = _torch_layouts(torch, {"x": _nchw(x), "w": w.transpose(3, 2, 0, 1),  # HWIO -> OIHW
                                         "b": b, "dy": _nchw(dy)}, grad=("x", "w", "b"))
        for layout, t in layouts.items():
            def tfwd(t: dict = t) -> Any:
                return F.conv2d(t["x"], t["w"], t["b"], stride=self.stride, padding=self.pad)

            def tfb(t: dict = t) -> Any:
                y = F.conv2d(t["x"], t["w"], t["b"], stride=self.stride, padding=self.pad)
                return (y, *torch.autograd.grad(y, (t["x"], t["w"], t["b"]), t["dy"]))
            load.torch_fwd[layout] = tfwd
            load.torch_fwdbwd[layout] = tfb

        def check() -> float:
            y, dx, dw, db = fb32()
            ty, tdx, tdw, tdb = (a.detach().numpy() for a in load.torch_fwdbwd["nchw"]())
            return max(max_rel_err(y, ty.transpose(0, 2, 3, 1)),        # NCHW -> NHWC
                       max_rel_err(dx, tdx.transpose(0, 2, 3, 1)),
                       max_rel_err(dw, tdw.transpose(2, 3, 1, 0)),       # OIHW -> HWIO
                       max_rel_err(db, tdb))
        load.check = check
        return load


@dataclass(frozen=True)
class PoolCase:
    """One pooling of an NHWC ``shape`` with a ``k x k`` window and stride ``stride``."""

    id: str
    op: str          # 'max' or 'avg'
    shape: tuple[int, int, int, int]
    k: int
    stride: int
    kind: str = "pool"

    @property
    def title(self) -> str:
        n, h, w, c = self.shape
        return f"{self.op} {self.k}×{self.k}/{self.stride} on {n}×{h}×{w}×{c}"

    def params(self) -> dict[str, Any]:
        return {"op": self.op, "kernel": [self.k, self.k], "stride": self.stride,
                "input_shape": list(self.shape), "data_format": "NHWC"}

    def flops_fwd(self) -> None:
        """Pooling is memory-bound: no FLOP count, no GFLOP/s."""
        return None

    def targets(self) -> list[Target]:
        return [Target("fwd+bwd ratio", "fwdbwd_ratio", POOL_RATIO_TARGET)]

    def workload(self, *, torch: Any = None, float64: bool = False, seed: int = 0) -> Workload:
        """Our float32 fwd / fwd+bwd, and torch's in both layouts (no float64 target)."""
        from convblocks import functional as fn

        forward = fn.max_pool2d if self.op == "max" else fn.avg_pool2d
        backward = fn.max_pool2d_backward if self.op == "max" else fn.avg_pool2d_backward
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.shape).astype(np.float32)
        y0, _ = forward(x, self.k, stride=self.stride)
        dy = rng.standard_normal(y0.shape).astype(np.float32)

        def fwd() -> Any:
            return forward(x, self.k, stride=self.stride)

        def fwdbwd() -> tuple:
            y, cache = forward(x, self.k, stride=self.stride)
            return y, backward(dy, cache)

        load = Workload(ours_fwd=fwd, ours_fwdbwd=fwdbwd)
        if torch is None:
            return load

        import torch.nn.functional as F
        tpool = F.max_pool2d if self.op == "max" else F.avg_pool2d
        layouts = _torch_layouts(torch, {"x": _nchw(x), "dy": _nchw(dy)}, grad=("x",))
        for layout, t in layouts.items():
            def tfwd(t: dict = t) -> Any:
                return tpool(t["x"], self.k, self.stride)

            def tfb(t: dict = t) -> Any:
                y = tpool(t["x"], self.k, self.stride)
                return (y, *torch.autograd.grad(y, (t["x"],), t["dy"]))
            load.torch_fwd[layout] = tfwd
            load.torch_fwdbwd[layout] = tfb

        def check() -> float:
            y, dx = fwdbwd()
            ty, tdx = (a.detach().numpy() for a in load.torch_fwdbwd["nchw"]())
            return max(max_rel_err(y, ty.transpose(0, 2, 3, 1)),        # NCHW -> NHWC
                       max_rel_err(dx, tdx.transpose(0, 2, 3, 1)))
        load.check = check
        return load


CONV_CASES: tuple[ConvCase, ...] = (
    ConvCase("a", 10, 4, 4, 3, 2, 8, pad=2, stride=2),
    ConvCase("b", 64, 28, 28, 1, 5, 6, pad=2, stride=1),
    ConvCase("c", 64, 14, 14, 6, 5, 16, pad=0, stride=1),
    ConvCase("d", 32, 32, 32, 64, 3, 64, pad=1, stride=1),
    ConvCase("e", 16, 56, 56, 64, 3, 128, pad=1, stride=2),
)

POOL_CASES: tuple[PoolCase, ...] = tuple(
    PoolCase(f"{conv.id}.{op}{k}", op, conv.out_shape, k, 2)
    for conv in CONV_CASES if conv.id != "a"
    for op, k in (("max", 2), ("avg", 2), ("max", 3))
)

ALL_CASES: tuple[ConvCase | PoolCase, ...] = CONV_CASES + POOL_CASES

_GROUPS = {"all": ALL_CASES, "conv": CONV_CASES, "pool": POOL_CASES, "none": ()}


def select_cases(spec: str | None) -> list[ConvCase | PoolCase]:
    """The cases named by a comma-separated ``spec``, in the canonical order.

    Each item is a case id (``d``, ``b.max2``), a group (``all``, ``conv``, ``pool``,
    ``none``) or a shell pattern (``d*``: d and its poolings; ``*.avg2``). ``None``
    means all.
    """
    if spec is None:
        return list(ALL_CASES)
    if not isinstance(spec, str):
        raise TypeError(f"cases must be a comma-separated string; got {type(spec).__name__}")
    chosen: set[str] = set()
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item in _GROUPS:
            matched = [c.id for c in _GROUPS[item]]
        else:
            matched = [c.id for c in ALL_CASES if fnmatch.fnmatchcase(c.id, item)]
        if not matched and item != "none":
            valid = ", ".join(c.id for c in ALL_CASES)
            raise ValueError(f"cases: {item!r} matches no case; expected ids ({valid}), "
                             f"groups (all, conv, pool, none) or patterns such as 'd*'")
        chosen.update(matched)
    return [c for c in ALL_CASES if c.id in chosen]


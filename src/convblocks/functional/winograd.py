"""Winograd F(2x2, 3x3): 3x3 stride-1 convolutions with 2.25x fewer multiplications.

A 2x2 block of outputs of a 3x3 correlation reads a 4x4 tile of input. Winograd's
minimal filtering computes it as ``Y = A^T [(G w G^T) * (B^T d B)] A`` (``*``
elementwise over the 4x4 tile): 16 multiplications instead of 36. Summed over
channels, the elementwise products become 16 independent GEMMs
``(tiles, C) @ (C, K)`` on transformed data, and the transforms are a handful of
additions on strided views. The weight gradient is the exact adjoint:
``dW = G^T [sum over tiles of (B^T d B)^T (A dy A^T)] G``.

Errors stay at float rounding level (the matrices hold only 0, +-1 and 1/2): relative
error vs float64 is about 1e-6 in float32. Used for ``kernel 3x3, stride 1, dilation
1, groups 1`` with enough channels and pixels for the GEMMs to dominate the transforms.

Off by default (:func:`set_winograd`): it makes 16 BLAS calls per block of images
where the direct GEMM makes one. With one BLAS thread it is 10-30% faster than the
direct GEMM on such layers; with several BLAS threads on a busy machine every call
waits for a descheduled worker thread and it was measured up to 4x slower, and on an
idle one its single-threaded transforms leave little of the gain.
"""

from __future__ import annotations

import numpy as np

from .checks import as_bool
from .padding import Padding2D
from .workspace import batch_chunk

__all__ = ["set_winograd", "get_winograd", "winograd_applies", "winograd_forward", "winograd_weight_grad"]

Pair = tuple[int, int]

# G (4x3) transforms a 3-tap filter; B^T and A^T (below, as additions) the data.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# Below these sizes the transforms (memory bound, one thread) and the per-block
# overheads outweigh the saved GEMM work (measured: 16 channels or 8x8 outputs lose,
# 64 channels at 32x32 gain 20-35% over the direct GEMM).
_MIN_CHANNELS = 32
_MIN_OUT_SIZE = 16
# The 16 GEMMs run on blocks of about this many bytes of transformed tiles: fewer,
# larger BLAS calls (each wakes and synchronizes BLAS's threads). The transforms walk
# each block in sub-blocks of about _TRANSFORM_BLOCK_BYTES that stay in cache.
_GEMM_BLOCK_BYTES = 4 * 1024 * 1024
_TRANSFORM_BLOCK_BYTES = 2 * 1024 * 1024


_enabled = False


def set_winograd(enabled: bool) -> bool:
    """Let 3x3 stride-1 layers use Winograd (True) or always the direct GEMM (False).

    Enable it when NumPy's BLAS runs one thread (e.g. ``threadpoolctl``'s
    ``threadpool_limits(1)``, or one training process per core). Returns the previous
    setting.
    """
    global _enabled
    previous, _enabled = _enabled, as_bool(enabled, "enabled")
    return previous


def get_winograd() -> bool:
    """Whether Winograd is enabled (see :func:`set_winograd`)."""
    return _enabled


def winograd_applies(kernel_size: Pair, stride: Pair, dilation: Pair, groups: int,
                     channels_in: int, channels_out: int, out_hw: Pair) -> bool:
    """Whether the F(2x2, 3x3) kernels handle this convolution (enabled, and it pays off)."""
    return (_enabled and kernel_size == (3, 3) and stride == (1, 1) and dilation == (1, 1)
            and groups == 1 and min(channels_in, channels_out) >= _MIN_CHANNELS
            and min(out_hw) >= _MIN_OUT_SIZE)


def _tiles(out_hw: Pair) -> Pair:
    return -(-out_hw[0] // 2), -(-out_hw[1] // 2)


def _input_transform(xp: np.ndarray, th: int, tw: int, rows: np.ndarray, v: np.ndarray) -> None:
    """``v[4a + b] = (B^T d B)[a, b]`` for every 4x4 tile ``d`` of ``xp``, tiles 2 apart.

    xp : (b, 2*th + 2, >= 2*tw + 2, C) padded block; rows : (4, b, th, Wp, C) scratch;
    v : (16, b, th, tw, C) output. ``B^T = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]]``.
    """
    d = [xp[:, a:a + 2 * th:2] for a in range(4)]  # tile row a of every tile: (b, th, Wp, C)
    np.subtract(d[0], d[2], out=rows[0])
    np.add(d[1], d[2], out=rows[1])
    np.subtract(d[2], d[1], out=rows[2])
    np.subtract(d[1], d[3], out=rows[3])
    for a in range(4):
        e = [rows[a][:, :, c:c + 2 * tw:2] for c in range(4)]  # (b, th, tw, C)
        np.subtract(e[0], e[2], out=v[4 * a])
        np.add(e[1], e[2], out=v[4 * a + 1])
        np.subtract(e[2], e[1], out=v[4 * a + 2])
        np.subtract(e[1], e[3], out=v[4 * a + 3])


def _padded_block(x: np.ndarray, n0: int, b: int, buf: np.ndarray, padding: Padding2D) -> np.ndarray:
    """Copy images ``n0:n0+b`` into the zero-bordered buffer (only rows/cols it holds)."""
    (pt, _), (pl, _) = padding
    H = min(x.shape[1], buf.shape[1] - pt)
    W = min(x.shape[2], buf.shape[2] - pl)
    out = buf[:b]
    out[:, pt:pt + H, pl:pl + W] = x[n0:n0 + b, :H, :W]
    return out


def _block_sizes(n: int, th: int, tw: int, Hp: int, Wp: int, C: int, K: int, item: int) -> Pair:
    """Images per GEMM block and per transform sub-block.

    The 16 GEMMs run on a block of images (fewer, larger BLAS calls); the transforms
    walk it in sub-blocks small enough to stay in cache. Both fit the workspace limit.
    """
    gemm_bytes = item * 16 * th * tw * (C + K)                                 # v and m
    transform_bytes = item * (Hp * Wp * C + 4 * th * Wp * C + 16 * th * tw * K)  # xp, rows, s/dy tiles
    nb = max(1, min(batch_chunk(n, gemm_bytes + transform_bytes), _GEMM_BLOCK_BYTES // gemm_bytes))
    return nb, max(1, min(nb, _TRANSFORM_BLOCK_BYTES // transform_bytes))


def _sub_blocks(b: int, ns: int, tiles: int):
    """``(first image, images, tile slice)`` of each transform sub-block of a GEMM block."""
    for s0 in range(0, b, ns):
        sb = min(ns, b - s0)
        yield s0, sb, slice(s0 * tiles, (s0 + sb) * tiles)


def winograd_forward(x: np.ndarray, w: np.ndarray, *, padding: Padding2D, out_hw: Pair) -> np.ndarray:
    """3x3 stride-1 correlation of ``x`` (N, H, W, C) with ``w`` (3, 3, C, K) -> (N, Ho, Wo, K)."""
    N, H, W, C = x.shape
    K = w.shape[3]
    Ho, Wo = out_hw
    th, tw = _tiles(out_hw)
    tiles = th * tw
    (pt, _), (pl, _) = padding
    Hp, Wp = max(2 * th + 2, pt + H), max(2 * tw + 2, pl + W)
    # U[a, b] = G w G^T: (4, 3) (3, 3, C, K) (3, 4) -> (16, C, K), in float64 then cast
    u = np.einsum("ap,pqck,bq->abck", _G, w.astype(np.float64), _G).astype(x.dtype).reshape(16, C, K)
    nb, ns = _block_sizes(N, th, tw, Hp, Wp, C, K, x.itemsize)
    xp = np.zeros((ns, Hp, Wp, C), dtype=x.dtype)
    rows = np.empty((4, ns, th, Wp, C), dtype=x.dtype)
    v = np.empty((16, nb * tiles, C), dtype=x.dtype)
    m = np.empty((16, nb * tiles, K), dtype=x.dtype)
    s = np.empty((2, 4, ns * tiles, K), dtype=x.dtype)
    even = Ho == 2 * th and Wo == 2 * tw
    y = np.empty((N, Ho, Wo, K), dtype=x.dtype)
    t = None if even else np.empty((ns, th, 2, tw, 2, K), dtype=x.dtype)
    for n0 in range(0, N, nb):
        b = min(nb, N - n0)
        for s0, sb, ts in _sub_blocks(b, ns, tiles):
            xb = _padded_block(x, n0 + s0, sb, xp, padding)
            _input_transform(xb, th, tw, rows[:, :sb], v[:, ts].reshape(16, sb, th, tw, C))
        T = b * tiles
        # 16 GEMMs: (16, tiles, C) @ (16, C, K) -> (16, tiles, K)
        np.matmul(v[:, :T], u, out=m[:, :T])
        for s0, sb, ts in _sub_blocks(b, ns, tiles):
            mb = m[:, ts].reshape(4, 4, sb * tiles, K)
            # A^T = [[1, 1, 1, 0], [0, 1, -1, -1]] on tile rows, then on tile columns
            ss = s[:, :, :sb * tiles]
            np.add(mb[0], mb[1], out=ss[0])
            ss[0] += mb[2]
            np.subtract(mb[1], mb[2], out=ss[1])
            ss[1] -= mb[3]
            # (sb, th, 2, tw, 2, K) is the output sub-block viewed tile by tile
            n1 = n0 + s0
            tb = y[n1:n1 + sb].reshape(sb, th, 2, tw, 2, K) if even else t[:sb]
            for a in range(2):
                r = ss[a].reshape(4, sb, th, tw, K)
                np.add(r[0], r[1], out=tb[:, :, a, :, 0])
                tb[:, :, a, :, 0] += r[2]
                np.subtract(r[1], r[2], out=tb[:, :, a, :, 1])
                tb[:, :, a, :, 1] -= r[3]
            if not even:
                y[n1:n1 + sb] = tb.reshape(sb, 2 * th, 2 * tw, K)[:, :Ho, :Wo]
    return y


def winograd_weight_grad(x: np.ndarray, dy: np.ndarray, *, padding: Padding2D) -> np.ndarray:
    """Weight gradient of :func:`winograd_forward`: ``x`` (N, H, W, C), ``dy`` (N, Ho, Wo, K) -> (3, 3, C, K)."""
    N, H, W, C = x.shape
    _, Ho, Wo, K = dy.shape
    th, tw = _tiles((Ho, Wo))
    tiles = th * tw
    (pt, _), (pl, _) = padding
    Hp, Wp = max(2 * th + 2, pt + H), max(2 * tw + 2, pl + W)
    nb, ns = _block_sizes(N, th, tw, Hp, Wp, C, K, x.itemsize)
    xp = np.zeros((ns, Hp, Wp, C), dtype=x.dtype)
    rows = np.empty((4, ns, th, Wp, C), dtype=x.dtype)
    v = np.empty((16, nb * tiles, C), dtype=x.dtype)
    dm = np.empty((16, nb * tiles, K), dtype=x.dtype)
    drows = np.empty((4, ns, th, tw, 2, K), dtype=x.dtype)
    dyp = np.zeros((ns, th, 2, tw, 2, K), dtype=x.dtype)  # dy in whole tiles (odd sizes: zeros)
    du = np.zeros((16, C, K), dtype=x.dtype)
    prod = np.empty((16, C, K), dtype=x.dtype)
    for n0 in range(0, N, nb):
        b = min(nb, N - n0)
        for s0, sb, ts in _sub_blocks(b, ns, tiles):
            n1 = n0 + s0
            xb = _padded_block(x, n1, sb, xp, padding)
            _input_transform(xb, th, tw, rows[:, :sb], v[:, ts].reshape(16, sb, th, tw, C))
            g = dyp[:sb]
            g.reshape(sb, 2 * th, 2 * tw, K)[:, :Ho, :Wo] = dy[n1:n1 + sb]
            # A = [[1, 0], [1, 1], [1, -1], [0, -1]] expands each 2x2 tile of dy to 4x4: rows ...
            r = drows[:, :sb]
            np.copyto(r[0], g[:, :, 0])
            np.add(g[:, :, 0], g[:, :, 1], out=r[1])
            np.subtract(g[:, :, 0], g[:, :, 1], out=r[2])
            np.negative(g[:, :, 1], out=r[3])
            # ... then columns: dm[4a + c] = (A dy A^T)[a, c]
            dmb = dm[:, ts].reshape(4, 4, sb, th, tw, K)
            for a in range(4):
                np.copyto(dmb[a, 0], r[a][..., 0, :])
                np.add(r[a][..., 0, :], r[a][..., 1, :], out=dmb[a, 1])
                np.subtract(r[a][..., 0, :], r[a][..., 1, :], out=dmb[a, 2])
                np.negative(r[a][..., 1, :], out=dmb[a, 3])
        T = b * tiles
        # 16 GEMMs: (16, C, tiles) @ (16, tiles, K) -> (16, C, K); the transpose is a free view
        np.matmul(v[:, :T].transpose(0, 2, 1), dm[:, :T], out=prod)
        du += prod
    # dW = G^T dU G: (3, 4) (4, 4, C, K) (4, 3) -> (3, 3, C, K)
    dw = np.einsum("ap,abck,bq->pqck", _G, du.reshape(4, 4, C, K).astype(np.float64), _G)
    return dw.astype(x.dtype)

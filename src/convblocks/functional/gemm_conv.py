"""The three convolution kernels, as matrix products (im2col / col2im), NHWC only.

Every 2-D convolution, forward or backward, plain or transposed, is one of three
products over the "columns" matrix ``cols[(n, i, j), (p, q, c)] = xp[n, i*sh + p*dh,
j*sw + q*dw, c]`` (the padded input ``xp`` read window by window):

* forward          ``y  = cols @ W``       (M, kh*kw*C) @ (kh*kw*C, K) -> (M, K)
* weight gradient  ``dW = cols.T @ dy``    (kh*kw*C, M) @ (M, K) -> (kh*kw*C, K)
* input gradient   ``dcols = dy @ W.T``    then col2im: add every window back in place.

The trick that makes this fast in NumPy: ``cols`` is built from a strided *view* of
the windows (:func:`~convblocks.functional.windows.window_view`) with one copy, the
GEMM runs in BLAS on contiguous operands (a transposed operand is a free view that
BLAS reads directly), and col2im is a loop over the ``kh*kw`` kernel offsets adding
one strided slice each, never ``np.add.at``. The batch is processed in blocks of a few
images so that ``cols`` stays small (under the workspace limit, and cache-friendly).

Which layout of ``cols`` is fastest depends on the channels per group ``Cg``: with
many channels, pixel-major ``(M, kh*kw*Cg)`` (each window's taps are long contiguous
runs); with one channel (single-channel images, depthwise layers), channel-first
``(kh*kw, M)`` (each tap is a long contiguous run of output pixels); for the input
gradient with a few channels, tap-major ``(kh*kw, M, Cg)`` (col2im adds whole rows),
or, in float32 at stride 1 without groups, channel-first at the padded width so that
col2im adds whole flattened images (:func:`_input_grad_flat`). When the whole batch's columns are
small the forward keeps them for the weight gradient (:func:`conv_forward_keep_columns`).
3x3 stride-1 layers with enough channels go to :mod:`.winograd` instead.

Shapes here: activations NHWC ``(N, H, W, C)``, weights HWIO ``(kh, kw, C/groups, K)``,
``M = block * Ho * Wo`` rows. The public, validated API is :mod:`.conv`; these kernels
trust their arguments.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from . import buffers
from .padding import Padding2D
from .windows import pad_hw, window_view
from .winograd import winograd_applies, winograd_forward, winograd_weight_grad
from .workspace import batch_chunk

__all__ = ["conv_forward", "conv_forward_keep_columns", "conv_input_grad", "conv_weight_grad", "block_size"]

Pair = tuple[int, int]

# A block of images whose column matrix is about this size keeps the GEMM operands
# in the last-level cache and the temporaries small; the workspace limit caps it too.
_TARGET_BLOCK_BYTES = 8 * 1024 * 1024
# Input gradients with fewer channels per group than this use flat (float32, stride 1,
# ungrouped), channel-first (one channel) or tap-major col2im.
_TAP_MAJOR_MAX_CHANNELS = 16


def block_size(n: int, bytes_per_example: int) -> int:
    """Images per block: under the workspace limit and near the cache-friendly target."""
    target = max(1, _TARGET_BLOCK_BYTES // max(bytes_per_example, 1))
    return max(1, min(batch_chunk(n, bytes_per_example), target))


def _blocks(n: int, nb: int) -> Iterator[tuple[int, int]]:
    """``(start, size)`` of each block of ``nb`` images (the last may be smaller)."""
    for n0 in range(0, n, nb):
        yield n0, min(nb, n - n0)


def _padded_bytes(x: np.ndarray, padding: Padding2D) -> int:
    """Bytes of one padded image of ``x``."""
    (t, b), (l, r) = padding
    return (x.shape[1] + t + b) * (x.shape[2] + l + r) * x.shape[3] * x.itemsize


def _tap_range(offset: int, stride: int, pad_before: int, n_in: int, n_out: int) -> tuple[int, int, int]:
    """Windows ``i`` in ``[i0, i1)`` whose tap at ``offset`` reads an unpadded row.

    Window ``i`` reads input row ``r = i*stride + offset - pad_before``; the rows it can
    touch are ``0 <= r < n_in``. Returns ``(i0, i1, r0)`` with ``r0`` the row of ``i0``
    (``i1 <= i0`` when the tap only ever reads padding).
    """
    i0 = max(0, -(-(pad_before - offset) // stride))
    i1 = min(n_out, (n_in - 1 + pad_before - offset) // stride + 1)
    return i0, i1, i0 * stride + offset - pad_before


def _windows(x: np.ndarray, n0: int, b: int, padding: Padding2D, kernel_size: Pair, stride: Pair,
             dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Read-only window view of images ``n0:n0+b``: (b, Ho, Wo, kh, kw, C)."""
    return window_view(pad_hw(x[n0:n0 + b], padding), kernel_size, stride, dilation, out_hw)


def _column_buffer(nb: int, out_hw: Pair, kernel_size: Pair, cg: int, dtype) -> np.ndarray:
    """Workspace for one block's columns: channel-first ``(kh*kw, nb, Ho, Wo)`` when
    ``cg == 1``, else pixel-major ``(nb, Ho, Wo, kh, kw, cg)``."""
    (Ho, Wo), (kh, kw) = out_hw, kernel_size
    shape = (kh * kw, nb, Ho, Wo) if cg == 1 else (nb, Ho, Wo, kh, kw, cg)
    return buffers.empty(shape, dtype)


def _columns(cols: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Copy one group's windows into the column buffer; return the (M, kh*kw*Cg) matrix.

    ``win`` is (b, Ho, Wo, kh, kw, Cg). Channel-first buffers are filled tap by tap
    (long runs of pixels) and returned as a free transposed view of (kh*kw, M).
    """
    b, Ho, Wo, kh, kw, cg = win.shape
    if cg == 1:
        c = cols[:, :b]
        np.copyto(c.reshape(kh, kw, b, Ho, Wo), win[..., 0].transpose(3, 4, 0, 1, 2))
        return c.reshape(kh * kw, b * Ho * Wo).T
    c = cols[:b]
    np.copyto(c, win)
    return c.reshape(b * Ho * Wo, kh * kw * cg)


# ----------------------------------------------------------------------------- forward


def conv_forward(x: np.ndarray, w: np.ndarray, *, padding: Padding2D, stride: Pair,
                 dilation: Pair, groups: int, out_hw: Pair) -> np.ndarray:
    """:func:`conv_forward_keep_columns` without keeping the columns: ``y`` (N, Ho, Wo, K)."""
    return conv_forward_keep_columns(x, w, padding=padding, stride=stride, dilation=dilation, groups=groups,
                                     out_hw=out_hw, keep=False)[0]


def conv_forward_keep_columns(x: np.ndarray, w: np.ndarray, *, padding: Padding2D, stride: Pair,
                              dilation: Pair, groups: int, out_hw: Pair, keep: bool = True
                              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Cross-correlation ``y[n,i,j,k] = sum_{p,q,c} xp[n, i*sh+p*dh, j*sw+q*dw, c] w[p,q,c,k]``.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
        Unpadded input; padded block by block with zeros.
    w : ndarray, shape (kh, kw, C // groups, K)
    padding, stride, dilation, groups, out_hw
        Resolved options; ``out_hw = (Ho, Wo)`` windows are read.
    keep : bool
        Also return the column matrix when it is small (the whole batch fits one
        block of about ``_TARGET_BLOCK_BYTES``) and ``groups == 1``: the weight
        gradient then skips its own im2col (:func:`conv_weight_grad`'s ``columns``).
        Measured 7-10% off forward + backward of benchmark shapes (b) and (c).

    Returns
    -------
    y : ndarray, shape (N, Ho, Wo, K), contiguous, dtype of ``x``.
    columns : ndarray, shape (N*Ho*Wo, kh*kw*C), or None
        The column matrix (possibly a transposed view), when kept.
    """
    N, H, W, C = x.shape
    kh, kw, Cg, K = w.shape
    Ho, Wo = out_hw
    if winograd_applies((kh, kw), stride, dilation, groups, C, K, out_hw):
        return winograd_forward(x, w, padding=padding, out_hw=out_hw), None
    Kg = K // groups
    taps = kh * kw * Cg
    y = buffers.empty((N, Ho, Wo, K), x.dtype)
    nb = block_size(N, Ho * Wo * taps * x.itemsize + _padded_bytes(x, padding))
    # (kh*kw*Cg, Kg) per group
    w2d = [np.ascontiguousarray(w[..., g * Kg:(g + 1) * Kg]).reshape(taps, Kg) for g in range(groups)]
    keep = keep and groups == 1 and nb >= N
    cols = _column_buffer(nb, (Ho, Wo), (kh, kw), Cg, x.dtype)
    a = None  # the last block's column matrix (none for an empty batch)
    for n0, b in _blocks(N, nb):
        win = _windows(x, n0, b, padding, (kh, kw), stride, dilation, out_hw)  # (b, Ho, Wo, kh, kw, C)
        y2d = y[n0:n0 + b].reshape(b * Ho * Wo, K)
        for g in range(groups):
            a = _columns(cols, win[..., g * Cg:(g + 1) * Cg])
            # (b*Ho*Wo, kh*kw*Cg) @ (kh*kw*Cg, Kg) -> (b*Ho*Wo, Kg)
            if groups == 1:
                np.matmul(a, w2d[g], out=y2d)
            else:
                y2d[:, g * Kg:(g + 1) * Kg] = a @ w2d[g]
    return y, (a if keep else None)


# ----------------------------------------------------------------------------- weight gradient


def conv_weight_grad(x: np.ndarray, dy: np.ndarray, *, kernel_size: Pair, padding: Padding2D,
                     stride: Pair, dilation: Pair, groups: int, columns: np.ndarray | None = None
                     ) -> np.ndarray:
    """Weight gradient ``dw[p,q,c,k] = sum_{n,i,j} xp[n, i*sh+p*dh, j*sw+q*dw, c] dy[n,i,j,k]``.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
        The forward's unpadded input.
    dy : ndarray, shape (N, Ho, Wo, K)
        Gradient of the loss with respect to the forward's output.
    columns : ndarray, shape (N*Ho*Wo, kh*kw*C), optional
        The forward's column matrix of ``x`` (:func:`conv_forward_keep_columns`).

    Returns
    -------
    dw : ndarray, shape (kh, kw, C // groups, K)
    """
    if columns is not None:
        # (kh*kw*C, N*Ho*Wo) @ (N*Ho*Wo, K) -> (kh*kw*C, K); columns.T is a free view
        dw = columns.T @ dy.reshape(-1, dy.shape[3])
        return dw.reshape(kernel_size[0], kernel_size[1], x.shape[3], dy.shape[3])
    N, H, W, C = x.shape
    _, Ho, Wo, K = dy.shape
    kh, kw = kernel_size
    if winograd_applies(kernel_size, stride, dilation, groups, C, K, (Ho, Wo)):
        return winograd_weight_grad(x, dy, padding=padding)
    Cg, Kg = C // groups, K // groups
    taps = kh * kw * Cg
    # OpenBLAS's float64 GEMM runs 12-17% faster producing dw transposed, (Kg, taps) =
    # dy.T @ cols, on pixel-major columns; its float32 GEMM 5-10% slower (measured,
    # interleaved, blocks of 784 to 12544 rows). Each dtype takes its faster orientation.
    transposed = x.dtype == np.float64 and Cg > 1
    dw = np.zeros((groups, Kg, taps) if transposed else (groups, taps, Kg), dtype=x.dtype)
    part = np.empty(dw.shape[1:], dtype=x.dtype)
    nb = block_size(N, Ho * Wo * taps * x.itemsize + _padded_bytes(x, padding))
    cols = _column_buffer(nb, (Ho, Wo), (kh, kw), Cg, x.dtype)
    for n0, b in _blocks(N, nb):
        win = _windows(x, n0, b, padding, kernel_size, stride, dilation, (Ho, Wo))  # (b, Ho, Wo, kh, kw, C)
        dy2d = dy[n0:n0 + b].reshape(b * Ho * Wo, K)
        for g in range(groups):
            a = _columns(cols, win[..., g * Cg:(g + 1) * Cg])
            dyg = dy2d[:, g * Kg:(g + 1) * Kg]
            if transposed:
                # (Kg, b*Ho*Wo) @ (b*Ho*Wo, kh*kw*Cg) -> (Kg, kh*kw*Cg); dyg.T is a free view
                np.matmul(dyg.T, a, out=part)
            else:
                # (kh*kw*Cg, b*Ho*Wo) @ (b*Ho*Wo, Kg) -> (kh*kw*Cg, Kg); a.T is a free view
                np.matmul(a.T, dyg, out=part)
            dw[g] += part
    if transposed:
        dw = dw.transpose(0, 2, 1)  # (G, kh*kw*Cg, Kg)
    # (G, kh*kw*Cg, Kg) -> (kh, kw, Cg, G*Kg): output channel k = g*Kg + k'
    return dw.reshape(groups, kh, kw, Cg, Kg).transpose(1, 2, 3, 0, 4).reshape(kh, kw, Cg, K)


# ----------------------------------------------------------------------------- input gradient


def conv_input_grad(dy: np.ndarray, w: np.ndarray, *, in_hw: Pair, padding: Padding2D,
                    stride: Pair, dilation: Pair, groups: int) -> np.ndarray:
    """Input gradient (col2im), also the transposed convolution's forward.

    ``dx[n, r, s, c] = sum over windows (i, j) and taps (p, q) that read (r, s) of
    dy[n, i, j, k] w[p, q, c, k]``: form ``dcols = dy @ W.T`` and add each tap's slice
    back at its strided position, skipping taps that fall in the padding.

    Parameters
    ----------
    dy : ndarray, shape (N, Ho, Wo, K)
    w : ndarray, shape (kh, kw, C // groups, K)
    in_hw : (H, W)
        Size of the unpadded input being differentiated; padding rows (only the
        top/left amounts matter) are never materialized.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C), contiguous.
    """
    N, Ho, Wo, K = dy.shape
    kh, kw, Cg, _ = w.shape
    C = Cg * groups
    # The flat and stride-1 paths multiply zeros standing for dy outside the windows
    # by every tap: a NaN or infinite weight would put 0 * inf = NaN into pixels its
    # tap never reads. Such weights (a diverged model) take col2im, which adds real
    # windows' taps only, as PyTorch does.
    finite = bool(np.isfinite(w).all())
    # flat only in float32: in float64 its extra GEMM work on the (Wp - Wo) zero
    # columns cost more than the longer additions save (shape (c): 1.29 vs 1.20 ms)
    if (Cg < _TAP_MAJOR_MAX_CHANNELS and stride == (1, 1) and groups == 1
            and dy.dtype == np.float32 and finite):
        return _input_grad_flat(dy, w, in_hw=in_hw, padding=padding, dilation=dilation)
    # Windows that tile the input (stride = kernel, no dilation or padding): every
    # pixel is one tap of one window (or none, past the last window).
    tiled = stride == (kh, kw) and dilation == (1, 1) and padding == ((0, 0), (0, 0))
    if tiled:
        layout = "pixel_major"
    elif Cg == 1:
        layout = "channel_first"
    elif Cg < _TAP_MAJOR_MAX_CHANNELS:
        layout = "tap_major"
    elif stride == (1, 1) and finite:
        return _input_grad_stride1(dy, w, in_hw=in_hw, padding=padding, dilation=dilation, groups=groups)
    else:
        layout = "pixel_major"
    H, W = in_hw
    Kg = K // groups
    (pt, _), (pl, _) = padding
    sh, sw = stride
    dh, dw_ = dilation
    if tiled:  # written in full below, but for rows and columns past the last window
        dx = buffers.empty((N, H, W, C), dy.dtype)
        dx[:, Ho * kh:] = 0
        dx[:, :, Wo * kw:] = 0
    else:
        dx = buffers.zeros((N, H, W, C), dy.dtype)
    taps = kh * kw
    nb = block_size(N, Ho * Wo * taps * Cg * dy.itemsize)
    # per group, the weights arranged so that one GEMM yields dcols in the layout:
    #   channel_first (kh*kw, Kg)      @ dy.T (Kg, M)  -> (kh*kw, M)      (Cg = 1)
    #   tap_major     (kh*kw, Kg, Cg)  @ dy (1, M, Kg) -> (kh*kw, M, Cg)
    #   pixel_major   dy (M, Kg) @ (Kg, kh*kw*Cg)      -> (M, kh*kw*Cg)
    wt = []
    for g in range(groups):
        wg = w[..., g * Kg:(g + 1) * Kg]
        if layout == "channel_first":
            wt.append(np.ascontiguousarray(wg.reshape(taps * Cg, Kg)))
        elif layout == "tap_major":
            wt.append(np.ascontiguousarray(wg.reshape(taps, Cg, Kg).transpose(0, 2, 1)))
        else:
            wt.append(np.ascontiguousarray(wg.reshape(taps * Cg, Kg).T))
    shape = {"channel_first": (taps * Cg, nb * Ho * Wo), "tap_major": (taps, nb * Ho * Wo, Cg),
             "pixel_major": (nb * Ho * Wo, taps * Cg)}[layout]
    dcols = buffers.empty(shape, dy.dtype)
    rows = [_tap_range(p * dh, sh, pt, H, Ho) for p in range(kh)]
    colr = [_tap_range(q * dw_, sw, pl, W, Wo) for q in range(kw)]
    # Windows that do not overlap (span <= stride on both axes) give every pixel at
    # most one tap: write it (a copy) instead of adding it to the zeros (2.5x faster).
    overlap = dh * (kh - 1) + 1 > sh or dw_ * (kw - 1) + 1 > sw
    for n0, b in _blocks(N, nb):
        M = b * Ho * Wo
        dy2d = dy[n0:n0 + b].reshape(M, K)
        for g in range(groups):
            dyg = dy2d[:, g * Kg:(g + 1) * Kg]
            if layout == "channel_first":
                d = dcols[:, :M]
                np.matmul(wt[g], dyg.T, out=d)  # (kh*kw, Kg) @ (Kg, M) -> (kh*kw, M)
                taps_view = d.reshape(kh, kw, b, Ho, Wo, 1)
            elif layout == "tap_major":
                d = dcols[:, :M]
                np.matmul(dyg[None], wt[g], out=d)  # (1, M, Kg) @ (kh*kw, Kg, Cg) -> (kh*kw, M, Cg)
                taps_view = d.reshape(kh, kw, b, Ho, Wo, Cg)
            else:
                d = dcols[:M]
                np.matmul(dyg, wt[g], out=d)  # (M, Kg) @ (Kg, kh*kw*Cg) -> (M, kh*kw*Cg)
                taps_view = d.reshape(b, Ho, Wo, kh, kw, Cg).transpose(3, 4, 0, 1, 2, 5)
            dxg = dx[n0:n0 + b, :, :, g * Cg:(g + 1) * Cg]
            if tiled:
                # dcols (b, Ho, Wo, kh, kw, Cg) is this block of dx seen as
                # (b, Ho, kh, Wo, kw, Cg) with two axes swapped: one copy instead of
                # kh*kw strided additions (8x faster for 2x2/2 with 16 channels).
                # Splitting H into (Ho, kh) and W into (Wo, kw) is a view, never a copy.
                dst = np.reshape(dxg[:, :Ho * kh, :Wo * kw], (b, Ho, kh, Wo, kw, Cg), copy=False)
                np.copyto(dst, d.reshape(b, Ho, Wo, kh, kw, Cg).transpose(0, 1, 3, 2, 4, 5))
                continue
            # col2im: taps_view[p, q] (b, Ho, Wo, Cg) is what tap (p, q) of each window adds
            for p, (i0, i1, r0) in enumerate(rows):
                for q, (j0, j1, s0) in enumerate(colr):
                    if i1 > i0 and j1 > j0:
                        target = dxg[:, r0:r0 + (i1 - i0 - 1) * sh + 1:sh, s0:s0 + (j1 - j0 - 1) * sw + 1:sw]
                        if overlap:
                            target += taps_view[p, q, :, i0:i1, j0:j1]
                        else:
                            target[...] = taps_view[p, q, :, i0:i1, j0:j1]
    return dx


def _input_grad_flat(dy: np.ndarray, w: np.ndarray, *, in_hw: Pair, padding: Padding2D,
                     dilation: Pair) -> np.ndarray:
    """Stride-1, ungrouped input gradient for a few channels: col2im on flattened images.

    ``dcols`` is computed channel-first at the *padded* input's width ``Wp`` (``dy``'s
    columns ``Wo..Wp-1`` are zeros), so every tap ``(p, q)`` adds one contiguous run of
    ``Ho*Wp`` values into each flattened padded image at offset ``p*dh*Wp + q*dw``:
    ``kh*kw`` long additions instead of short row by row ones, and one
    ``(kh*kw*C, K) @ (K, M)`` GEMM instead of ``kh*kw`` thin ones. Returns (N, H, W, C).
    """
    N, Ho, Wo, K = dy.shape
    kh, kw, C, _ = w.shape
    H, W = in_hw
    (pt, pb), (pl, pr) = padding
    dh, dw_ = dilation
    Hp, Wp = H + pt + pb, W + pl + pr
    L = Ho * Wp  # one image's run of dcols, per tap and channel
    size = (Hp + 1) * Wp  # a flattened padded image, one spare row for the last taps' overrun
    nb = block_size(N, (kh * kw * C * L + C * size + L * K) * dy.itemsize)
    wc = np.ascontiguousarray(w.reshape(kh * kw * C, K))
    dyw = buffers.zeros((nb, Ho, Wp, K), dy.dtype)  # columns Wo..Wp-1 stay zero
    dcols = buffers.empty((kh * kw * C, nb * L), dy.dtype)
    dx = buffers.empty((N, H, W, C), dy.dtype)
    for n0, b in _blocks(N, nb):
        dyw[:b, :, :Wo] = dy[n0:n0 + b]
        d = dcols[:, :b * L]
        np.matmul(wc, dyw[:b].reshape(b * L, K).T, out=d)  # (kh*kw*C, K) @ (K, b*Ho*Wp) -> (kh*kw*C, b*Ho*Wp)
        taps = d.reshape(kh, kw, C, b, L)
        dxp = buffers.zeros((C, b, size), dy.dtype)  # padded images, flattened
        for p in range(kh):
            for q in range(kw):
                o = p * dh * Wp + q * dw_
                dxp[:, :, o:o + L] += taps[p, q]
        # (C, b, Hp, Wp) -> crop the padding -> (b, H, W, C)
        dx[n0:n0 + b] = dxp[:, :, :Hp * Wp].reshape(C, b, Hp, Wp)[:, :, pt:pt + H, pl:pl + W].transpose(1, 2, 3, 0)
    return dx


def _input_grad_stride1(dy: np.ndarray, w: np.ndarray, *, in_hw: Pair, padding: Padding2D,
                        dilation: Pair, groups: int) -> np.ndarray:
    """Stride-1 input gradient as a forward convolution ("full" correlation).

    With stride 1, ``dx[r] = sum_p dy[r + top - p*d] w[p]``: a correlation of ``dy``
    padded by ``span - 1 - top`` (``span = d*(k-1) + 1``) with the kernel flipped in
    space and its in/out channels swapped. This replaces col2im's ``kh*kw`` scattered
    additions with one im2col copy and a GEMM (or Winograd). Negative pads (rows of
    ``dy`` whose windows read only padding) become crops of ``dy``.
    """
    N, Ho, Wo, K = dy.shape
    kh, kw, Cg, _ = w.shape
    Kg = K // groups
    pads, crop = [], []
    for n_in, n_out, k, d, (before, _) in zip(in_hw, (Ho, Wo), (kh, kw), dilation, padding):
        # dy padded (or cropped) to n_in + span - 1 rows: top then bottom
        top = d * (k - 1) - before
        bottom = n_in + d * (k - 1) - n_out - top
        crop.append(slice(max(0, -top), n_out - max(0, -bottom)))
        pads.append((max(0, top), max(0, bottom)))
    # (kh, kw, Cg, G*Kg) -> flipped (kh, kw, Kg, G*Cg): group g maps its Kg channels to its Cg
    wf = np.ascontiguousarray(
        w[::-1, ::-1].reshape(kh, kw, Cg, groups, Kg).transpose(0, 1, 4, 3, 2).reshape(kh, kw, Kg, groups * Cg))
    return conv_forward(dy[:, crop[0], crop[1]], wf, padding=(pads[0], pads[1]), stride=(1, 1),
                        dilation=dilation, groups=groups, out_hw=in_hw)

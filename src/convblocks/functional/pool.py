"""2-D pooling, forward and backward: max, average, global max and global average.

Every forward returns ``(y, cache)``; every backward takes ``(dy, cache)`` and returns
``dx``. The rules are PyTorch's: ``stride=None`` means ``stride=kernel_size``; padding
may be at most half of the (effective) kernel on each side; with ``ceil_mode`` the last
window must start inside the input or its left padding; average pooling divides by the
window clipped to the padded input (``count_include_pad=True``) or to the real input.

The fast trick: loop over the ``kh*kw`` offsets ``(p, q)`` inside the window, not
over the output positions. At one offset, the elements seen by all windows at once
form ONE strided slice of the (padded) input, ``x[:, p*dh::sh, q*dw::sw, :]`` (NHWC),
shaped like the output. The forwards use that the window reduction is separable:
fold the ``kh`` row slices (whole image rows: long contiguous runs), then the ``kw``
column slices of the result (see :func:`_reduce_windows`). The max backward finds each
window's FIRST maximum by comparing the ``kh*kw`` slices with ``y`` in row-major
order, and sends ``dy`` back through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Iterator

import numpy as np

from . import buffers
from .checks import as_bool, as_float_array, as_pair, check_array_size, check_data_format, check_ndim, shape_str
from .padding import Padding2D, output_size, resolve_padding
from .threads import get_num_threads, run_chunks, threads_for
from .windows import pad_hw
from .workspace import batch_chunk, get_workspace_limit

# Each kernel makes several passes (one per window offset) over a chunk: a chunk whose
# input fits in a core's cache is read from memory once.
_CACHE_BLOCK = 2 << 20

__all__ = [
    "MaxPool2dCache",
    "AvgPool2dCache",
    "GlobalPool2dCache",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
]


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _ResidueClass:
    """Window offsets whose slices can share elements (see ``_Geometry.residue_classes``)."""

    lattice: tuple[slice, ...]  # the class's elements in the padded input
    lattice_hw: tuple[int, int]  # (Lh, Lw): its rows and columns reached by some window
    regions: dict[int, tuple[slice, ...]]  # offset k -> its (Ho, Wo) block of the lattice


class _OffsetScatter:
    """Sends output-shaped values through the window offsets' slices into a gradient.

    ``dxp`` (a padded input-shaped chunk, zeros wherever no window reaches) receives,
    for each offset ``k``, values ``v_k`` shaped like the output at
    ``dxp[offset(k)]``, summed where slices share elements. An offset alone in its
    residue class writes straight into ``dxp``; the members of a larger class go
    through a contiguous per-class accumulator (additions of whole rows rather than of
    ``C``-long runs), copied into the class's lattice by :meth:`finish`; with stride 1
    that lattice is ``dxp`` itself, which then accumulates in place. The first write
    into zeros is a copy, not an addition.
    """

    def __init__(self, dxp: np.ndarray, geom: _Geometry, out_shape: tuple[int, ...]):
        self.dxp, self.geom, self.out_shape = dxp, geom, out_shape
        self.accumulators: dict[int, np.ndarray] = {}
        self.class_of = geom.class_of

    def target(self, k: int, index: tuple[slice, ...]) -> tuple[np.ndarray, bool]:
        """Output-shaped view for offset ``k`` (at ``index``) and whether to write (True) or add."""
        c = self.class_of[k]
        cls = self.geom.residue_classes[c]
        if len(cls.regions) == 1:
            return self.dxp[index], True  # no other offset reaches these elements
        if self.geom.stride == (1, 1):  # the lattice is dxp itself: accumulate in place
            first = c not in self.accumulators
            self.accumulators.setdefault(c, self.dxp)
            return self.dxp[index], first
        acc = self.accumulators.get(c)
        fresh = acc is None
        if fresh:
            shape = list(self.out_shape)
            h = self.geom.h_axis
            shape[h], shape[h + 1] = cls.lattice_hw
            acc = self.accumulators[c] = buffers.zeros(shape, self.dxp.dtype)
        return acc[cls.regions[k]], fresh

    def finish(self) -> None:
        for c, acc in self.accumulators.items():
            if acc is not self.dxp:
                self.dxp[self.geom.residue_classes[c].lattice] = acc


@dataclass(frozen=True)
class _Geometry:
    """Window options resolved along both spatial axes, and where they sit in the array."""

    h_axis: int  # 1 for NHWC, 2 for NCHW; the W axis is h_axis + 1
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Padding2D
    out_hw: tuple[int, int]
    # The padding actually applied: ``padding`` plus the extra bottom/right rows that
    # ceil_mode's last window may read past the padded input (never real data).
    full_padding: Padding2D
    # chunks() results by their arguments and the workspace limit and thread count
    _chunks: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def padded(self) -> bool:
        return self.full_padding != ((0, 0), (0, 0))

    def tiles(self, in_shape: tuple[int, ...]) -> bool:
        """Whether the windows cover the unpadded input exactly once, without gaps."""
        (kh, kw), (Ho, Wo), h = self.kernel_size, self.out_hw, self.h_axis
        return (self.stride == self.kernel_size and self.dilation == (1, 1) and not self.padded
                and (in_shape[h], in_shape[h + 1]) == (Ho * kh, Wo * kw))

    def offset(self, p: int, q: int) -> tuple[slice, ...]:
        """Index of the strided slice of the padded input seen at window offset ``(p, q)``.

        ``xp[offset(p, q)][..., i, j, ...] == xp[..., i*sh + p*dh, j*sw + q*dw, ...]``: an
        output-shaped view, (N, Ho, Wo, C) for NHWC or (N, C, Ho, Wo) for NCHW.
        """
        (sh, sw), (dh, dw), (Ho, Wo) = self.stride, self.dilation, self.out_hw
        rows = slice(p * dh, p * dh + (Ho - 1) * sh + 1, sh)
        cols = slice(q * dw, q * dw + (Wo - 1) * sw + 1, sw)
        return (slice(None),) * self.h_axis + (rows, cols)

    def row_offset(self, p: int) -> tuple[slice, ...]:
        """Index of the padded rows seen at window row ``p``: (n, Ho, Wp, C) or (n, C, Ho, Wp)."""
        (sh, _), (dh, _), (Ho, _) = self.stride, self.dilation, self.out_hw
        return (slice(None),) * self.h_axis + (slice(p * dh, p * dh + (Ho - 1) * sh + 1, sh),)

    def col_offset(self, q: int) -> tuple[slice, ...]:
        """Index, into the row-reduced array, of the columns seen at window column ``q``."""
        (_, sw), (_, dw), (_, Wo) = self.stride, self.dilation, self.out_hw
        return (slice(None),) * (self.h_axis + 1) + (slice(q * dw, q * dw + (Wo - 1) * sw + 1, sw),)

    @cached_property
    def row_offsets(self) -> list[tuple[slice, ...]]:
        return [self.row_offset(p) for p in range(self.kernel_size[0])]

    @cached_property
    def col_offsets(self) -> list[tuple[slice, ...]]:
        return [self.col_offset(q) for q in range(self.kernel_size[1])]

    def rows_shape(self, padded_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of a padded input reduced over window rows only: Hp -> Ho."""
        shape = list(padded_shape)
        shape[self.h_axis] = self.out_hw[0]
        return tuple(shape)

    def offsets(self) -> list[tuple[int, tuple[slice, ...]]]:
        """``(k, index)`` for every window offset in row-major order, ``k = p*kw + q``."""
        return self._offsets

    @cached_property
    def _offsets(self) -> list[tuple[int, tuple[slice, ...]]]:
        kh, kw = self.kernel_size
        return [(k, self.offset(*divmod(k, kw))) for k in range(kh * kw)]

    @cached_property
    def residue_classes(self) -> list[_ResidueClass]:
        """The window offsets grouped by the input elements their slices can share.

        Offset ``(p, q)`` reaches padded rows ``i*sh + p*dh``: two offsets share rows only
        if ``p*dh`` agree modulo ``sh`` (and columns likewise). Writing
        ``p*dh = rh + a*sh``, offset ``(p, q)`` of class ``(rh, rw)`` reaches the class's
        lattice ``xp[rh::sh, rw::sw]`` at lattice rows ``a .. a + Ho - 1`` (columns
        ``b .. b + Wo - 1``).
        """
        (sh, sw), (dh, dw) = self.stride, self.dilation
        (kh, kw), (Ho, Wo) = self.kernel_size, self.out_hw
        groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        for k in range(kh * kw):
            p, q = divmod(k, kw)
            (a, rh), (b, rw) = divmod(p * dh, sh), divmod(q * dw, sw)
            groups.setdefault((rh, rw), []).append((k, a, b))
        lead = (slice(None),) * self.h_axis
        classes = []
        for (rh, rw), members in groups.items():
            Lh = Ho + max(a for _, a, _ in members)
            Lw = Wo + max(b for _, _, b in members)
            lattice = lead + (slice(rh, rh + (Lh - 1) * sh + 1, sh),
                              slice(rw, rw + (Lw - 1) * sw + 1, sw))
            regions = {k: lead + (slice(a, a + Ho), slice(b, b + Wo)) for k, a, b in members}
            classes.append(_ResidueClass(lattice, (Lh, Lw), regions))
        return classes

    @property
    def overlapping(self) -> bool:
        """Whether two window offsets can reach the same input element."""
        return len(self.residue_classes) < self.kernel_size[0] * self.kernel_size[1]

    def flat_indices(self, padded_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Flat positions in a C-contiguous padded chunk of ``padded_shape``.

        Returns ``window_start``, output-shaped (n, Ho, Wo, C) or (n, C, Ho, Wo)
        ``intp``: the flat index of each window's element at offset 0; and
        ``offset_step`` (kh*kw,) ``intp``: what offset ``k`` adds to it.
        ``window_start`` is kept for the last few chunk shapes (see ``_flat_starts``).
        """
        (kh, kw), (dh, dw), h = self.kernel_size, self.dilation, self.h_axis
        row = math.prod(padded_shape[h + 1:])  # elements per padded row
        col = math.prod(padded_shape[h + 2:])  # elements per padded column step
        offset_step = np.array([p * dh * row + q * dw * col for p in range(kh) for q in range(kw)],
                               dtype=np.intp)
        return _flat_starts(self, padded_shape), offset_step

    @cached_property
    def class_of(self) -> dict[int, int]:
        """Offset ``k`` -> the index of its residue class."""
        return {k: c for c, cls in enumerate(self.residue_classes) for k in cls.regions}

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        shape = list(in_shape)
        shape[self.h_axis], shape[self.h_axis + 1] = self.out_hw
        return tuple(shape)

    def padded_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        (t, b), (l, r) = self.full_padding
        shape = list(in_shape)
        shape[self.h_axis] += t + b
        shape[self.h_axis + 1] += l + r
        return tuple(shape)

    def pad(self, x: np.ndarray, value: float) -> np.ndarray:
        """``x`` with ``full_padding`` of ``value`` (``x`` itself when there is none)."""
        return pad_hw(x, self.full_padding, value=value, h_axis=self.h_axis)

    def crop(self, xp: np.ndarray) -> np.ndarray:
        """The unpadded part of a padded array (a view)."""
        (t, b), (l, r) = self.full_padding
        H, W = xp.shape[self.h_axis] - t - b, xp.shape[self.h_axis + 1] - l - r
        return xp[(slice(None),) * self.h_axis + (slice(t, t + H), slice(l, l + W))]

    def chunks(self, in_shape: tuple[int, ...], itemsize: int, *, padded_copies: int,
               accumulators: bool = False, row_reduction: bool = False,
               flat_indices: bool = False, input_mask: bool = False) -> list[slice]:
        """Batch slices, enough to give every thread work, whose temporaries fit the limit.

        Temporaries per example: ``padded_copies`` padded input-sized arrays (when
        padding is needed), with ``accumulators`` those of :class:`_OffsetScatter`
        (about one padded input), three output-sized boolean masks and one
        output-sized float array, with ``row_reduction`` the row-reduced input of
        :func:`_reduce_windows`, with ``flat_indices`` the output-sized index arrays of
        :func:`_scatter_first_max_flat` (two uint8, two intp), with ``input_mask`` the
        input-sized boolean mask of :func:`_scatter_tiled_max`; every running thread
        holds its own.
        """
        key = (in_shape, itemsize, padded_copies, accumulators, row_reduction, flat_indices,
               input_mask, get_workspace_limit(), get_num_threads())
        if key not in self._chunks:
            if len(self._chunks) >= 64:  # batch sizes that vary without end
                self._chunks.clear()
            self._chunks[key] = self._make_chunks(in_shape, itemsize, padded_copies,
                                                  accumulators, row_reduction, flat_indices,
                                                  input_mask)
        return self._chunks[key]

    def _make_chunks(self, in_shape: tuple[int, ...], itemsize: int, padded_copies: int,
                     accumulators: bool, row_reduction: bool, flat_indices: bool,
                     input_mask: bool) -> list[slice]:
        N, in_size = in_shape[0], math.prod(in_shape[1:])
        if N == 0:
            return []  # an empty batch: nothing to run
        padded_size = math.prod(self.padded_shape(in_shape)[1:])
        per_example = (3 + itemsize) * math.prod(self.out_shape(in_shape)[1:])
        per_example += (padded_copies if self.padded else 0) * itemsize * padded_size
        if accumulators and self.overlapping:
            per_example += itemsize * padded_size
        if flat_indices:
            out_size = math.prod(self.out_shape(in_shape)[1:])
            per_example += (2 + 2 * np.dtype(np.intp).itemsize) * out_size
        if input_mask:
            per_example += in_size
        if row_reduction:
            per_example += itemsize * math.prod(self.rows_shape(self.padded_shape(in_shape))[1:])
        threads = threads_for(N * in_size)
        step = min(batch_chunk(N, per_example * threads),  # the workspace limit
                   -(-N // threads),  # work for every thread
                   max(1, _CACHE_BLOCK // (in_size * itemsize)))  # passes that hit the cache
        # Equal chunks, a multiple of the thread count of them: 16 examples in steps of
        # 5 would leave one thread 10 examples and the other 6; 4 chunks of 4 balance.
        count = -(-N // step)
        count = min(N, -(-count // threads) * threads)
        step = -(-N // count)
        return [slice(n0, min(n0 + step, N)) for n0 in range(0, N, step)]


def _geometry(op: str, in_shape: tuple[int, ...], h_axis: int, kernel_size: Any, stride: Any,
              padding: Any, dilation: Any, ceil_mode: bool) -> _Geometry:
    """Check the window options against PyTorch's rules and resolve them."""
    in_hw = (in_shape[h_axis], in_shape[h_axis + 1])
    kernel = as_pair(kernel_size, "kernel_size", minimum=1)
    strides = kernel if stride is None else as_pair(stride, "stride", minimum=1)
    dil = as_pair(dilation, "dilation", minimum=1)
    pads = resolve_padding(padding, kernel_size=kernel, stride=strides, dilation=dil, in_hw=in_hw)
    pads = ((int(pads[0][0]), int(pads[0][1])), (int(pads[1][0]), int(pads[1][1])))
    same = isinstance(padding, str) and padding == "same"
    return _resolved_geometry(op, in_hw, h_axis, kernel, strides, dil, pads, bool(ceil_mode), same)


# A network calls the same pooling on the same image size at every step: sharing one
# _Geometry per configuration shares its precomputed offsets, residue classes and
# batch chunks, tens of microseconds of Python per call on small inputs.
@lru_cache(maxsize=256)
def _resolved_geometry(op: str, in_hw: tuple[int, int], h_axis: int, kernel: tuple[int, int],
                       strides: tuple[int, int], dil: tuple[int, int], pads: Padding2D,
                       ceil_mode: bool, same: bool = False) -> _Geometry:
    out, full = [], []
    for axis, n, k, s, d, (before, after) in zip(("h", "w"), in_hw, kernel, strides, dil, pads):
        span = d * (k - 1) + 1
        # Numeric padding: PyTorch's rule, at most kernel_size // 2 whatever the dilation.
        # 'same' (TensorFlow's, no PyTorch equivalent) needs up to half the dilated span.
        if max(before, after) > k // 2 and not same:
            raise ValueError(
                f"{op}: padding should be at most half of the kernel_size on each side, as in "
                f"PyTorch: {k}//2 = {k // 2} along {axis}; got padding ({before}, {after}) "
                f"with kernel_size {k}" + (f" (dilation {d} does not change this)" if d > 1 else ""))
        o = output_size(n, k, s, d, before, after, ceil_mode=ceil_mode)
        if o <= 0:
            raise ValueError(
                f"{op}: the window (kernel_size {k}" + (f", dilation {d}" if d > 1 else "")
                + f", span {span}) is larger than the padded input along {axis} "
                f"({n} + {before} + {after} = {n + before + after}); use a smaller "
                f"kernel_size or more padding")
        out.append(o)
        needed = (o - 1) * s + span  # padded rows read by the last window
        full.append((before, max(after, needed - n - before)))
    return _Geometry(h_axis, kernel, strides, dil, pads, (out[0], out[1]), (full[0], full[1]))


@lru_cache(maxsize=4)  # up to 4 output-sized intp arrays of one chunk (a few MiB each)
def _flat_starts(geom: _Geometry, padded_shape: tuple[int, ...]) -> np.ndarray:
    """Flat index of each window's first element in a C-contiguous padded chunk (intp)."""
    flat = np.arange(math.prod(padded_shape), dtype=np.intp).reshape(padded_shape)
    return np.ascontiguousarray(flat[geom.offset(0, 0)])  # (n, Ho, Wo, C) or (n, C, Ho, Wo)


# --------------------------------------------------------------------------- shared checks


def _h_axis(data_format: str) -> int:
    return 1 if data_format == "NHWC" else 2


def _check_input(x: Any, data_format: Any, name: str = "x") -> tuple[np.ndarray, str, int]:
    data_format = check_data_format(data_format)
    x = as_float_array(x, name)
    dims = "(N, H, W, C)" if data_format == "NHWC" else "(N, C, H, W)"
    check_ndim(x, 4, name, f"{dims} for data_format={data_format!r}")
    return x, data_format, _h_axis(data_format)


def _check_sizes(op: str, x: np.ndarray, geom: _Geometry) -> None:
    """ValueError when the padded image or the output could not be allocated (O(1))."""
    cause = lambda: (f"{op}: kernel_size {geom.kernel_size}, stride {geom.stride}, dilation "
                     f"{geom.dilation} and padding {geom.padding} with input {tuple(x.shape)}")
    one = (1,) + tuple(x.shape[1:])
    extra = " (with ceil_mode's extra rows)" if geom.full_padding != geom.padding else ""
    check_array_size(geom.padded_shape(one), x.itemsize, "one padded input image" + extra, cause)
    check_array_size(geom.out_shape(x.shape), x.itemsize, "the output", cause)


def _check_cache(cache: Any, cls: type, op: str) -> None:
    if not isinstance(cache, cls):
        raise TypeError(f"{op}: cache must be the {cls.__name__} returned by the forward; "
                        f"got {type(cache).__name__}")


def _check_dy(dy: Any, expected: tuple[int, ...], forward_dtype: np.dtype, op: str,
              ) -> tuple[np.ndarray, np.dtype]:
    """``dy`` of the forward output's shape, in the forward's dtype (the gradient's dtype).

    As everywhere in the engine, a backward computes in its forward's dtype: a float64
    ``dy`` for a float32 forward is rounded to float32.
    """
    dy = as_float_array(dy, "dy")
    if dy.shape != tuple(expected):
        raise ValueError(f"{op}: dy must have the forward output's shape {shape_str(expected)}; "
                         f"got {shape_str(dy.shape)}")
    return dy.astype(forward_dtype, copy=False), np.dtype(forward_dtype)


# --------------------------------------------------------------------------- max pooling


@dataclass(frozen=True, eq=False)
class MaxPool2dCache:
    """What :func:`max_pool2d_backward` needs.

    Attributes
    ----------
    x : numpy.ndarray
        The input, (N, H, W, C) for NHWC or (N, C, H, W) for NCHW; a reference, not a
        copy: do not modify it in place before the backward.
    y : numpy.ndarray
        A private copy of the output, (N, Ho, Wo, C) or (N, C, Ho, Wo).
    data_format : {'NHWC', 'NCHW'}
    kernel_size, stride, dilation : tuple of int
        ``(h, w)`` each.
    padding : ((int, int), (int, int))
        ``((top, bottom), (left, right))`` as resolved from the ``padding`` option.
    ceil_mode : bool

    The argmax of every window (:attr:`argmax`, :meth:`indices`) is computed from
    ``x`` and ``y`` on first use, so that a forward pass alone (inference) never pays
    for it.
    """

    x: np.ndarray
    y: np.ndarray
    data_format: str
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Padding2D
    ceil_mode: bool
    _geometry: _Geometry | None = field(default=None, repr=False)  # the forward's, to reuse

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.y.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    def geometry(self) -> _Geometry:
        """The resolved window geometry (validated again if the cache was built by hand)."""
        if self._geometry is not None:
            return self._geometry
        return _geometry("max_pool2d", self.input_shape, _h_axis(self.data_format),
                         self.kernel_size, self.stride, self.padding, self.dilation,
                         self.ceil_mode)

    @cached_property
    def argmax(self) -> np.ndarray:
        """Output-shaped window index ``p*kw + q`` of each output's maximum.

        The first maximum in row-major order, or the last NaN when the window holds a
        NaN (as PyTorch). ``uint8`` when ``kh*kw <= 256``, else ``int32``.
        """
        geom = self.geometry()
        argmax = np.empty(self.output_shape, dtype=_argmax_dtype(geom))

        def run(chunk: slice) -> None:
            argmax[chunk] = _window_argmax(geom.pad(self.x[chunk], -np.inf), self.y[chunk], geom)

        run_chunks(run, geom.chunks(self.input_shape, self.x.itemsize, padded_copies=1))
        return argmax

    def indices(self) -> np.ndarray:
        """PyTorch's ``return_indices``: the flat position ``h*W + w`` in the unpadded input.

        Returns
        -------
        numpy.ndarray of int64, output-shaped: (N, Ho, Wo, C) or (N, C, Ho, Wo).
        """
        geom = self.geometry()
        h_axis = geom.h_axis
        W = self.input_shape[h_axis + 1]
        (Ho, Wo), kw = geom.out_hw, geom.kernel_size[1]
        p, q = np.divmod(self.argmax.astype(np.int64), kw)
        (t, _), (l, _) = geom.padding
        shape = [1] * 4
        shape[h_axis] = Ho
        h = p * geom.dilation[0] + (np.arange(Ho) * geom.stride[0] - t).reshape(shape)
        shape[h_axis], shape[h_axis + 1] = 1, Wo
        w = q * geom.dilation[1] + (np.arange(Wo) * geom.stride[1] - l).reshape(shape)
        return h * W + w


def _argmax_dtype(geom: _Geometry) -> np.dtype:
    kh, kw = geom.kernel_size
    return np.dtype(np.uint8 if kh * kw <= 256 else np.int32)


def max_pool2d(x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, data_format: str = "NHWC",
               ) -> tuple[np.ndarray, MaxPool2dCache]:
    """2-D max pooling, PyTorch's ``max_pool2d``.

    Parameters
    ----------
    x : array_like
        (N, H, W, C) for NHWC or (N, C, H, W) for NCHW.
    kernel_size : int or (int, int)
    stride : int or (int, int) or None
        None (the default) means ``kernel_size``.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        Implicit ``-inf`` padding; at most ``kernel_size // 2`` on each side, as in
        PyTorch ('same' may use up to half the dilated span).
    dilation : int or (int, int)
    ceil_mode : bool
        Round the output size up; the last window must start inside the input or
        its left padding.
    data_format : {'NHWC', 'NCHW'}

    Returns
    -------
    y : numpy.ndarray
        (N, Ho, Wo, C) or (N, C, Ho, Wo), the computation dtype.
    cache : MaxPool2dCache

    Notes
    -----
    NaN propagates as in PyTorch: a window holding a NaN outputs NaN, and its
    gradient goes to the window's last NaN. Otherwise a tied window sends its whole
    gradient to its first maximum in row-major order.
    """
    x, data_format, h_axis = _check_input(x, data_format)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    geom = _geometry("max_pool2d", x.shape, h_axis, kernel_size, stride, padding, dilation,
                     ceil_mode)
    _check_channels(x, h_axis, "max_pool2d")
    _check_sizes("max_pool2d", x, geom)
    y = buffers.empty(geom.out_shape(x.shape), x.dtype)

    def run(chunk: slice) -> None:
        _reduce_windows(np.maximum, geom.pad(x[chunk], -np.inf), y[chunk], geom)

    run_chunks(run, geom.chunks(x.shape, x.itemsize, padded_copies=1, row_reduction=True))
    cache = MaxPool2dCache(x, buffers.copy(y), data_format, geom.kernel_size, geom.stride,
                           geom.dilation, geom.padding, ceil_mode, geom)
    return y, cache


def _reduce_windows(op: np.ufunc, xp: np.ndarray, out: np.ndarray, geom: _Geometry) -> None:
    """``out = op.reduce`` over the window offsets, rows first, then columns.

    ``xp`` is a padded input chunk, ``out`` the output-shaped result (n, Ho, Wo, C) or
    (n, C, Ho, Wo). The window reduction is separable: fold the ``kh`` row slices
    ``xp[:, p*dh::sh, :]`` into ``rows`` (n, Ho, Wp, C), then its ``kw`` column slices
    into ``out``. Row slices are whole contiguous image rows (long inner loops even
    for few channels), and it takes ``kh + kw - 2`` calls instead of ``kh*kw - 1``.
    ``np.maximum`` propagates NaN, as PyTorch's max pooling does.
    """
    if geom.kernel_size[0] == 1:
        rows = xp[geom.row_offset(0)]  # (n, Ho, Wp, C) view
    else:
        rows = buffers.empty(geom.rows_shape(xp.shape), xp.dtype)  # (n, Ho, Wp, C)
        row_slices = [xp[index] for index in geom.row_offsets]
        op(row_slices[0], row_slices[1], out=rows)
        for s in row_slices[2:]:
            op(rows, s, out=rows)
    col_slices = [rows[index] for index in geom.col_offsets]  # kw views shaped like out
    if len(col_slices) == 1:
        np.copyto(out, col_slices[0])
        return
    op(col_slices[0], col_slices[1], out=out)
    for s in col_slices[2:]:
        op(out, s, out=out)


def _first_max_masks(xp: np.ndarray, y: np.ndarray, geom: _Geometry, taken: np.ndarray,
                     ) -> Iterator[tuple[int, tuple[slice, ...], np.ndarray]]:
    """For each offset ``k`` in row-major order, where it holds its window's FIRST maximum.

    Yields ``(k, index, hit)`` with ``hit`` an output-shaped boolean mask (one buffer,
    overwritten at the next step). ``taken`` (output-shaped, all False on entry) ends
    up False exactly where a window found no maximum: its output is NaN.
    """
    hit = np.empty(y.shape, dtype=bool)
    for k, index in geom.offsets():
        np.equal(xp[index], y, out=hit)  # (n, Ho, Wo, C): this offset holds the max
        np.greater(hit, taken, out=hit)  # ... and no earlier one did (bools: a > b is a and not b)
        np.logical_or(taken, hit, out=taken)
        yield k, index, hit


def _window_argmax(xp: np.ndarray, y: np.ndarray, geom: _Geometry) -> np.ndarray:
    """PyTorch's argmax of every window as an offset ``k = p*kw + q`` (output-shaped).

    The first maximum in row-major order; PyTorch starts each window at ``-inf`` with
    the index of its first in-bounds element and moves on ``val > max or isnan(val)``,
    so a window with a NaN points to its LAST NaN and an all ``-inf`` window to its
    first real element (not to the ``-inf`` padding).
    """
    dtype = _argmax_dtype(geom)
    argmax = np.zeros(y.shape, dtype=dtype)
    for k, _, hit in _first_max_masks(xp, y, geom, np.zeros(y.shape, dtype=bool)):
        argmax += hit * dtype.type(k)  # exactly one hit per window, or none for NaN
    nan_out = np.isnan(y)
    if geom.padded:
        neginf_out = np.isneginf(y)
        if neginf_out.any():
            np.copyto(argmax, _first_real_offset(geom, y.ndim), where=neginf_out, casting="unsafe")
    if nan_out.any():
        for k, index in geom.offsets():
            np.copyto(argmax, dtype.type(k), where=nan_out & np.isnan(xp[index]))
    return argmax


def _first_real_offset(geom: _Geometry, ndim: int) -> np.ndarray:
    """Offset ``p0*kw + q0`` of each window's first element inside the unpadded input.

    Returns an array broadcastable to the output: (Ho, Wo, 1) for NHWC, (Ho, Wo) for NCHW.
    """
    (sh, sw), (dh, dw), (Ho, Wo) = geom.stride, geom.dilation, geom.out_hw
    (t, _), (l, _) = geom.padding
    # Smallest p with i*sh - t + p*dh >= 0, i.e. ceil((t - i*sh) / dh), at least 0.
    p0 = np.maximum(-((np.arange(Ho) * sh - t) // dh), 0)  # (Ho,)
    q0 = np.maximum(-((np.arange(Wo) * sw - l) // dw), 0)  # (Wo,)
    first = p0[:, None] * geom.kernel_size[1] + q0[None, :]  # (Ho, Wo)
    return first.reshape((Ho, Wo) + (1,) * (ndim - geom.h_axis - 2))


def max_pool2d_backward(dy: Any, cache: MaxPool2dCache) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    dy : array_like
        (N, Ho, Wo, C) or (N, C, Ho, Wo): gradient of the loss with respect to ``y``.
    cache : MaxPool2dCache
        From the forward.

    Returns
    -------
    dx : numpy.ndarray
        Input-shaped. Each output's gradient goes to its window's argmax (see
        :attr:`MaxPool2dCache.argmax`); where windows overlap, contributions add up.
    """
    _check_cache(cache, MaxPool2dCache, "max_pool2d_backward")
    dy, dtype = _check_dy(dy, cache.output_shape, cache.dtype, "max_pool2d_backward")
    geom = cache.geometry()
    # Windows that tile the input write every element of dx; otherwise each chunk
    # zeroes its part of dx just before using it (while it is in the cache).
    dx = buffers.empty(cache.input_shape, dtype)
    tiles = geom.tiles(cache.input_shape)

    def run(chunk: slice) -> None:
        y, g = cache.y[chunk], dy[chunk]
        # A NaN window has no element equal to its output, and an all -inf window
        # would find its "maximum" in the -inf padding: both take PyTorch's rule (rare).
        # One sum detects both (and, harmlessly, +inf or overflow): no mask pass.
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, overflow: no warning
            special = not np.isfinite(np.add.reduce(y, axis=None))
        if tiles and geom.h_axis == 1 and not special:
            if _scatter_tiled_max(cache.x[chunk], y, g, dx[chunk], geom):
                return
        xp = geom.pad(cache.x[chunk], -np.inf)
        # The gradient of the padded input: dx itself, or a padded temporary.
        dxp = buffers.zeros(xp.shape, dtype) if geom.padded else dx[chunk]
        if not (tiles or geom.padded):
            dxp.fill(0)
        if special and (np.isnan(y).any() or (geom.padded and np.isneginf(y).any())):
            dxp.fill(0)
            argmax = _window_argmax(xp, y, geom)
            for k, index in geom.offsets():
                s = dxp[index]
                np.add(s, g, out=s, where=argmax == k)
        elif geom.overlapping:
            _scatter_first_max_flat(xp, y, g, dxp, geom)
        else:
            _scatter_first_max(xp, y, g, dxp, geom)
        if geom.padded:
            dx[chunk] = geom.crop(dxp)

    run_chunks(run, geom.chunks(cache.input_shape, cache.x.itemsize, padded_copies=2,
                                 flat_indices=geom.overlapping, input_mask=tiles))
    return dx


def _scatter_tiled_max(x: np.ndarray, y: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                       geom: _Geometry) -> bool:
    """Max backward for NHWC windows that tile the input (``y`` free of NaN).

    ``x``/``dx`` (n, H, W, C) viewed as (n*Ho, kh, Wo*kw*C) hold window row ``p`` of
    every window of an output row as ONE contiguous run, so with ``y`` and ``dy``
    repeated ``kw`` times along the row, (n*Ho, 1, Wo*kw*C), ONE comparison marks the
    maxima and ONE product ``dy * mask`` writes all of ``dx``, in long inner loops
    whatever ``C``. Every window holds at least one maximum, so if the marks number
    one per window there is no tie; otherwise (common after a ReLU: all-zero windows)
    the marks walk each window in row-major order, keeping each first one.

    Returns False, having written nothing, for ties with fewer than 32 channels: the
    walk's C-long inner loops then lose to :func:`_scatter_first_max`.
    """
    (kh, kw), (Ho, Wo) = geom.kernel_size, geom.out_hw
    n, C = y.shape[0], y.shape[3]
    run = Wo * kw * C  # one window row of a whole output row
    rep = buffers.empty((n * Ho, Wo, kw, C), y.dtype)  # y, then dy, repeated kw times
    np.copyto(rep, y.reshape(n * Ho, Wo, 1, C))
    hit = buffers.empty((n * Ho, kh, run), bool)
    np.equal(x.reshape(n * Ho, kh, run), rep.reshape(n * Ho, 1, run), out=hit)  # (n*Ho, kh, run)
    if np.count_nonzero(hit) != y.size:
        if C < 32:
            return False
        marks = hit.reshape(n * Ho, kh, Wo, kw, C)
        taken = marks[:, 0, :, 0].copy()  # (n*Ho, Wo, C): windows whose maximum came
        for k in range(1, kh * kw):
            p, q = divmod(k, kw)
            mark = marks[:, p, :, q]  # (n*Ho, Wo, C) view
            np.greater(mark, taken, out=mark)  # ... a maximum, and no earlier one (a and not b)
            np.logical_or(taken, mark, out=taken)
    np.copyto(rep, dy.reshape(n * Ho, Wo, 1, C))
    mask = hit.view(np.int8)
    np.negative(mask, out=mask)  # True -> -1 (all bits set), False -> 0
    # (n*Ho, 1, run) & (n*Ho, kh, run) -> (n*Ho, kh, run); dx is C-contiguous: a view
    _select(rep.reshape(n * Ho, 1, run), mask, dx.reshape(n * Ho, kh, run))
    return True


def _select(values: np.ndarray, mask: np.ndarray, out: np.ndarray) -> None:
    """``out = values`` where the int8 ``mask`` is -1, exactly +0.0 where it is 0.

    One bitwise AND of the float bits with the mask (widened with its sign): unlike
    ``values * hit``, a NaN or infinite gradient never leaks into the elements its
    window did not pick (``nan * 0`` is NaN) and no ``-0.0`` appears, as in PyTorch,
    whose backward adds each gradient into zeros at its argmax only. About as fast as
    the product it replaces.
    """
    bits = np.dtype(f"int{8 * values.itemsize}")
    np.bitwise_and(values.view(bits), mask, out=out.view(bits))


def _scatter_first_max_flat(xp: np.ndarray, y: np.ndarray, dy: np.ndarray, dxp: np.ndarray,
                            geom: _Geometry) -> None:
    """:func:`_scatter_first_max` for overlapping windows, through flat indices.

    Overlapping windows would need, per offset, a product ``dy * hit`` and an addition
    into a shared accumulator. Instead the same first-maximum walk only records each
    window's offset ``k`` (``uint8`` for up to 256 offsets); ``k`` becomes the flat
    index of the maximum in ``dxp`` (that of the window's first element plus a
    per-offset step), and one ``np.add.at`` adds every ``dy`` there, accumulating
    where windows share it. ``dxp`` must be C-contiguous and hold zeros.
    """
    # arg = the number of offsets passed before the first maximum = the sum over
    # offsets k < last of "no maximum among offsets 0..k" (False from the first one on).
    offsets = geom.offsets()
    untaken = np.not_equal(xp[offsets[0][1]], y)  # (n, Ho, Wo, C): offset 0 is no maximum
    arg = untaken.astype(_argmax_dtype(geom))  # uint8 up to 256 offsets
    hit = np.empty(y.shape, dtype=bool)
    for _, index in offsets[1:-1]:
        np.equal(xp[index], y, out=hit)  # (n, Ho, Wo, C): this offset holds the max
        np.greater(untaken, hit, out=untaken)  # bools: a > b is a and not b
        np.add(arg, untaken.view(np.uint8), out=arg)
    # Windows not served by offset last-1 have arg == last: the last offset, no comparison.
    window_start, offset_step = geom.flat_indices(dxp.shape)
    index = buffers.empty(y.shape, np.intp)
    # mode='clip' (arg is always in range): the default 'raise' first copies arg to intp
    np.take(offset_step, arg, out=index, mode="clip")  # (n, Ho, Wo, C) int64
    index += window_start
    np.add.at(np.reshape(dxp, -1, copy=False), index.reshape(-1), dy.reshape(-1))


def _scatter_first_max(xp: np.ndarray, y: np.ndarray, dy: np.ndarray, dxp: np.ndarray,
                       geom: _Geometry) -> None:
    """Send each ``dy`` to its window's first maximum in ``dxp``.

    ``xp`` and ``dxp`` are padded input-shaped chunks, ``y`` (free of NaN) and ``dy``
    the matching output-shaped ones; ``dxp`` holds zeros wherever no window writes.
    Offset ``k`` holds the first maximum of the windows where its slice equals ``y``
    and no earlier offset's did; at the last offset that is every window not yet
    served, so it needs no comparison.

    ``dy * hit`` goes through :class:`_OffsetScatter`: written where no other offset
    reaches, added up otherwise.
    """
    taken = np.empty(y.shape, dtype=bool)  # windows whose maximum came earlier
    hit = np.empty(y.shape, dtype=bool)
    mask = np.empty(y.shape, dtype=np.int8)  # hit as -1 / 0, for _select
    contrib = None
    scatter = _OffsetScatter(dxp, geom, y.shape)
    last = geom.kernel_size[0] * geom.kernel_size[1] - 1
    for k, index in geom.offsets():
        if k == 0:
            np.equal(xp[index], y, out=taken)  # (n, Ho, Wo, C): the first offset holds the max
            np.copyto(hit, taken)
        elif k < last:
            np.equal(xp[index], y, out=hit)  # (n, Ho, Wo, C): this offset holds the max
            np.greater(hit, taken, out=hit)  # ... and no earlier one (bools: a > b is a and not b)
            np.logical_or(taken, hit, out=taken)
        else:
            np.logical_not(taken, out=hit)
        target, write = scatter.target(k, index)  # (n, Ho, Wo, C) view
        np.negative(hit.view(np.int8), out=mask)
        if write:
            _select(dy, mask, target)  # dy where this offset is the argmax, else 0
        else:
            if contrib is None:
                contrib = np.empty(y.shape, dtype=dxp.dtype)
            _select(dy, mask, contrib)
            np.add(target, contrib, out=target)
    scatter.finish()


# --------------------------------------------------------------------------- average pooling


@dataclass(frozen=True, eq=False)
class AvgPool2dCache:
    """What :func:`avg_pool2d_backward` needs.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        (N, H, W, C) and (N, Ho, Wo, C) for NHWC; (N, C, H, W) and (N, C, Ho, Wo) for NCHW.
    data_format : {'NHWC', 'NCHW'}
    dtype : numpy.dtype
        The forward's computation dtype.
    kernel_size, stride : tuple of int
    padding : ((int, int), (int, int))
    ceil_mode, count_include_pad : bool
    divisor : float or numpy.ndarray
        What each window's sum was divided by: a number when every window has the
        same, else a float64 array broadcastable to the output, (Ho, Wo, 1) for NHWC
        or (Ho, Wo) for NCHW.
    """

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    data_format: str
    dtype: np.dtype
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: Padding2D
    ceil_mode: bool
    count_include_pad: bool
    divisor: Any
    _geometry: _Geometry | None = field(default=None, repr=False)  # the forward's, to reuse

    def geometry(self) -> _Geometry:
        """The resolved window geometry (validated again if the cache was built by hand)."""
        if self._geometry is not None:
            return self._geometry
        return _geometry("avg_pool2d", self.input_shape, _h_axis(self.data_format),
                         self.kernel_size, self.stride, self.padding, 1, self.ceil_mode)


def avg_pool2d(x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               data_format: str = "NHWC") -> tuple[np.ndarray, AvgPool2dCache]:
    """2-D average pooling, PyTorch's ``avg_pool2d``.

    Parameters
    ----------
    x : array_like
        (N, H, W, C) for NHWC or (N, C, H, W) for NCHW.
    kernel_size : int or (int, int)
    stride : int or (int, int) or None
        None (the default) means ``kernel_size``.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        Implicit zero padding, at most half of ``kernel_size`` on each side.
    ceil_mode : bool
        Round the output size up; the last window must start inside the input or its
        left padding.
    count_include_pad : bool
        Divide by the window clipped to the padded input (True) or to the real input.
    data_format : {'NHWC', 'NCHW'}

    Returns
    -------
    y : numpy.ndarray
        (N, Ho, Wo, C) or (N, C, Ho, Wo), the computation dtype.
    cache : AvgPool2dCache
    """
    x, data_format, h_axis = _check_input(x, data_format)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    count_include_pad = as_bool(count_include_pad, "count_include_pad")
    geom = _geometry("avg_pool2d", x.shape, h_axis, kernel_size, stride, padding, 1, ceil_mode)
    _check_channels(x, h_axis, "avg_pool2d")
    _check_sizes("avg_pool2d", x, geom)
    divisor = _avg_divisor(x.shape, geom, count_include_pad)
    y = buffers.empty(geom.out_shape(x.shape), x.dtype)

    def run(chunk: slice) -> None:
        _reduce_windows(np.add, geom.pad(x[chunk], 0.0), y[chunk], geom)  # window sums
        np.divide(y[chunk], divisor, out=y[chunk])

    run_chunks(run, geom.chunks(x.shape, x.itemsize, padded_copies=1, row_reduction=True))
    cache = AvgPool2dCache(tuple(x.shape), y.shape, data_format, x.dtype, geom.kernel_size,
                           geom.stride, geom.padding, ceil_mode, count_include_pad, divisor, geom)
    return y, cache


def _avg_divisor(in_shape: tuple[int, ...], geom: _Geometry, count_include_pad: bool) -> Any:
    """PyTorch's divisor of each window: a number when constant, else (Ho, Wo[, 1]) float64.

    A window starting at ``start = i*stride - pad_before`` ends at
    ``min(start + k, n + pad_after)`` (clipped to the padded input); with
    ``count_include_pad`` that clipped size counts, else only its part inside ``[0, n)``.
    """
    if not geom.padded:  # every window lies wholly inside the input
        return float(geom.kernel_size[0] * geom.kernel_size[1])
    sizes = []
    for axis, (k, s, (before, after), o) in enumerate(zip(geom.kernel_size, geom.stride,
                                                          geom.padding, geom.out_hw)):
        n = in_shape[geom.h_axis + axis]
        start = np.arange(o) * s - before
        end = np.minimum(start + k, n + after)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        sizes.append(end - start)
    div = (sizes[0][:, None] * sizes[1][None, :]).astype(np.float64)  # (Ho, Wo)
    if np.all(div == div.flat[0]):
        return float(div.flat[0])
    return div[:, :, None] if geom.h_axis == 1 else div


def avg_pool2d_backward(dy: Any, cache: AvgPool2dCache) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    dy : array_like
        (N, Ho, Wo, C) or (N, C, Ho, Wo).
    cache : AvgPool2dCache

    Returns
    -------
    dx : numpy.ndarray
        Input-shaped: each output's ``dy / divisor`` spread over its window (padding
        dropped), overlapping windows adding up.
    """
    _check_cache(cache, AvgPool2dCache, "avg_pool2d_backward")
    dy, dtype = _check_dy(dy, cache.output_shape, cache.dtype, "avg_pool2d_backward")
    geom = cache.geometry()
    (kh, kw), h_axis = geom.kernel_size, geom.h_axis
    chunks = geom.chunks(cache.input_shape, cache.dtype.itemsize, padded_copies=1,
                         accumulators=True)
    if geom.tiles(cache.input_shape):
        # The windows tile the input: dx, split as (N, Ho, kh, Wo, kw, C), is
        # dy / divisor broadcast over the (kh, kw) axes: one division of dy, then one
        # broadcasting copy (NumPy copies broadcast runs about twice as fast as it
        # divides into them, and it is one pass over dx).
        shape = list(cache.output_shape)
        shape[h_axis + 1:h_axis + 1] = [kh]  # (N, Ho, kh, Wo, C) or (N, C, Ho, kh, Wo)
        shape[h_axis + 3:h_axis + 3] = [kw]  # (N, Ho, kh, Wo, kw, C) or (N, C, Ho, kh, Wo, kw)
        dx6 = buffers.empty(shape, dtype)
        lead = (slice(None),) * (h_axis + 1)
        expand = lead + (None, slice(None), None)  # (n, Ho, 1, Wo, 1, C) or (n, C, Ho, 1, Wo, 1)

        def run_tiles(chunk: slice) -> None:
            share = np.divide(dy[chunk], cache.divisor, dtype=dtype)  # (n, Ho, Wo, C) or (n, C, Ho, Wo)
            if h_axis == 1:
                np.copyto(dx6[chunk], share[expand])
                return
            # NCHW: broadcasting over the last axis would copy kw-long runs (3.7x
            # slower); interleave one window row, (n, C, Ho, Wo, kw), then copy it to
            # the kh rows of each window in runs of W = Wo*kw.
            row = buffers.empty(share.shape + (kw,), dtype)
            for q in range(kw):
                np.copyto(row[..., q], share)
            n, c, Ho, Wo = share.shape
            np.copyto(dx6[chunk].reshape(n, c, Ho, kh, Wo * kw), row.reshape(n, c, Ho, 1, Wo * kw))

        run_chunks(run_tiles, chunks)
        return dx6.reshape(cache.input_shape)
    dx = buffers.zeros(cache.input_shape, dtype)

    def run(chunk: slice) -> None:
        g = np.divide(dy[chunk], cache.divisor, dtype=dtype)  # (n, Ho, Wo, C): each window's share
        dxp = (buffers.zeros(geom.padded_shape(dx[chunk].shape), dtype) if geom.padded
               else dx[chunk])
        scatter = _OffsetScatter(dxp, geom, g.shape)
        for k, index in geom.offsets():
            target, write = scatter.target(k, index)  # (n, Ho, Wo, C) view
            if write:
                np.copyto(target, g)
            else:
                np.add(target, g, out=target)
        scatter.finish()
        if geom.padded:
            dx[chunk] = geom.crop(dxp)

    run_chunks(run, chunks)
    return dx


# --------------------------------------------------------------------------- global pooling


@dataclass(frozen=True, eq=False)
class GlobalPool2dCache:
    """What the global poolings' backwards need.

    Attributes
    ----------
    input_shape : tuple of int
        (N, H, W, C) for NHWC or (N, C, H, W) for NCHW; the output is (N, C).
    data_format : {'NHWC', 'NCHW'}
    dtype : numpy.dtype
        The forward's computation dtype.
    argmax : numpy.ndarray or None
        Global max only: (N, C) int64, the flat position ``h*W + w`` of each
        channel's first maximum (its last NaN, as PyTorch). None for the average.
    """

    input_shape: tuple[int, ...]
    data_format: str
    dtype: np.dtype
    argmax: np.ndarray | None = None



def global_avg_pool2d(x: Any, *, data_format: str = "NHWC") -> tuple[np.ndarray, GlobalPool2dCache]:
    """Mean over the spatial axes.

    Parameters
    ----------
    x : array_like
        (N, H, W, C) for NHWC or (N, C, H, W) for NCHW.
    data_format : {'NHWC', 'NCHW'}

    Returns
    -------
    y : numpy.ndarray
        (N, C), the computation dtype.
    cache : GlobalPool2dCache
    """
    x, data_format, h_axis = _check_input(x, data_format)
    _check_nonempty(x, h_axis, "global_avg_pool2d")
    y = np.mean(x, axis=(h_axis, h_axis + 1))  # (N, C)
    return y, GlobalPool2dCache(tuple(x.shape), data_format, x.dtype)


def global_avg_pool2d_backward(dy: Any, cache: GlobalPool2dCache) -> np.ndarray:
    """Gradient of :func:`global_avg_pool2d`: ``dy / (H*W)`` at every position.

    Parameters
    ----------
    dy : array_like
        (N, C).
    cache : GlobalPool2dCache

    Returns
    -------
    dx : numpy.ndarray
        (N, H, W, C) or (N, C, H, W).
    """
    _check_cache(cache, GlobalPool2dCache, "global_avg_pool2d_backward")
    if cache.argmax is not None:
        raise ValueError("global_avg_pool2d_backward: cache comes from global_max_pool2d "
                         "(it has an argmax); use global_max_pool2d_backward")
    N, H, W, C = _nhwc(cache)
    dy, dtype = _check_dy(dy, (N, C), cache.dtype, "global_avg_pool2d_backward")
    g = np.divide(dy, H * W, dtype=dtype)  # (N, C)
    if cache.data_format == "NHWC":
        return np.broadcast_to(g[:, None, None, :], cache.input_shape).copy()
    return np.broadcast_to(g[:, :, None, None], cache.input_shape).copy()


def global_max_pool2d(x: Any, *, data_format: str = "NHWC") -> tuple[np.ndarray, GlobalPool2dCache]:
    """Maximum over the spatial axes.

    Parameters
    ----------
    x : array_like
        (N, H, W, C) for NHWC or (N, C, H, W) for NCHW.
    data_format : {'NHWC', 'NCHW'}

    Returns
    -------
    y : numpy.ndarray
        (N, C), the computation dtype.
    cache : GlobalPool2dCache
        ``argmax`` holds each channel's first maximum ``h*W + w`` (last NaN, if any).

    Notes
    -----
    NaN propagates as in PyTorch's ``adaptive_max_pool2d(x, 1)``.
    """
    x, data_format, h_axis = _check_input(x, data_format)
    _check_nonempty(x, h_axis, "global_max_pool2d")
    _check_channels(x, h_axis, "global_max_pool2d")  # as PyTorch's adaptive_max_pool2d
    N, HW = x.shape[0], x.shape[h_axis] * x.shape[h_axis + 1]
    if data_format == "NHWC":
        flat = x.reshape(N, HW, x.shape[3])  # (N, H*W, C)
        axis = 1
    else:
        flat = x.reshape(N, x.shape[1], HW)  # (N, C, H*W)
        axis = 2
    argmax = np.argmax(flat, axis=axis)  # (N, C): first maximum (first NaN)
    y = np.take_along_axis(flat, np.expand_dims(argmax, axis), axis=axis).squeeze(axis)
    nan = np.isnan(y)
    if nan.any():  # PyTorch points to the LAST NaN
        last = flat.shape[axis] - 1 - np.argmax(np.flip(np.isnan(flat), axis=axis), axis=axis)
        argmax = np.where(nan, last, argmax)
    return y, GlobalPool2dCache(tuple(x.shape), data_format, x.dtype, argmax.astype(np.int64))


def global_max_pool2d_backward(dy: Any, cache: GlobalPool2dCache) -> np.ndarray:
    """Gradient of :func:`global_max_pool2d`: ``dy`` at each channel's argmax, 0 elsewhere.

    Parameters
    ----------
    dy : array_like
        (N, C).
    cache : GlobalPool2dCache

    Returns
    -------
    dx : numpy.ndarray
        (N, H, W, C) or (N, C, H, W).
    """
    _check_cache(cache, GlobalPool2dCache, "global_max_pool2d_backward")
    if cache.argmax is None:
        raise ValueError("global_max_pool2d_backward: cache comes from global_avg_pool2d "
                         "(it has no argmax); use global_avg_pool2d_backward")
    N, H, W, C = _nhwc(cache)
    dy, dtype = _check_dy(dy, (N, C), cache.dtype, "global_max_pool2d_backward")
    dx = np.zeros(cache.input_shape, dtype=dtype)
    if cache.data_format == "NHWC":
        flat = dx.reshape(N, H * W, C)
        np.put_along_axis(flat, cache.argmax[:, None, :], dy[:, None, :], axis=1)
    else:
        flat = dx.reshape(N, C, H * W)
        np.put_along_axis(flat, cache.argmax[:, :, None], dy[:, :, None], axis=2)
    return dx


def _nhwc(cache: GlobalPool2dCache) -> tuple[int, int, int, int]:
    if cache.data_format == "NHWC":
        N, H, W, C = cache.input_shape
    else:
        N, C, H, W = cache.input_shape
    return N, H, W, C


def _check_channels(x: np.ndarray, h_axis: int, op: str) -> None:
    """PyTorch's window poolings refuse zero channels (an empty batch is fine)."""
    c_axis = 3 if h_axis == 1 else 1
    if x.shape[c_axis] == 0:
        raise ValueError(f"{op}: x must have at least one channel; got shape "
                         f"{shape_str(x.shape)} (axis {c_axis} is C)")


def _check_nonempty(x: np.ndarray, h_axis: int, op: str) -> None:
    if x.shape[h_axis] == 0 or x.shape[h_axis + 1] == 0:
        raise ValueError(f"{op}: x must have at least one spatial position; got shape "
                         f"{shape_str(x.shape)}")

"""Figures of a training run: curves, first-layer filters, confusion matrix, predictions.

Each function writes one PNG and returns its path. Figures are drawn on
``matplotlib.figure.Figure`` directly (the Agg canvas), never through ``pyplot``, so
they work without a display and never change the caller's matplotlib backend.
matplotlib is optional: without it a clear ``ImportError`` names
``pip install 'convblocks[cli]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ._atomic import atomic_write
from .functional.checks import as_int

__all__ = ["plot_history", "plot_filters", "plot_confusion", "plot_predictions",
           "confusion_matrix"]


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'convblocks[cli]'") from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:  # an interrupted run never leaves half a PNG
        fig.savefig(f, format="png")
    return path


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``cm[i, j]`` of examples of true class ``i`` predicted as ``j``.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray
        Integer labels of shape (N,) in ``0..num_classes-1``.
    num_classes : int
        Number of classes.

    Returns
    -------
    numpy.ndarray
        int64 of shape (num_classes, num_classes).
    """
    num_classes = as_int(num_classes, "num_classes", minimum=1)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        y = np.asarray(y)
        if not (y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(y == np.round(y)))):
            raise ValueError(f"{name} must hold integer labels; got {y.dtype} values such as "
                             f"{y.ravel()[:3].tolist()}")
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = np.asarray(y_pred).astype(np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of the same length; got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}; got {y.min()}..{y.max()}")
    # Flattened pair index i * K + j, counted in one bincount.
    return np.bincount(y_true * num_classes + y_pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


#: The curves of a history that :func:`plot_history` draws, in the order checked.
_CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")


def _history_curves(history: dict) -> tuple[dict[str, np.ndarray | None], int]:
    """The curves of ``history`` as float64 arrays (None entries as NaN), checked, and
    the number of epochs.

    A curve whose every entry is None (nothing recorded, e.g. ``val_loss`` of a run
    without validation data) maps to None. Every curve present must have one entry per
    epoch: as many as the first one present (``loss`` normally).
    """
    curves: dict[str, np.ndarray | None] = {}
    first = None  # (key, length) of the first curve present
    for key in _CURVES:
        values = history.get(key)
        if values is None:
            continue
        items = arr = None
        if not isinstance(values, (str, bytes, dict)):
            try:
                items = list(values)
                arr = np.asarray([np.nan if v is None else v for v in items])
            except (TypeError, ValueError):  # not iterable, or ragged
                arr = None
        if arr is None or arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iuf"):
            raise ValueError(f"history[{key!r}] must be a sequence of numbers, one per epoch "
                             f"(None for an epoch without one); got {type(values).__name__}"
                             + ("" if arr is None else f" of shape {arr.shape} and dtype "
                                                       f"{arr.dtype}"))
        if first is None:
            first = (key, len(arr))
        elif len(arr) != first[1]:
            raise ValueError(
                f"history[{key!r}] has {len(arr)} entries but history[{first[0]!r}] has "
                f"{first[1]}; expected one entry per epoch in every curve (None for an epoch "
                f"without a value, as Sequential.fit records them), since nothing tells which "
                f"epochs the {len(arr)} belong to")
        curves[key] = arr.astype(np.float64) if any(v is not None for v in items) else None
    return curves, 0 if first is None else first[1]


def plot_history(history: dict, path: str | os.PathLike) -> Path:
    """Loss and accuracy per epoch (training and, when recorded, validation).

    Parameters
    ----------
    history : dict
        Lists per epoch under ``loss``, ``accuracy`` and optionally ``val_loss``,
        ``val_accuracy`` (what ``Sequential.fit`` returns, or the ``history`` of a
        ``convblocks train`` run's metrics.json, resumed runs included). Entry ``i``
        of every list is epoch ``i + 1``; ``None`` (or NaN) marks an epoch without
        that value and leaves a gap. A curve with no value at all (``val_*`` of a run
        without validation data) is not drawn. Other keys are ignored.
    path : str or os.PathLike
        The PNG to write.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        ``history`` is not a dict.
    ValueError
        A curve is not a sequence of numbers, or its length differs from the other
        curves' (e.g. 3 ``val_loss`` values for 5 epochs of ``loss``): which epochs
        its values belong to cannot be told, so nothing is drawn. No file is written.
    """
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict of per-epoch lists; got {type(history).__name__}")
    curves, n_epochs = _history_curves(history)
    fig = _figure(9, 3.6)
    from matplotlib.ticker import MaxNLocator

    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, n_epochs + 1)
    for ax, key, title in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        for prefix, label, style in (("", "training", "o-"), ("val_", "validation", "s--")):
            values = curves.get(prefix + key)
            if values is not None:  # None: not recorded
                ax.plot(epochs, values, style, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_lines():  # an empty history: no legend (and no matplotlib warning)
            ax.legend()
    return _save(fig, path)


def plot_filters(weights: np.ndarray, path: str | os.PathLike, *,
                 data_format: str = "NHWC") -> Path:
    """The first convolution's filters as small images, one per output channel.

    Parameters
    ----------
    weights : numpy.ndarray
        HWIO ``(kh, kw, C_in, C_out)`` for NHWC or OIHW ``(C_out, C_in, kh, kw)`` for
        NCHW. One input channel is drawn in gray; three as RGB; otherwise their mean.
    path : str or os.PathLike
        The PNG to write.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"weights must be 4-D; got shape {w.shape}")
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW'; got {data_format!r}")
    if data_format == "NCHW":
        w = w.transpose(2, 3, 1, 0)                   # OIHW -> HWIO
    kh, kw, c_in, c_out = w.shape
    if 0 in w.shape:
        raise ValueError(f"weights must hold at least one filter of at least one value; got "
                         f"shape {np.shape(weights)} ({data_format})")
    cols = int(np.ceil(np.sqrt(c_out)))
    rows = int(np.ceil(c_out / cols))
    fig = _figure(max(3.6, 1.0 * cols + 0.5), 1.0 * rows + 0.6)  # room for the title
    fig.suptitle(f"first-layer filters ({c_out} of {kh}x{kw}x{c_in})")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k >= c_out:
            continue
        f = w[:, :, :, k]
        f = (f - f.min()) / (np.ptp(f) or 1.0)         # each filter scaled to [0, 1]
        if c_in == 3:
            ax.imshow(f, interpolation="nearest")
        else:
            ax.imshow(f.mean(axis=2), cmap="gray", interpolation="nearest")
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str | os.PathLike) -> Path:
    """The confusion matrix with counts, rows = true class, columns = predicted.

    Parameters
    ----------
    cm : numpy.ndarray
        Counts of shape (K, K), see :func:`confusion_matrix`.
    classes : sequence of str
        K class names.
    path : str or os.PathLike
        The PNG to write.
    """
    cm = np.asarray(cm)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"cm must be ({k}, {k}) for {k} classes; got shape {cm.shape}")
    if not (np.issubdtype(cm.dtype, np.number) and np.all(np.isfinite(cm)) and np.all(cm >= 0)
            and np.all(cm == np.round(cm))):
        raise ValueError(f"cm must hold counts (whole numbers >= 0, see confusion_matrix); got "
                         f"{cm.dtype} values {np.unique(cm)[:5].tolist()}...")
    # Very long names would squeeze the matrix to nothing (constrained layout gives up).
    names = [n if len(n) <= 24 else n[:23] + "\u2026" for n in map(str, classes)]
    longest = max(map(len, names), default=0)  # room for the tick labels
    fig = _figure(max(3.6, 1.0 + 0.62 * k + 0.08 * longest), 0.6 + 0.55 * k + 0.06 * longest)
    ax = fig.subplots()
    rows = cm.sum(axis=1, keepdims=True)
    frac = cm / np.maximum(rows, 1)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(cm) / max(cm.sum(), 1)
    fig.suptitle(f"confusion matrix (accuracy {acc:.2%})")  # the figure, not the axes, holds it
    return _save(fig, path)


def plot_predictions(images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                     classes: Sequence[str], path: str | os.PathLike, *,
                     cols: int = 6) -> Path:
    """A grid of images titled with the prediction (green right, red wrong).

    Parameters
    ----------
    images : numpy.ndarray
        NHWC images in [0, 1], shape (n, H, W, C) with C = 1 or 3.
    labels : numpy.ndarray
        True labels, shape (n,).
    probs : numpy.ndarray
        Class probabilities, shape (n, K).
    classes : sequence of str
        K class names.
    path : str or os.PathLike
        The PNG to write.
    """
    cols = as_int(cols, "cols", minimum=1)
    images, labels, probs = np.asarray(images), np.asarray(labels), np.asarray(probs)
    n = len(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or n == 0:
        raise ValueError(f"images must be NHWC of shape (n, H, W, C) with n >= 1 and C = 1 "
                         f"or 3; got shape {images.shape}")
    if labels.shape != (n,) or probs.shape != (n, len(classes)):
        raise ValueError(f"labels must have shape ({n},) and probs ({n}, {len(classes)}) for "
                         f"{n} images and {len(classes)} classes; got {labels.shape} and "
                         f"{probs.shape}")
    if n and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"labels must lie in 0..{len(classes) - 1}; got "
                         f"{labels.min()}..{labels.max()}")
    rows = int(np.ceil(n / cols))
    fig = _figure(1.7 * cols, 1.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        img = np.clip(images[i], 0, 1)
        if img.shape[-1] == 1:
            ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img)
        pred = int(np.argmax(probs[i]))
        ok = pred == int(labels[i])
        title = f"{classes[pred]} {probs[i, pred]:.0%}"
        if not ok:
            title += f"\n(true: {classes[int(labels[i])]})"
        ax.set_title(title, fontsize=8, color="green" if ok else "red")
    return _save(fig, path)

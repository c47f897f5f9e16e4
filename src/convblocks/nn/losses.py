"""Losses: softmax cross-entropy (on logits) and mean squared error.

A loss object is called as ``loss.forward(outputs, targets) -> float`` (the mean over
the batch) and ``loss.backward() -> d loss / d outputs`` (same shape and dtype as
``outputs``), the first step of backpropagation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..functional.checks import as_float_array, shape_str

__all__ = ["Loss", "SoftmaxCrossEntropy", "MSE", "softmax", "log_softmax", "LOSSES",
           "loss_from_config"]


def _logits(logits: Any) -> np.ndarray:
    """``logits`` as a float array with at least one class along its last axis."""
    logits = as_float_array(logits, "logits")
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have at least one class along the last axis; got shape "
                         f"{shape_str(logits.shape)}")
    return logits


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Stable ``log(softmax(logits))`` along the last axis via log-sum-exp.

    Subtracting each row's maximum first keeps ``exp`` in ``(0, 1]``: no overflow for
    large logits, and at least one term of each sum is exactly 1 (no log(0)). Integer
    logits are computed in float64.
    """
    logits = _logits(logits)
    z = logits - logits.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax along the last axis, ``(N, K) -> (N, K)``, stable for any logits."""
    logits = _logits(logits)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


class Loss:
    """Base class: validates shapes once and keeps what ``backward`` needs."""

    #: Whether ``accuracy`` (argmax of outputs vs. the class labels) is meaningful.
    classification: ClassVar[bool] = False

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def output_transform(self, outputs: np.ndarray) -> np.ndarray:
        """What ``Sequential.predict`` returns for the network's raw outputs."""
        return outputs

    def check_targets(self, targets: np.ndarray, output_shape: tuple[int, ...],
                      name: str) -> None:
        """Raise unless a whole data set's ``targets`` ``(N, ...)`` suit this loss.

        ``output_shape`` is the network's per-example output shape. ``Sequential`` calls
        it once before training, so that a bad target is reported before any step.
        Default (MSE): one target of the output's shape per example, of a numeric dtype,
        with no NaN or infinity.
        """
        targets = np.asarray(targets)
        as_float_array(targets[:1] if targets.ndim else targets, name)  # TypeError for bad dtypes
        if targets.shape[1:] != tuple(output_shape):
            raise ValueError(f"{name} must have shape (N, {', '.join(map(str, output_shape))})"
                             f" (the model's output per example) for {type(self).__name__}; "
                             f"got {shape_str(targets.shape)}")
        _check_finite_targets(targets, name)

    def forward(self, outputs: Any, targets: Any) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError


def _check_finite_targets(targets: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if float ``targets`` hold NaN or an infinity (the loss, then every
    weight after one step, would be NaN)."""
    if targets.dtype.kind == "f" and not np.isfinite(targets).all():
        bad = int(np.size(targets) - np.count_nonzero(np.isfinite(targets)))
        raise ValueError(f"{name} must be finite; got {bad} NaN or infinite value(s) in an "
                         f"array of shape {shape_str(targets.shape)}")


def _labels_or_probs(targets: Any, n: int, k: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Split ``targets`` into integer labels ``(N,)`` or target distributions ``(N, K)``."""
    t = np.asarray(targets)
    if t.ndim == 1 and t.dtype.kind in "iu":
        if t.shape[0] != n:
            raise ValueError(f"targets must have {n} labels (one per row of outputs); got "
                             f"shape {shape_str(t.shape)}")
        if t.size and (t.min() < 0 or t.max() >= k):
            raise ValueError(f"integer targets must lie in [0, {k - 1}] for {k} classes; got "
                             f"values in [{t.min()}, {t.max()}]")
        return t.astype(np.intp, copy=False), None
    if t.ndim == 2:
        t = as_float_array(t, "targets")
        if t.shape != (n, k):
            raise ValueError(f"one-hot/probability targets must have the outputs' shape "
                             f"{shape_str((n, k))}; got {shape_str(t.shape)}")
        return None, t
    raise ValueError(f"targets must be integer labels (N,) or one-hot (N, K); got "
                     f"{t.ndim}-D array of dtype {t.dtype} and shape {shape_str(t.shape)}")


class SoftmaxCrossEntropy(Loss):
    """Mean cross-entropy of ``softmax(logits)`` against the targets.

    ``forward(logits, targets)``: ``logits`` ``(N, K)``; ``targets`` integer labels
    ``(N,)`` in ``[0, K)`` or one-hot / probability rows ``(N, K)``. Loss
    ``-mean_n sum_k t[n, k] * log_softmax(logits)[n, k]``, computed with log-sum-exp.
    ``backward()``: ``(softmax(logits) - t) / N``, shape ``(N, K)`` (for rows that do
    not sum to 1, ``(softmax(logits) * sum_k t[n, k] - t) / N``, the loss's derivative).
    Same as ``torch.nn.CrossEntropyLoss()`` (mean reduction).
    """

    classification = True

    def output_transform(self, outputs: np.ndarray) -> np.ndarray:
        return softmax(outputs)

    def check_targets(self, targets: np.ndarray, output_shape: tuple[int, ...],
                      name: str) -> None:
        """Integer labels ``(N,)`` in ``[0, K)`` or finite rows ``(N, K)`` for outputs ``(K,)``."""
        output_shape = tuple(output_shape)
        if len(output_shape) != 1 or output_shape[0] < 1:
            raise ValueError(f"SoftmaxCrossEntropy needs logits (N, K) with K >= 1: the "
                             f"model's output per example must be (K,); it is "
                             f"{shape_str(output_shape)}")
        k = output_shape[0]
        t = np.asarray(targets)
        if t.ndim == 1 and t.dtype.kind in "iu":
            if t.size:
                lo, hi = t.min(), t.max()
                if lo < 0 or hi >= k:
                    raise ValueError(f"{name} must hold class labels in [0, {k - 1}] for the "
                                     f"model's {k} classes; got values in [{lo}, {hi}] "
                                     f"(shape {shape_str(t.shape)}, dtype {t.dtype})")
            return
        if t.ndim == 2:
            as_float_array(t[:1], name)
            if t.shape[1] != k:
                raise ValueError(f"{name} as one-hot/probability rows must have shape "
                                 f"(N, {k}) for the model's {k} classes; got "
                                 f"{shape_str(t.shape)}")
            _check_finite_targets(t, name)
            return
        raise ValueError(f"{name} must be integer class labels (N,) or one-hot rows (N, {k}); "
                         f"got a {t.ndim}-D array of dtype {t.dtype} and shape "
                         f"{shape_str(t.shape)}")

    def forward(self, outputs: Any, targets: Any) -> float:
        logits = as_float_array(outputs, "outputs")
        if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
            raise ValueError(f"outputs (logits) must be 2-D (N, K) with N >= 1 and K >= 1 "
                             f"(at least one class); got shape {shape_str(logits.shape)}")
        n, k = logits.shape
        labels, probs = _labels_or_probs(targets, n, k)
        logp = log_softmax(logits)
        if labels is not None:
            loss = -logp[np.arange(n), labels].sum() / n
        else:
            loss = -np.einsum("nk,nk->", probs, logp) / n
        # Gradient of the mean: (softmax - targets) / N, built in place from logp.
        # For target rows t that need not sum to 1 the derivative of the loss is
        # softmax * sum(t) - t (torch's rule); for probability rows it is the same.
        grad = np.exp(logp, out=logp)
        if labels is not None:
            grad[np.arange(n), labels] -= 1
        else:
            grad *= probs.sum(axis=1, keepdims=True)
            grad -= probs
        grad /= n
        self._grad = grad.astype(logits.dtype, copy=False)
        return float(loss)

    def backward(self) -> np.ndarray:
        if getattr(self, "_grad", None) is None:
            raise ValueError("SoftmaxCrossEntropy.backward needs a forward first")
        return self._grad


class MSE(Loss):
    """Mean squared error over every element, ``mean((outputs - targets)**2)``.

    ``outputs`` and ``targets`` have the same shape; ``backward()`` returns
    ``2 * (outputs - targets) / outputs.size``. Same as ``torch.nn.MSELoss()``.
    """

    def forward(self, outputs: Any, targets: Any) -> float:
        out = as_float_array(outputs, "outputs")
        t = as_float_array(targets, "targets")
        if t.shape != out.shape:
            raise ValueError(f"targets must have the outputs' shape {shape_str(out.shape)}; "
                             f"got {shape_str(t.shape)}")
        if out.size == 0:
            raise ValueError("outputs must not be empty")
        diff = out - t
        loss = float(np.vdot(diff, diff)) / diff.size
        diff *= 2.0 / diff.size
        self._grad = diff.astype(out.dtype, copy=False)
        return loss

    def backward(self) -> np.ndarray:
        if getattr(self, "_grad", None) is None:
            raise ValueError("MSE.backward needs a forward first")
        return self._grad


LOSSES: dict[str, type[Loss]] = {"SoftmaxCrossEntropy": SoftmaxCrossEntropy, "MSE": MSE}


def loss_from_config(config: dict[str, Any]) -> Loss:
    """Rebuild a loss from ``get_config()``'s output."""
    name = config.get("class") if isinstance(config, dict) else None
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"unknown loss config {config!r}; known: {', '.join(LOSSES)}")
    return LOSSES[name]()

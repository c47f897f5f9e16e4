"""Optimizers (SGD with momentum/Nesterov, Adam, AdamW) and gradient clipping.

An optimizer is not bound to parameters: ``step(params, grads, lr=...)`` takes two
dicts with the same keys (``Sequential`` uses ``"<layer index>.<param name>"``) and
updates ``params`` in place, keeping per-parameter state (momentum buffers, moments)
under the same keys. Every formula is PyTorch's (``torch.optim``), step for step.
Updates run in the parameters' dtype: float32 parameters get float32 arithmetic.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from ..functional.checks import as_bool, shape_str
from .base import as_real, check_config_options

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "OPTIMIZERS",
           "optimizer_from_config"]


def _number(value: Any, name: str, *, minimum: float = 0.0, below: float | None = None) -> float:
    value = as_real(value, name, finite=False)  # the range check names NaN and inf
    if not math.isfinite(value) or value < minimum or (below is not None and value >= below):
        bound = f"[{minimum}, {below})" if below is not None else f">= {minimum}"
        raise ValueError(f"{name} must be finite and {bound}; got {value}")
    return value


def clip_grad_norm(grads: Mapping[str, np.ndarray] | Iterable[np.ndarray],
                   max_norm: float) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the norm is taken over every gradient at
    once, and when it exceeds ``max_norm`` each gradient is multiplied by
    ``max_norm / (norm + 1e-6)``. Returns the norm before clipping.
    """
    max_norm = _number(max_norm, "max_norm")
    if isinstance(grads, Mapping):
        named = [(f"grads[{k!r}]", g) for k, g in grads.items()]
    elif isinstance(grads, Iterable) and not isinstance(grads, (str, bytes, np.ndarray)):
        named = [(f"grads[{i}]", g) for i, g in enumerate(grads)]
    else:
        raise TypeError(f"grads must be a dict or a list of gradient arrays; got "
                        f"{type(grads).__name__}")
    for name, g in named:  # scaled in place: only real float arrays can be
        if not isinstance(g, np.ndarray) or g.dtype not in (np.float32, np.float64):
            what = f"dtype {g.dtype}" if isinstance(g, np.ndarray) else type(g).__name__
            raise TypeError(f"{name} must be a float32 or float64 ndarray; got {what}")
    arrays = [g for _, g in named]
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in arrays))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in arrays:
            g *= coef
    return total


class Optimizer:
    """Base class: the learning rate, the step counter and per-parameter state."""

    def __init__(self, lr: float, weight_decay: float) -> None:
        self.lr = _number(lr, "lr")
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "class")
        return f"{type(self).__name__}({opts})"

    @property
    def slot_names(self) -> tuple[str, ...]:
        """The per-parameter state arrays kept (``state[key][slot]``): once a step has
        run, every parameter it updated has each of them."""
        return ()

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], *,
             lr: float | None = None) -> None:
        """Update every array of ``params`` in place from ``grads``.

        ``params`` and ``grads`` are dicts with the same keys; each parameter is a
        writeable float32 or float64 ndarray and its gradient an ndarray of the same
        shape and dtype. Everything is checked before anything is updated: a bad entry
        raises (``TypeError``/``ValueError`` naming its key) with no parameter changed.
        ``lr`` overrides the base learning rate for this step (a schedule's value).
        """
        lr = self.lr if lr is None else _number(lr, "lr")
        for arg, value in (("params", params), ("grads", grads)):
            if not isinstance(value, Mapping):
                raise TypeError(f"{arg} must be a dict of arrays keyed by parameter name; got "
                                f"{type(value).__name__}")
        missing = [k for k in params if k not in grads or grads[k] is None]
        if missing:
            raise ValueError(f"no gradient for parameter {missing[0]!r}"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        extra = [k for k in grads if k not in params]
        if extra:
            raise ValueError(f"grads has keys that are not parameters: {extra[:5]}")
        for key, p in params.items():
            g = grads[key]
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                what = (f"dtype {p.dtype}" if isinstance(p, np.ndarray)
                        else type(p).__name__)
                raise TypeError(f"parameter {key!r} must be a float32 or float64 ndarray; got "
                                f"{what}")
            if not p.flags.writeable:
                raise ValueError(f"parameter {key!r} is read-only; the update is in place")
            if not isinstance(g, np.ndarray):
                raise TypeError(f"gradient for {key!r} must be an ndarray; got "
                                f"{type(g).__name__}")
            if g.dtype != p.dtype:
                raise TypeError(f"gradient for {key!r} has dtype {g.dtype}; the parameter's "
                                f"is {p.dtype} (a real float of the same dtype is needed)")
            if g.shape != p.shape:
                raise ValueError(f"gradient for {key!r} has shape {shape_str(g.shape)}; "
                                 f"parameter has {shape_str(p.shape)}")
            for slot, arr in self.state.get(key, {}).items():
                if arr.shape != p.shape or arr.dtype != p.dtype:
                    raise ValueError(f"optimizer state {slot + '/' + key!r} has shape "
                                     f"{shape_str(arr.shape)} {arr.dtype}, but parameter "
                                     f"{key!r} has {shape_str(p.shape)} {p.dtype}: this "
                                     f"optimizer has stepped other parameters under that "
                                     f"key; use a fresh optimizer for another model")
        self.iterations += 1
        for key, p in params.items():
            self._update(key, p, grads[key], lr)

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def _slot(self, key: str, slot: str, like: np.ndarray) -> np.ndarray:
        slots = self.state.setdefault(key, {})
        if slot not in slots:
            slots[slot] = np.zeros_like(like)
        return slots[slot]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat ``{"iterations": ..., "<slot>/<param key>": array}`` (npz-ready)."""
        out = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for key, slots in self.state.items():
            for slot, arr in slots.items():
                out[f"{slot}/{key}"] = arr
        return out

    def check_state(self, state: Mapping[str, Any],
                    params: Mapping[str, np.ndarray] | None = None, *, prefix: str = "") -> int:
        """Check a ``state_dict``-style mapping; return its ``iterations``.

        ``iterations`` must be an integer >= 0. With ``params`` (the parameters the state
        belongs to) every slot is checked too: after a step each parameter must have each
        of :attr:`slot_names`, of the parameter's shape and dtype, and nothing else may be
        there (before any step: no slot at all). Messages name entries as
        ``prefix + name``. Raises ``ValueError`` (``TypeError`` when ``state`` or
        ``params`` is not a mapping).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"optimizer state must be a dict (from state_dict()); got "
                            f"{type(state).__name__}")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of arrays keyed by parameter name or None; "
                            f"got {type(params).__name__}")
        if "iterations" not in state:
            raise ValueError(f"optimizer state lacks {prefix + 'iterations'!r}")
        it = state["iterations"]
        it_arr = np.asarray(it)
        if (isinstance(it, (bool, np.bool_)) or it_arr.shape != ()
                or it_arr.dtype.kind not in "iu" or int(it_arr) < 0):
            got = (f"{it_arr.tolist()!r} (dtype {it_arr.dtype}, shape {it_arr.shape})"
                   if isinstance(it, np.ndarray) else repr(it))
            raise ValueError(f"optimizer state {prefix + 'iterations'!r} must be an integer "
                             f">= 0; got {got}")
        iterations = int(it_arr)
        if iterations >= 2**63:  # state_dict stores it as int64
            raise ValueError(f"optimizer state {prefix + 'iterations'!r} must be < 2**63; got "
                             f"{iterations}")
        for name in state:
            if not isinstance(name, str):
                raise ValueError(f"optimizer state keys must be strings "
                                 f"'{prefix}<slot>/<param>'; got {name!r}")
            if name != "iterations" and "/" not in name:
                raise ValueError(f"optimizer state entry {prefix + name!r} is not "
                                 f"'{prefix}<slot>/<param>'")
        if params is None:
            return iterations
        expected = ({f"{slot}/{key}": p for key, p in params.items() for slot in self.slot_names}
                    if iterations else {})
        missing = [name for name in expected if name not in state]
        if missing:
            raise ValueError(f"optimizer state lacks {prefix + missing[0]!r}"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                             + f": after {iterations} steps {type(self).__name__} keeps "
                               f"{list(self.slot_names)} for every parameter")
        unexpected = sorted(name for name in state if name != "iterations" and name not in expected)
        if unexpected:
            keeps = (f"keeps {list(self.slot_names)} per parameter" if iterations
                     else "keeps no slot before its first step")
            raise ValueError(f"optimizer state has unexpected entries "
                             f"{[prefix + n for n in unexpected[:5]]} ({type(self).__name__} "
                             f"at step {iterations} {keeps}; parameters: "
                             f"{list(params)[:5]}{'...' if len(params) > 5 else ''})")
        for name, p in expected.items():
            arr = np.asarray(state[name])
            if arr.shape != p.shape or arr.dtype != p.dtype:
                raise ValueError(f"optimizer state {prefix + name!r} has shape "
                                 f"{shape_str(arr.shape)} {arr.dtype}; its parameter has "
                                 f"{shape_str(p.shape)} {p.dtype}")
        return iterations

    def load_state_dict(self, state: Mapping[str, np.ndarray],
                        params: Mapping[str, np.ndarray] | None = None) -> None:
        """Restore what ``state_dict`` returned (arrays are copied).

        With ``params``, the slots are checked against them first (see
        :meth:`check_state`). Nothing is changed when a check fails.
        """
        iterations = self.check_state(state, params)
        new: dict[str, dict[str, np.ndarray]] = {}
        for name, arr in state.items():
            if name != "iterations":
                slot, _, key = name.partition("/")
                new.setdefault(key, {})[slot] = np.array(arr, copy=True)
        self.iterations = iterations
        self.state = new


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    ``g = grad + weight_decay * p``; with momentum ``buf = momentum * buf + g`` (``buf = g``
    on the first step) and ``g = buf`` (or ``g + momentum * buf`` with Nesterov);
    ``p -= lr * g``. Exactly ``torch.optim.SGD`` with ``dampening=0``.
    """

    def __init__(self, lr: float = 0.01, *, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = _number(momentum, "momentum")
        self.nesterov = as_bool(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0; got momentum=0")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum else ()

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            slots = self.state.setdefault(key, {})
            if "momentum" not in slots:
                slots["momentum"] = np.array(g, copy=True)
                buf = slots["momentum"]
            else:
                buf = slots["momentum"]
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``. ``weight_decay``
    adds ``weight_decay * p`` to the gradient (L2, coupled); see :class:`AdamW`.
    """

    decoupled = False

    def __init__(self, lr: float = 1e-3, *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2); got {betas!r}")
        self.betas = (_number(betas[0], "betas[0]", below=1.0),
                      _number(betas[1], "betas[1]", below=1.0))
        self.eps = _number(eps, "eps")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "betas": list(self.betas), "eps": self.eps}

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        b1, b2 = self.betas
        t = self.iterations
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m = self._slot(key, "exp_avg", p)
        v = self._slot(key, "exp_avg_sq", p)
        # One temporary, reused for every elementwise step (in the parameters' dtype).
        tmp = np.subtract(g, m)
        tmp *= 1.0 - b1
        m += tmp  # m = b1 m + (1 - b1) g (torch's lerp)
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v *= b2
        v += tmp  # v = b2 v + (1 - b2) g^2
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(1.0 - b2 ** t)
        tmp += self.eps  # sqrt(v_hat) + eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr / (1.0 - b1 ** t)  # times lr / bias correction of m
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    ``p *= 1 - lr * weight_decay`` before the Adam step. Default ``weight_decay=0.01``."""

    decoupled = True

    def __init__(self, lr: float = 1e-3, *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(lr, betas=betas, eps=eps, weight_decay=weight_decay)


OPTIMIZERS: dict[str, type[Optimizer]] = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


def optimizer_from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer (without state) from ``get_config()``'s output."""
    if (not isinstance(config, dict) or not isinstance(config.get("class"), str)
            or config["class"] not in OPTIMIZERS or "lr" not in config):
        raise ValueError(f"unknown optimizer config {config!r} (a dict with 'class' and 'lr'); "
                         f"known: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[config["class"]]
    options = {k: (tuple(v) if isinstance(v, list) else v)
               for k, v in config.items() if k != "class"}
    check_config_options(cls, options, config)
    return cls(**options)

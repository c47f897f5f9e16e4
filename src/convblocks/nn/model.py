"""``Sequential``: a stack of layers with a Keras-style compile/fit/evaluate/predict.

Training is plain minibatch backpropagation: forward through every layer, the loss's
gradient, backward through the layers in reverse (the first layer skips its input
gradient), optional clipping by global norm, then one optimizer step with the
schedule's learning rate. A ReLU directly followed by a MaxPool2D runs after the
pooling instead, on a quarter of the values: the results are identical bit for bit
(see ``_steps``). Determinism: ``fit(seed=s)`` draws epoch ``e``'s shuffle and
dropout masks from ``SeedSequence([s, e])``, so a run resumed at epoch ``e`` from a
checkpoint written at the end of epoch ``e - 1`` repeats the uninterrupted run bit for bit.
Mid-epoch too: a callback raising :class:`StopTraining` after a batch leaves
``Sequential.epoch_state`` (position, running sums, the dropout generator's state), and
``fit(..., initial_epoch=e, initial_batch=b, epoch_state=state)`` continues from it.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Sequence

import numpy as np

from ..datasets.batches import iterate_batches
from ..functional.checks import as_float_array, as_int, shape_str
from .activations import ReLU
from .base import Layer, as_bool, as_float_dtype, as_real, layer_from_config
from .layers import MaxPool2D
from .losses import Loss, softmax
from .optim import Optimizer, clip_grad_norm
from .schedules import Schedule

__all__ = ["Sequential", "StopTraining"]

_CALLBACK_METHODS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end",
                     "on_train_end")


def _steps(layers: Sequence[Layer]) -> list[tuple[Layer, ...]]:
    """The layers in execution groups: ``(ReLU, MaxPool2D)`` pairs, other layers alone.

    ReLU commutes with max pooling exactly: ``max(relu(window)) == relu(max(window))``
    (ReLU is non-decreasing; a NaN stays NaN), and the gradients agree too: where the
    window's maximum is positive, its first maximum is the same element before and after
    ReLU, and elsewhere both orders give 0. Pooling first leaves ReLU a quarter of the
    values (2x2 windows), and the pooling sees no ReLU-made ties. A pair runs as
    pool, then ReLU; its backward as ReLU, then pool.

    Only undilated pools qualify: a dilated window can lie wholly in the ``-inf``
    padding, and ``relu(-inf) = 0`` would replace its ``-inf`` output. An undilated
    window always holds an input element (padding is at most half the window, and a
    ``ceil_mode`` window starts inside the input or its left padding).
    """
    steps: list[tuple[Layer, ...]] = []
    i = 0
    while i < len(layers):
        if (i + 1 < len(layers) and type(layers[i]) is ReLU and type(layers[i + 1]) is MaxPool2D
                and layers[i + 1].dilation == (1, 1)):
            steps.append((layers[i], layers[i + 1]))
            i += 2
        else:
            steps.append((layers[i],))
            i += 1
    return steps


class StopTraining(Exception):
    """Raised by a callback to end :meth:`Sequential.fit` at once, resumably.

    Raised from ``on_batch_end`` it stops right after that batch's optimizer step (the
    parameters and the optimizer state are consistent), without ending the epoch: no
    validation, no ``on_epoch_end``, no history entry. ``model.epoch_state`` then holds
    the position, and ``fit(..., initial_epoch=s["epoch"], initial_batch=s["batch"],
    epoch_state=s)`` finishes that epoch exactly as the uninterrupted run would have.
    Raised from ``on_train_begin``, ``on_epoch_begin`` or ``on_epoch_end`` it stops
    between epochs (``model.epoch_state`` is None). ``fit`` returns the history of the
    epochs it completed and calls ``on_train_end``.
    """


class _EpochProgress:
    """The live position of the epoch that ``fit`` is running (see ``epoch_state``)."""

    __slots__ = ("epoch", "batch", "batches", "seed", "examples", "batch_size", "shuffle",
                 "seen", "loss_sum", "correct", "time", "rng")

    def __init__(self, **values: Any) -> None:
        for key, value in values.items():
            setattr(self, key, value)


#: Keys of ``Sequential.epoch_state`` (all required by ``fit(epoch_state=...)``).
_EPOCH_STATE_KEYS = _EpochProgress.__slots__[:-1] + ("dropout_rng",)


def _check_epoch_state(state: Any, *, epoch: int, batch: int, batches: int, seed: int | None,
                       examples: int, batch_size: int, shuffle: bool) -> dict[str, Any]:
    """``fit``'s ``epoch_state`` checked against the call; returned normalized.

    ``seed`` is the call's seed (None: take the state's).
    """
    if state is None:
        raise ValueError(f"initial_batch={batch} needs epoch_state: the model.epoch_state "
                         f"read when that epoch stopped (its running sums and dropout "
                         f"generator)")
    if not isinstance(state, dict):
        raise TypeError(f"epoch_state must be a dict (model.epoch_state); got "
                        f"{type(state).__name__}")
    missing = [k for k in _EPOCH_STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"epoch_state lacks {missing}; pass model.epoch_state as read")

    def whole(key: str) -> int:
        value = state[key]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                or value < 0:
            raise ValueError(f"epoch_state[{key!r}] must be an int >= 0; got {value!r}")
        return int(value)

    def real(key: str) -> float:
        value = state[key]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"epoch_state[{key!r}] must be a number; got {value!r}")
        return float(value)

    out = {k: whole(k) for k in ("epoch", "batch", "batches", "seed", "examples", "batch_size",
                                 "seen", "correct")}
    out["loss_sum"], out["time"] = real("loss_sum"), real("time")
    if not isinstance(state["shuffle"], (bool, np.bool_)):
        raise ValueError(f"epoch_state['shuffle'] must be a bool; got {state['shuffle']!r}")
    out["shuffle"] = bool(state["shuffle"])
    wanted = {"epoch": (epoch, "initial_epoch"), "batch": (batch, "initial_batch"),
              "examples": (examples, "examples in x"), "batch_size": (batch_size, "batch_size"),
              "batches": (batches, "batches per epoch"), "shuffle": (shuffle, "shuffle")}
    if seed is not None:
        wanted["seed"] = (seed, "seed")
    for key, (value, what) in wanted.items():
        if out[key] != value:
            raise ValueError(f"epoch_state was saved with {key}={out[key]!r} but this call "
                             f"has {what} {value!r}; resume with the stopped run's data and "
                             f"options")
    if out["batch"] > out["batches"] or out["seen"] > examples or out["correct"] > out["seen"]:
        raise ValueError(f"epoch_state is inconsistent: batch {out['batch']} of "
                         f"{out['batches']}, {out['seen']} of {examples} examples seen, "
                         f"{out['correct']} of them correct")
    rng_state = state["dropout_rng"]
    try:  # on a scratch generator: a bad state is refused before anything changes
        np.random.default_rng().bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"epoch_state['dropout_rng'] is not a PCG64 generator state "
                         f"({exc})") from None
    out["dropout_rng"] = rng_state
    return out


def _as_array(x: Any, name: str) -> np.ndarray:
    """``x`` as an ndarray (not converted), or a ``TypeError`` naming ``name`` for input
    NumPy cannot turn into one (ragged lists)."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array; got {type(x).__name__} that NumPy "
                        f"cannot turn into one ({exc})") from None


def _check_callbacks(callbacks: Any) -> list[Any]:
    """``fit``'s callbacks as a list, each with at least one hook, every hook callable."""
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise TypeError(f"callbacks must be a list of callback objects (with any of "
                        f"{', '.join(_CALLBACK_METHODS)}); got {type(callbacks).__name__}")
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        hooks = [m for m in _CALLBACK_METHODS if getattr(cb, m, None) is not None]
        if not hooks:
            raise TypeError(f"callbacks[{i}] must have at least one of "
                            f"{', '.join(_CALLBACK_METHODS)}; got {cb!r} "
                            f"({type(cb).__name__})")
        for m in hooks:
            if not callable(getattr(cb, m)):
                raise TypeError(f"callbacks[{i}].{m} must be callable; got "
                                f"{getattr(cb, m)!r}")
    return callbacks


def _call(callbacks: Sequence[Any], method: str, *args: Any) -> None:
    for cb in callbacks:
        fn = getattr(cb, method, None)
        if fn is not None:
            fn(*args)


class Sequential:
    """A linear stack of layers.

    Parameters
    ----------
    layers : sequence of Layer
    input_shape : tuple of int, optional
        Per-example input shape, e.g. ``(28, 28, 1)``; builds every layer at once
        (otherwise the first ``forward``/``fit`` does).
    seed : int, optional
        Seeds the model's generator, which draws the initial weights (layers are built
        in order from it) and the default ``fit`` seed. Same seed, same weights.
    dtype : {'float32', 'float64'}
        dtype of every parameter and activation; inputs are converted batch by batch.

    Attributes
    ----------
    layers : list of Layer
    stop_training : bool
        A callback sets it to True to end ``fit`` after the current batch; the epoch
        still ends (validation, ``on_epoch_end`` and a history entry for the batches
        run). To stop mid-epoch resumably, raise :class:`StopTraining` instead.
    epoch_state : dict or None
        The position of an unfinished epoch (read-only; see the property).
    """

    def __init__(self, layers: Iterable[Layer], *, input_shape: Sequence[int] | None = None,
                 seed: int | None = None, dtype: Any = "float32") -> None:
        if isinstance(layers, Layer):
            raise TypeError(f"layers must be a list of layers; got a single "
                            f"{layers.describe()} (wrap it in a list)")
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise TypeError(f"layers must be a list of convblocks.nn layers; got "
                            f"{type(layers).__name__}")
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("layers must contain at least one layer; got an empty list")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a convblocks.nn layer; got "
                                f"{type(layer).__name__}")
            if any(layer is other for other in self.layers[:i]):
                raise ValueError(f"layers[{i}] ({layer.describe()}) appears twice; use two "
                                 f"instances")
            if layer.name is None:
                layer.name = f"{type(layer).__name__.lower()}_{i}"
        self.seed = None if seed is None else as_int(seed, "seed", minimum=0)
        self._rng = np.random.default_rng(self.seed)
        self.dtype = as_float_dtype(dtype)
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.schedule: Schedule | None = None
        self.clip_norm: float | None = None
        self.stop_training = False
        self._progress: _EpochProgress | None = None
        if input_shape is not None:
            self.build(input_shape)

    # ------------------------------------------------------------------- building
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(self, input_shape: Sequence[int]) -> None:
        """Build every layer in order for per-example ``input_shape``.

        All or nothing: when a layer cannot take its input, the layers this call built
        are unbuilt again and the model's generator is rewound, so the model can still be
        built (with the same weights as a fresh model) for another input shape.
        """
        if not isinstance(input_shape, (tuple, list)):
            raise TypeError(f"input_shape must be a tuple of ints; got {input_shape!r}")
        shape = tuple(as_int(s, "input_shape entry", minimum=1) for s in input_shape)
        first = shape
        was_built = [layer.built for layer in self.layers]
        rng_state = self._rng.bit_generator.state
        try:
            for i, layer in enumerate(self.layers):
                try:
                    if layer.built:
                        if layer.input_shape != shape:
                            raise ValueError(f"it was already built for input "
                                             f"{layer.input_shape}, not {shape}")
                        shape = layer.output_shape
                    else:
                        shape = layer.build(shape, rng=self._rng, dtype=self.dtype)
                except (ValueError, TypeError) as exc:
                    reason = str(exc).removeprefix(f"{layer.describe()}: ")
                    raise type(exc)(f"layer {i} ({layer.describe()}) cannot take input of "
                                    f"shape (N, {', '.join(map(str, shape))}): {reason}") from None
        except BaseException:
            for layer, built in zip(self.layers, was_built):
                if not built:
                    layer._unbuild()
            self._rng.bit_generator.state = rng_state
            raise
        self.input_shape, self.output_shape = first, shape

    def _check_input(self, x: Any, name: str = "x") -> np.ndarray:
        """``x`` as an array (not converted: batches are cast one at a time), shape-checked.

        The dtype check runs on one example, so a large uint8 data set is never turned
        into float64 as a whole.
        """
        x = _as_array(x, name)
        as_float_array(x[:1] if x.ndim else x, name)  # TypeError for unusable dtypes
        if not self.built:
            if x.ndim < 2:
                raise ValueError(f"{name} must be a batch (N, ...); got shape {shape_str(x.shape)}")
            if 0 in x.shape[1:]:
                raise ValueError(f"{name} must have positive sizes after the batch axis "
                                 f"(N, ...); got shape {shape_str(x.shape)}")
            self.build(x.shape[1:])
        if x.shape[1:] != self.input_shape:
            first = self.layers[0]
            raise ValueError(f"layer 0 ({first.describe()}) expects {name} of shape "
                             f"(N, {', '.join(map(str, self.input_shape))}); got "
                             f"{shape_str(x.shape)}")
        return x

    # --------------------------------------------------------- forward / backward
    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        """Raw network output (logits) for a batch ``x`` of shape ``(N, *input_shape)``.

        ``training`` (a bool) selects batch statistics in BatchNorm and dropout masks.
        """
        training = as_bool(training, "training")
        x = self._check_input(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        for step in _steps(self.layers):
            if len(step) == 2:  # (ReLU, MaxPool2D): pool first, the same result (see _steps)
                relu, pool = step
                x = relu._forward_reordered(pool.forward(x, training), training)
            else:
                x = step[0].forward(x, training)
        return x

    def backward(self, dy: Any, *, input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate ``dy`` (d loss / d output) through every layer.

        Parameter gradients land in each layer's ``grads``. Returns d loss / d input
        when ``input_grad`` is True, else None (the first layer skips that work).
        """
        self.layers[0].needs_input_grad = as_bool(input_grad, "input_grad")
        for step in reversed(_steps(self.layers)):
            for layer in step:  # a (ReLU, MaxPool2D) pair ran pool first: ReLU's backward first
                dy = layer.backward(dy)
        return dy

    def params(self) -> dict[str, np.ndarray]:
        """Every trainable array as ``{"<layer index>.<name>": array}`` (live, not copies)."""
        return {f"{i}.{k}": p for i, layer in enumerate(self.layers)
                for k, p in layer.params.items()}

    def grads(self) -> dict[str, np.ndarray]:
        """The last backward's gradients, keyed as :meth:`params`."""
        return {f"{i}.{k}": layer.grads.get(k) for i, layer in enumerate(self.layers)
                for k in layer.params}

    def buffers(self) -> dict[str, np.ndarray]:
        """Saved untrained state (BatchNorm running statistics), keyed as :meth:`params`."""
        return {f"{i}.{k}": b for i, layer in enumerate(self.layers)
                for k, b in layer.buffers.items()}

    @property
    def num_params(self) -> int:
        return sum(layer.num_params for layer in self.layers)

    def _clear(self) -> None:
        for layer in self.layers:
            layer.clear()

    # -------------------------------------------------------------------- compile
    def compile(self, *, loss: Loss, optimizer: Optimizer, schedule: Schedule | None = None,
                clip_norm: float | None = None) -> None:
        """Choose the loss, the optimizer, an optional schedule and gradient clipping.

        ``schedule(step)`` multiplies ``optimizer.lr``; ``clip_norm`` clips the global
        gradient norm before each step.
        """
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a convblocks.nn loss (e.g. SoftmaxCrossEntropy()); "
                            f"got {type(loss).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a convblocks.nn optimizer (e.g. Adam()); got "
                            f"{type(optimizer).__name__}")
        if schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a convblocks.nn schedule or None; got "
                            f"{type(schedule).__name__}")
        if clip_norm is not None:
            # Finite, as clip_grad_norm's max_norm: inf would only fail at the first step.
            clip_norm = as_real(clip_norm, "clip_norm", finite=False)
            if not 0 < clip_norm < math.inf:
                raise ValueError(f"clip_norm must be finite and > 0 (or None for no "
                                 f"clipping); got {clip_norm}")
        self.loss, self.optimizer, self.schedule, self.clip_norm = (loss, optimizer, schedule,
                                                                    clip_norm)

    def _require_compiled(self, what: str) -> None:
        if self.loss is None or self.optimizer is None:
            raise ValueError(f"{what} needs a compiled model: call model.compile(loss=..., "
                             f"optimizer=...) first")

    def _correct(self, outputs: np.ndarray, targets: np.ndarray) -> int:
        """Number of rows whose argmax matches the label (or the one-hot's argmax)."""
        labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
        return int(np.count_nonzero(outputs.argmax(axis=1) == labels))

    def current_lr(self) -> float:
        """The learning rate of the next optimizer step."""
        self._require_compiled("current_lr")
        factor = 1.0 if self.schedule is None else self.schedule(self.optimizer.iterations)
        return self.optimizer.lr * factor

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One optimizer step on a batch; returns (mean loss, number correct)."""
        self._require_compiled("train_step")
        y = _as_array(y, "y")
        out = self.forward(x, training=True)
        loss = self.loss.forward(out, y)
        correct = self._correct(out, y) if self.loss.classification else 0
        self.backward(self.loss.backward())
        grads = self.grads()
        if self.clip_norm is not None:
            clip_grad_norm(grads, self.clip_norm)
        lr = self.current_lr()
        self.optimizer.step(self.params(), grads, lr=lr)
        return loss, correct

    # ------------------------------------------------------------------------ fit
    def _check_xy(self, x: Any, y: Any, x_name: str = "x",
                  y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
        """``x`` and ``y`` as arrays, checked whole against the model and its loss.

        Runs before any step: a bad label anywhere in ``y`` is reported before the
        optimizer has changed the model (the loss would only see it in its batch).
        """
        x, y = _as_array(x, x_name), _as_array(y, y_name)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"{x_name} must be a non-empty batch (N, ...); got shape "
                             f"{shape_str(x.shape)}")
        if y.ndim < 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{y_name} must have one target per example of {x_name} "
                             f"({x.shape[0]}); got shape {shape_str(y.shape)}")
        self._check_input(x, x_name)
        self.loss.check_targets(y, self.output_shape, y_name)
        return x, y

    def fit(self, x: Any, y: Any, *, epochs: int = 1, batch_size: int = 32,
            validation_data: tuple[Any, Any] | None = None, shuffle: bool = True,
            seed: int | None = None, initial_epoch: int = 0, initial_batch: int = 0,
            epoch_state: dict[str, Any] | None = None, callbacks: Sequence[Any] = (),
            steps_per_epoch: int | None = None) -> dict[str, list[float]]:
        """Train for epochs ``initial_epoch, ..., epochs - 1``.

        Parameters
        ----------
        x : array (N, *input_shape)
            Inputs; converted to the model's dtype one batch at a time.
        y : array (N,) of int labels, or (N, K)
            Targets for the compiled loss. ``x``, ``y`` and ``validation_data`` are
            checked whole (shapes, dtypes, the label range against the model's outputs,
            NaN or infinite float targets) before the first step: a refused call
            changes neither model nor optimizer.
        validation_data : (x_val, y_val), optional
            Evaluated after every epoch (``val_loss``, ``val_accuracy``; None without it).
        shuffle : bool
            A bool (``TypeError`` otherwise): whether each epoch visits the examples
            in a fresh random order.
        seed : int, optional
            Epoch ``e`` shuffles and draws dropout masks from ``SeedSequence([seed, e])``.
            Default: ``epoch_state["seed"]`` when resuming mid-epoch, else drawn from
            the model's generator.
        initial_epoch : int
            First epoch to run (resume from a checkpoint of epoch ``initial_epoch - 1``).
        initial_batch : int
            Batches of ``initial_epoch`` already run (resume mid-epoch): the epoch's
            shuffle is drawn again and its first ``initial_batch`` batches are skipped.
            Greater than 0 only with ``epoch_state``.
        epoch_state : dict, optional
            ``model.epoch_state`` as read after a batch of an earlier ``fit`` (saved
            with the model, e.g. in ``extra``; it is JSON-able): the epoch's running
            loss and accuracy sums and its dropout generator's state. Its ``epoch``,
            ``batch``, ``seed``, ``examples``, ``batch_size``, ``batches`` and
            ``shuffle`` must match this call (``ValueError`` otherwise). With the
            model and optimizer saved at that point, the run continues bit for bit as
            the uninterrupted one: same weights, optimizer state and history entry.
        callbacks : sequence
            Objects with any of ``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``
            (logs: ``initial_batch`` and ``seen``, the batches and examples of the epoch
            already run: nonzero when resuming mid-epoch), ``on_batch_end(batch, logs)``
            (logs: running ``loss``, ``accuracy`` of the epoch so far and this
            ``batch_size``), ``on_epoch_end(epoch, logs)`` (logs: ``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy``, ``time``, ``images_per_s``,
            ``lr``) and ``on_train_end(logs)``. A callback may set
            ``model.stop_training`` or raise :class:`StopTraining`.
        steps_per_epoch : int, optional
            Run at most this many batches per epoch.

        Returns
        -------
        dict of str -> list
            One entry per epoch completed by this call for every key of the epoch-end
            logs (a resumed epoch's entry covers the whole epoch).

        Raises
        ------
        ValueError
            Bad data, or an ``initial_batch``/``epoch_state`` that does not fit this
            call; nothing has changed then.
        """
        self._require_compiled("fit")
        # Every check runs before the first step (and before the seed is drawn): a
        # refused call leaves the model, its generator and the optimizer as they were.
        x, y = self._check_xy(x, y, "x", "y")
        epochs = as_int(epochs, "epochs", minimum=0)
        batch_size = as_int(batch_size, "batch_size", minimum=1)
        initial_epoch = as_int(initial_epoch, "initial_epoch", minimum=0)
        initial_batch = as_int(initial_batch, "initial_batch", minimum=0)
        shuffle = as_bool(shuffle, "shuffle")
        if steps_per_epoch is not None:
            steps_per_epoch = as_int(steps_per_epoch, "steps_per_epoch", minimum=1)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"validation_data must be a pair (x_val, y_val); got "
                                 f"{type(validation_data).__name__}"
                                 + (f" of length {len(validation_data)}"
                                    if isinstance(validation_data, (tuple, list)) else ""))
            xv, yv = self._check_xy(validation_data[0], validation_data[1],
                                    "validation_data[0]", "validation_data[1]")
        if seed is not None:
            seed = as_int(seed, "seed", minimum=0)
        callbacks = _check_callbacks(callbacks)
        n = x.shape[0]
        n_batches = math.ceil(n / batch_size)
        if steps_per_epoch is not None:
            n_batches = min(n_batches, steps_per_epoch)
        resume = None
        if epoch_state is not None or initial_batch:
            if initial_epoch >= epochs:
                raise ValueError(f"initial_batch/epoch_state resume epoch {initial_epoch}, "
                                 f"but epochs={epochs} leaves nothing to run")
            resume = _check_epoch_state(
                epoch_state, epoch=initial_epoch, batch=initial_batch, batches=n_batches,
                seed=seed, examples=n, batch_size=batch_size, shuffle=shuffle)
            seed = resume["seed"]
        if seed is None:
            seed = int(self._rng.integers(2**63 - 1))
        history: dict[str, list[float]] = {}
        stochastic = [layer for layer in self.layers if layer.stochastic]
        saved_rngs = [layer.rng for layer in stochastic]
        self.stop_training = False
        self._progress = None
        logs: dict[str, Any] = {}
        try:
            try:
                _call(callbacks, "on_train_begin", logs)
                for epoch in range(initial_epoch, epochs):
                    shuffle_seq, dropout_seq = np.random.SeedSequence([seed, epoch]).spawn(2)
                    batches = iterate_batches(x, y, batch_size, shuffle=shuffle,
                                              seed=np.random.default_rng(shuffle_seq))
                    dropout_rng = np.random.default_rng(dropout_seq)
                    skip, prior_time = 0, 0.0
                    seen, loss_sum, correct_sum = 0, 0.0, 0
                    if resume is not None and epoch == initial_epoch:
                        skip, prior_time = resume["batch"], resume["time"]
                        seen, loss_sum, correct_sum = (resume["seen"], resume["loss_sum"],
                                                       resume["correct"])
                        dropout_rng.bit_generator.state = resume["dropout_rng"]
                    for layer in stochastic:
                        layer.rng = dropout_rng
                    _call(callbacks, "on_epoch_begin", epoch,
                          {"initial_batch": skip, "seen": seen})
                    progress = self._progress = _EpochProgress(
                        epoch=epoch, batch=skip, batches=n_batches, seed=seed, examples=n,
                        batch_size=batch_size, shuffle=shuffle, seen=seen, loss_sum=loss_sum,
                        correct=correct_sum, time=prior_time, rng=dropout_rng)
                    start = time.perf_counter()
                    for b, (xb, yb) in enumerate(batches):
                        if b == n_batches:  # steps_per_epoch reached
                            break
                        if b < skip:  # run before the interruption (same shuffle)
                            continue
                        loss, correct = self.train_step(xb, yb)
                        m = len(xb)
                        seen += m
                        loss_sum += loss * m
                        correct_sum += correct
                        progress.batch, progress.seen = b + 1, seen
                        progress.loss_sum, progress.correct = loss_sum, correct_sum
                        progress.time = prior_time + (time.perf_counter() - start)
                        _call(callbacks, "on_batch_end", b,
                              {"loss": loss_sum / seen, "accuracy": self._acc(correct_sum, seen),
                               "batch_size": m})
                        if self.stop_training:
                            break
                    elapsed = prior_time + (time.perf_counter() - start)
                    self._progress = None  # the epoch is complete
                    logs = {"loss": loss_sum / max(seen, 1),
                            "accuracy": self._acc(correct_sum, max(seen, 1))}
                    if validation_data is not None:
                        val = self.evaluate(xv, yv)
                        logs["val_loss"], logs["val_accuracy"] = val["loss"], val["accuracy"]
                    else:
                        logs["val_loss"] = logs["val_accuracy"] = None
                    logs.update(time=elapsed,
                                images_per_s=seen / elapsed if elapsed > 0 else 0.0,
                                lr=self.current_lr())
                    for key, value in logs.items():
                        history.setdefault(key, []).append(value)
                    _call(callbacks, "on_epoch_end", epoch, dict(logs))
                    if self.stop_training:
                        break
            except StopTraining:
                pass  # self._progress: the position after the last batch (None between epochs)
            except BaseException:
                self._progress = None  # possibly mid-step: no position to resume from
                raise
        finally:
            for layer, rng in zip(stochastic, saved_rngs):
                layer.rng = rng
            self._clear()
        _call(callbacks, "on_train_end", dict(logs))
        return history

    @property
    def epoch_state(self) -> dict[str, Any] | None:
        """Where an unfinished epoch of ``fit`` stands, as JSON-able data, or None.

        Read by a callback during ``fit`` (after a batch), or after ``fit`` returned
        because a callback raised :class:`StopTraining` inside an epoch; None once the
        epoch completed, between epochs, and after ``fit`` ended any other way.
        Pass it back as ``fit(..., initial_epoch=s["epoch"], initial_batch=s["batch"],
        epoch_state=s)`` (with the model and optimizer saved at the same point).

        Returns
        -------
        dict or None
            ``epoch`` (0-based), ``batch`` (batches of it done), ``batches`` (per
            epoch), ``seed``, ``examples``, ``batch_size``, ``shuffle``; the running
            sums ``seen`` (examples), ``loss_sum`` (sum of batch loss x batch size),
            ``correct``; ``time`` (seconds of training in the epoch so far); and
            ``dropout_rng``, the state of the epoch's dropout generator.
        """
        p = self._progress
        if p is None:
            return None
        state = {key: getattr(p, key) for key in _EpochProgress.__slots__[:-1]}
        state["dropout_rng"] = p.rng.bit_generator.state
        return state

    def _acc(self, correct: int, seen: int) -> float:
        return correct / seen if self.loss.classification else float("nan")

    # ---------------------------------------------------------- evaluate / predict
    def evaluate(self, x: Any, y: Any, *, batch_size: int = 256) -> dict[str, float]:
        """Mean loss and accuracy (inference mode) over ``(x, y)``, batch by batch."""
        if self.loss is None:
            raise ValueError("evaluate needs a loss: call model.compile(loss=..., optimizer=...) "
                             "first")
        x, y = self._check_xy(x, y, "x", "y")
        batch_size = as_int(batch_size, "batch_size", minimum=1)
        n = x.shape[0]
        loss_sum, correct = 0.0, 0
        try:
            for lo in range(0, n, batch_size):
                xb, yb = x[lo:lo + batch_size], y[lo:lo + batch_size]
                out = self.forward(xb, training=False)
                loss_sum += self.loss.forward(out, yb) * xb.shape[0]
                if self.loss.classification:
                    correct += self._correct(out, yb)
        finally:
            self._clear()
        return {"loss": loss_sum / n, "accuracy": self._acc(correct, n)}

    def output_transform(self, outputs: np.ndarray) -> np.ndarray:
        """What :meth:`predict` makes of raw outputs: the loss's transform (softmax for
        cross-entropy, none for MSE), softmax when the model has no loss."""
        return softmax(outputs) if self.loss is None else self.loss.output_transform(outputs)

    def predict(self, x: Any, *, batch_size: int = 256, raw: bool = False) -> np.ndarray:
        """Class probabilities ``(N, classes)``: the softmax of the logits.

        With a non-classification loss (MSE) the raw outputs are returned instead;
        ``raw=True`` returns the raw outputs (logits) for any loss.
        """
        x = self._check_input(x)
        batch_size = as_int(batch_size, "batch_size", minimum=1)
        transform = (lambda out: out) if as_bool(raw, "raw") else self.output_transform  # noqa: E731
        try:
            outs = [transform(self.forward(x[lo:lo + batch_size], training=False))
                    for lo in range(0, x.shape[0], batch_size)]
        finally:
            self._clear()
        if not outs:
            return np.zeros((0, *self.output_shape), dtype=self.dtype)
        return np.concatenate(outs, axis=0)

    # ------------------------------------------------------------ description / io
    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts, with the total."""
        if not self.built:
            raise ValueError("summary needs a built model: pass input_shape= or run it once")
        rows = [("Layer (type)", "Output shape", "Params")]
        for layer in self.layers:
            rows.append((f"{layer.name} ({type(layer).__name__})",
                         "(None, " + ", ".join(map(str, layer.output_shape)) + ")",
                         f"{layer.num_params:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "-" * (sum(widths) + 4)
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"  # noqa: E731
        out = [fmt(rows[0]), line, *(fmt(r) for r in rows[1:]), line,
               f"Input shape: (None, {', '.join(map(str, self.input_shape))})",
               f"Total params: {self.num_params:,}",
               f"Non-trainable buffers: {sum(b.size for b in self.buffers().values()):,} "
               f"(BatchNorm running statistics)"]
        return "\n".join(out)

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON-able data (no weights)."""
        return {"layers": [layer.get_config() for layer in self.layers],
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "seed": self.seed, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Sequential":
        """A freshly initialized model with the architecture of ``get_config()``."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            got = (f"a dict with keys {list(config)[:10]}" if isinstance(config, dict)
                   else type(config).__name__)
            raise ValueError(f"config must be a dict with a 'layers' list (from "
                             f"get_config()); got {got}")
        layers = [layer_from_config(c) for c in config["layers"]]
        return cls(layers, input_shape=config.get("input_shape"), seed=config.get("seed"),
                   dtype=config.get("dtype", "float32"))

    def save(self, path: Any, *, include_optimizer: bool = True,
             extra: dict[str, Any] | None = None) -> None:
        """Write the model to one ``.npz`` file atomically (see :mod:`.serialization`)."""
        from .serialization import save_model
        save_model(self, path, include_optimizer=include_optimizer, extra=extra)

    def __repr__(self) -> str:
        return f"Sequential([{', '.join(map(repr, self.layers))}])"

"""The ``Layer`` base class: lazy building, shape checks, parameters and configs.

A layer turns a batch ``x`` of shape ``(N, *input_shape)`` into ``(N, *output_shape)``.
``forward(x, training=False)`` remembers what ``backward(dy)`` needs; ``backward``
stores the parameter gradients in ``grads`` (same keys as ``params``) and returns
``dx``. ``buffers`` holds state that is saved but not trained (BatchNorm's running
statistics). Subclasses implement ``_build``, ``_forward``, ``_backward`` and, when the
shape changes, ``compute_output_shape``; the public methods here do the checks once.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np

from ..functional.checks import (as_bool, as_float_array, as_float_dtype, as_int, as_real,
                                 shape_str)

__all__ = ["Layer", "LAYERS", "layer_from_config", "image_channels", "to_jsonable", "to_tuple",
           "as_bool", "as_real", "as_float_dtype", "check_config_options"]

#: Every concrete layer class by name, filled in by ``Layer.__init_subclass__``;
#: ``layer_from_config`` uses it to rebuild a saved architecture.
LAYERS: dict[str, type["Layer"]] = {}


def check_config_options(cls: type, options: dict[str, Any], config: Any) -> None:
    """Raise ``ValueError`` unless ``cls(**options)`` names its options right: an unknown
    or missing option is reported with every option ``cls`` takes (``config`` is shown)."""
    signature = inspect.signature(cls)
    try:
        signature.bind(**options)
    except TypeError as exc:
        raise ValueError(f"invalid {cls.__name__} config {config!r}: {exc}; {cls.__name__} "
                         f"takes {list(signature.parameters)}") from None


def to_jsonable(value: Any) -> Any:
    """Tuples become lists (recursively) so a config survives ``json.dumps``."""
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    return value


def to_tuple(value: Any) -> Any:
    """Lists become tuples (recursively): the inverse of ``to_jsonable``."""
    if isinstance(value, (tuple, list)):
        return tuple(to_tuple(v) for v in value)
    return value


class Layer:
    """Base class of every layer.

    Attributes
    ----------
    name : str or None
        Display name; ``Sequential`` fills in ``'<class>_<index>'`` when None.
    params, grads : dict of str -> ndarray
        Trainable arrays and their gradients (same keys and shapes).
    buffers : dict of str -> ndarray
        Saved, untrained state.
    built : bool
        Whether the parameters exist; ``input_shape``/``output_shape`` are the
        per-example shapes (no batch axis) once built.
    needs_input_grad : bool
        When False (a network's first layer) ``backward`` may skip ``dx`` and return None.
    """

    #: Whether this layer draws random numbers in training (Dropout): Sequential
    #: hands such layers the epoch's dropout generator.
    stochastic: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            LAYERS[cls.__name__] = cls

    def __init__(self, *, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None; got {type(name).__name__}")
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.built = False
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None
        self.needs_input_grad = True
        self._y_shape: tuple[int, ...] | None = None

    # ----------------------------------------------------------------- description
    def describe(self) -> str:
        """``"Conv2D 'conv2d_0'"``: how error messages name this layer."""
        cls = type(self).__name__
        return f"{cls} {self.name!r}" if self.name else cls

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k not in ("class", "name"))
        return f"{type(self).__name__}({opts})"

    def get_config(self) -> dict[str, Any]:
        """JSON-able description: ``{"class": ..., "name": ..., <constructor options>}``."""
        return {"class": type(self).__name__, "name": self.name}

    @property
    def num_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(p.size for p in self.params.values()))

    # ------------------------------------------------------------------ building
    def build(self, input_shape: tuple[int, ...], *, rng: np.random.Generator | None = None,
              dtype: Any = np.float32) -> tuple[int, ...]:
        """Create the parameters for per-example ``input_shape``; return the output shape.

        ``rng`` (default: a fresh unseeded generator) draws the initial weights;
        ``dtype`` (float32 or float64) is the dtype of every parameter and activation.
        """
        if not isinstance(input_shape, (tuple, list)):
            raise TypeError(f"{self.describe()}: input_shape must be a tuple of ints; got "
                            f"{input_shape!r} ({type(input_shape).__name__})")
        input_shape = tuple(as_int(s, f"{self.describe()}: input_shape[{i}]")
                            for i, s in enumerate(input_shape))
        dtype = as_float_dtype(dtype, f"{self.describe()}: dtype")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"{self.describe()}: rng must be a numpy.random.Generator or None; "
                            f"got {type(rng).__name__}")
        if any(s <= 0 for s in input_shape):
            raise ValueError(f"{self.describe()}: input_shape must be positive; got "
                             f"{shape_str(input_shape)}")
        self.dtype = dtype
        try:
            self._build(input_shape, rng if rng is not None else np.random.default_rng(), dtype)
            output_shape = tuple(int(s) for s in self.compute_output_shape(input_shape))
        except (ValueError, TypeError) as exc:
            self.params.clear()
            self.buffers.clear()
            self.dtype = None
            if self.describe() in str(exc):
                raise
            raise type(exc)(f"{self.describe()}: {exc}") from None
        self.input_shape, self.output_shape = input_shape, output_shape
        self.built = True
        return self.output_shape

    def _unbuild(self) -> None:
        """Forget the parameters and shapes: the layer builds again on its next use.

        ``Sequential.build`` calls it on the layers it built when a later layer cannot
        take its input, so that a failed build leaves no half-built model behind.
        """
        self.clear()
        self.params.clear()
        self.grads.clear()
        self.buffers.clear()
        self.built = False
        self.input_shape = self.output_shape = None
        self.dtype = None

    def _build(self, input_shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype) -> None:
        """Validate ``input_shape`` and create ``params``/``buffers`` (default: none)."""

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-example output shape (default: unchanged)."""
        return input_shape

    def _probe_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape found by running the engine on one zero example.

        The engine is the single source of truth for padding and window rules (and
        raises its clear errors for impossible options), so nothing is re-derived here.
        """
        y = self._forward(np.zeros((1, *input_shape), dtype=self.dtype), False)
        self._clear_cache()
        return tuple(y.shape[1:])

    # ------------------------------------------------------------- forward/backward
    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        """Apply the layer to a batch ``x`` of shape ``(N, *input_shape)``.

        Builds the layer on first use (parameters in ``x``'s float dtype). Input of
        another dtype is converted to the layer's dtype. ``training`` must be a bool
        (``TypeError`` otherwise).
        """
        training = as_bool(training, f"{self.describe()}: training")
        x = as_float_array(x, f"{self.describe()} input")
        if not self.built:
            if x.ndim < 1:
                raise ValueError(f"{self.describe()} expects a batch (N, ...); got a scalar")
            self.build(x.shape[1:], dtype=x.dtype)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"{self.describe()} expects input of shape "
                             f"(N, {', '.join(map(str, self.input_shape))}); "
                             f"got {shape_str(x.shape)}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        y = self._forward(x, training)
        self._y_shape = y.shape
        return y

    def backward(self, dy: Any) -> np.ndarray | None:
        """Gradient of the loss with respect to the last ``forward``'s input.

        ``dy`` has the shape of that forward's output. Parameter gradients go to
        ``grads``. Returns None when ``needs_input_grad`` is False and the layer can skip
        the work.
        """
        if self._y_shape is None:
            raise ValueError(f"{self.describe()}: backward needs a forward first")
        dy = as_float_array(dy, f"{self.describe()} dy")
        if dy.shape != self._y_shape:
            raise ValueError(f"{self.describe()}: dy must have the last output's shape "
                             f"{shape_str(self._y_shape)}; got {shape_str(dy.shape)}")
        if dy.dtype != self.dtype:
            dy = dy.astype(self.dtype)
        return self._backward(dy)

    def _forward_reordered(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Forward on an input not of the built shape (``x`` already in the layer's dtype).

        Only for an elementwise layer that :class:`~convblocks.nn.Sequential` runs after
        the max pooling that follows it (they commute); its backward then takes ``dy``
        of this output's shape.
        """
        y = self._forward(x, bool(training))
        self._y_shape = y.shape
        return y

    def clear(self) -> None:
        """Drop what the last forward kept for backward (frees memory after inference)."""
        self._clear_cache()
        self._y_shape = None

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def _clear_cache(self) -> None:
        """Forget the forward's saved arrays (subclasses with a cache override)."""


def image_channels(input_shape: tuple[int, ...], data_format: str, layer: Layer) -> int:
    """``C`` of a per-example image shape ``(H, W, C)`` / ``(C, H, W)``, checked to be 3-D."""
    if len(input_shape) != 3:
        dims = "(H, W, C)" if data_format == "NHWC" else "(C, H, W)"
        raise ValueError(f"{layer.describe()} expects per-example input {dims} "
                         f"({data_format}); got shape {tuple(input_shape)}")
    return input_shape[-1] if data_format == "NHWC" else input_shape[0]


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Rebuild an (unbuilt) layer from ``get_config()``'s output."""
    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"a layer config must be a dict with a 'class' key; got {config!r}")
    cls_name = config["class"]
    if not isinstance(cls_name, str) or cls_name not in LAYERS:
        raise ValueError(f"unknown layer class {cls_name!r}; known: {', '.join(sorted(LAYERS))}")
    cls = LAYERS[cls_name]
    options = {k: to_tuple(v) for k, v in config.items() if k != "class"}
    check_config_options(cls, options, config)
    return cls(**options)

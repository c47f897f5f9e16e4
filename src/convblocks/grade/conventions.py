"""How a learner's code names and lays out things, and the conversions to match it.

The grader builds every input in the exercise's conventions (NHWC activations, HWIO
weights ``(f, f, n_C_prev, n_C)``, bias ``(1, 1, 1, n_C)``, keys ``stride``/``pad``/``f``,
modes ``max``/``average``) and computes the truth there. :class:`Conventions` converts
the inputs into the learner's conventions before the call and the outputs back after it.

The bias always has the weights' rank, with ``n_C`` on the weights' output axis:
HWIO ``(1, 1, 1, n_C)``, OIHW ``(n_C, 1, 1, 1)``, IOHW ``(1, n_C, 1, 1)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FUNCTIONS", "Conventions", "parse_pairs", "name_tokens", "KEY_SYNONYMS"]

# In grading order: helpers first, so a composite's failure can be blamed on them.
FUNCTIONS = ("zero_pad", "conv_single_step", "create_mask_from_window", "distribute_value",
             "conv_forward", "pool_forward", "conv_backward", "pool_backward")
KEYS = ("stride", "pad", "f")
MODES = ("max", "average")
LAYOUTS = ("NHWC", "NCHW")
WEIGHTS = ("HWIO", "OIHW", "IOHW")
# HWIO -> layout permutation; the bias uses the same one (it has the weights' rank).
_W_PERM = {"HWIO": (0, 1, 2, 3), "OIHW": (3, 2, 0, 1), "IOHW": (2, 3, 0, 1)}
_A_PERM = {"NHWC": (0, 1, 2, 3), "NCHW": (0, 3, 1, 2)}
# Names a learner's code may read instead of the exercise's keys (auto-detected from
# the KeyError the exercise's key provokes).
KEY_SYNONYMS = {
    "stride": ("s", "strides", "step", "stride_size"),
    "pad": ("p", "padding", "pad_size", "pads", "zero_pad"),
    "f": ("filter", "filter_size", "filt_size", "pool_size", "size", "kernel_size", "k",
          "window", "window_size", "F"),
}


def parse_pairs(text: str | None, option: str, allowed_left: tuple[str, ...]) -> dict[str, str]:
    """Parse ``"a=b,c=d"`` from ``option`` into ``{"a": "b", "c": "d"}``.

    Raises
    ------
    ValueError
        Naming ``option``, if an item is not ``NAME=VALUE`` or NAME is not allowed.
    """
    pairs: dict[str, str] = {}
    if not text:
        return pairs
    for item in text.split(","):
        left, sep, right = item.strip().partition("=")
        left, right = left.strip(), right.strip()
        if not sep or not left or not right:
            raise ValueError(f"{option} expects NAME=VALUE[,NAME=VALUE...]; got {item!r} in {text!r}")
        if left not in allowed_left:
            raise ValueError(f"{option}: {left!r} is not one of {', '.join(allowed_left)}")
        if not right.isidentifier() and option != "--modes" and option != "--keys":
            raise ValueError(f"{option}: {right!r} is not a Python name")
        pairs[left] = right
    return pairs


def name_tokens(name: str) -> frozenset[str]:
    """Lower-case words of a name: ``forwardConv`` and ``forward_conv`` -> {forward, conv}."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return frozenset(t.lower() for t in spaced.split("_") if t)


def _perm_inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


@dataclass
class Conventions:
    """The learner's names, keys, modes and layouts (defaults: the exercise's)."""

    names: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    layout: str = "NHWC"
    weights: str = "HWIO"
    assumed: list[str] = field(default_factory=list)
    # A name one function reads for a key where another reads the exercise's own:
    # {learner's name: (exercise's key, a function reading the exercise's key)}.
    key_conflicts: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}; got {self.layout!r}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"--weights must be one of {', '.join(WEIGHTS)}; got {self.weights!r}")

    @classmethod
    def from_options(cls, *, map: str | None = None, keys: str | None = None,
                     modes: str | None = None, layout: str = "NHWC",
                     weights: str = "HWIO") -> "Conventions":
        """Build from the command line's strings; raises ValueError naming the option."""
        return cls(names=parse_pairs(map, "--map", FUNCTIONS),
                   keys=parse_pairs(keys, "--keys", KEYS),
                   modes=parse_pairs(modes, "--modes", MODES),
                   layout=str(layout).upper(), weights=str(weights).upper())

    def copy(self) -> "Conventions":
        return Conventions(dict(self.names), dict(self.keys), dict(self.modes), self.layout,
                           self.weights, list(self.assumed), dict(self.key_conflicts))

    def with_layout(self, layout: str, weights: str) -> "Conventions":
        other = self.copy()
        other.layout, other.weights = layout, weights
        return other

    def describe(self) -> str:
        """One line: the conventions the grading used."""
        parts = [f"{self.layout} activations", f"{self.weights} weights"]
        if self.keys:
            parts.append("keys " + ", ".join(f"{k}={v}" for k, v in self.keys.items()))
        if self.modes:
            parts.append("modes " + ", ".join(f"{k}={v}" for k, v in self.modes.items()))
        if self.names:
            parts.append("names " + ", ".join(f"{k}={v}" for k, v in self.names.items()))
        return "; ".join(parts)

    def name(self, function: str) -> str:
        return self.names.get(function, function)

    def key(self, key: str) -> str:
        return self.keys.get(key, key)

    def mode(self, mode: str) -> str:
        return self.modes.get(mode, mode)

    # -- arrays ------------------------------------------------------------------------
    def act_to(self, x: np.ndarray) -> np.ndarray:
        """NHWC -> the learner's activation layout."""
        return np.ascontiguousarray(x.transpose(_A_PERM[self.layout]))

    def act_from(self, x: Any) -> Any:
        """The learner's activation layout -> NHWC (non-4-D values pass unchanged)."""
        if isinstance(x, np.ndarray) and x.ndim == 4:
            return x.transpose(_perm_inverse(_A_PERM[self.layout]))
        return x

    def w_to(self, w: np.ndarray) -> np.ndarray:
        """HWIO weights (or bias of the same rank) -> the learner's weights layout."""
        return np.ascontiguousarray(w.transpose(_W_PERM[self.weights]))

    def w_from(self, w: Any) -> Any:
        if isinstance(w, np.ndarray) and w.ndim == 4:
            return w.transpose(_perm_inverse(_W_PERM[self.weights]))
        return w

    def hparameters(self, canonical: dict[str, int]) -> dict[str, int]:
        return {self.key(k): v for k, v in canonical.items()}

    # -- calls -------------------------------------------------------------------------
    def call_args(self, function: str, args: dict[str, Any]) -> list[Any]:
        """The positional arguments of ``function`` in the learner's conventions.

        ``args`` holds the canonical inputs built by :mod:`convblocks.grade.cases`.
        """
        if function == "zero_pad":
            return [self.act_to(args["X"]), args["pad"]]
        if function == "conv_single_step":
            return [args["a_slice_prev"], args["W"], args["b"]]
        if function == "create_mask_from_window":
            return [args["x"]]
        if function == "distribute_value":
            return [args["dz"], args["shape"]]
        if function == "conv_forward":
            return [self.act_to(args["A_prev"]), self.w_to(args["W"]), self.w_to(args["b"]),
                    self.hparameters(args["hparameters"])]
        if function == "conv_backward":
            cache = (self.act_to(args["A_prev"]), self.w_to(args["W"]), self.w_to(args["b"]),
                     self.hparameters(args["hparameters"]))
            return [self.act_to(args["dZ"]), cache]
        if function == "pool_forward":
            return [self.act_to(args["A_prev"]), self.hparameters(args["hparameters"]),
                    self.mode(args["mode"])]
        if function == "pool_backward":
            cache = (self.act_to(args["A_prev"]), self.hparameters(args["hparameters"]))
            return [self.act_to(args["dA"]), cache, self.mode(args["mode"])]
        raise ValueError(f"function must be one of {', '.join(FUNCTIONS)}; got {function!r}")

    def result_from(self, function: str, result: Any) -> Any:
        """The learner's result converted back to the exercise's conventions."""
        if function in ("zero_pad", "pool_backward"):
            return self.act_from(result)
        if function in ("conv_forward", "pool_forward") and isinstance(result, (tuple, list)) \
                and len(result) == 2:
            return (self.act_from(result[0]), result[1])
        if function == "conv_backward" and isinstance(result, (tuple, list)) and len(result) == 3:
            return (self.act_from(result[0]), self.w_from(result[1]), self.w_from(result[2]))
        return result

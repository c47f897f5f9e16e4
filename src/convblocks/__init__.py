"""convblocks: convolutional-network building blocks in NumPy.

The exercise's eight functions live at the top level (vectorized, on the engine) and
in :mod:`convblocks.loops` (the literal loops, the textbook and the test oracle). The
engine is :mod:`convblocks.functional`; layers, losses and optimizers are
:mod:`convblocks.nn`; data sets are :mod:`convblocks.datasets`.

Submodules load on first use, so ``import convblocks`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_COURSE = ("zero_pad", "conv_single_step", "conv_forward", "conv_backward", "pool_forward",
           "pool_backward", "create_mask_from_window", "distribute_value")
_LAZY = {name: ("convblocks.course", name) for name in _COURSE}
_LAZY.update({
    "gradcheck": ("convblocks.gradcheck", "gradcheck"),
    "set_workspace_limit": ("convblocks.functional.workspace", "set_workspace_limit"),
    "get_workspace_limit": ("convblocks.functional.workspace", "get_workspace_limit"),
    "set_buffer_pool_limit": ("convblocks.functional.buffers", "set_buffer_pool_limit"),
    "get_buffer_pool_limit": ("convblocks.functional.buffers", "get_buffer_pool_limit"),
    "load_model": ("convblocks.nn.serialization", "load_model"),
})
# (convblocks.gradcheck is the function; its module is callable too, see gradcheck.py)
_SUBMODULES = ("loops", "course", "functional", "nn", "datasets", "grade", "plots")

__all__ = [*_COURSE, "gradcheck", "set_workspace_limit", "get_workspace_limit",
           "set_buffer_pool_limit", "get_buffer_pool_limit", "load_model", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"convblocks.{name}")
    raise AttributeError(f"module 'convblocks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

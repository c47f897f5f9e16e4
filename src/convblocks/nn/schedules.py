"""Learning-rate schedules: a multiplier of the optimizer's base rate per step.

``schedule(step) -> float`` for ``step = 0, 1, 2, ...`` (the number of optimizer steps
already taken); ``Sequential.fit`` uses ``lr = optimizer.lr * schedule(step)``. Since
the step counter is saved with the optimizer, a resumed run continues the schedule.
"""

from __future__ import annotations

import math
from typing import Any

from ..functional.checks import as_int
from .base import as_real, check_config_options

__all__ = ["Schedule", "StepSchedule", "CosineSchedule", "SCHEDULES", "schedule_from_config"]


def _fraction(value: Any, name: str) -> float:
    value = as_real(value, name, finite=False)  # NaN and inf fail the range check
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value}")
    return value


class Schedule:
    """Base class: ``__call__(step) -> multiplier``; configs are JSON-able."""

    def __call__(self, step: int) -> float:
        step = as_int(step, "step", minimum=0)
        return self._factor(step)

    def _factor(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, **vars(self)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class StepSchedule(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps (``torch.optim.lr_scheduler.StepLR``
    counted in optimizer steps): ``gamma ** (step // step_size)``."""

    def __init__(self, step_size: int, *, gamma: float = 0.1) -> None:
        self.step_size = as_int(step_size, "step_size", minimum=1)
        self.gamma = _fraction(gamma, "gamma")

    def _factor(self, step: int) -> float:
        return self.gamma ** (step // self.step_size)


class CosineSchedule(Schedule):
    """Optional linear warm-up, then a half cosine from 1 down to ``final_scale``.

    For ``step < warmup_steps`` the factor is ``(step + 1) / warmup_steps``; then, with
    ``p = (step - warmup_steps) / (total_steps - warmup_steps)`` clipped to 1, it is
    ``final_scale + (1 - final_scale) * (1 + cos(pi * p)) / 2`` (``CosineAnnealingLR``
    with ``eta_min = final_scale * lr``). Steps past ``total_steps`` stay at the floor.
    """

    def __init__(self, total_steps: int, *, warmup_steps: int = 0,
                 final_scale: float = 0.0) -> None:
        self.total_steps = as_int(total_steps, "total_steps", minimum=1)
        self.warmup_steps = as_int(warmup_steps, "warmup_steps", minimum=0)
        if self.warmup_steps >= self.total_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be < total_steps "
                             f"({self.total_steps})")
        self.final_scale = _fraction(final_scale, "final_scale")

    def _factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        p = min((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 1.0)
        return self.final_scale + (1.0 - self.final_scale) * 0.5 * (1.0 + math.cos(math.pi * p))


SCHEDULES: dict[str, type[Schedule]] = {"StepSchedule": StepSchedule,
                                        "CosineSchedule": CosineSchedule}


def schedule_from_config(config: dict[str, Any]) -> Schedule:
    """Rebuild a schedule from ``get_config()``'s output."""
    if (not isinstance(config, dict) or not isinstance(config.get("class"), str)
            or config["class"] not in SCHEDULES):
        raise ValueError(f"unknown schedule config {config!r}; known: {', '.join(SCHEDULES)}")
    options = {k: v for k, v in config.items() if k != "class"}
    cls = SCHEDULES[config["class"]]
    check_config_options(cls, options, config)
    return cls(**options)

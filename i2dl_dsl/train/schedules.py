"""Learning-rate schedules: each one entry holding its arguments and its
rate function, per epoch (torch.optim.lr_scheduler's formulas).

    constant             η
    step(step_size, γ)   η·γ^⌊epoch / step_size⌋
    cosine(min_lr)       min_lr + (η - min_lr)·(1 + cos(π·epoch / epochs)) / 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..layers.base import Float, Int, P
from .registry import Entry, Registry, Spec


@dataclass(frozen=True, kw_only=True)
class Schedule(Entry):
    rate: Callable[..., float]  # (base, epoch from 0, epochs, **options) -> the epoch's learning rate


SCHEDULES: Registry[Schedule] = Registry("schedule", default="constant")


def _cosine(base: float, epoch: int, epochs: int, min_lr: float) -> float:
    return min_lr + (base - min_lr) * (1 + math.cos(math.pi * epoch / max(1, epochs))) / 2


SCHEDULES.register(Schedule(name="constant", rate=lambda base, epoch, epochs: base, doc="the same rate throughout"))
SCHEDULES.register(Schedule(name="step", signature=(P("step_size", Int()), P("gamma", Float(0.0, 1.0), 0.1)),
                            rate=lambda base, epoch, epochs, step_size, gamma: base * gamma ** (epoch // step_size),
                            doc="multiply by gamma every step_size epochs"))
SCHEDULES.register(Schedule(name="cosine", signature=(P("min_lr", Float(0.0), 0.0),), rate=_cosine,
                            doc="cosine annealing to min_lr"))


def learning_rate(base: float, schedule: Spec, epoch: int, epochs: int) -> float:
    """The rate for an epoch (from 0) under a schedule's name or spec."""
    entry, options = SCHEDULES.split(schedule)
    return entry.rate(base, epoch, epochs, **options)


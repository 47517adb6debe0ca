"""Stopping rules: `early_stopping(patience, min_delta, restore_best)`.

Training stops once the monitored loss (validation, else training) has not
fallen by more than `min_delta` for `patience` epochs; with `restore_best`
the network ends with the parameters of its best epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..layers.base import Bool, Float, Int, P
from .registry import Entry, Registry

STOPPING: Registry[Entry] = Registry("stopping rule")
EARLY_STOPPING = STOPPING.register(Entry(
    name="early_stopping", doc="stop when the monitored loss stops improving",
    signature=(P("patience", Int(), 5), P("min_delta", Float(0.0), 0.0), P("restore_best", Bool(), True))))


@dataclass(frozen=True)
class EarlyStopping:
    """The rule with every argument set."""

    patience: int
    min_delta: float
    restore_best: bool

    def improves(self, loss: float, best: float) -> bool:
        return loss < best - self.min_delta


def early_stopping(spec: Mapping[str, Any] | None) -> EarlyStopping | None:
    """The rule a train section's `early_stopping(...)` sets, defaults filled in; None when absent."""
    return EarlyStopping(**EARLY_STOPPING.arguments(spec)) if spec else None

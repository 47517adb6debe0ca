"""Losses and accuracy in NumPy, for evaluation on held-out data (the
training graph computes its own loss in ONNX). Each loss's formulas are
its entry in losses.py; these read them by name."""

from __future__ import annotations

import numpy as np

from .losses import Loss, resolve
from .registry import Spec


def loss_value(loss: Spec | Loss, z: np.ndarray, y: np.ndarray) -> float:
    return resolve(loss).value(z, y)


def accuracy(loss: Spec | Loss, z: np.ndarray, y: np.ndarray) -> float | None:
    """Fraction classified right, or None where the task is not classification."""
    return resolve(loss).accuracy(z, y)

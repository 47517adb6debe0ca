"""Losses and accuracy in NumPy, for evaluation on held-out data (the
training graph computes its own loss in ONNX)."""

from __future__ import annotations

import numpy as np


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def loss_value(loss: str, z: np.ndarray, y: np.ndarray) -> float:
    z = z.astype(np.float64)
    if loss == "cross_entropy":
        return float(-_log_softmax(z)[np.arange(len(y)), y].mean())
    if loss == "hinge":
        correct = z[np.arange(len(y)), y][:, None]
        margins = np.maximum(0.0, z - correct + 1.0)
        margins[np.arange(len(y)), y] = 0.0
        return float(margins.sum(axis=1).mean())
    if loss == "bce":
        return float((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean())
    if loss == "mse":
        return float(((z - y) ** 2).mean())
    if loss == "l1":
        return float(np.abs(z - y).mean())
    raise ValueError(loss)


def accuracy(loss: str, z: np.ndarray, y: np.ndarray) -> float | None:
    """Fraction classified right, or None where the task is not classification."""
    if loss in ("cross_entropy", "hinge"):
        return float((z.argmax(axis=-1) == y).mean())
    if loss == "bce":
        if z.ndim == 2 and z.shape[1] == 1 or z.ndim == 1:
            return float(((z.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).mean())
        return float((z.argmax(axis=-1) == y.argmax(axis=-1)).mean())
    if loss in ("mse", "l1") and y.ndim == 2 and y.shape[1] > 1 and np.all((y == 0) | (y == 1)):
        return float((z.argmax(axis=-1) == y.argmax(axis=-1)).mean())
    return None

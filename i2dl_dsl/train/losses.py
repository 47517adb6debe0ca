"""Losses: each one entry holding its ONNX subgraph over the network's
output (the training step), its NumPy value (evaluation on held-out data)
and how its accuracy is read (the course's formulas).

    l1              mean |ŷ - y|
    mse             mean (ŷ - y)²                                   (L2)
    smooth_l1       mean ½d²/β where |d| < β, else |d| - ½β, d = ŷ - y  (Huber, torch's SmoothL1Loss)
    bce             mean max(z, 0) - z·y + log(1 + e^-|z|)           on logits z: stable
    cross_entropy   mean -log softmax(z)_y                           gradient ŷ - y
    hinge           mean Σ_{j≠y} max(0, z_j - z_y + 1)               multiclass SVM

Class losses (cross_entropy, hinge) take integer labels [N]; the others take
float targets shaped like the output (the data pipeline one-hot encodes
integer labels for them). A regression loss on one-hot targets (digits
trained with mse) reports the accuracy of the largest output.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np
from onnx import TensorProto

from ..layers.base import Float, P
from .registry import Entry, Registry, Spec

LABEL = "y"

Accuracy = Callable[[np.ndarray, np.ndarray], "float | None"]


def _argmax(z: np.ndarray, y: np.ndarray) -> float:
    return float((z.argmax(axis=-1) == y).mean())


def is_one_hot(y: np.ndarray) -> bool:
    """Targets [N, K > 1] of zeros and ones: a class task written as regression."""
    return y.ndim == 2 and y.shape[1] > 1 and bool(np.all((y == 0) | (y == 1)))


def _one_hot(z: np.ndarray, y: np.ndarray) -> float | None:
    return float((z.argmax(axis=-1) == y.argmax(axis=-1)).mean()) if is_one_hot(y) else None


def _binary(z: np.ndarray, y: np.ndarray) -> float:
    """One logit per sample: its sign; several: the largest against the largest target."""
    if z.ndim == 2 and z.shape[1] == 1 or z.ndim == 1:
        return float(((z.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).mean())
    return float((z.argmax(axis=-1) == y.argmax(axis=-1)).mean())


def _average(outputs: list[np.ndarray]) -> np.ndarray:
    return np.mean(outputs, axis=0)


def _mean_softmax(outputs: list[np.ndarray]) -> np.ndarray:
    """The averaged class probabilities (their argmax is the ensemble's class)."""
    return np.mean([np.exp(_log_softmax(z)) for z in outputs], axis=0)


def _mean_sigmoid(outputs: list[np.ndarray]) -> np.ndarray:
    """The averaged probabilities, as logits again (so that 0 is the threshold)."""
    p = np.mean([1.0 / (1.0 + np.exp(-z)) for z in outputs], axis=0)
    return np.log(np.clip(p, 1e-12, None) / np.clip(1 - p, 1e-12, None))


@dataclass(frozen=True, kw_only=True)
class Loss(Entry):
    """A loss, bound to its arguments (`options`) once it is chosen."""

    build: Callable[..., str]                  # (g, output, labels, output_shape, **options) -> scalar loss tensor
    evaluate: Callable[..., float]             # (z float64, y, **options) -> the same loss in NumPy
    scores: Accuracy = _one_hot                # (z, y) -> accuracy, or None where it means nothing
    integer_labels: bool = False               # labels [N] int64, or float targets shaped like the output
    classifies: bool = False                   # accuracy is always meaningful
    combine: Callable[[list[np.ndarray]], np.ndarray] = _average  # an ensemble's output from its members'
    options: Mapping[str, Any] = field(default_factory=dict)

    def emit(self, g, output: str, labels: str, shape) -> str:
        """The scalar loss tensor, built through `g` (a LayerBuilder)."""
        return self.build(g, output, labels, shape, **self.options)

    def value(self, z: np.ndarray, y: np.ndarray) -> float:
        return float(self.evaluate(z.astype(np.float64), y, **self.options))

    def accuracy(self, z: np.ndarray, y: np.ndarray) -> float | None:
        """Fraction classified right, or None where the task is not classification."""
        return self.scores(z, y)

    def classifies_on(self, y: np.ndarray) -> bool:
        """Whether accuracy is reported for these labels."""
        return self.classifies or is_one_hot(y)


LOSSES: Registry[Loss] = Registry("loss", default="cross_entropy")


def resolve(spec: Spec | Loss) -> Loss:
    """The loss a name or `{"name": ..., **arguments}` chooses, bound to its arguments."""
    if isinstance(spec, Loss):
        return spec
    entry, options = LOSSES.split(spec)
    return replace(entry, options=options)


def label_type(loss: Loss) -> int:
    return TensorProto.INT64 if loss.integer_labels else TensorProto.FLOAT


def _mean(g, tensor: str) -> str:
    return g.op("ReduceMean", [tensor], keepdims=0)


def _l1(g, z, y, shape):
    return _mean(g, g.op("Abs", [g.op("Sub", [z, y])]))


def _mse(g, z, y, shape):
    d = g.op("Sub", [z, y])
    return _mean(g, g.op("Mul", [d, d]))


def _smooth_l1(g, z, y, shape, beta: float):
    # With m = min(|d|, β): m·(|d| - ½m)/β is ½d²/β inside and |d| - ½β outside,
    # from ops that have gradient rules (at |d| = β, ∂/∂m = 0: the tie is harmless).
    if beta == 0:  # torch: the l1 loss
        return _l1(g, z, y, shape)
    a = g.op("Abs", [g.op("Sub", [z, y])])
    m = g.op("Min", [a, g.const(beta, dtype="float32", hint="beta")])
    inner = g.op("Sub", [a, g.op("Mul", [m, g.const(0.5, dtype="float32", hint="half")])])
    scale = g.const(1.0 / beta, dtype="float32", hint="inv_beta")
    return _mean(g, g.op("Mul", [g.op("Mul", [m, inner]), scale]))


def _bce(g, z, y, shape):
    # max(z, 0) - z·y + log(1 + e^{-|z|}) never exponentiates a large positive number.
    softplus = g.op("Softplus", [g.op("Neg", [g.op("Abs", [z])])])
    return _mean(g, g.op("Add", [g.op("Sub", [g.op("Relu", [z]), g.op("Mul", [z, y])]), softplus]))


def _cross_entropy(g, z, y, shape):
    return g.op("SoftmaxCrossEntropyLoss", [z, y], reduction="mean")


def _hinge(g, z, y, shape):
    classes = shape[-1]
    onehot = g.op("OneHot", [y, g.const(classes, hint="depth"), g.const([0.0, 1.0], dtype="float32", hint="values")],
                  axis=-1)
    axis = g.const([1], hint="axes")
    correct = g.op("ReduceSum", [g.op("Mul", [z, onehot]), axis], keepdims=1)  # z_y, [N, 1]
    one = g.const(1.0, dtype="float32", hint="margin")
    margins = g.op("Relu", [g.op("Add", [g.op("Sub", [z, correct]), one])])
    others = g.op("Sub", [one, onehot])  # the j = y term is not a violation
    return _mean(g, g.op("ReduceSum", [g.op("Mul", [margins, others]), axis], keepdims=0))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _hinge_value(z: np.ndarray, y: np.ndarray) -> float:
    correct = z[np.arange(len(y)), y][:, None]
    margins = np.maximum(0.0, z - correct + 1.0)
    margins[np.arange(len(y)), y] = 0.0
    return float(margins.sum(axis=1).mean())


def _smooth_l1_value(z: np.ndarray, y: np.ndarray, beta: float) -> float:
    a = np.abs(z - y)
    if beta == 0:  # torch: the l1 loss
        return float(a.mean())
    return float(np.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta).mean())


LOSSES.register(Loss(name="l1", build=_l1, evaluate=lambda z, y: np.abs(z - y).mean(), doc="mean |ŷ - y|"))
LOSSES.register(Loss(name="mse", build=_mse, evaluate=lambda z, y: ((z - y) ** 2).mean(), doc="mean (ŷ - y)²"))
LOSSES.register(Loss(name="bce", build=_bce, scores=_binary, classifies=True, combine=_mean_sigmoid,
                     doc="binary cross-entropy on logits",
                     evaluate=lambda z, y: (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean()))
LOSSES.register(Loss(name="cross_entropy", build=_cross_entropy, scores=_argmax, integer_labels=True,
                     classifies=True, combine=_mean_softmax, doc="softmax cross-entropy on class labels",
                     evaluate=lambda z, y: -_log_softmax(z)[np.arange(len(y)), y].mean()))
LOSSES.register(Loss(name="hinge", build=_hinge, evaluate=_hinge_value, scores=_argmax, integer_labels=True,
                     classifies=True, doc="multiclass SVM"))
LOSSES.register(Loss(name="smooth_l1", build=_smooth_l1, evaluate=_smooth_l1_value,
                     signature=(P("beta", Float(0.0), 1.0, "where the square turns into |d|"),),
                     doc="Huber: ½d²/β below β, |d| - ½β above"))

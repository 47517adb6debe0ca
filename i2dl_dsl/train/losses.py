"""Losses as ONNX subgraphs over the network's output (the course's formulas).

    l1              mean |ŷ - y|
    mse             mean (ŷ - y)²                                   (L2)
    bce             mean max(z, 0) - z·y + log(1 + e^-|z|)           on logits z: stable
    cross_entropy   mean -log softmax(z)_y                           gradient ŷ - y
    hinge           mean Σ_{j≠y} max(0, z_j - z_y + 1)               multiclass SVM

Class losses (cross_entropy, hinge) take integer labels [N]; the others take
float targets shaped like the output (the data pipeline one-hot encodes
integer labels for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from onnx import TensorProto

LABEL = "y"


@dataclass(frozen=True)
class Loss:
    name: str
    integer_labels: bool  # labels [N] int64, or float targets shaped like the output
    emit: Callable  # (g, output, labels, output_shape) -> scalar loss tensor
    classifies: bool  # whether accuracy is meaningful


def _mean(g, tensor: str) -> str:
    return g.op("ReduceMean", [tensor], keepdims=0)


def _l1(g, z, y, shape):
    return _mean(g, g.op("Abs", [g.op("Sub", [z, y])]))


def _mse(g, z, y, shape):
    d = g.op("Sub", [z, y])
    return _mean(g, g.op("Mul", [d, d]))


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


LOSSES: dict[str, Loss] = {
    "l1": Loss("l1", False, _l1, False),
    "mse": Loss("mse", False, _mse, False),
    "bce": Loss("bce", False, _bce, True),
    "cross_entropy": Loss("cross_entropy", True, _cross_entropy, True),
    "hinge": Loss("hinge", True, _hinge, True),
}


def label_type(loss: Loss) -> int:
    return TensorProto.INT64 if loss.integer_labels else TensorProto.FLOAT

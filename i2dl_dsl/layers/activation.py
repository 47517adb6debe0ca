"""Activation functions: element-wise, shape-preserving, no multiply-adds.

prelu:   f(x) = max(0, x) + α min(0, x), α learned (one, or one per channel)
maxout:  the maximum over groups of `pieces` consecutive channels: C → C/pieces
softmax: over channels for images, over features otherwise
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Bool, Float, Int, Layer, P, Shape, fmt_shape, register


class _Activation(Layer):
    family = "activation"


@register
class ReLU(_Activation):
    kind = "relu"
    doc = "max(0, x)"


@register
class Sigmoid(_Activation):
    kind = "sigmoid"
    doc = "1 / (1 + e^-x)"


@register
class Tanh(_Activation):
    kind = "tanh"
    doc = "tanh(x)"


@register
class LeakyReLU(_Activation):
    kind = "leaky_relu"
    doc = "max(0, x) + alpha·min(0, x)"
    signature = (P("alpha", Float(0.0, 1.0), 0.01, "slope for x < 0"),)


@register
class PReLU(_Activation):
    kind = "prelu"
    doc = "leaky ReLU with a learned slope (PyTorch PReLU)"
    signature = (
        P("per_channel", Bool(), False, "one slope per channel instead of one for all"),
        P("init", Float(0.0, 1.0), 0.25, "initial slope"),
    )

    def infer(self, inputs: list[Shape]) -> Shape:
        if self.a.per_channel and len(inputs[0]) == 2:
            raise UserError("with per_channel=true needs an image [C, H, W] or a vector [F], "
                            f"got the sequence {fmt_shape(inputs[0])}")
        return inputs[0]

    def params(self, inputs, output):
        return {"weight": (inputs[0][0] if self.a.per_channel else 1,)}


@register
class Maxout(_Activation):
    kind = "maxout"
    doc = "maximum over groups of `pieces` channels (Goodfellow et al. 2013)"
    signature = (P("pieces", Int(), doc="linear pieces per output unit"),)

    def infer(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        axis = 0 if len(shape) != 2 else 1
        if shape[axis] % self.a.pieces:
            raise UserError(f"needs the {'features' if axis else 'channels'} "
                            f"({shape[axis]}) to be a multiple of its {self.a.pieces} pieces",
                            f"make the layer before it produce {shape[axis] // self.a.pieces * self.a.pieces or self.a.pieces} units")
        out = list(shape)
        out[axis] //= self.a.pieces
        return tuple(out)


@register
class Softmax(_Activation):
    kind = "softmax"
    doc = "normalised exponentials over channels (images) or features"

"""Activation functions: element-wise, shape-preserving, no multiply-adds
(as batch norm, they count 0 MACs: the table counts the products of weights
and inputs only).

prelu:       f(x) = max(0, x) + α min(0, x), α learned (one, or one per channel)
maxout:      the maximum over groups of `pieces` consecutive channels: C → C/pieces
softmax:     over channels for images, over features otherwise
relu6:       min(max(0, x), 6)
hardsigmoid: relu6(x + 3)/6
hardswish:   x · relu6(x + 3)/6
silu:        x · σ(x)   (swish)
gelu:        x · Φ(x) = ½x(1 + erf(x/√2)); approximate=tanh: ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
elu:         x for x > 0, α(eˣ - 1) otherwise
softplus:    log(1 + e^(βx))/β, and x where βx > threshold
All with PyTorch's defaults.
"""

from __future__ import annotations

import math

from ..diagnostics import UserError
from .base import Bool, Choice, Float, Int, Layer, P, Shape, fmt_shape, register
from .declarations import constant


class _Activation(Layer):
    family = "activation"


@register
class ReLU(_Activation):
    kind = "relu"
    doc = "max(0, x)"

    def lower(self, g, inputs):
        return g.op("Relu", inputs)


@register
class Sigmoid(_Activation):
    kind = "sigmoid"
    doc = "1 / (1 + e^-x)"

    def lower(self, g, inputs):
        return g.op("Sigmoid", inputs)


@register
class Tanh(_Activation):
    kind = "tanh"
    doc = "tanh(x)"

    def lower(self, g, inputs):
        return g.op("Tanh", inputs)


@register
class LeakyReLU(_Activation):
    kind = "leaky_relu"
    doc = "max(0, x) + alpha·min(0, x)"
    signature = (P("alpha", Float(0.0, 1.0), 0.01, "slope for x < 0"),)

    def lower(self, g, inputs):
        return g.op("LeakyRelu", inputs, alpha=self.a.alpha)


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

    def inits(self):
        return {"weight": constant(self.a.init)}

    def lower(self, g, inputs):
        slope = g.param("weight")
        if self.a.per_channel and len(g.input_shapes[0]) == 3:
            slope = g.op("Unsqueeze", [slope, g.const([1, 2], hint="axes")])  # [C] → [C, 1, 1]
        return g.op("PRelu", [inputs[0], slope])


@register
class Maxout(_Activation):
    kind = "maxout"
    doc = "maximum over groups of `pieces` channels (Goodfellow et al. 2013)"
    signature = (P("pieces", Int(), doc="linear pieces per output unit"),)

    def infer(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        axis = 0 if len(shape) != 2 else 1
        units, pieces = shape[axis], self.a.pieces
        if units % pieces:
            below, above = units // pieces * pieces, (units // pieces + 1) * pieces
            options = f"{below} or {above}" if below else f"{above}"
            raise UserError(f"needs the {'channels' if len(shape) == 3 else 'features'} ({units}) to be a "
                            f"multiple of its {pieces} pieces", f"make the layer before it produce {options} units")
        out = list(shape)
        out[axis] //= self.a.pieces
        return tuple(out)

    def lower(self, g, inputs):
        # Consecutive channels form a group: [N, C, ...] → [N, C/k, k, ...] → max over the k axis.
        shape = g.input_shapes[0]
        axis = 1 if len(shape) != 2 else 2
        grouped = [0, *shape[: axis - 1], shape[axis - 1] // self.a.pieces, self.a.pieces, *shape[axis:]]
        split = g.op("Reshape", [inputs[0], g.const(grouped, hint="shape")])
        return g.op("ReduceMax", [split, g.const([axis + 1], hint="axes")], keepdims=0)


@register
class Softmax(_Activation):
    kind = "softmax"
    doc = "normalised exponentials over channels (images) or features"

    def lower(self, g, inputs):
        return g.op("Softmax", inputs, axis=2 if len(g.input_shapes[0]) == 2 else 1)


@register
class ReLU6(_Activation):
    kind = "relu6"
    prefix = "relu6_"  # relu6_1, not relu61
    doc = "min(max(0, x), 6) (MobileNetV2)"

    def lower(self, g, inputs):
        low, high = g.const(0.0, dtype="float32", hint="min"), g.const(6.0, dtype="float32", hint="max")
        return g.op("Clip", [inputs[0], low, high])


@register
class HardSigmoid(_Activation):
    kind = "hardsigmoid"
    doc = "relu6(x + 3)/6 (MobileNetV3)"

    def lower(self, g, inputs):
        # ONNX's default slope is 0.2; PyTorch's is 1/6.
        return g.op("HardSigmoid", inputs, alpha=1.0 / 6.0, beta=0.5)


@register
class HardSwish(_Activation):
    kind = "hardswish"
    doc = "x·relu6(x + 3)/6 (MobileNetV3)"

    def lower(self, g, inputs):
        return g.op("HardSwish", inputs)


@register
class SiLU(_Activation):
    kind = "silu"
    doc = "x·sigmoid(x), also called swish (EfficientNet)"

    def lower(self, g, inputs):
        # ONNX has no Swish op before opset 24: two ops, both with gradient rules.
        return g.op("Mul", [inputs[0], g.op("Sigmoid", inputs)])


GELU_OP_OPSET = 20  # ONNX's Gelu op exists from opset 20 on


@register
class GELU(_Activation):
    kind = "gelu"
    doc = "x·Φ(x), exact or with the tanh approximation (ConvNeXt, transformers)"
    signature = (P("approximate", Choice(("none", "tanh")), "none", "none: with erf; tanh: the tanh formula"),)

    def lower(self, g, inputs):
        if g.opset >= GELU_OP_OPSET:
            return g.op("Gelu", inputs, approximate=self.a.approximate)
        return _gelu_tanh(g, inputs[0]) if self.a.approximate == "tanh" else _gelu_erf(g, inputs[0])


def _gelu_erf(g, x: str) -> str:
    """½x(1 + erf(x/√2)), for opsets before Gelu."""
    erf = g.op("Erf", [g.op("Mul", [x, g.const(0.5 ** 0.5, dtype="float32", hint="inv_sqrt2")])])
    half_x = g.op("Mul", [x, g.const(0.5, dtype="float32", hint="half")])
    return g.op("Mul", [half_x, g.op("Add", [erf, g.const(1.0, dtype="float32", hint="one")])])


def _gelu_tanh(g, x: str) -> str:
    """½x(1 + tanh(√(2/π)(x + 0.044715x³))), for opsets before Gelu."""
    cube = g.op("Mul", [g.op("Mul", [x, x]), x])
    inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, dtype="float32", hint="cubic")])])
    t = g.op("Tanh", [g.op("Mul", [inner, g.const(math.sqrt(2 / math.pi), dtype="float32", hint="sqrt_2_pi")])])
    half_x = g.op("Mul", [x, g.const(0.5, dtype="float32", hint="half")])
    return g.op("Mul", [half_x, g.op("Add", [t, g.const(1.0, dtype="float32", hint="one")])])


@register
class ELU(_Activation):
    kind = "elu"
    doc = "x for x > 0, alpha·(e^x - 1) otherwise"
    signature = (P("alpha", Float(0.0), 1.0, "the value approached as x → -∞ is -alpha"),)

    def lower(self, g, inputs):
        return g.op("Elu", inputs, alpha=self.a.alpha)


# In float32, log(1 + e^z) and z are the same number from z ≈ 17 on (e^-z
# is below half an ulp of z), so PyTorch's switch to x above its default
# threshold of 20 changes nothing and needs no ops.
SOFTPLUS_EXACT_FROM = 17.0


@register
class Softplus(_Activation):
    kind = "softplus"
    doc = "log(1 + e^(beta·x))/beta, x where beta·x > threshold (PyTorch Softplus)"
    signature = (
        P("beta", Float(0.0), 1.0, "sharpness; the curve approaches relu as beta grows"),
        P("threshold", Float(), 20.0, "above beta·x = threshold the output is x"),
    )

    def infer(self, inputs: list[Shape]) -> Shape:
        if self.a.beta == 0:
            raise UserError("needs beta > 0 (log(1 + e^(beta·x))/beta divides by beta)", "use beta=1, PyTorch's default")
        return inputs[0]

    def lower(self, g, inputs):
        x, beta = inputs[0], self.a.beta
        bx = x if beta == 1 else g.op("Mul", [x, g.const(beta, dtype="float32", hint="beta")])
        y = g.op("Softplus", [bx])
        y = y if beta == 1 else g.op("Div", [y, g.const(beta, dtype="float32", hint="beta")])
        if self.a.threshold >= SOFTPLUS_EXACT_FROM:
            return y
        above = g.op("Greater", [bx, g.const(self.a.threshold, dtype="float32", hint="threshold")])
        return g.op("Where", [above, x, y])

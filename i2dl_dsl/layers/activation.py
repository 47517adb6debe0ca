"""Activation functions: element-wise, shape-preserving, no multiply-adds.

prelu:   f(x) = max(0, x) + α min(0, x), α learned (one, or one per channel)
maxout:  the maximum over groups of `pieces` consecutive channels: C → C/pieces
softmax: over channels for images, over features otherwise
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Bool, Float, Int, Layer, P, Shape, fmt_shape, register
from .declarations import TorchCode, constant


class _Activation(Layer):
    family = "activation"


@register
class ReLU(_Activation):
    kind = "relu"
    doc = "max(0, x)"

    def lower(self, g, inputs):
        return g.op("Relu", inputs)

    def torch_code(self, t):
        return TorchCode("nn.ReLU()")


@register
class Sigmoid(_Activation):
    kind = "sigmoid"
    doc = "1 / (1 + e^-x)"

    def lower(self, g, inputs):
        return g.op("Sigmoid", inputs)

    def torch_code(self, t):
        return TorchCode("nn.Sigmoid()")


@register
class Tanh(_Activation):
    kind = "tanh"
    doc = "tanh(x)"

    def lower(self, g, inputs):
        return g.op("Tanh", inputs)

    def torch_code(self, t):
        return TorchCode("nn.Tanh()")


@register
class LeakyReLU(_Activation):
    kind = "leaky_relu"
    doc = "max(0, x) + alpha·min(0, x)"
    signature = (P("alpha", Float(0.0, 1.0), 0.01, "slope for x < 0"),)

    def lower(self, g, inputs):
        return g.op("LeakyRelu", inputs, alpha=self.a.alpha)

    def torch_code(self, t):
        return TorchCode(f"nn.LeakyReLU({t.arg('alpha')})")


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

    onnx_op = "PRelu"

    def lower(self, g, inputs):
        if not (self.a.per_channel and len(g.input_shapes[0]) == 3):
            return g.op("PRelu", [inputs[0], g.param("weight")])
        # The slopes broadcast over an image as [C, 1, 1]: an exported model
        # stores them so (`<layer>/slope`), the evaluation graph unsqueezes them.
        if g.fixed_weights:
            slope = g.constant(g.param_value("weight").reshape(-1, 1, 1).astype("float32"), hint="slope")
        else:
            slope = g.op("Unsqueeze", [g.param("weight"), g.const([1, 2], hint="axes")])
        return g.op("PRelu", [inputs[0], slope])

    @staticmethod
    def onnx_to_torch(slope):
        """An exported model's `<layer>/slope` [C, 1, 1] as the parameter `weight` [C]."""
        return {"weight": slope.reshape(-1)}

    def torch_code(self, t):
        count = t.width() if self.a.per_channel else "1"
        return TorchCode(f"nn.PReLU({count}, init={t.arg('init')})")


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

    def torch_code(self, t):
        axis = 2 if len(t.in_shape()) == 2 else 1  # features of [N, T, F], else channels
        pieces = t.arg("pieces")
        return TorchCode(None, f"{{0}}.unflatten({axis}, (-1, {pieces})).amax({axis + 1})",
                         width=f"{t.width()} // {pieces}")


@register
class Softmax(_Activation):
    kind = "softmax"
    doc = "normalised exponentials over channels (images) or features"

    def lower(self, g, inputs):
        return g.op("Softmax", inputs, axis=2 if len(g.input_shapes[0]) == 2 else 1)

    def torch_code(self, t):
        return TorchCode(f"nn.Softmax(dim={2 if len(t.in_shape()) == 2 else 1})")

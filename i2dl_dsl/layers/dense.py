"""`fc` (fully connected, PyTorch Linear) and `flatten`.

fc:  params = in·out + out,  MACs = in·out (T·in·out on a sequence);  weight layout [out, in]
     On a sequence [T, in] it applies to every step: [T, out], as PyTorch's Linear.
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Bool, Int, Layer, P, Shape, fmt_shape, numel, register
from .declarations import FAN_IN, ZEROS


@register
class FC(Layer):
    kind = "fc"
    family = "fc"
    doc = "fully connected layer (PyTorch Linear)"
    signature = (P("out", Int(), doc="output features"), P("bias", Bool(), True, "learn a bias"))

    def infer(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if len(shape) == 3:
            raise UserError(f"needs a flat input [F], got {fmt_shape(shape)}",
                            f"insert `flatten` before it (giving [{numel(shape)}]), or global_avgpool -> flatten")
        return (shape[0], self.a.out) if len(shape) == 2 else (self.a.out,)

    def params(self, inputs, output):
        weight = (self.a.out, inputs[0][-1])
        return {"weight": weight, "bias": (self.a.out,)} if self.a.bias else {"weight": weight}

    def inits(self):
        return {"weight": FAN_IN, "bias": ZEROS}

    def macs(self, inputs, output):
        steps = inputs[0][0] if len(inputs[0]) == 2 else 1
        return steps * inputs[0][-1] * self.a.out

    def receptive_field(self, fields, inputs, output):
        return None

    def lower(self, g, inputs):
        x, shape = inputs[0], g.input_shapes[0]
        if len(shape) == 2:  # every step at once: [N·T, in] through one Gemm, then [N, T, out]
            x = g.op("Reshape", [x, g.const([-1, shape[1]], hint="steps")])
        operands = [x, g.param("weight")] + ([g.param("bias")] if self.a.bias else [])
        y = g.op("Gemm", operands, transB=1)
        return y if len(shape) == 1 else g.op("Reshape", [y, g.const([-1, shape[0], self.a.out], hint="shape")])


@register
class Flatten(Layer):
    kind = "flatten"
    family = "shape"
    doc = "[C, H, W] → [C·H·W]"

    def infer(self, inputs: list[Shape]) -> Shape:
        return (numel(inputs[0]),)

    def lower(self, g, inputs):
        return g.op("Flatten", inputs, axis=1)

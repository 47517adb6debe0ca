"""`fc` (fully connected, PyTorch Linear) and `flatten`.

fc:  params = in·out + out,  MACs = in·out;  weight layout [out, in]
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Bool, Int, Layer, P, Shape, fmt_shape, numel, register
from .declarations import FAN_IN, ZEROS, TorchCode


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
        if len(shape) == 2:
            raise UserError(f"needs a flat input [F], got the sequence {fmt_shape(shape)}",
                            "use lstm(..., sequences=false) or rnn(..., sequences=false) to keep the last step, "
                            "or flatten")
        return (self.a.out,)

    def params(self, inputs, output):
        weight = (self.a.out, inputs[0][0])
        return {"weight": weight, "bias": (self.a.out,)} if self.a.bias else {"weight": weight}

    def inits(self):
        return {"weight": FAN_IN, "bias": ZEROS}

    def macs(self, inputs, output):
        return inputs[0][0] * self.a.out

    def receptive_field(self, fields, inputs, output):
        return None

    def lower(self, g, inputs):
        operands = [inputs[0], g.param("weight")] + ([g.param("bias")] if self.a.bias else [])
        return g.op("Gemm", operands, transB=1)

    def torch_code(self, t):
        module = t.build("nn.Linear", [t.width(), t.arg("out")], bias=(t.arg("bias"), "True"))
        return TorchCode(module, width=t.arg("out"))


@register
class Flatten(Layer):
    kind = "flatten"
    family = "shape"
    doc = "[C, H, W] → [C·H·W]"

    def infer(self, inputs: list[Shape]) -> Shape:
        return (numel(inputs[0]),)

    def lower(self, g, inputs):
        return g.op("Flatten", inputs, axis=1)

    def torch_code(self, t):
        return TorchCode("nn.Flatten()")

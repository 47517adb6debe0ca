"""Convolutions: `conv` (PyTorch Conv2d) and `upconv` (ConvTranspose2d).

conv:    out = (N - F + 2P)/S + 1, F = d·(k-1)+1
         params = kh·kw·(Cin/g)·Cout + Cout,  MACs = Cout·Hout·Wout·(Cin/g)·kh·kw
upconv:  out = (N - 1)·S - 2P + d·(k-1) + output_padding + 1
         params = Cin·(Cout/g)·kh·kw + Cout,  MACs = Cin·Hin·Win·(Cout/g)·kh·kw
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..diagnostics import UserError
from .base import Bool, Int, Layer, P, Pair, ReceptiveField, Shape, register
from .declarations import FAN_IN, ZEROS, TorchCode
from .window import ROUND, check_spatial, onnx_pads, resolve_padding, window_args, window_formulas, window_output


def _check_groups(kind: str, cin: int, cout: int, groups: int) -> None:
    for what, value in (("input channels", cin), ("filters", cout)):
        if value % groups:
            raise UserError(f"has groups={groups}, which does not divide its {what} ({value})",
                            f"groups must divide both the input channels ({cin}) and the filters ({cout})")


@register
class Conv(Layer):
    kind = "conv"
    family = "conv"
    doc = "2-D convolution (PyTorch Conv2d)"
    signature = (
        P("filters", Int(), doc="output channels"),
        *window_args(default_stride_is_kernel=False),
        P("d", Pair(), 1, "dilation"),
        P("groups", Int(), 1, "groups (groups = input channels: depthwise)"),
        P("bias", Bool(), True, "learn a bias per filter"),
        ROUND,
    )

    def pads(self, shape: Shape):
        return resolve_padding(self.a.p, shape[1:], self.a.k, self.a.s, self.a.d)

    def infer(self, inputs: list[Shape]) -> Shape:
        cin, h, w = check_spatial(self.kind, inputs)
        _check_groups(self.kind, cin, self.a.filters, self.a.groups)
        pads = self.pads(inputs[0])
        rounding = "floor" if self.a.p == "same" else self.a.round  # same means ⌈N/S⌉ by definition
        size = [window_output(n, self.a.k[i], self.a.s[i], pads[i], self.a.d[i], rounding, i)
                for i, n in enumerate((h, w))]
        return (self.a.filters, *size)

    def formula(self, inputs, output):
        return window_formulas(inputs[0], self.a.k, self.a.s, self.pads(inputs[0]), self.a.d, output)

    def params(self, inputs, output):
        cin = inputs[0][0]
        weight = (self.a.filters, cin // self.a.groups, *self.a.k)
        return {"weight": weight, "bias": (self.a.filters,)} if self.a.bias else {"weight": weight}

    def inits(self):
        return {"weight": FAN_IN, "bias": ZEROS}

    def macs(self, inputs, output):
        cout, hout, wout = output
        return cout * hout * wout * (inputs[0][0] // self.a.groups) * self.a.k[0] * self.a.k[1]

    def receptive_field(self, fields, inputs, output):
        return fields[0].window(self.a.k, self.a.s, self.a.d) if fields[0] else None

    def lower(self, g, inputs):
        shape = g.input_shapes[0]
        pads = onnx_pads(self.pads(shape), shape[1:], self.a.k, self.a.s, self.a.d, g.output_shape[1:])
        operands = [inputs[0], g.param("weight")] + ([g.param("bias")] if self.a.bias else [])
        return g.op("Conv", operands, kernel_shape=list(self.a.k), strides=list(self.a.s), pads=pads,
                    dilations=list(self.a.d), group=self.a.groups)

    def torch_code(self, t):
        shape = t.in_shape()
        pads = onnx_pads(self.pads(shape), shape[1:], self.a.k, self.a.s, self.a.d, t.out_shape()[1:])
        padding, forward = t.padding(pads, "p")
        module = t.build("nn.Conv2d", [t.width(), t.arg("filters")],
                        kernel_size=t.arg("k"), stride=(t.arg("s"), "1"), padding=(padding, "0"),
                        dilation=(t.arg("d"), "1"), groups=(t.arg("groups"), "1"), bias=(t.arg("bias"), "True"))
        return TorchCode(module, forward, width=t.arg("filters"))


@register
class UpConv(Layer):
    kind = "upconv"
    family = "conv"
    doc = "transposed 2-D convolution (PyTorch ConvTranspose2d)"
    signature = (
        P("filters", Int(), doc="output channels"),
        P("k", Pair(), doc="kernel size"),
        P("s", Pair(), 1, "stride: the upsampling factor"),
        P("p", Pair(0), 0, "padding removed from each side of the output"),
        P("output_padding", Pair(0), 0, "extra rows/columns added at the end"),
        P("d", Pair(), 1, "dilation"),
        P("groups", Int(), 1, "groups"),
        P("bias", Bool(), True, "learn a bias per filter"),
    )

    def infer(self, inputs: list[Shape]) -> Shape:
        cin, h, w = check_spatial(self.kind, inputs)
        _check_groups(self.kind, cin, self.a.filters, self.a.groups)
        size = []
        for i, n in enumerate((h, w)):
            k, s, p, op, d = (self.a[x][i] for x in ("k", "s", "p", "output_padding", "d"))
            if op >= max(s, d):
                raise UserError(f"has output_padding {op}, which must be smaller than the stride or dilation ({max(s, d)})")
            out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            if out <= 0:
                axis = ("height", "width")[i]
                raise UserError(f"output {axis} is ({n} - 1)·{s} - 2·{p} + {d}·({k} - 1) + {op} + 1 = {out}, "
                                "not positive", "use a smaller p")
            size.append(out)
        return (self.a.filters, *size)

    def params(self, inputs, output):
        weight = (inputs[0][0], self.a.filters // self.a.groups, *self.a.k)
        return {"weight": weight, "bias": (self.a.filters,)} if self.a.bias else {"weight": weight}

    def inits(self):
        return {"weight": FAN_IN, "bias": ZEROS}

    def macs(self, inputs, output):
        cin, h, w = inputs[0]
        return cin * h * w * (self.a.filters // self.a.groups) * self.a.k[0] * self.a.k[1]

    def receptive_field(self, fields, inputs, output):
        field = fields[0]
        if field is None:
            return None
        # Output o reads input i where o = s·i + d·t - p: the kernel taps t that
        # fit step by s/g (g = gcd(d, s)), so the inputs read span
        # ⌊(k-1)g/s⌋·d/g + 1 units (⌈k/s⌉ without dilation). The jump shrinks by s.
        taps = tuple(self._taps(self.a.k[i], self.a.s[i], self.a.d[i]) for i in range(2))
        stride = tuple(Fraction(1, s) for s in self.a.s)
        return ReceptiveField(field.size, field.jump).window(taps, stride)

    @staticmethod
    def _taps(k: int, s: int, d: int) -> int:
        g = math.gcd(d, s)
        return (k - 1) * g // s * (d // g) + 1

    def lower(self, g, inputs):
        operands = [inputs[0], g.param("weight")] + ([g.param("bias")] if self.a.bias else [])
        return g.op("ConvTranspose", operands, kernel_shape=list(self.a.k), strides=list(self.a.s),
                    pads=[*self.a.p, *self.a.p], output_padding=list(self.a.output_padding),
                    dilations=list(self.a.d), group=self.a.groups)

    def torch_code(self, t):
        module = t.build("nn.ConvTranspose2d", [t.width(), t.arg("filters")],
                        kernel_size=t.arg("k"), stride=(t.arg("s"), "1"), padding=(t.arg("p"), "0"),
                        output_padding=(t.arg("output_padding"), "0"), groups=(t.arg("groups"), "1"),
                        bias=(t.arg("bias"), "True"), dilation=(t.arg("d"), "1"))
        return TorchCode(module, width=t.arg("filters"))

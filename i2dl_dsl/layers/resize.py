"""`upsample`: nearest or bilinear resizing by an integer factor.

    out = N · scale   (bilinear: align_corners=false, PyTorch's default)
"""

from __future__ import annotations

from fractions import Fraction

from .base import Choice, Layer, P, Pair, ReceptiveField, Shape, register
from .declarations import TorchCode
from .window import check_spatial


@register
class Upsample(Layer):
    kind = "upsample"
    family = "conv"
    doc = "resize by an integer factor (PyTorch Upsample)"
    signature = (
        P("scale", Pair(), 2, "factor per axis"),
        P("mode", Choice(("nearest", "bilinear")), "nearest", "interpolation"),
    )

    def infer(self, inputs: list[Shape]) -> Shape:
        c, h, w = check_spatial(self.kind, inputs)
        return (c, h * self.a.scale[0], w * self.a.scale[1])

    def receptive_field(self, fields, inputs, output):
        field = fields[0]
        if field is None:
            return None
        taps = (2, 2) if self.a.mode == "bilinear" else (1, 1)
        stride = tuple(Fraction(1, s) for s in self.a.scale)
        return ReceptiveField(field.size, field.jump).window(taps, stride)

    def lower(self, g, inputs):
        # PyTorch's nearest picks floor(x / scale) (asymmetric); its bilinear
        # with align_corners=false samples at pixel centres (half_pixel).
        scales = g.const([1.0, 1.0, *map(float, self.a.scale)], dtype="float32", hint="scales")
        if self.a.mode == "nearest":
            return g.op("Resize", [inputs[0], "", scales], mode="nearest",
                        coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return g.op("Resize", [inputs[0], "", scales], mode="linear", coordinate_transformation_mode="half_pixel")

    def torch_code(self, t):
        # PyTorch's scale factors are floats; its defaults are the lowering's modes.
        scale = t.lit(tuple(float(s) for s in self.a.scale))
        corners = (t.lit(False), None) if self.a.mode == "bilinear" else (None, None)
        return TorchCode(t.build("nn.Upsample", [], scale_factor=scale, mode=t.arg("mode"), align_corners=corners))

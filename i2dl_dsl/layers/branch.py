"""What the residual branches of ConvNeXt-style networks end with: a learned
per-channel `scale` and stochastic depth (`drop_path`).

scale:     y = γ·x, γ one learned value per channel of an image (shape
           [C, 1, 1], as torchvision's CNBlock `layer_scale`) or per feature
           of a vector or sequence ([F]); params C (or F), 0 MACs (as batch norm).
           Its one parameter is named after the layer itself, without a
           suffix: a layer labelled `layer_scale` in block `features.1.0`
           holds `features.1.0.layer_scale`, torchvision's state_dict name.
drop_path: identity at inference; in training each sample is kept with
           probability 1 - p and then scaled by 1/(1 - p), else zeroed
           (torchvision's StochasticDepth, mode "row"): one draw per sample,
           a mask [N, 1, ...] drawn each step like dropout's.
"""

from __future__ import annotations

from .base import Float, Layer, P, Shape, register
from .declarations import ScaledBernoulli, constant


@register
class Scale(Layer):
    kind = "scale"
    family = "norm"
    doc = "learned per-channel factor (ConvNeXt's layer scale)"
    signature = (P("init", Float(), 1e-6, "every factor's initial value (torchvision's ConvNeXt: 1e-6)"),)

    def params(self, inputs, output):
        shape = inputs[0]
        return {"": (shape[0], 1, 1) if len(shape) == 3 else (shape[-1],)}

    def inits(self):
        return {"": constant(self.a.init)}

    def lower(self, g, inputs):
        return g.op("Mul", [inputs[0], g.param("")])


@register
class DropPath(Layer):
    kind = "drop_path"
    family = "regularization"
    doc = "stochastic depth: drops a whole sample's branch in training; the identity at inference"
    signature = (P("p", Float(0.0, 1.0, high_open=True), doc="probability of dropping a sample"),)

    def random_inputs(self, output: Shape):
        # One draw per sample: a mask of ones' shape broadcasts it over the sample.
        return {"mask": ScaledBernoulli((1,) * len(output), 1.0 - self.a.p)} if self.a.p > 0 else {}

    def lower(self, g, inputs):
        if g.training and self.a.p > 0:
            mask = g.random_input("mask", self.random_inputs(g.output_shape)["mask"])
            return g.op("Mul", [inputs[0], mask])
        return g.op("Identity", inputs)

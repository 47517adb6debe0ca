"""`layernorm` and `groupnorm`: normalisations within each sample, the same
in training and at inference (no batch statistics, no buffers).

layernorm:  y = γ (x - μ)/√(σ² + ε) + β, μ and σ² over the features of a
            vector [F] or of each step of a sequence [T, F] (PyTorch
            LayerNorm(F)); over the channels at each position of an image
            [C, H, W] (ConvNeXt's LayerNorm2d). γ, β: [F] or [C]; params 2F or 2C.
groupnorm:  the C channels in `groups` groups of C/groups; μ and σ² per sample
            and group, over its channels and positions (PyTorch GroupNorm);
            γ, β per channel: params 2C.
Like batch norm, 0 MACs (the table counts products of weights and inputs),
and the input's receptive field: group norm's statistics see the whole map,
but, as for batch norm's, they are not counted as what a unit sees.
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Float, Int, Layer, P, Shape, fmt_shape, register
from .declarations import ONES, ZEROS

EPS = P("eps", Float(0.0, 1.0), 1e-5, "added to the variance (ConvNeXt uses 1e-6)")


class _SampleNorm(Layer):
    family = "norm"
    signature = (EPS,)

    def features(self, inputs: list[Shape]) -> int:
        """How many channels or features γ and β have."""
        return inputs[0][0] if len(inputs[0]) != 2 else inputs[0][1]

    def params(self, inputs, output):
        n = self.features(inputs)
        return {"weight": (n,), "bias": (n,)}

    def inits(self):
        return {"weight": ONES, "bias": ZEROS}


@register
class LayerNorm(_SampleNorm):
    kind = "layernorm"
    prefix = "norm"
    title = "layer norm"
    doc = "layer normalisation over features (LayerNorm), or over channels per position (LayerNorm2d)"

    def lower(self, g, inputs):
        x = inputs[0]
        if len(g.input_shapes[0]) != 3:
            return self._normalise_last(g, x)
        # Channels last, normalised per position, then back: what LayerNorm2d does.
        last = g.op("Transpose", [x], perm=[0, 2, 3, 1])
        return g.op("Transpose", [self._normalise_last(g, last)], perm=[0, 3, 1, 2])

    def _normalise_last(self, g, x: str) -> str:
        return g.op("LayerNormalization", [x, g.param("weight"), g.param("bias")], axis=-1, epsilon=self.a.eps)


@register
class GroupNorm(_SampleNorm):
    kind = "groupnorm"
    prefix = "gn"
    title = "group norm"
    doc = "group normalisation (PyTorch GroupNorm)"
    signature = (P("groups", Int(), doc="groups the channels are split into"), EPS)

    def infer(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if len(shape) == 2:
            raise UserError(f"works on images [C, H, W] or vectors [F], got the sequence {fmt_shape(shape)}",
                            "use layernorm, which normalises each step's features")
        channels, groups = shape[0], self.a.groups
        if channels % groups:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            near = min(divisors, key=lambda d: abs(d - groups))
            raise UserError(f"needs the channels ({channels}) to be a multiple of its {groups} groups "
                            f"({channels}/{groups} = {channels / groups:.3g})", f"use groups={near}")
        return shape

    def lower(self, g, inputs):
        # Each group as one row: [N, G, C/G·H·W], normalised over the row by
        # LayerNormalization, then γ and β per channel. GroupNormalization-21
        # is 2× faster forward on onnxruntime's CPU (0.60 against 1.28 ms for
        # [32, 64, 16, 16] in 8 groups, one thread) but has no CUDA kernel and
        # no gradient rule here, and opsets 18-20 lack it.
        shape = g.input_shapes[0]
        rows = g.op("Reshape", [inputs[0], g.const([0, self.a.groups, -1], hint="groups")])
        one = g.const([1.0], dtype="float32", hint="one")
        normed = g.op("LayerNormalization", [rows, one], axis=-1, epsilon=self.a.eps)
        y = g.op("Reshape", [normed, g.const([0, *shape], hint="shape")])
        weight, bias = g.param("weight"), g.param("bias")
        if len(shape) == 3:
            axes = g.const([1, 2], hint="axes")
            weight, bias = g.op("Unsqueeze", [weight, axes]), g.op("Unsqueeze", [bias, axes])
        return g.op("Add", [g.op("Mul", [y, weight]), bias])

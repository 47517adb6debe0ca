"""`channel_shuffle(groups)` (ShuffleNet): the C channels, read as a
groups × C/groups matrix, transposed, so that the next grouped convolution
sees channels of every group. Channel c = i·(C/groups) + j goes to
j·groups + i. No parameters, no MACs.
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Int, Layer, P, Shape, register
from .window import check_spatial


@register
class ChannelShuffle(Layer):
    kind = "channel_shuffle"
    prefix = "shuffle"
    family = "shape"
    title = "channel shuffle"
    doc = "interleave the channels of `groups` groups (ShuffleNet; PyTorch ChannelShuffle)"
    signature = (P("groups", Int(), doc="groups the channels come in"),)

    def infer(self, inputs: list[Shape]) -> Shape:
        channels, _, _ = check_spatial(self.kind, inputs)
        if channels % self.a.groups:
            raise UserError(f"needs the channels ({channels}) to be a multiple of its {self.a.groups} groups "
                            f"({channels}/{self.a.groups} = {channels / self.a.groups:.3g})",
                            "shuffle with the groups of the grouped convolution before it")
        return inputs[0]

    def lower(self, g, inputs):
        c, h, w = g.input_shapes[0]
        groups = self.a.groups
        grid = g.op("Reshape", [inputs[0], g.const([0, groups, c // groups, h, w], hint="grid")])
        swapped = g.op("Transpose", [grid], perm=[0, 2, 1, 3, 4])
        return g.op("Reshape", [swapped, g.const([0, c, h, w], hint="shape")])

"""Layers that join tensors: `add` (residual sums) and `concat` (channels).

`add(a, b)` needs equal shapes; `concat(a, b)` joins images along channels
(equal H and W), vectors along features, sequences along features (equal T).

A merge reads two or more tensors (`inputs = None`): its positional arguments
name them, its keyword arguments go through its signature like any layer's.
A merge may close a block (`closes`): `add` closes `residual { }`, `concat`
closes `concat { }`; the elaborator finds it here, by that block's name.
"""

from __future__ import annotations

from typing import ClassVar

from ..diagnostics import UserError
from .base import REGISTRY, Args, Layer, ReceptiveField, Shape, fmt_shape, register
from .declarations import TorchCode


class Merge(Layer):
    """Base class of the layers that join tensors."""

    family = "merge"
    inputs = None
    closes: ClassVar[str | None] = None  # the block whose branches this merge joins

    def __init__(self, args: Args, closing: bool = False, has_shortcut: bool = False):
        """`closing`: built for the end of a `closes` block rather than
        written as a call; `has_shortcut`: that residual has a `shortcut { }`.
        Messages then speak of the block."""
        super().__init__(args)
        self.closing = closing
        self.has_shortcut = has_shortcut

    def receptive_field(self, fields, inputs, output):
        known = [f for f in fields if f is not None]
        return ReceptiveField.widest(known) if known and len(output) == 3 else None


@register
class Add(Merge):
    kind = "add"
    closes = "residual"
    doc = "element-wise sum of tensors of equal shape"

    def lower(self, g, inputs):
        return g.op("Add", inputs) if len(inputs) == 2 else g.op("Sum", inputs)

    def torch_code(self, t):
        return TorchCode(None, " + ".join(f"{{{i}}}" for i in range(t.inputs)))

    def infer(self, inputs: list[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if other != first:
                raise UserError(self._mismatch(first, other), self._hint(first, other))
        return first

    def _mismatch(self, a: Shape, b: Shape) -> str:
        if self.closing:
            return f"closes a residual whose body gives {fmt_shape(b)} but whose shortcut gives {fmt_shape(a)}"
        return f"needs equal shapes, got {fmt_shape(a)} and {fmt_shape(b)}"

    def _hint(self, shortcut: Shape, body: Shape) -> str:
        if self.has_shortcut:
            return f"the shortcut must give the body's shape {fmt_shape(body)}"
        if len(shortcut) == 3 and len(body) == 3 and shortcut[1] % body[1] == 0:
            stride = shortcut[1] // body[1]
            conv = f"conv({body[0]}, k=1" + (f", s={stride}, round=floor" if stride > 1 else "") + ", bias=false)"
            if self.closing:
                return f"add a projection shortcut: shortcut {{ {conv} -> batchnorm }}"
            return f"project one side first, e.g. -> {conv}"
        return ""


@register
class Concat(Merge):
    kind = "concat"
    closes = "concat"
    doc = "join along channels (images) or features (vectors, sequences)"

    def infer(self, inputs: list[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(first):
                raise UserError(f"cannot join {fmt_shape(first)} and {fmt_shape(other)}: ranks differ",
                                "flatten both sides, or join tensors of the same kind")
            if len(first) == 3 and other[1:] != first[1:]:
                where = "has branches that" if self.closing else "has inputs that"
                raise UserError(f"{where} differ in size: {first[1]}×{first[2]} and {other[1]}×{other[2]} "
                                f"({fmt_shape(first)} and {fmt_shape(other)})",
                                "give every branch the same stride and padding (p=same keeps the size)"
                                if self.closing else
                                "resize one side first (pooling, upsample or upconv) so that H and W agree")
            if len(first) == 2 and other[0] != first[0]:
                raise UserError(f"needs sequences of equal length, got {fmt_shape(first)} and {fmt_shape(other)}")
        if len(first) == 2:
            return (first[0], sum(s[1] for s in inputs))
        return (sum(s[0] for s in inputs), *first[1:])

    def lower(self, g, inputs):
        return g.op("Concat", inputs, axis=2 if len(g.input_shapes[0]) == 2 else 1)

    def torch_code(self, t):
        joined = ", ".join(f"{{{i}}}" for i in range(t.inputs))
        axis = 2 if len(t.in_shape()) == 2 else 1
        return TorchCode(None, f"torch.cat([{joined}], {axis})", width=" + ".join(t.width(i) for i in range(t.inputs)))


def merge_kinds() -> list[str]:
    """The registered merges, in registry order: what hints offer."""
    return [kind for kind, cls in REGISTRY.items() if cls.inputs is None]


def closing_merge(block: str) -> type[Merge]:
    """The registered merge that closes `block` (`residual`, `concat`)."""
    for cls in REGISTRY.values():
        if issubclass(cls, Merge) and cls.closes == block:
            return cls
    raise LookupError(f"no registered merge closes '{block}' blocks")


def merge_calls(argument: str) -> str:
    """`add(x) or concat(x)`: every registered merge called on `argument`, for hints."""
    calls = [f"{kind}({argument})" for kind in merge_kinds()]
    return calls[0] if len(calls) == 1 else ", ".join(calls[:-1]) + " or " + calls[-1]

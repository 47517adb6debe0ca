"""Layers that join tensors: `add` (residual sums) and `concat` (channels).

`add(a, b)` and `mul(a, b)` are element-wise with NumPy broadcasting over
the shapes without the batch axis: aligned from the last axis, each pair of
sizes is equal or one of them is 1 (`[C, 1, 1]` against `[C, H, W]` scales
every channel, as squeeze-and-excitation does); a `residual { }` block's
closing add needs equal shapes. `concat(a, b)` joins images along channels
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


class Merge(Layer):
    """Base class of the layers that join tensors."""

    family = "merge"
    inputs = None
    closes: ClassVar[str | None] = None  # the block whose branches this merge joins
    offered: ClassVar[bool] = True  # named in hints that say how to join a tensor to a chain
    tensor_keywords: ClassVar[tuple[str, ...]] = ()  # keyword arguments that name tensors (crop's `like`)
    # Given no tensor by position, it reads the chain's tensor even where a
    # chain starts (crop(like=u) in a block's first line crops `in`).
    reads_chain_alone: ClassVar[bool] = False

    @classmethod
    def sources_error(cls, data: int, named: set[str]) -> tuple[str, str] | None:
        """(message, hint) when a call gives the wrong tensors: `data` read
        from the chain and positional arguments, `named` the tensor keywords
        given; None when they are right."""
        if data < 2:
            return (f"{cls.kind} needs at least two tensors, got {data}",
                    f"e.g. {cls.kind}(a, b), or -> {cls.kind}(b) to join b to this chain")
        return None

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


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """NumPy's broadcast of two shapes (without the batch axis), or None."""
    rank = max(len(a), len(b))
    a1, b1 = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a1, b1)):
        return None
    return tuple(max(x, y) for x, y in zip(a1, b1))


def _projection_stride(size: int, target: int) -> tuple[int, bool] | None:
    """The stride of a 1×1 convolution taking `size` pixels to `target`
    ((size - 1)//s + 1 = target), and whether that needs round=floor; None
    when no stride does, or when it would shrink a map to one pixel (a map
    that ends at 1×1 was pooled on purpose: no projection should undo that)."""
    if target == 1 and size > 1:
        return None
    for stride in range(1, size + 1):
        if (size - 1) // stride + 1 == target:
            return stride, (size - 1) % stride != 0
    return None


_AXES = {3: ("channels", "heights", "widths"), 2: ("steps", "features"), 1: ("features",)}


class _Elementwise(Merge):
    """Element-wise merges: NumPy broadcasting between written tensors."""

    op: ClassVar[str]

    def infer(self, inputs: list[Shape]) -> Shape:
        result = inputs[0]
        for other in inputs[1:]:
            joined = None if self.closing and other != result else broadcast(result, other)
            if joined is None:
                raise UserError(self._mismatch(result, other), self._hint(result, other))
            result = joined
        return result

    def receptive_field(self, fields, inputs, output):
        # A unit sees what every input's unit sees (the widest field); the
        # step between units is that of the inputs at the output's size, not
        # of one broadcast from 1×1.
        known = [f for f in fields if f is not None]
        if not known or len(output) != 3:
            return None
        full = [f for f, s in zip(fields, inputs) if f is not None and tuple(s[-2:]) == tuple(output[1:])]
        widest = ReceptiveField.widest(known)
        return ReceptiveField(widest.size, ReceptiveField.widest(full or known).jump)

    def _mismatch(self, a: Shape, b: Shape) -> str:
        if self.closing:
            return f"closes a residual whose body gives {fmt_shape(b)} but whose shortcut gives {fmt_shape(a)}"
        rank = max(len(a), len(b))
        a1, b1 = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
        axis = next(i for i, (x, y) in enumerate(zip(a1, b1)) if x != y and 1 not in (x, y))
        what = _AXES.get(rank, ())[axis] if axis < len(_AXES.get(rank, ())) else f"sizes of axis {axis}"
        return (f"needs shapes that broadcast, got {fmt_shape(a)} and {fmt_shape(b)} "
                f"({what} {a1[axis]} and {b1[axis]} differ, and neither is 1)")

    def _hint(self, shortcut: Shape, body: Shape) -> str:
        if self.closing and self.has_shortcut:
            return f"the shortcut must give the body's shape {fmt_shape(body)}"
        return ""

    def lower(self, g, inputs):
        rank = max(len(s) for s in g.input_shapes)
        # The batch axis leads every tensor: a tensor of fewer axes gets its
        # missing ones right after it, so that NumPy's alignment from the
        # last axis is kept.
        aligned = [x if len(s) == rank else g.op("Unsqueeze", [x, g.const(list(range(1, 1 + rank - len(s))))])
                   for x, s in zip(inputs, g.input_shapes)]
        out = aligned[0]
        for x in aligned[1:]:
            out = g.op(self.op, [out, x])
        return out


@register
class Add(_Elementwise):
    kind = "add"
    closes = "residual"
    doc = "element-wise sum, NumPy broadcasting ([C, 1, 1] against [C, H, W])"
    op = "Add"

    def lower(self, g, inputs):
        if len(inputs) > 2 and all(s == g.input_shapes[0] for s in g.input_shapes):
            return g.op("Sum", inputs)
        return super().lower(g, inputs)

    def _hint(self, shortcut: Shape, body: Shape) -> str:
        if self.closing and self.has_shortcut or len(shortcut) != 3 or len(body) != 3:
            return super()._hint(shortcut, body)
        strides = [_projection_stride(shortcut[i], body[i]) for i in (1, 2)]
        if None in strides:
            if body[1:] == (1, 1) and self.closing:
                return ("the body ends at 1×1: to scale or shift each channel, use mul(a, s) or add(a, s) "
                        "outside a residual block (they broadcast)")
            if body[1:] == (1, 1):
                return (f"a [C, 1, 1] tensor broadcasts over a map of the same C: give it {shortcut[0]} channels, "
                        f"e.g. -> conv({shortcut[0]}, k=1)")
            return ""
        (sh, fh), (sw, fw) = strides  # type: ignore[misc]
        stride = "" if (sh, sw) == (1, 1) else f", s={sh}" if sh == sw else f", s=[{sh}, {sw}]"
        conv = f"conv({body[0]}, k=1{stride}" + (", round=floor" if fh or fw else "") + ", bias=false)"
        if self.closing:
            return f"add a projection shortcut: shortcut {{ {conv} -> batchnorm }}"
        return f"project one side first, e.g. -> {conv}"


@register
class Mul(_Elementwise):
    kind = "mul"
    doc = "element-wise product, NumPy broadcasting ([C, 1, 1] against [C, H, W])"
    op = "Mul"
    offered = False  # a gate, not a way to join a skip connection


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
                                if self.closing else _size_hint(first, other))
            if len(first) == 2 and other[0] != first[0]:
                raise UserError(f"needs sequences of equal length, got {fmt_shape(first)} and {fmt_shape(other)}")
        if len(first) == 2:
            return (first[0], sum(s[1] for s in inputs))
        return (sum(s[0] for s in inputs), *first[1:])

    def lower(self, g, inputs):
        return g.op("Concat", inputs, axis=2 if len(g.input_shapes[0]) == 2 else 1)


def _size_hint(a: Shape, b: Shape) -> str:
    """How to make two maps of different sizes joinable: resized where one
    is a whole multiple of the other, else a centre crop of the larger (as
    U-Net's skip connections) where one is larger both ways."""
    resize = "resize one side first (pooling, upsample or upconv) so that H and W agree"
    big, small = (a, b) if a[1] >= b[1] else (b, a)
    if big[1] < small[1] or big[2] < small[2]:
        return resize
    if big[1] % small[1] == 0 and big[2] % small[2] == 0 and big[1] // small[1] == big[2] // small[2]:
        return resize
    return ("crop the larger map to the smaller one's size, as U-Net's skip connections do "
            "(e1 -> crop(like=u)), or resize one side (pooling, upsample or upconv)")


def merge_kinds() -> list[str]:
    """The registered merges, in registry order: what hints offer."""
    return [kind for kind, cls in REGISTRY.items() if cls.inputs is None and getattr(cls, "offered", False)]


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

"""Cutting tensors: `chunk` and `split` (channels into named pieces) and
`crop` (a centre crop to another tensor's height and width).

    a, b = x -> chunk(2)          # [C, H, W] → two [C/2, H, W]
    a, b = x -> split([16, 48])   # [64, H, W] → [16, H, W] and [48, H, W]
    e1 -> crop(like=u)            # [C, H, W] → [C, h, w], u being [·, h, w]

Pieces are cut along the axis `concat` joins (channels of images, features
of vectors and sequences), so `concat(a, b)` undoes `a, b = x -> chunk(2)`.
A layer that gives pieces is one node per piece (`pieces`, `piece`), each a
Slice. `crop` keeps rows and columns from ⌊(H - h)/2⌋ and ⌊(W - w)/2⌋ on:
an odd surplus leaves its extra row (column) at the end, as torchvision's
`center_crop` does for U-Net's even surpluses. It reads `like` for its size
only: `like`'s values never reach the output, so it gets no gradient.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..diagnostics import UserError, value_text
from .base import MAX_INT, ArgType, Args, Int, Layer, P, Shape, fmt_shape, register
from .merge import Merge

_AXIS_NAMES = {3: "channels", 2: "features", 1: "features"}


def piece_axis(shape: Shape) -> int:
    """The axis pieces are cut along (without the batch): concat's axis."""
    return 1 if len(shape) == 2 else 0


class Sizes(ArgType):
    """A list of two or more positive integers: `[16, 48]`."""

    description = "a list of two or more positive integers"

    def convert(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or len(value) < 2:
            raise self._fail(value, "e.g. split([16, 48]); for equal pieces, chunk(n)")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_INT:
                raise UserError(f"expected {self.description}, got {value_text(value, quote_words=True)}")
        return tuple(value)


class _Pieces(Layer):
    """A layer giving several tensors; each node computes one of them."""

    family = "shape"
    gives_pieces: ClassVar[bool] = True

    def __init__(self, args: Args, piece: int = 0):
        super().__init__(args)
        self.piece = piece

    @classmethod
    def pieces(cls, args: Args) -> int:
        """How many tensors the layer gives with these arguments."""
        raise NotImplementedError

    def sizes(self, total: int, what: str) -> tuple[int, ...]:
        raise NotImplementedError

    def infer(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        axis = piece_axis(shape)
        sizes = self.sizes(shape[axis], _AXIS_NAMES[len(shape)])
        out = list(shape)
        out[axis] = sizes[self.piece]
        return tuple(out)

    def lower(self, g, inputs):
        shape = g.input_shapes[0]
        axis = piece_axis(shape)
        sizes = self.sizes(shape[axis], _AXIS_NAMES[len(shape)])
        start = sum(sizes[: self.piece])
        return g.op("Slice", [inputs[0], g.const([start]), g.const([start + sizes[self.piece]]),
                              g.const([axis + 1])])

    def describe(self) -> str:
        return f"{super().describe()}: piece {self.piece + 1}"


@register
class Chunk(_Pieces):
    kind = "chunk"
    doc = "equal pieces of the channels (features), each a named tensor: a, b = x -> chunk(2)"
    signature = (P("pieces", Int(2), doc="how many equal pieces"),)

    @classmethod
    def pieces(cls, args: Args) -> int:
        return args.pieces

    def sizes(self, total: int, what: str) -> tuple[int, ...]:
        n = self.a.pieces
        if total % n:
            raise UserError(f"cannot cut {total} {what} into {n} equal pieces ({total}/{n} is not whole)",
                            f"split([...]) takes sizes that add up to {total}")
        return (total // n,) * n


@register
class Split(_Pieces):
    kind = "split"
    doc = "pieces of the channels (features) of the given sizes: a, b = x -> split([16, 48])"
    signature = (P("sizes", Sizes(), doc="the pieces' sizes, adding up to the channels"),)

    @classmethod
    def pieces(cls, args: Args) -> int:
        return len(args.sizes)

    def sizes(self, total: int, what: str) -> tuple[int, ...]:
        sizes = self.a.sizes
        if sum(sizes) != total:
            written = " + ".join(str(s) for s in sizes)
            raise UserError(f"sizes {written} = {sum(sizes)}, but the input has {total} {what}",
                            f"the sizes must add up to {total}")
        return sizes


@register
class Crop(Merge):
    kind = "crop"
    family = "shape"
    doc = "centre crop of height and width to those of another tensor: e1 -> crop(like=u)"
    offered = False
    tensor_keywords = ("like",)  # keyword arguments that name tensors, read after the cropped one
    reads_chain_alone = True

    @classmethod
    def sources_error(cls, data: int, named: set[str]) -> tuple[str, str] | None:
        if "like" not in named:
            return ("crop needs like=<tensor>, the tensor whose height and width it crops to",
                    "e.g. e1 -> crop(like=u), or crop(e1, like=u)")
        if data != 1:
            return (f"crop cuts one tensor, got {data}", "e.g. e1 -> crop(like=u), or crop(e1, like=u)")
        return None

    def infer(self, inputs: list[Shape]) -> Shape:
        data, like = inputs
        if len(data) != 3 or len(like) != 3:
            raise UserError(f"crops images [C, H, W] to the size of another, got {fmt_shape(data)} and "
                            f"like {fmt_shape(like)}")
        if data[1] < like[1] or data[2] < like[2]:
            raise UserError(f"cannot crop {data[1]}×{data[2]} to {like[1]}×{like[2]}: the size it crops to "
                            f"is larger ({fmt_shape(data)}, like {fmt_shape(like)})",
                            "crop the larger tensor to the smaller one")
        return (data[0], like[1], like[2])

    def lower(self, g, inputs):
        (_, h, w), (_, th, tw) = g.input_shapes[0], g.output_shape
        top, left = (h - th) // 2, (w - tw) // 2
        return g.op("Slice", [inputs[0], g.const([top, left]), g.const([top + th, left + tw]), g.const([2, 3])])

    def receptive_field(self, fields, inputs, output):
        return fields[0]  # `like` gives only its size


def gives_pieces(cls: type[Layer]) -> bool:
    """Whether a layer kind gives several tensors (one node per piece)."""
    return bool(getattr(cls, "gives_pieces", False))

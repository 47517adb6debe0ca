"""Gradient rules for ops that move, select or reduce elements."""

from __future__ import annotations

import numpy as np
import onnx

from .context import GradContext, NotDifferentiable

Grads = list[str | None]


def _constant(ctx: GradContext, node: onnx.NodeProto, index: int) -> np.ndarray | None:
    """The value of an optional constant input (axes, starts...), None if absent."""
    if len(node.input) <= index or not node.input[index]:
        return None
    value = ctx.value(node.input[index])
    if value is None:
        raise NotDifferentiable(f"the gradient needs input {index} ('{node.input[index]}') to be a constant")
    return value


def to_input_shape(ctx: GradContext, node: onnx.NodeProto, g: str) -> str:
    """Reshape, Flatten, Squeeze, Unsqueeze only relabel the elements."""
    return ctx.reshape_like(g, node.input[0])


def transpose(ctx: GradContext, node: onnx.NodeProto, g: str) -> str:
    perm = ctx.attr(node, "perm") or list(reversed(range(ctx.rank(node.input[0]))))
    return ctx.op("Transpose", [g], perm=[int(i) for i in np.argsort(perm)])


def concat(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """Each input gets its slice of g along the axis."""
    if len(node.input) == 1:
        return [grads[0]]
    rank = ctx.rank(node.input[0])
    axis = ctx.attr(node, "axis") % rank
    sizes = [ctx.shape(x)[axis] for x in node.input]
    if not all(isinstance(s, int) for s in sizes):
        raise NotDifferentiable(f"the gradient needs static sizes along axis {axis}")
    return ctx.op("Split", [grads[0], ctx.ints(sizes)], outputs=len(node.input), axis=axis)


def split(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """The output gradients side by side, zeros for the outputs not used."""
    parts = [g if g is not None else ctx.zeros_like(y) for g, y in zip(grads, node.output)]
    dx = ctx.op("Concat", [*parts], axis=ctx.attr(node, "axis", 0))
    return [dx] + [None] * (len(node.input) - 1)


def _slice_range(start: int, end: int, step: int, dim: int) -> range:
    """The elements Slice takes along one axis, with ONNX's clamping."""
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        return range(min(max(start, 0), dim), min(max(end, 0), dim), step)
    return range(min(max(start, 0), dim - 1), min(max(end, -1), dim - 1), step)


def slice_(ctx: GradContext, node: onnx.NodeProto, g: str) -> str:
    """g is padded back with zeros where step is 1, and spread by a 0/1
    selection matrix where it is not."""
    x = node.input[0]
    shape, rank = ctx.shape(x), ctx.rank(x)
    starts, ends = _constant(ctx, node, 1), _constant(ctx, node, 2)
    axes = _constant(ctx, node, 3)
    axes = range(len(starts)) if axes is None else [int(a) % rank for a in axes]
    steps = _constant(ctx, node, 4)
    steps = [1] * len(starts) if steps is None else steps
    pads = [0] * (2 * rank)
    for axis, start, end, step in zip(axes, starts, ends, steps):
        dim = shape[axis]
        if not isinstance(dim, int):
            raise NotDifferentiable(f"the gradient needs a static size on axis {axis}")
        taken = _slice_range(int(start), int(end), int(step), dim)
        if step == 1:
            pads[axis], pads[rank + axis] = taken.start, dim - max(taken.stop, taken.start)
        else:
            select = np.zeros((len(taken), dim))
            select[np.arange(len(taken)), list(taken)] = 1.0
            g = along_axis(ctx, g, select, axis)
    return ctx.op("Pad", [g, ctx.ints(pads)]) if any(pads) else g


def pad(ctx: GradContext, node: onnx.NodeProto, g: str) -> str:
    """Constant padding: dx = g without the padded border."""
    x = node.input[0]
    rank = ctx.rank(x)
    pads = [int(p) for p in _constant(ctx, node, 1)]
    if ctx.attr(node, "mode", "constant") != "constant" or min(pads) < 0:
        raise NotDifferentiable("the gradient needs mode=constant and pads ≥ 0")
    axes = _constant(ctx, node, 3)
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    begin, end = pads[:len(axes)], pads[len(axes):]
    ends = [-e if e > 0 else np.iinfo(np.int64).max for e in end]  # [b, size - e) along each axis
    return ctx.op("Slice", [g, ctx.ints(begin), ctx.ints(ends), ctx.ints(axes)])


def along_axis(ctx: GradContext, g: str, matrix: np.ndarray, axis: int) -> str:
    """Contract axis `axis` of g (size m) with `matrix` [m, n]: the result has size n there."""
    rank = ctx.rank(g)
    if axis == rank - 1:
        return ctx.op("MatMul", [g, ctx.const(matrix)])
    swap = list(range(rank))
    swap[axis], swap[-1] = swap[-1], swap[axis]
    moved = ctx.op("MatMul", [ctx.op("Transpose", [g], perm=swap), ctx.const(matrix)])
    return ctx.op("Transpose", [moved], perm=swap)


def gather(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """Each gathered slice of g is added back at its index (ScatterND with
    reduction=add on the gathered axis moved to the front)."""
    (data, indices), g = node.input, grads[0]
    rank, index_rank = ctx.rank(data), ctx.rank(indices)
    axis = ctx.attr(node, "axis", 0) % rank
    # g: [pre (axis axes), indices..., post]; ScatterND wants [indices..., pre, post]
    front = [*range(axis, axis + index_rank), *range(axis), *range(axis + index_rank, ctx.rank(g))]
    if front != sorted(front):
        g = ctx.op("Transpose", [g], perm=front)
    to_front = [axis, *range(axis), *range(axis + 1, rank)]
    shape = ctx.shape(data)
    moved = [shape[i] for i in to_front]
    moved_shape = ctx.ints(moved) if all(isinstance(d, int) for d in moved) \
        else ctx.op("Gather", [ctx.op("Shape", [data]), ctx.ints(to_front)])
    zeros = ctx.zeros(moved_shape, moved)
    where = ctx.op("Unsqueeze", [_non_negative(ctx, indices, ctx.shape(data)[axis]), ctx.ints([-1])])
    summed = ctx.op("ScatterND", [zeros, where, g], reduction="add")
    back = [*range(1, axis + 1), 0, *range(axis + 1, rank)]
    return [ctx.op("Transpose", [summed], perm=back) if axis else summed, None]


def _non_negative(ctx: GradContext, indices: str, dim: int | str | None) -> str:
    """Gather counts negative indices from the end; ScatterND is given them counted from 0."""
    known = ctx.value(indices)
    if known is not None and (known >= 0).all():
        return indices
    if not isinstance(dim, int):
        raise NotDifferentiable(f"indices '{indices}' that may be negative need a static axis size")
    negative = ctx.op("Less", [indices, ctx.const(0, ctx.elem_type(indices))])
    shifted = ctx.op("Add", [indices, ctx.const(dim, ctx.elem_type(indices))])
    return ctx.op("Where", [negative, shifted, indices])


def _reduced_axes(ctx: GradContext, node: onnx.NodeProto) -> list[int] | None:
    """The axes a Reduce* node reduces (opset 18: the second input); None if it is a no-op."""
    rank = ctx.rank(node.input[0])
    axes = _constant(ctx, node, 1)
    if axes is None:
        axes = ctx.attr(node, "axes")  # before opset 18 (ReduceSum: 13)
    if axes is None or len(axes) == 0:
        return None if ctx.attr(node, "noop_with_empty_axes", 0) else list(range(rank))
    return sorted(int(a) % rank for a in axes)


def _kept(ctx: GradContext, node: onnx.NodeProto, t: str, axes: list[int]) -> str:
    """A reduced tensor with its reduced axes back as size 1 (keepdims=1 form)."""
    return t if ctx.attr(node, "keepdims", 1) else ctx.op("Unsqueeze", [t, ctx.ints(axes)])


def reduce_sum(ctx: GradContext, node: onnx.NodeProto, g: str) -> str:
    axes = _reduced_axes(ctx, node)
    return g if axes is None else ctx.expand_like(_kept(ctx, node, g, axes), node.input[0])


def reduce_mean(ctx: GradContext, node: onnx.NodeProto, g: str) -> str:
    axes = _reduced_axes(ctx, node)
    if axes is None:
        return g
    spread = ctx.expand_like(_kept(ctx, node, g, axes), node.input[0])
    return ctx.op("Mul", [spread, _inverse_count(ctx, node.input[0], node.output[0], axes)])


def _inverse_count(ctx: GradContext, x: str, y: str, axes: list[int]) -> str:
    """1 / (number of elements averaged): a constant, or Size(y)/Size(x) at run time."""
    sizes = [ctx.shape(x)[a] for a in axes]
    if all(isinstance(s, int) for s in sizes):
        return ctx.const(1.0 / float(np.prod(sizes)))
    size = lambda t: ctx.op("Cast", [ctx.op("Size", [t])], to=ctx.float_type)  # noqa: E731
    return ctx.op("Div", [size(y), size(x)])


def reduce_max(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    axes = _reduced_axes(ctx, node)
    if axes is None:
        return [grads[0], None]
    y, g = (_kept(ctx, node, t, axes) for t in (node.output[0], grads[0]))
    return [_to_winners(ctx, node.input[0], y, g, axes), None]


def _to_winners(ctx: GradContext, x: str, y: str, g: str, axes: list[int]) -> str:
    """g to the elements equal to their max, shared equally among ties (as PyTorch's amax)."""
    wins = ctx.op("Cast", [ctx.op("Equal", [x, y])], to=ctx.float_type)
    count = ctx.op("ReduceSum", [wins, ctx.ints(axes)], keepdims=1)
    return ctx.op("Mul", [wins, ctx.op("Div", [g, count])])


def global_average_pool(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    x = node.input[0]
    spatial = list(range(2, ctx.rank(x)))
    return [ctx.op("Mul", [ctx.expand_like(grads[0], x), _inverse_count(ctx, x, node.output[0], spatial)])]


def global_max_pool(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    x = node.input[0]
    return [_to_winners(ctx, x, node.output[0], grads[0], list(range(2, ctx.rank(x))))]

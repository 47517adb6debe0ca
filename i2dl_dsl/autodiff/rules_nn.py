"""Gradient rules for matrix products, softmax and the cross-entropy loss."""

from __future__ import annotations

import numpy as np
import onnx

from .context import GradContext, NotDifferentiable

Grads = list[str | None]


def matmul(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """da = g·bᵀ, db = aᵀ·g over the last two axes; a 1-D operand is a
    matrix with a unit axis (as MatMul treats it), batch axes are summed by
    the driver where an operand was broadcast."""
    (a, b), g = node.input, grads[0]
    ra, rb = ctx.rank(a), ctx.rank(b)
    a2 = ctx.op("Unsqueeze", [a, ctx.ints([0])]) if ra == 1 else a
    b2 = ctx.op("Unsqueeze", [b, ctx.ints([1])]) if rb == 1 else b
    if ra == 1:
        g = ctx.op("Unsqueeze", [g, ctx.ints([-2 if rb > 1 else 0])])
    if rb == 1:
        g = ctx.op("Unsqueeze", [g, ctx.ints([-1])])
    da = ctx.op("MatMul", [g, _swap_last(ctx, b2)])
    db = ctx.op("MatMul", [_swap_last(ctx, a2), g])
    # drop the unit axes again: [..., 1, K] -> [..., K] and [..., K, 1] -> [..., K]
    da = ctx.op("Squeeze", [da, ctx.ints([-2])]) if ra == 1 else da
    db = ctx.op("Squeeze", [db, ctx.ints([-1])]) if rb == 1 else db
    return [da, db]


def _swap_last(ctx: GradContext, x: str) -> str:
    rank = ctx.rank(x)
    return ctx.op("Transpose", [x], perm=[*range(rank - 2), rank - 1, rank - 2])


def gemm(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """y = α·A'·B' + β·C with A' = A or Aᵀ, B' = B or Bᵀ. Each gradient is
    itself one Gemm: dA = α·g·B'ᵀ (or its transpose), dB = α·A'ᵀ·g (likewise)."""
    a, b, g = node.input[0], node.input[1], grads[0]
    alpha, beta = ctx.attr(node, "alpha", 1.0), ctx.attr(node, "beta", 1.0)
    ta, tb = ctx.attr(node, "transA", 0), ctx.attr(node, "transB", 0)
    scale = {"alpha": alpha} if alpha != 1.0 else {}
    da = ctx.op("Gemm", [b, g], transA=tb, transB=1, **scale) if ta \
        else ctx.op("Gemm", [g, b], transB=1 - tb, **scale)
    db = ctx.op("Gemm", [g, a], transA=1, transB=ta, **scale) if tb \
        else ctx.op("Gemm", [a, g], transA=1 - ta, **scale)
    dc = None
    if len(node.input) > 2 and node.input[2]:
        dc = g if beta == 1.0 else ctx.op("Mul", [g, ctx.const(beta)])
    return [da, db, dc][:len(node.input)]


def softmax(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """dx = y·(g - Σ_axis g·y)."""
    y, g = node.output[0], grads[0]
    axis = ctx.ints([ctx.attr(node, "axis", -1)])
    dot = ctx.op("ReduceSum", [ctx.op("Mul", [g, y]), axis], keepdims=1)
    return [ctx.op("Mul", [y, ctx.op("Sub", [g, dot])])]


def log_softmax(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """dx = g - softmax(x)·Σ_axis g, with softmax(x) = exp(y)."""
    y, g = node.output[0], grads[0]
    axis = ctx.ints([ctx.attr(node, "axis", -1)])
    total = ctx.op("ReduceSum", [g, axis], keepdims=1)
    return [ctx.op("Sub", [g, ctx.op("Mul", [ctx.op("Exp", [y]), total])])]


def softmax_cross_entropy(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """loss_i = -w_i·log softmax(scores)_i[label_i], with w_i the class
    weight of label_i (1 without weights; 0 where label_i = ignore_index),
    reduced by none, sum, or mean = Σ loss_i / Σ w_i. Then
    dscores_i = (softmax_i - onehot(label_i))·w_i·g_i (/ Σ w for mean), and the
    optional log_prob output adds its own log-softmax gradient. Class
    weights are constants: they get no gradient."""
    scores, labels = node.input[0], node.input[1]
    weights = _label_weights(ctx, node) if _weighted(ctx, node) else None
    per_item = _per_item_scale(ctx, node, grads[0], weights) if grads[0] is not None else None
    probs = ctx.op("Softmax", [scores], axis=1)
    dscores = None
    if per_item is not None:
        classes = ctx.shape(scores)[1]
        if not isinstance(classes, int):
            raise NotDifferentiable(f"the class axis of the scores must be static, found {classes}")
        onehot = ctx.op("OneHot", [labels, ctx.const(classes, onnx.TensorProto.INT64), ctx.const([0.0, 1.0])], axis=1)
        dscores = ctx.op("Mul", [ctx.op("Sub", [probs, onehot]), per_item])
    if len(grads) > 1 and grads[1] is not None:  # log_prob = log softmax(scores)
        total = ctx.op("ReduceSum", [grads[1], ctx.ints([1])], keepdims=1)
        from_log_prob = ctx.op("Sub", [grads[1], ctx.op("Mul", [probs, total])])
        dscores = from_log_prob if dscores is None else ctx.op("Add", [dscores, from_log_prob])
    return [dscores] + [None] * (len(node.input) - 1)


def _weighted(ctx: GradContext, node: onnx.NodeProto) -> bool:
    has_weights = len(node.input) > 2 and bool(node.input[2])
    return has_weights or ctx.attr(node, "ignore_index") is not None


def _label_weights(ctx: GradContext, node: onnx.NodeProto) -> str:
    """w_i: the class weight of each label, 0 for an ignored label."""
    labels, ignore = node.input[1], ctx.attr(node, "ignore_index")
    int_type = ctx.elem_type(labels)
    ignored = ctx.op("Equal", [labels, ctx.const(ignore, int_type)]) if ignore is not None else None
    if len(node.input) > 2 and node.input[2]:
        safe = ctx.op("Where", [ignored, ctx.const(0, int_type), labels]) if ignored else labels
        weights = ctx.op("Gather", [node.input[2], safe], axis=0)
    else:
        weights = ctx.op("ConstantOfShape", [ctx.shape_of(labels)], value=onnx.helper.make_tensor(
            "one", ctx.float_type, [1], [1.0]), shape=ctx.shape(labels))
    return ctx.op("Where", [ignored, ctx.const(0.0), weights]) if ignored else weights


def _per_item_scale(ctx: GradContext, node: onnx.NodeProto, g: str, weights: str | None) -> str:
    """w_i·g_i (or w_i·g/Σw, g/count for mean), shaped to broadcast over the class axis."""
    reduction = ctx.attr(node, "reduction", "mean")
    if reduction == "mean":
        labels = node.input[1]
        count = ctx.op("ReduceSum", [weights], keepdims=0) if weights else \
            ctx.op("Cast", [ctx.op("Size", [labels])], to=ctx.float_type)
        g = ctx.op("Div", [g, count])
    scale = ctx.op("Mul", [g, weights]) if weights else g
    if reduction == "none" or weights:  # per item: [N, d...] -> [N, 1, d...]
        return ctx.op("Unsqueeze", [scale, ctx.ints([1])])
    return scale


def batch_norm(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """Training mode, over all axes but the channels: x̂ = (x - μ_B)·s with
    s = 1/√(σ²_B + ε), y = γ·x̂ + β; dβ = Σ g, dγ = s·Σ g·(x - μ_B), and
    dx = γ·s·(g - mean(g) - x̂·mean(g·x̂)), rearranged into per-channel
    coefficients: dx = (a·g + c) + b·(x - μ_B), two per-channel affine maps
    and a sum. With momentum 0 the op's other outputs are μ_B and σ²_B
    themselves and are reused; otherwise they are running averages and the
    batch statistics are recomputed. Those outputs carry no gradient."""
    if not ctx.attr(node, "training_mode", 0):
        raise NotDifferentiable("the gradient is written for training_mode=1 (batch statistics)")
    if any(g is not None for g in grads[1:]):
        raise NotDifferentiable("the running-statistics outputs carry no gradient")
    x, scale, g = node.input[0], node.input[1], grads[0]
    if g is None:
        return [None] * len(node.input)
    rank = ctx.rank(x)
    axes = ctx.ints([0, *range(2, rank)])
    flat = ctx.ints([-1])
    reuse = ctx.attr(node, "momentum", 0.9) == 0 and len(node.output) == 3
    mean = node.output[1] if reuse else ctx.op("ReduceMean", [x, axes], keepdims=0)
    centred = _per_channel(ctx, x, None, ctx.op("Neg", [mean]))
    variance = node.output[2] if reuse else ctx.op("ReduceMean", [ctx.op("Mul", [centred, centred]), axes], keepdims=0)
    epsilon = ctx.const(ctx.attr(node, "epsilon", 1e-5))
    inv_std = ctx.op("Reciprocal", [ctx.op("Sqrt", [ctx.op("Add", [variance, epsilon])])])
    count = ctx.op("Div", [ctx.op("Cast", [ctx.op("Size", [x])], to=ctx.float_type),
                   ctx.op("Cast", [ctx.op("Size", [scale])], to=ctx.float_type)])
    sum_g = ctx.op("ReduceSum", [g, axes], keepdims=0)
    d_scale = ctx.op("Mul", [ctx.op("ReduceSum", [ctx.op("Mul", [g, centred]), axes], keepdims=0), inv_std])  # Σ g·x̂
    a = ctx.op("Mul", [scale, inv_std])  # γ·s
    # b = -γ·s·mean(g·x̂)·s
    b = ctx.op("Neg", [ctx.op("Div", [ctx.op("Mul", [ctx.op("Mul", [a, inv_std]), d_scale]), count])])
    c = ctx.op("Neg", [ctx.op("Div", [ctx.op("Mul", [a, sum_g]), count])])  # -γ·s·mean(g)
    dx = ctx.op("Add", [_per_channel(ctx, g, a, c), _per_channel(ctx, centred, b, None)])
    return [dx, ctx.op("Reshape", [d_scale, flat]), ctx.op("Reshape", [sum_g, flat])] + [None] * (len(node.input) - 3)


# Below this many positions per channel, onnxruntime's CPU BatchNormalization
# kernel, used as a plain per-channel affine map (mean 0, variance 1, ε 0),
# is 1.5-3× faster than a Mul or Add broadcasting a [1, C, 1, 1] vector
# (22 against 53 µs for [64, 64, 4, 4]); on 32×32 maps it is the slower.
_AFFINE_AS_BATCH_NORM = 1024


def _per_channel(ctx: GradContext, t: str, scale: str | None, shift: str | None) -> str:
    """scale·t + shift with per-channel [C] vectors (None: 1 or 0)."""
    shape = ctx.shape(t)
    channels = shape[1]
    positions = int(np.prod(shape[2:])) if all(isinstance(d, int) for d in shape[2:]) else None
    if positions is not None and positions < _AFFINE_AS_BATCH_NORM:
        ones, zeros = ctx.const(np.ones(channels)), ctx.const(np.zeros(channels))
        return ctx.op("BatchNormalization", [t, scale or ones, shift or zeros, zeros, ones], epsilon=0.0)
    per_channel = ctx.ints([1, channels] + [1] * (len(shape) - 2))
    if scale is not None:
        t = ctx.op("Mul", [t, ctx.op("Reshape", [scale, per_channel])])
    return ctx.op("Add", [t, ctx.op("Reshape", [shift, per_channel])]) if shift is not None else t


def layer_norm(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """Over the axes from `axis` on, per sample: x̂ = (x - μ)·s, s = 1/√(σ² + ε),
    y = γ·x̂ + β. With ĝ = γ·g: dx = s·(ĝ - mean ĝ - x̂·mean(ĝ·x̂)); dγ = g·x̂ and
    dβ = g, at the output's shape (the driver sums them to γ's and β's).
    μ and s are recomputed: the op's optional outputs are in its stash type,
    not necessarily the loss's."""
    if any(g is not None for g in grads[1:]):
        raise NotDifferentiable("the Mean and InvStdDev outputs carry no gradient")
    x, scale, g = node.input[0], node.input[1], grads[0]
    if g is None:
        return [None] * len(node.input)
    rank = ctx.rank(x)
    axis = ctx.attr(node, "axis", -1) % rank
    axes = ctx.ints(list(range(axis, rank)))
    centred = ctx.op("Sub", [x, ctx.op("ReduceMean", [x, axes], keepdims=1)])
    variance = ctx.op("ReduceMean", [ctx.op("Mul", [centred, centred]), axes], keepdims=1)
    epsilon = ctx.const(ctx.attr(node, "epsilon", 1e-5))
    inv_std = ctx.op("Reciprocal", [ctx.op("Sqrt", [ctx.op("Add", [variance, epsilon])])])
    normed = ctx.op("Mul", [centred, inv_std])
    scaled = ctx.op("Mul", [g, scale])
    mean_g = ctx.op("ReduceMean", [scaled, axes], keepdims=1)
    mean_gx = ctx.op("ReduceMean", [ctx.op("Mul", [scaled, normed]), axes], keepdims=1)
    inner = ctx.op("Sub", [ctx.op("Sub", [scaled, mean_g]), ctx.op("Mul", [normed, mean_gx])])
    dx = ctx.op("Mul", [inner, inv_std])
    d_bias = [g if node.input[2] else None] if len(node.input) > 2 else []
    return [dx, ctx.op("Mul", [g, normed]), *d_bias]

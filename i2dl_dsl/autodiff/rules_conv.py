"""Gradient rules for convolutions, pooling and resizing (any number of spatial axes).

A strided, padded convolution is a linear map; its transpose is the
ConvTranspose with the same geometry. When the forward op dropped input
rows (a stride that does not divide the padded size, or ceil_mode windows
that overhang), `_transposed_pads` finds the output_padding or extra end
padding that gives the transpose exactly the input's size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import onnx

from .context import GradContext, NotDifferentiable
from .rules_shape import along_axis

Grads = list[str | None]


@dataclass(frozen=True)
class Window:
    """The geometry of a sliding window along the spatial axes."""

    kernel: list[int]
    strides: list[int]
    dilations: list[int]
    begin: list[int]  # pads
    end: list[int]

    def span(self, axis: int) -> int:
        return self.dilations[axis] * (self.kernel[axis] - 1) + 1


def _window(ctx: GradContext, node: onnx.NodeProto, x: str, kernel: list[int]) -> Window:
    """The window of a Conv or pool node, auto_pad resolved to explicit pads."""
    r = len(kernel)
    strides = list(ctx.attr(node, "strides", [1] * r))
    dilations = list(ctx.attr(node, "dilations", [1] * r))
    pads = list(ctx.attr(node, "pads", [0] * 2 * r))
    auto_pad = ctx.attr(node, "auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        for i, n in enumerate(_spatial(ctx, x)):
            out = -(-n // strides[i])
            total = max(0, (out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - n)
            small, large = total // 2, total - total // 2
            pads[i], pads[r + i] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        pads = [0] * 2 * r
    return Window(kernel, strides, dilations, pads[:r], pads[r:])


def _transposed_pads(w: Window, size: list[int], out: list[int]) -> dict:
    """Attributes of the ConvTranspose that maps `out` back onto exactly `size`:
    rows the forward op never read come back as output_padding (zeros), and
    windows overhanging the padded input are cut off with extra end padding."""
    end, extra = list(w.end), []
    for i, (n, m) in enumerate(zip(size, out)):
        covered = w.strides[i] * (m - 1) + w.span(i)
        missing = n + w.begin[i] + w.end[i] - covered
        extra.append(max(missing, 0))
        end[i] += max(-missing, 0)
    return dict(kernel_shape=w.kernel, strides=w.strides, dilations=w.dilations, pads=w.begin + end,
                output_padding=extra if any(extra) else None)


def _spatial(ctx: GradContext, t: str) -> list[int]:
    """The sizes of the spatial axes, which the rules here need static."""
    shape = ctx.shape(t)
    if shape is None or not all(isinstance(d, int) for d in shape[1:]):
        _fail(t)
    return list(shape[2:])


def _fail(t: str) -> None:
    raise NotDifferentiable(f"the channel and spatial axes of '{t}' must be static")


def _bias_grad(ctx: GradContext, g: str) -> str:
    return ctx.op("ReduceSum", [g, ctx.ints([0, *range(2, ctx.rank(g))])], keepdims=0)


def conv(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """dx = ConvTranspose(g, W); dW = a correlation of x with g over the batch; db = Σ g."""
    x, weight, g = node.input[0], node.input[1], grads[0]
    kernel = list(ctx.attr(node, "kernel_shape") or ctx.static_shape(weight)[2:])
    w, group = _window(ctx, node, x, kernel), ctx.attr(node, "group", 1)
    if _flipped_conv_is_faster(ctx, w, group, x):
        dx = _input_grad_as_conv(ctx, g, weight, w)
    else:
        dx = ctx.op("ConvTranspose", [g, weight], group=group,
                    **_transposed_pads(w, _spatial(ctx, x), _spatial(ctx, node.output[0])))
    dw = _weight_grad(ctx, x, g, w, group)
    return [dx, dw, _bias_grad(ctx, g) if len(node.input) > 2 and node.input[2] else None]


def _flipped_conv_is_faster(ctx: GradContext, w: Window, group: int, x: str) -> bool:
    """At stride 1, ConvTranspose equals a Conv with the kernel flipped and
    its two channel axes swapped. With onnxruntime's blocked CPU kernels
    (`ctx.blocked_convs`) that Conv is the faster everywhere we measured
    (0.86 against 2.0 ms for 32 channels, 3×3 on 8×8 maps at batch 64; 0.52
    against 1.6 ms on 4×4). With the plain Conv it is the faster only for
    small kernels on maps of 8×8 and more (2.8 ms against 4.8 ms on 32×32
    maps, 0.93 against 1.12 ms on 8×8), and the slower elsewhere."""
    exact = (group == 1 and set(w.strides) == {1} and set(w.dilations) == {1}
             and all(p <= k - 1 for p, k in zip(w.begin + w.end, w.kernel + w.kernel)))
    if _blocked(ctx, w):
        return exact
    return exact and int(np.prod(w.kernel)) < LARGE_KERNEL_TAPS and min(_spatial(ctx, x)) >= 8


def _input_grad_as_conv(ctx: GradContext, g: str, weight: str, w: Window) -> str:
    """dx = Conv(g, W flipped in space, [O, C] swapped to [C, O]), padded by
    k - 1 - p on each side: the adjoint of a stride-1 convolution."""
    rank = len(w.kernel)
    # Flipped, then swapped: lowering/nchwc.py reads the swap back off this
    # Transpose instead of undoing it with another.
    swapped = ctx.op("Transpose", [_flip_taps(ctx, weight)], perm=[1, 0, *range(2, 2 + rank)])
    pads = [k - 1 - p for k, p in zip(w.kernel, w.begin)] + [k - 1 - p for k, p in zip(w.kernel, w.end)]
    return ctx.op("Conv", [g, swapped], kernel_shape=w.kernel, pads=pads)


def _flip_taps(ctx: GradContext, weight: str) -> str:
    """The kernel reversed along every spatial axis: its taps, flattened, in
    reverse order, as a MatMul with the reversal permutation. onnxruntime
    runs a Slice with negative steps element by element: 8.0 against 1.7 ms
    for [512, 512, 3, 3], 98 against 76 µs for [16, 120, 5, 5]. Each output
    is one weight times 1 plus zeros, so the result is exact (a weight that
    is not finite spreads NaN over its filter, where the step is lost anyway)."""
    shape = ctx.static_shape(weight)
    taps = int(np.prod(shape[2:]))
    reversal = ctx.const(np.eye(taps)[::-1], ctx.elem_type(weight))
    rows = ctx.op("Reshape", [weight, ctx.ints([-1, taps])])
    return ctx.op("Reshape", [ctx.op("MatMul", [rows, reversal]), ctx.ints(list(shape))])


def conv_transpose(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """ConvTranspose is the transpose of Conv with its geometry:
    dx = Conv(g, W); dW = the Conv weight gradient with g and x swapped; db = Σ g."""
    x, weight, g = node.input[0], node.input[1], grads[0]
    if ctx.attr(node, "output_shape") is not None or ctx.attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise NotDifferentiable("the gradient needs explicit pads (no output_shape, no SAME auto_pad)")
    kernel = list(ctx.attr(node, "kernel_shape") or ctx.static_shape(weight)[2:])
    w, group = _window(ctx, node, x, kernel), ctx.attr(node, "group", 1)
    dx = ctx.op("Conv", [g, weight], kernel_shape=w.kernel, strides=w.strides, dilations=w.dilations,
                pads=w.begin + w.end, group=group)
    dx = _crop(ctx, dx, _spatial(ctx, x))  # output_padding ≥ stride leaves extra rows
    dw = _weight_grad(ctx, g, x, w, group)
    return [dx, dw, _bias_grad(ctx, g) if len(node.input) > 2 and node.input[2] else None]


# Large kernels (LeNet's and AlexNet's 5×5, the 7×7 and 11×11 stems) take
# the weight gradient as one Conv; small ones as im2col and a MatMul. Both
# are exact; which is faster on onnxruntime's CPU kernels depends on the
# number of taps (see `_weight_grad_as_conv`).
LARGE_KERNEL_TAPS = 16


def _weight_grad(ctx: GradContext, x: str, gy: str, w: Window, group: int) -> str:
    if group == 1 and _as_conv_is_faster(ctx, x, gy, w):
        return _weight_grad_as_conv(ctx, x, gy, w)
    if group > 1 and group == ctx.shape(x)[1] == ctx.shape(gy)[1]:
        return _weight_grad_depthwise(ctx, x, gy, w)
    return _weight_grad_im2col(ctx, x, gy, w, group)


def _weight_grad_depthwise(ctx: GradContext, x: str, gy: str, w: Window) -> str:
    """Depthwise (one filter per channel): dW[c, 0, κ] = Σ_n Σ_p gy[n, c, p] ·
    x[n, c, p·s + κ·d] is one grouped Conv: of x as one sample with the C·N
    channels (c, n), with gy as C kernels of N channels each, group C,
    strides and dilations swapped. im2col slices x once per tap and runs C
    tiny products: on 7×7 kernels the Conv is 2.6-3.4× faster (1.9 against
    5.0 ms for [32, 32, 8, 8], 1.0 against 3.5 ms for [32, 64, 4, 4]; 49
    against 94 ms for [64, 96, 14, 14]; onnxruntime CPU, one thread)."""
    rank = len(w.kernel)
    swap = [1, 0, *range(2, 2 + rank)]
    channels = ctx.shape(x)[1]
    as_one = ctx.op("Reshape", [ctx.op("Transpose", [x], perm=swap), ctx.ints([1, -1, *_spatial(ctx, x)])])
    kernels = ctx.op("Transpose", [gy], perm=swap)  # [C, N, out...]
    as_conv = ctx.op("Conv", [as_one, kernels], group=channels, strides=w.dilations, dilations=w.strides,
                     pads=w.begin + w.end)  # [1, C, κ...]
    return ctx.op("Reshape", [_crop(ctx, as_conv, w.kernel), ctx.ints([channels, 1, *w.kernel])])


# The weight gradient as a Conv has gy's map as its kernel; onnxruntime's
# blocked kernels lose to im2col once that map is larger than 32×32.
LARGEST_BLOCKED_GRADIENT_MAP = 32 * 32


def _as_conv_is_faster(ctx: GradContext, x: str, gy: str, w: Window) -> bool:
    """With onnxruntime's blocked CPU kernels, the weight gradient as a Conv
    beats im2col for every kernel but 1×1 (a plain MatMul), as long as x has
    more than one channel, which is the batch of that Conv, and gy's map is
    at most 32×32 (measured at batch 64, 3×3 kernels, C→C channels: 0.64
    against 1.18 ms for 16 on 8×8 maps, 1.5 against 3.6 ms for 32 on 8×8,
    9.5 against 12.6 ms for 16 on 32×32, level for 64 on 32×32; beyond,
    im2col wins: 17 against 13 ms for 3→16 on 64×64, 198 against 35 ms for
    a 7×7 stem on 112×112 maps at batch 8). With one channel it gains
    nothing (0.32 against 0.31 ms, 3×3 on 8×8). With the plain Conv it pays
    off only for many taps."""
    taps = int(np.prod(w.kernel))
    if _blocked(ctx, w):
        positions = int(np.prod(_spatial(ctx, gy)))
        return taps > 1 and ctx.shape(x)[1] != 1 and positions <= LARGEST_BLOCKED_GRADIENT_MAP
    return taps >= LARGE_KERNEL_TAPS


def _blocked(ctx: GradContext, w: Window) -> bool:
    """The gradient's convolutions will run on the blocked kernels, which
    lowering/nchwc.py uses for 2-D convolutions only."""
    return ctx.blocked_convs and len(w.kernel) == 2


def _weight_grad_as_conv(ctx: GradContext, x: str, gy: str, w: Window) -> str:
    """dW[o, c, κ] = Σ_n Σ_p gy[n, o, p] · x[n, c, p·s + κ·d] is itself a
    convolution: of xᵀ (batch c, channels n) with gyᵀ as the kernel (o
    filters over n channels), strides and dilations swapped. onnxruntime
    runs it as an im2col with one output column per kernel tap, which pays
    off when the taps are many (measured: 0.24 ms against 2.2 ms for
    LeNet-5's C5 at batch 64, but 4.4 ms against 1.9 ms for a 3×3 kernel on
    8×8 maps). Rows the forward op never read make the result larger than
    the kernel; they are cut off."""
    spatial = list(range(2, 2 + len(w.kernel)))
    swap = [1, 0, *spatial]
    as_conv = ctx.op("Conv", [ctx.op("Transpose", [x], perm=swap), ctx.op("Transpose", [gy], perm=swap)],
                     strides=w.dilations, dilations=w.strides, pads=w.begin + w.end)  # [C, O, κ...]
    return ctx.op("Transpose", [_crop(ctx, as_conv, w.kernel)], perm=swap)


def _weight_grad_im2col(ctx: GradContext, x: str, gy: str, w: Window, group: int) -> str:
    """dW[o, c, κ] = Σ_n Σ_p gy[n, o, p] · cols[n, c, κ, p], where cols holds, for
    every kernel tap κ, the strided slice of the padded x that the tap reads
    (im2col). One batched MatMul per sample does the sums: much faster than
    correlating x with gy as a kernel as large as the output."""
    out = _spatial(ctx, gy)
    channels, filters = ctx.shape(x)[1], ctx.shape(gy)[1]
    axes = list(range(2, 2 + len(w.kernel)))
    padded = x
    if any(w.begin) or any(w.end):
        padded = ctx.op("Pad", [x, ctx.ints([0, 0, *w.begin, 0, 0, *w.end])])
    taps = []
    for offset in itertools.product(*(range(k) for k in w.kernel)):
        starts = [o * d for o, d in zip(offset, w.dilations)]
        ends = [s + (m - 1) * st + 1 for s, m, st in zip(starts, out, w.strides)]
        tap = ctx.op("Slice", [padded, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes), ctx.ints(w.strides)])
        taps.append(ctx.op("Unsqueeze", [tap, ctx.ints([2])]))  # [N, C, 1, out...]
    stacked = taps[0] if len(taps) == 1 else ctx.op("Concat", [*taps], axis=2)  # [N, C, K, out...]
    positions, per_group = int(np.prod(out)), channels // group
    cols = ctx.op("Reshape", [stacked, ctx.ints([-1, group, per_group * len(taps), positions])])  # [N, G, cK, P]
    grouped = ctx.op("Reshape", [gy, ctx.ints([-1, group, filters // group, positions])])  # [N, G, o, P]
    products = ctx.op("MatMul", [cols, ctx.op("Transpose", [grouped], perm=[0, 1, 3, 2])])  # [N, G, cK, o]
    summed = ctx.op("ReduceSum", [products, ctx.ints([0])], keepdims=0)  # [G, cK, o]
    return ctx.op("Reshape", [ctx.op("Transpose", [summed], perm=[0, 2, 1]), ctx.ints([filters, per_group, *w.kernel])])


def _crop(ctx: GradContext, t: str, sizes: list[int]) -> str:
    """The first `sizes` elements of each spatial axis."""
    have = ctx.shape(t)[2:]
    if list(have) == list(sizes):
        return t
    axes = list(range(2, 2 + len(sizes)))
    return ctx.op("Slice", [t, ctx.ints([0] * len(sizes)), ctx.ints(sizes), ctx.ints(axes)])


def _pool_window(ctx: GradContext, node: onnx.NodeProto) -> Window:
    return _window(ctx, node, node.input[0], list(ctx.attr(node, "kernel_shape")))


# Maps at least this large (both axes) in tiling max pools find their argmax
# without MaxPool's Indices; on smaller ones the Indices are the faster.
ARGMAX_BY_POSITION_FROM = 8


def max_pool(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """dx = g added at the flat argmax positions MaxPool reports in Indices
    (overlapping windows add up). A node without Indices is given them,
    unless its windows tile a map large enough to find the argmax faster
    without them (`_max_pool_grad_by_position`)."""
    x, g = node.input[0], grads[0]
    if ctx.attr(node, "storage_order", 0) != 0:
        raise NotDifferentiable("the gradient needs storage_order=0")
    w = _pool_window(ctx, node)
    if len(node.output) < 2 and _tiles(ctx, w, x) and min(_spatial(ctx, x)) >= ARGMAX_BY_POSITION_FROM:
        return [_max_pool_grad_by_position(ctx, node, w, x, g)]
    if len(node.output) < 2:
        indices = ctx.fresh(f"{node.output[0]}/indices")
        node.output.append(indices)  # the forward node now also reports its argmax
        ctx.types[indices] = onnx.helper.make_tensor_type_proto(onnx.TensorProto.INT64, ctx.shape(node.output[0]))
    flat = ctx.ints([-1])
    zeros = ctx.op("Reshape", [ctx.zeros_like(x), flat])
    # Windows that do not overlap never pick one position twice: a plain
    # scatter, which onnxruntime runs faster than one that adds (155 against
    # 260 µs for [64, 32, 8, 8] in 2×2 windows).
    apart = all(s >= w.span(i) for i, s in enumerate(w.strides))
    summed = ctx.op("ScatterElements", [zeros, ctx.op("Reshape", [node.output[1], flat]), ctx.op("Reshape", [g, flat])],
                    axis=0, reduction="none" if apart else "add")
    return [ctx.reshape_like(summed, x)]


def _tiles(ctx: GradContext, w: Window, x: str) -> bool:
    """A 2-D float32 pool whose windows tile the map exactly: stride = kernel,
    no padding or dilation, sizes divisible by the kernel. Its gradient can
    spread values over the windows with a nearest Resize (`_spread`;
    onnxruntime's CPU Resize has no float64 kernel)."""
    sizes = _spatial(ctx, x)
    return (len(sizes) == 2 and w.strides == w.kernel and set(w.dilations) == {1} and not any(w.begin + w.end)
            and all(n % k == 0 for n, k in zip(sizes, w.kernel)) and ctx.elem_type(x) == onnx.TensorProto.FLOAT)


def _spread(ctx: GradContext, t: str, w: Window) -> str:
    """Each value of t repeated over its window, for windows that tile."""
    return ctx.op("Resize", [t, "", ctx.const(np.array([1, 1, *w.kernel]), onnx.TensorProto.FLOAT)], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _max_pool_grad_by_position(ctx: GradContext, node: onnx.NodeProto, w: Window, x: str, g: str) -> str:
    """The argmax of each window found from the pooled maximum: the positions
    where x equals it, ranked so that the earliest ranks highest, and a
    MaxPool of the ranks picks the first, as PyTorch and MaxPool's Indices
    do on ties; g is scattered there. onnxruntime's MaxPool is 20× slower
    when it also reports Indices, and on maps of 8×8 and more this is the
    faster gradient, the forward pool included (batch 64: 0.42 against 0.76
    ms for [64, 32, 8, 8], 3.2 against 4.7 ms for [64, 16, 32, 32], 18
    against 25 ms for [8, 64, 112, 112]; but 0.48 against 0.39 ms for
    [64, 64, 4, 4])."""
    sizes, f32 = _spatial(ctx, x), onnx.TensorProto.FLOAT
    size = int(np.prod(sizes))
    hits = ctx.op("Cast", [ctx.op("Equal", [x, _spread(ctx, node.output[0], w)])], to=f32)
    # rank = size - 1 - position, exact in float32 below 2^24. A window
    # without a hit (x NaN) gets the last position: a valid index, and the
    # loss is NaN anyway.
    ranks = ctx.const((size - 1 - np.arange(size)).reshape(1, 1, *sizes), f32)
    best = ctx.op("MaxPool", [ctx.op("Mul", [hits, ranks])], kernel_shape=w.kernel, strides=w.strides)
    position = ctx.op("Cast", [ctx.op("Sub", [ctx.const(size - 1.0, f32), best])], to=onnx.TensorProto.INT64)
    zeros = ctx.op("Reshape", [ctx.zeros_like(x), ctx.ints([-1, size])])
    per_window = ctx.ints([-1, size // int(np.prod(w.kernel))])
    scattered = ctx.op("ScatterElements", [zeros, ctx.op("Reshape", [position, per_window]),
                       ctx.op("Reshape", [g, per_window])], axis=1)
    return ctx.reshape_like(scattered, x)


def average_pool(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """dx = ConvTranspose(g / count, ones): each output spreads its share over
    its window; count is what the window averaged (padding included or not,
    windows cut at the padded border as in ONNX and PyTorch). Windows that
    tile the map take g / count spread by a nearest Resize instead: the same
    values, 2.8-5.5× faster than onnxruntime's grouped ConvTranspose (84
    against 237 µs for [64, 6, 14, 14] → 28×28, 58 against 322 µs for
    [64, 16, 5, 5] → 10×10)."""
    x, g = node.input[0], grads[0]
    w = _pool_window(ctx, node)
    if _tiles(ctx, w, x):
        return [_spread(ctx, ctx.op("Mul", [g, ctx.const(1.0 / int(np.prod(w.kernel)))]), w)]
    sizes, out = _spatial(ctx, x), _spatial(ctx, node.output[0])
    count = np.ones(out)
    for i, (n, m) in enumerate(zip(sizes, out)):
        counts = _window_counts(w, i, n, m, ctx.attr(node, "count_include_pad", 0))
        count = count * counts.reshape([-1 if a == i else 1 for a in range(len(out))])
    channels = ctx.shape(x)[1]
    ones = np.ones([channels, 1, *w.kernel])
    if (count == count.flat[0]).all():  # one divisor everywhere: fold it into the kernel
        kernel, scaled = ctx.const(ones / count.flat[0]), g
    else:
        kernel, scaled = ctx.const(ones), ctx.op("Mul", [g, ctx.const(1.0 / count)])
    return [ctx.op("ConvTranspose", [scaled, kernel], group=channels, **_transposed_pads(w, sizes, out))]


def _window_counts(w: Window, axis: int, n: int, m: int, include_pad: int) -> np.ndarray:
    """How many taps of each window along one axis were averaged."""
    low, high = (0, n + w.begin[axis] + w.end[axis]) if include_pad else (w.begin[axis], w.begin[axis] + n)
    taps = np.arange(m)[:, None] * w.strides[axis] + np.arange(w.kernel[axis])[None, :] * w.dilations[axis]
    return ((taps >= low) & (taps < high)).sum(axis=1).astype(np.float64)


def resize(ctx: GradContext, node: onnx.NodeProto, grads: Grads) -> Grads:
    """Nearest and linear Resize are separable linear maps y = M·x per axis,
    so dx = Mᵀ·g per axis, with M built here from ONNX's coordinate rules."""
    x, y, g = node.input[0], node.output[0], grads[0]
    rank = ctx.rank(x)
    axes = [a % rank for a in ctx.attr(node, "axes") or range(rank)]
    scales, sizes = (ctx.value(node.input[i]) if len(node.input) > i and node.input[i] else None for i in (2, 3))
    for i, axis in enumerate(axes):
        n, m = ctx.shape(x)[axis], ctx.shape(y)[axis]
        scale = float(scales[i]) if scales is not None and scales.size else None
        m = int(sizes[i]) if sizes is not None and sizes.size else m
        if scale == 1.0 or n == m:
            continue
        if not isinstance(n, int) or not isinstance(m, int):
            _fail(x)
        g = along_axis(ctx, g, _resize_matrix(node, ctx, n, m, scale or m / n), axis)
    return [g] + [None] * (len(node.input) - 1)


def _resize_matrix(node: onnx.NodeProto, ctx: GradContext, n: int, m: int, scale: float) -> np.ndarray:
    """M [m, n]: output i reads M[i, j]·x[j]."""
    mode = ctx.attr(node, "mode", "nearest")
    where = ctx.attr(node, "coordinate_transformation_mode", "half_pixel")
    i = np.arange(m, dtype=np.float64)
    source = {"half_pixel": (i + 0.5) / scale - 0.5, "asymmetric": i / scale,
              "pytorch_half_pixel": (i + 0.5) / scale - 0.5 if m > 1 else np.zeros(m),
              "align_corners": i * (n - 1) / (m - 1) if m > 1 else np.zeros(m)}.get(where)
    if source is None or mode not in ("nearest", "linear") or ctx.attr(node, "antialias", 0):
        raise NotDifferentiable("the gradient supports nearest and linear modes with half_pixel, asymmetric, "
                                "pytorch_half_pixel or align_corners coordinates")
    matrix = np.zeros((m, n))
    if mode == "nearest":
        rounding = ctx.attr(node, "nearest_mode", "round_prefer_floor")
        pick = {"floor": np.floor(source), "ceil": np.ceil(source),
                "round_prefer_floor": np.ceil(source - 0.5), "round_prefer_ceil": np.floor(source + 0.5)}[rounding]
        matrix[np.arange(m), np.clip(pick, 0, n - 1).astype(int)] = 1.0
        return matrix
    source = np.clip(source, 0, n - 1)  # linear reads the edge value beyond the border
    left = np.floor(source).astype(int)
    right, frac = np.minimum(left + 1, n - 1), source - left
    np.add.at(matrix, (np.arange(m), left), 1 - frac)
    np.add.at(matrix, (np.arange(m), right), frac)
    return matrix

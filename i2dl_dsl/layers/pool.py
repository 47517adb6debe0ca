"""Pooling: `maxpool`, `avgpool`, their global forms, and `adaptive_avgpool`.

    out = (N - K + 2P)/S + 1   (S defaults to K, as in PyTorch)

adaptive_avgpool(size): output i of an axis of N inputs averages inputs
⌊i·N/out⌋ to ⌈(i+1)·N/out⌉ - 1 (PyTorch AdaptiveAvgPool2d), for any out,
divisible or not, larger than N or not.

Pools have no parameters and no multiply-adds.
"""

from __future__ import annotations

from ..diagnostics import UserError
from fractions import Fraction

import numpy as np

from .base import Bool, Layer, Pair, Shape, P, register
from .window import ROUND, check_spatial, onnx_pads, resolve_padding, window_args, window_output


class _Pool(Layer):
    family = "pool"
    signature = (*window_args(default_stride_is_kernel=True), ROUND)

    @property
    def stride(self) -> tuple[int, int]:
        return self.a.s if self.a.s is not None else self.a.k

    def pads(self, shape: Shape):
        return resolve_padding(self.a.p, shape[1:], self.a.k, self.stride)

    def infer(self, inputs: list[Shape]) -> Shape:
        c, h, w = check_spatial(self.kind, inputs)
        pads = self.pads(inputs[0])
        for i, (begin, end) in enumerate(pads):
            if max(begin, end) > self.a.k[i] // 2:
                raise UserError(f"has padding {max(begin, end)}, more than half the kernel ({self.a.k[i]})",
                                "a window of padding only would pool nothing; use a larger k or smaller p")
        rounding = "floor" if self.a.p == "same" else self.a.round  # same means ⌈N/S⌉ by definition
        size = [window_output(n, self.a.k[i], self.stride[i], pads[i], 1, rounding, i)
                for i, n in enumerate((h, w))]
        return (c, *size)

    def receptive_field(self, fields, inputs, output):
        return fields[0].window(self.a.k, self.stride) if fields[0] else None

    def pool_attrs(self, g) -> dict:
        """Attributes that give exactly the checker's output size. `round=ceil`
        becomes extra end padding, never ONNX's ceil_mode: before opset 22,
        ONNX's ceil_mode keeps a last window that starts in the end padding,
        which PyTorch (and the checker) drop; onnxruntime follows PyTorch, but
        ONNX's shape inference and checker do not. Padding never wins a max,
        and an average leaves out what count_include_pad excludes."""
        shape = g.input_shapes[0]
        pads = onnx_pads(self.pads(shape), shape[1:], self.a.k, self.stride, (1, 1), g.output_shape[1:])
        return dict(kernel_shape=list(self.a.k), strides=list(self.stride), pads=pads)


@register
class MaxPool(_Pool):
    kind = "maxpool"
    doc = "max pooling (PyTorch MaxPool2d)"

    def lower(self, g, inputs):
        # The same node in training: the gradient rule gives it an Indices
        # output where the backward pass reads one (rules_conv.max_pool).
        return g.op("MaxPool", inputs, **self.pool_attrs(g))


@register
class AvgPool(_Pool):
    kind = "avgpool"
    doc = "average pooling (PyTorch AvgPool2d; padded zeros count, as there)"
    signature = (*_Pool.signature, P("count_include_pad", Bool(), True, "average over padding too"))

    def lower(self, g, inputs):
        attrs = self.pool_attrs(g)
        y = g.op("AveragePool", inputs, count_include_pad=int(self.a.count_include_pad), **attrs)
        if not self.a.count_include_pad:
            return y
        # ONNX counts all the padding, the end padding that round=ceil adds
        # too; PyTorch's divisor stops at the declared padding. Rescale the
        # windows that reach past it by (what ONNX divided by) / (what PyTorch does).
        shape, out = g.input_shapes[0], g.output_shape[1:]
        declared = self.pads(shape)
        counts = [self._taps(out[i], self.a.k[i], self.stride[i], shape[1 + i] + sum(declared[i]))
                  for i in range(2)]
        factor = (self.a.k[0] * self.a.k[1]) / (counts[0][:, None] * counts[1][None, :])
        if (factor == 1).all():
            return y
        return g.op("Mul", [y, g.const(factor, dtype="float32", hint="divisor_ratio")])

    @staticmethod
    def _taps(out: int, k: int, s: int, padded: int):
        """How many of each window's k taps lie within the input and its declared padding."""
        starts = np.arange(out) * s
        return np.minimum(starts + k, padded) - starts


class _GlobalPool(Layer):
    family = "pool"

    def infer(self, inputs: list[Shape]) -> Shape:
        c, _, _ = check_spatial(self.kind, inputs)
        return (c, 1, 1)

    def receptive_field(self, fields, inputs, output):
        _, h, w = inputs[0]
        return fields[0].window((h, w), (h, w)) if fields[0] else None


@register
class GlobalAvgPool(_GlobalPool):
    kind = "global_avgpool"
    doc = "average over all of H×W: [C, H, W] → [C, 1, 1]"

    def lower(self, g, inputs):
        return g.op("GlobalAveragePool", inputs)


@register
class GlobalMaxPool(_GlobalPool):
    kind = "global_maxpool"
    doc = "maximum over all of H×W: [C, H, W] → [C, 1, 1]"

    def lower(self, g, inputs):
        return g.op("GlobalMaxPool", inputs)


def adaptive_windows(n: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows along one axis: [⌊i·n/out⌋, ⌈(i+1)·n/out⌉)."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


@register
class AdaptiveAvgPool(Layer):
    kind = "adaptive_avgpool"
    prefix = "pool"
    family = "pool"
    title = "adaptive average pool"
    doc = "average pooling to a given output size (PyTorch AdaptiveAvgPool2d)"
    signature = (P("size", Pair(), doc="output size: an int for both axes, or [h, w]"),)

    def infer(self, inputs: list[Shape]) -> Shape:
        c, _, _ = check_spatial(self.kind, inputs)
        return (c, *self.a.size)

    def receptive_field(self, fields, inputs, output):
        if fields[0] is None:
            return None
        sizes = inputs[0][1:]
        widest = tuple(max(e - b for b, e in adaptive_windows(n, o)) for n, o in zip(sizes, self.a.size))
        return fields[0].window(widest, tuple(Fraction(n, o) for n, o in zip(sizes, self.a.size)))

    def lower(self, g, inputs):
        (h, w), (oh, ow) = g.input_shapes[0][1:], self.a.size
        if (oh, ow) == (1, 1):
            return g.op("GlobalAveragePool", inputs)
        if h % oh == 0 and w % ow == 0:  # equal windows that tile the map: a plain average pool
            k = [h // oh, w // ow]
            return g.op("AveragePool", inputs, kernel_shape=k, strides=k)
        # Unequal or overlapping windows: y = A_h · x · A_wᵀ, A the [out, n]
        # matrix of each window's 1/size over its inputs.
        rows = g.op("MatMul", [inputs[0], g.const(self._averaging(w, ow).T, dtype="float32", hint="columns")])
        return g.op("MatMul", [g.const(self._averaging(h, oh), dtype="float32", hint="rows"), rows])

    @staticmethod
    def _averaging(n: int, out: int) -> np.ndarray:
        matrix = np.zeros((out, n))
        for i, (begin, end) in enumerate(adaptive_windows(n, out)):
            matrix[i, begin:end] = 1.0 / (end - begin)
        return matrix

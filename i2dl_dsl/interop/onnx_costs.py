"""What one node of an ONNX model made elsewhere costs and sees: its
multiply-adds per sample and its receptive-field step, by op type.

The conventions are the checker's (i2dl_dsl/layers): one multiply-add
counts one; a receptive field is the size and jump of one unit in input
pixels, for [N, C, H, W] tensors only. Shapes here are full shapes, each
dimension an int or None where shape inference left it unknown, and the
MACs are those of the whole batch the shapes hold: the caller divides by
the batch. (Counting whole tensors, not "all but the first axis", keeps the
count right inside graphs that move the batch axis, as attention does.)
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Sequence

from ..layers.base import ReceptiveField

Shape = tuple  # of int | None


def _known(*shapes: Shape | None) -> bool:
    return all(s is not None and all(isinstance(d, int) for d in s) for s in shapes)


class NodeView:
    """What a rule reads of one node: attributes and its tensors' shapes."""

    def __init__(self, op_type: str, attrs: dict, inputs: Sequence[Shape | None], outputs: Sequence[Shape | None]):
        self.op_type, self.attrs, self.inputs, self.outputs = op_type, attrs, list(inputs), list(outputs)

    def input(self, i: int) -> Shape | None:
        return self.inputs[i] if i < len(self.inputs) else None


# ----------------------------------------------------------------- MACs


def _conv(n: NodeView) -> int | None:
    # Cout·Hout·Wout · (Cin/groups)·kh·kw: each output value times the weight's [Cin/g, kh, kw]
    out, weight = n.outputs[0], n.input(1)
    return math.prod(out) * math.prod(weight[1:]) if _known(out, weight) else None


def _conv_transpose(n: NodeView) -> int | None:
    # Cin·H·W · (Cout/groups)·kh·kw: every input value is spread over a kernel (weight [Cin, Cout/g, kh, kw])
    x, weight = n.input(0), n.input(1)
    return math.prod(x) * math.prod(weight[1:]) if _known(x, weight) else None


def _gemm(n: NodeView) -> int | None:
    # in·out: Y [N, out] from A [N, K] (or Aᵀ)
    a, out = n.input(0), n.outputs[0]
    if not _known(a, out) or len(a) != 2:
        return None
    k = a[0] if n.attrs.get("transA", 0) else a[1]
    return math.prod(out) * k


def _matmul(n: NodeView) -> int | None:
    # each output value is a dot product over A's last axis; with two activations
    # this is attention's Q·Kᵀ and weights·V
    a, out = n.input(0), n.outputs[0]
    if not _known(a, out) or len(a) < 1:
        return None
    return math.prod(out) * a[-1]


def _recurrent(gates: int) -> Callable[[NodeView], int | None]:
    def macs(n: NodeView) -> int | None:
        # T · directions · G·H · (I + H) per sequence: W [D, G·H, I] and R [D, G·H, H] at every
        # step; X is [T, N, I] (or [N, T, I]), so T·N is its first two axes either way
        x, w, r = n.input(0), n.input(1), n.input(2)
        if not _known(x, w, r) or len(x) != 3:
            return None
        return x[0] * x[1] * w[0] * w[1] * (w[2] + r[2])
    return macs


def _attention(n: NodeView) -> int | None:
    # Q·Kᵀ: a dot product over the query width for every query and key (Tk per query value);
    # weights·V: a sum over the keys for every query and value width (Tq per value value)
    q, k, v = n.input(0), n.input(1), n.input(2)
    if not _known(q, k, v) or len(q) < 3:
        return None
    return k[-2] * math.prod(q) + q[-2] * math.prod(v)


MACS: dict[str, Callable[[NodeView], int | None]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "LSTM": _recurrent(4), "GRU": _recurrent(3), "RNN": _recurrent(1), "Attention": _attention,
}


def macs(n: NodeView) -> int | None:
    """Multiply-adds per sample; 0 for ops that have none, None where the
    shapes needed are unknown."""
    rule = MACS.get(n.op_type)
    return rule(n) if rule else 0


# ----------------------------------------------------------------- receptive fields

# Ops after which a unit still sees what its inputs' units saw (where paths meet, the widest).
# A transpose moves values, not what each depends on (channel-last layer norms transpose around the norm).
KEEPS_FIELD = frozenset(
    "Relu LeakyRelu PRelu Elu Selu Celu Gelu Sigmoid HardSigmoid HardSwish Tanh Softplus Softsign Mish Clip "
    "Abs Neg Exp Log Sqrt Reciprocal Erf Identity Dropout Cast BatchNormalization InstanceNormalization LRN "
    "LayerNormalization GroupNormalization Transpose "
    "Add Sub Mul Div Sum Max Min Mean Pow Concat Pad Slice Softmax LogSoftmax".split())


def _window(field: ReceptiveField, n: NodeView) -> ReceptiveField:
    kernel = n.attrs.get("kernel_shape") or (n.input(1)[2:] if n.input(1) else None)
    strides = n.attrs.get("strides") or [1, 1]
    dilations = n.attrs.get("dilations") or [1, 1]
    return field.window(tuple(kernel), tuple(strides), tuple(dilations))


def _transposed(field: ReceptiveField, n: NodeView) -> ReceptiveField:
    # as upconv: the inputs one output reads span ⌊(k-1)g/s⌋·d/g + 1 units (g = gcd(d, s)); the jump shrinks by s
    kernel = n.attrs.get("kernel_shape") or n.input(1)[2:]
    strides = n.attrs.get("strides") or [1, 1]
    dilations = n.attrs.get("dilations") or [1, 1]
    taps = tuple((k - 1) * math.gcd(d, s) // s * (d // math.gcd(d, s)) + 1
                 for k, s, d in zip(kernel, strides, dilations))
    return field.window(taps, tuple(Fraction(1, s) for s in strides))


def _global(field: ReceptiveField, n: NodeView) -> ReceptiveField:
    h, w = n.input(0)[2:]
    return field.window((h, w), (h, w))


def _resize(field: ReceptiveField, n: NodeView) -> ReceptiveField:
    # as upsample: nearest reads one unit, linear two, at a jump scaled by in/out
    x, out = n.input(0), n.outputs[0]
    taps = (2, 2) if n.attrs.get("mode", "nearest") in ("linear", "cubic") else (1, 1)
    return field.window(taps, tuple(Fraction(i, o) for i, o in zip(x[2:], out[2:])))


STEPS = {"Conv": _window, "MaxPool": _window, "AveragePool": _window, "LpPool": _window,
         "ConvTranspose": _transposed, "GlobalAveragePool": _global, "GlobalMaxPool": _global,
         "Resize": _resize, "Upsample": _resize}


def receptive_field(n: NodeView, fields: Sequence[ReceptiveField | None]) -> ReceptiveField | None:
    """The field of the node's first output (`fields`: one per input, None
    where it has none): None unless it is [N, C, H, W] and the op is a
    window, a resize, or keeps its inputs' field."""
    out = n.outputs[0]
    present = [f for f in fields if f is not None]
    if not present or not _known(out) or len(out) != 4:
        return None
    step = STEPS.get(n.op_type)
    if step is not None:
        return step(present[0], n) if _known(n.input(0)) and len(n.input(0)) == 4 else None
    if n.op_type not in KEEPS_FIELD:
        return None
    # as the checker's merges: the widest size; the jump of the inputs at the output's size,
    # not of one broadcast from 1×1 (squeeze-and-excitation's scale)
    full = [f for f, s in zip(fields, n.inputs) if f is not None and s is not None and tuple(s[-2:]) == out[-2:]]
    return ReceptiveField(ReceptiveField.widest(present).size, ReceptiveField.widest(full or present).jump)

"""Recurrent layers over sequences [T, F]: `lstm` and `rnn` (vanilla tanh).

lstm: params 4·(F·H + H·H + 2H)  (PyTorch keeps two bias vectors),
      MACs T·4·(F·H + H·H)
rnn:  h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh); params H·F + H·H + 2H
Output [T, H] with sequences=true, the last step [H] otherwise.

Lowering: parameters keep PyTorch's names and layouts (weight_ih_l0 [G·H, F],
gates i, f, g, o for the LSTM). ONNX's LSTM wants W [1, 4H, F] with gates
i, o, f, c and one bias B = [b_ih, b_hh]. An exported model stores them so,
reordered in NumPy once (`<layer>/W`, `/R`, `/B`: the op is one node with
plain initialisers, and `onnx_to_torch` reads them back); the training
session's evaluation graph, whose parameters are inputs, reorders them in
the graph. ONNX recurrences are time-major, so the batch-major [N, T, F]
input is transposed around the op.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics import UserError
from .base import Bool, Int, Layer, P, Shape, fmt_shape, register
from .declarations import FAN_IN, ZEROS, TorchCode


class _Recurrent(Layer):
    family = "recurrent"
    gates = 1
    onnx_op = "RNN"
    onnx_gate_order: tuple[int, ...] = (0,)  # ONNX's gates as indices of PyTorch's
    signature = (
        P("hidden", Int(), doc="hidden units H"),
        P("sequences", Bool(), True, "return every step [T, H] (true) or the last [H]"),
    )

    def infer(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if len(shape) != 2:
            hint = ("declare the input as a sequence: input x[T, F]" if len(shape) == 3 else
                    "the layer before it returns a vector; give it sequences=true" if len(shape) == 1 else "")
            raise UserError(f"needs a sequence input [T, F], got {fmt_shape(shape)}", hint)
        steps = shape[0]
        return (steps, self.a.hidden) if self.a.sequences else (self.a.hidden,)

    def params(self, inputs, output):
        features, hidden, rows = inputs[0][1], self.a.hidden, self.gates * self.a.hidden
        return {"weight_ih_l0": (rows, features), "weight_hh_l0": (rows, hidden),
                "bias_ih_l0": (rows,), "bias_hh_l0": (rows,)}

    def inits(self):
        return {"weight_ih_l0": FAN_IN, "weight_hh_l0": FAN_IN, "bias_ih_l0": ZEROS, "bias_hh_l0": ZEROS}

    def macs(self, inputs, output):
        steps, features = inputs[0]
        return steps * self.gates * self.a.hidden * (features + self.a.hidden)

    def _onnx_weight(self, g, name: str) -> str:
        """PyTorch rows [G·H, ...] in PyTorch gate order → ONNX order, batched as [1, G·H, ...]."""
        tensor = g.param(name)
        if self.gates > 1:
            parts = g.op("Split", [tensor], outputs=self.gates, axis=0, num_outputs=self.gates)
            tensor = g.op("Concat", [parts[i] for i in self.onnx_gate_order], axis=0)
        return tensor

    @classmethod
    def torch_to_onnx(cls, weights: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PyTorch's four tensors → ONNX's W [1, G·H, F], R [1, G·H, H], B [1, 2·G·H]."""
        def reorder(rows: np.ndarray) -> np.ndarray:
            return np.concatenate([np.split(rows, cls.gates)[i] for i in cls.onnx_gate_order])

        bias = np.concatenate([reorder(weights["bias_ih_l0"]), reorder(weights["bias_hh_l0"])])
        return (reorder(weights["weight_ih_l0"])[None], reorder(weights["weight_hh_l0"])[None], bias[None])

    @classmethod
    def onnx_to_torch(cls, w: np.ndarray, r: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        """The inverse of `torch_to_onnx`: an exported model's tensors by PyTorch's suffixes."""
        back = np.argsort(cls.onnx_gate_order)

        def reorder(rows: np.ndarray) -> np.ndarray:
            return np.concatenate([np.split(rows, cls.gates)[i] for i in back])

        b_ih, b_hh = np.split(b[0], 2)
        return {"weight_ih_l0": reorder(w[0]), "weight_hh_l0": reorder(r[0]),
                "bias_ih_l0": reorder(b_ih), "bias_hh_l0": reorder(b_hh)}

    def _onnx_operands(self, g) -> list[str]:
        """W, R and B: stored reordered where the weights are final, else reordered in the graph."""
        if g.fixed_weights:
            arrays = self.torch_to_onnx({s: g.param_value(s) for s in self.inits()})
            return [g.constant(a.astype(np.float32), hint=h) for a, h in zip(arrays, "WRB")]
        axes0 = g.const([0], hint="axes")
        w = g.op("Unsqueeze", [self._onnx_weight(g, "weight_ih_l0"), axes0])
        r = g.op("Unsqueeze", [self._onnx_weight(g, "weight_hh_l0"), axes0])
        b = g.op("Concat", [self._onnx_weight(g, "bias_ih_l0"), self._onnx_weight(g, "bias_hh_l0")], axis=0)
        return [w, r, g.op("Unsqueeze", [b, axes0])]

    def lower(self, g, inputs):
        if g.training:
            return self._lower_unrolled(g, inputs[0])
        hidden = self.a.hidden
        w, r, b = self._onnx_operands(g)
        time_major = g.op("Transpose", [inputs[0]], perm=[1, 0, 2])
        y, y_last = g.op(self.onnx_op, [time_major, w, r, b], outputs=2, hidden_size=hidden)[:2]
        if self.a.sequences:
            steps = g.op("Squeeze", [y, g.const([1], hint="axes")])  # [T, 1, N, H] → [T, N, H]
            return g.op("Transpose", [steps], perm=[1, 0, 2])
        return g.op("Squeeze", [y_last, g.const([0], hint="axes")])  # [1, N, H] → [N, H]


    def _lower_unrolled(self, g, x):
        """Training mode: the recurrence unrolled over the fixed T steps in
        plain ops (MatMul, Gather, Split, Sigmoid, Tanh, ...) so the autodiff
        can differentiate it. The input projection of all steps is one MatMul."""
        steps = g.input_shapes[0][0]
        w_ih = g.op("Transpose", [g.param("weight_ih_l0")], perm=[1, 0])  # [F, G·H]
        w_hh = g.op("Transpose", [g.param("weight_hh_l0")], perm=[1, 0])  # [H, G·H]
        bias = g.op("Add", [g.param("bias_ih_l0"), g.param("bias_hh_l0")])
        projected = g.op("Add", [g.op("MatMul", [x, w_ih]), bias])  # [N, T, G·H]
        # Split, not Gather per step: its gradient is one Concat, where T Gathers
        # would scatter into T zero tensors and sum them.
        axis1 = g.const([1], hint="axes")
        parts = g.op("Split", [projected], outputs=steps, axis=1, num_outputs=steps) if steps > 1 else [projected]
        h = c = None
        outputs = []
        for t in range(steps):
            pre = g.op("Squeeze", [parts[t], axis1])  # [N, G·H]
            if h is not None:  # h_0 = 0: the first step has no recurrent term
                pre = g.op("Add", [pre, g.op("MatMul", [h, w_hh])])
            h, c = self.cell(g, pre, c)
            outputs.append(h)
        if not self.a.sequences:
            return h
        return g.op("Concat", [g.op("Unsqueeze", [o, axis1]) for o in outputs], axis=1)

    def torch_code(self, t):
        module = f"nn.{self.onnx_op}({t.width()}, {t.arg('hidden')}, batch_first=True)"
        # PyTorch returns (every step, the last state); the last step of the
        # outputs is the last state of one layer.
        return TorchCode(module, "{m}({0})[0]" if self.a.sequences else "{m}({0})[0][:, -1]", width=t.arg("hidden"))

    def cell(self, g, pre: str, c: str | None) -> tuple[str, str | None]:
        """One step from the pre-activations; returns (h, c)."""
        return g.op("Tanh", [pre]), None


@register
class LSTM(_Recurrent):
    kind = "lstm"
    gates = 4
    onnx_op = "LSTM"
    onnx_gate_order = (0, 3, 1, 2)  # ONNX i, o, f, c from PyTorch i, f, g, o

    def cell(self, g, pre, c):
        # c_t = σ(f)·c_(t-1) + σ(i)·tanh(g),  h_t = σ(o)·tanh(c_t)
        i, f, cand, o = g.op("Split", [pre], outputs=4, axis=1, num_outputs=4)
        new = g.op("Mul", [g.op("Sigmoid", [i]), g.op("Tanh", [cand])])
        if c is not None:
            new = g.op("Add", [g.op("Mul", [g.op("Sigmoid", [f]), c]), new])
        return g.op("Mul", [g.op("Sigmoid", [o]), g.op("Tanh", [new])]), new
    doc = "long short-term memory (PyTorch LSTM, one layer)"


@register
class RNN(_Recurrent):
    kind = "rnn"
    doc = "vanilla tanh RNN (PyTorch RNN, one layer)"

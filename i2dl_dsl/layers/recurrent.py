"""Recurrent layers over sequences [T, F]: `lstm` and `rnn` (vanilla tanh).

lstm: params 4·(F·H + H·H + 2H)  (PyTorch keeps two bias vectors),
      MACs T·4·(F·H + H·H)
rnn:  h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh); params H·F + H·H + 2H
Output [T, H] with sequences=true, the last step [H] otherwise.
"""

from __future__ import annotations

from ..diagnostics import UserError
from .base import Bool, Int, Layer, P, Shape, fmt_shape, register


class _Recurrent(Layer):
    family = "recurrent"
    gates = 1
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

    def macs(self, inputs, output):
        steps, features = inputs[0]
        return steps * self.gates * self.a.hidden * (features + self.a.hidden)


@register
class LSTM(_Recurrent):
    kind = "lstm"
    gates = 4
    doc = "long short-term memory (PyTorch LSTM, one layer)"


@register
class RNN(_Recurrent):
    kind = "rnn"
    doc = "vanilla tanh RNN (PyTorch RNN, one layer)"

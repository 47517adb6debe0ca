"""Reverse-mode differentiation of ONNX graphs, emitted as ONNX nodes.

`add_gradients(model, loss, wrt)` appends the backward pass to a model and
returns the name of each requested gradient; `RULES` is the table of ops it
can differentiate, one rule per op type.
"""

from .driver import MissingGradient, add_gradients
from .rules import RULES

__all__ = ["MissingGradient", "RULES", "add_gradients"]

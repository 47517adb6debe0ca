"""The network's input: a source node with the declared shape."""

from __future__ import annotations

from .base import Layer, ReceptiveField, Shape


class Input(Layer):
    kind = "input"
    family = "io"
    inputs = 0

    def __init__(self, shape: Shape):
        super().__init__({})  # type: ignore[arg-type]
        self.shape = shape

    def infer(self, inputs: list[Shape]) -> Shape:
        return self.shape

    def receptive_field(self, fields, inputs, output):
        return ReceptiveField.unit() if len(output) == 3 else None

    def describe(self) -> str:
        return ""

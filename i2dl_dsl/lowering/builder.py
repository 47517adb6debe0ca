"""The graph builder that layer lowerings write into.

A layer's `lower(g, inputs)` receives a `LayerBuilder`: a `graph.Builder`
bound to one layer, so every node it makes is named after the layer,
carries the layer's source location in `doc_string`, and every parameter it
asks for becomes an initializer named `<layer>.<suffix>`. `g.op` and
`g.const` are described in `graph.py`. Layers never import onnx; this
module does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..layers.declarations import RandomInput
from ..names import tensor_name
from .graph import Builder, Graph

BATCH = "N"


@dataclass
class LoweringGraph(Graph):
    """Nodes, initializers and value infos of one ONNX graph under construction."""

    init_param: Callable[[str, str, tuple[int, ...]], np.ndarray]
    training: bool = False
    opset: int = 21  # the model's opset: a lowering may use an op only from the opset that has it
    value_infos: dict[str, onnx.ValueInfoProto] = field(default_factory=dict)
    # Training mode only: new values of buffers (batch-norm running
    # statistics), and per-step random inputs (dropout masks) as their layers
    # declare them (shape and how to draw; layers/declarations.py RandomInput).
    buffer_updates: dict[str, str] = field(default_factory=dict)
    random_inputs: dict[str, RandomInput] = field(default_factory=dict)

    def declare(self, name: str, shape: tuple[int, ...] | None, elem=TensorProto.FLOAT) -> None:
        """Record a tensor's shape (with the symbolic batch axis) for value_info."""
        dims = [BATCH, *shape] if shape is not None else None
        self.value_infos[name] = helper.make_tensor_value_info(name, elem, dims)


class LayerBuilder(Builder):
    """What one layer's lowering sees: ops, parameters and constants."""

    graph: LoweringGraph

    def __init__(self, graph: LoweringGraph, layer_name: str, doc: str, input_shapes: list[tuple[int, ...]],
                 output_shape: tuple[int, ...], param_shapes: dict[str, tuple[int, ...]], where: str = ""):
        super().__init__(graph, layer_name, doc, where)
        self.param_shapes = param_shapes
        self.name = layer_name
        self.input_shapes = input_shapes
        self.output_shape = output_shape
        self.training = graph.training
        self.opset = graph.opset

    def param(self, suffix: str) -> str:
        """The initializer `<layer>.<suffix>` (a parameter or buffer the layer
        declared), filled from the given weights or by the init scheme."""
        name = tensor_name(self.name, suffix)
        if name not in self.graph.initializers:
            shape = tuple(self.param_shapes[suffix])
            self.graph.initializer(name, self.graph.init_param(self.name, suffix, shape))
        return name

    def buffer_update(self, suffix: str, tensor: str) -> None:
        """Training mode: `tensor` is the new value of the buffer `<layer>.<suffix>`."""
        self.graph.buffer_updates[tensor_name(self.name, suffix)] = tensor

    def random_input(self, suffix: str, draw: RandomInput) -> str:
        """Training mode: a graph input `<layer>.<suffix>` that the training
        loop fills each step as `draw` (a layers.declarations.RandomInput the layer
        declares) says."""
        name = tensor_name(self.name, suffix)
        self.graph.names.add(name)
        self.graph.random_inputs[name] = draw
        return name

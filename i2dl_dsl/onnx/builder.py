"""The graph builder that layer lowerings write into.

A layer's `lower(g, inputs)` receives a `LayerBuilder`: a view of the graph
builder bound to one layer, so every node it makes is named after the
layer, carries the layer's source location in `doc_string`, and every
parameter it asks for becomes an initializer named `<layer>.<suffix>`.
Layers never import onnx; this module does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..names import fresh

BATCH = "N"


@dataclass
class GraphBuilder:
    """Nodes, initializers and value infos of one ONNX graph under construction."""

    init_param: Callable[[str, str, tuple[int, ...]], np.ndarray]
    training: bool = False
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    value_infos: dict[str, onnx.ValueInfoProto] = field(default_factory=dict)
    # Training mode only: new values of buffers (batch-norm running
    # statistics), and per-step random inputs (dropout masks) as their layers
    # declare them (shape and how to draw; layers/base.py RandomInput).
    buffer_updates: dict[str, str] = field(default_factory=dict)
    random_inputs: dict[str, Any] = field(default_factory=dict)
    _names: set[str] = field(default_factory=set)

    def unique(self, name: str) -> str:
        return fresh(name, self._names)

    def initializer(self, name: str, array: np.ndarray) -> str:
        self._names.add(name)
        self.initializers[name] = numpy_helper.from_array(np.array(array, order="C", copy=True), name)
        return name

    def declare(self, name: str, shape: tuple[int, ...] | None, elem=TensorProto.FLOAT) -> None:
        """Record a tensor's shape (with the symbolic batch axis) for value_info."""
        dims = [BATCH, *shape] if shape is not None else None
        self.value_infos[name] = helper.make_tensor_value_info(name, elem, dims)


class LayerBuilder:
    """What one layer's lowering sees: ops, parameters and constants."""

    def __init__(self, graph: GraphBuilder, layer_name: str, doc: str, input_shapes: list[tuple[int, ...]],
                 output_shape: tuple[int, ...], param_shapes: dict[str, tuple[int, ...]], where: str = ""):
        self.graph = graph
        self.where = where  # `file.net:line:col`, appended to node names so Netron shows the source
        self.param_shapes = param_shapes
        self.name = layer_name
        self.doc = doc
        self.input_shapes = input_shapes
        self.output_shape = output_shape
        self.training = graph.training
        self._count = 0

    def param(self, suffix: str) -> str:
        """The initializer `<layer>.<suffix>` (a parameter or buffer the layer
        declared), filled from the given weights or by the init scheme."""
        name = f"{self.name}.{suffix}"
        if name not in self.graph.initializers:
            shape = tuple(self.param_shapes[suffix])
            self.graph.initializer(name, self.graph.init_param(self.name, suffix, shape))
        return name

    def buffer_update(self, suffix: str, tensor: str) -> None:
        """Training mode: `tensor` is the new value of the buffer `<layer>.<suffix>`."""
        self.graph.buffer_updates[f"{self.name}.{suffix}"] = tensor

    def random_input(self, suffix: str, draw: Any) -> str:
        """Training mode: a graph input `<layer>.<suffix>` that the training
        loop fills each step as `draw` (a layers.base.RandomInput the layer
        declares) says."""
        name = f"{self.name}.{suffix}"
        self.graph._names.add(name)
        self.graph.random_inputs[name] = draw
        return name

    def const(self, value: Any, dtype=np.int64, hint: str = "const") -> str:
        """A constant tensor (shapes, axes, scales) as an initializer."""
        name = self.graph.unique(f"{self.name}/{hint}")
        return self.graph.initializer(name, np.asarray(value, dtype=dtype))

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, output_names: list[str] | None = None,
           **attrs: Any) -> str | list[str]:
        """Add one node; returns its output name (or names when outputs > 1)."""
        self._count += 1
        node_name = self.graph.unique(f"{self.name}/{op_type}" + (f" @{self.where}" if self.where else ""))
        names = output_names or [self.graph.unique(f"{node_name}:{i}") for i in range(outputs)]
        node = helper.make_node(op_type, inputs, names, name=node_name, doc_string=self.doc,
                                **{k: v for k, v in attrs.items() if v is not None})
        self.graph.nodes.append(node)
        return names[0] if outputs == 1 and output_names is None else names

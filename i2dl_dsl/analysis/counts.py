"""Parameters, buffers and multiply-adds of every layer (pure functions)."""

from __future__ import annotations

import networkx as nx

from ..elaborate import layer_node
from ..layers.base import Shape, numel


def _per_layer(graph: nx.DiGraph, shapes: dict[str, Shape | None], method: str) -> dict[str, object]:
    out = {}
    for name in graph.nodes:
        shape = shapes.get(name)
        if shape is None:
            continue
        node = layer_node(graph, name)
        inputs = [shapes[s] for s in node.inputs]
        out[name] = getattr(node.layer, method)(inputs, shape)
    return out


def parameter_shapes(graph: nx.DiGraph, shapes) -> dict[str, dict[str, Shape]]:
    """Learnable tensors of each layer: {'conv1': {'weight': (64, 3, 7, 7)}}."""
    return _per_layer(graph, shapes, "params")  # type: ignore[return-value]


def buffer_shapes(graph: nx.DiGraph, shapes) -> dict[str, dict[str, Shape]]:
    return _per_layer(graph, shapes, "buffers")  # type: ignore[return-value]


def macs(graph: nx.DiGraph, shapes) -> dict[str, int]:
    return _per_layer(graph, shapes, "macs")  # type: ignore[return-value]


def count(tensors: dict[str, Shape]) -> int:
    return sum(numel(shape) for shape in tensors.values())

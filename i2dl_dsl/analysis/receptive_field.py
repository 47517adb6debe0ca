"""Receptive field of every layer: size and jump in input pixels, per axis.

Each layer applies its step (r' = r + d(k-1)·j, j' = j·s for a window);
where paths meet (residual, concat) the widest field over the paths wins.
Layers without a spatial output (fc, lstm, flatten) have none.
"""

from __future__ import annotations

import networkx as nx

from ..elaborate import layer_node
from ..layers.base import ReceptiveField


def receptive_fields(graph: nx.DiGraph, order: list[str], shapes) -> dict[str, ReceptiveField | None]:
    fields: dict[str, ReceptiveField | None] = {}
    for name in order:
        shape = shapes.get(name)
        if shape is None:
            fields[name] = None
            continue
        node = layer_node(graph, name)
        inputs = [shapes[s] for s in node.inputs]
        fields[name] = node.layer.receptive_field([fields[s] for s in node.inputs], inputs, shape)
    return fields

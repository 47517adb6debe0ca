"""Receptive field of every layer: size and jump in input pixels, per axis.

Each layer applies its step (r' = r + d(k-1)·j, j' = j·s for a window);
where paths meet (residual, concat) the widest field over the paths wins.
Layers without a spatial output (fc, lstm, flatten) have none.
"""

from __future__ import annotations

import networkx as nx

from ..layers.base import ReceptiveField


def receptive_fields(graph: nx.DiGraph, order: list[str], shapes) -> dict[str, ReceptiveField | None]:
    fields: dict[str, ReceptiveField | None] = {}
    for node in order:
        data = graph.nodes[node]
        shape = shapes.get(node)
        if shape is None:
            fields[node] = None
            continue
        inputs = [shapes[s] for s in data["inputs"]]
        fields[node] = data["layer"].receptive_field([fields[s] for s in data["inputs"]], inputs, shape)
    return fields

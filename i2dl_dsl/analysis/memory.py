"""Memory estimates in bytes, float32 throughout.

- parameters: every parameter and buffer;
- inference activations: the peak of tensors alive at once when layers run
  in topological order and a tensor is freed after its last reader (at
  once, when nothing reads it);
- training activations: every layer output is kept for the backward pass,
  and each gets a gradient of the same size.
"""

from __future__ import annotations

import networkx as nx

from ..elaborate import layer_node
from ..layers.base import numel

BYTES = 4


def inference_peak_elements(graph: nx.DiGraph, order: list[str], shapes) -> int:
    """The most elements alive at once. A tensor lives from the step that
    computes it to the step of its last reader; one nobody reads (other than
    the network's output) is dropped as soon as it is computed."""
    last_use = {node: index for index, node in enumerate(order)}
    for index, node in enumerate(order):
        for source in layer_node(graph, node).inputs:
            last_use[source] = index
    output = graph.graph.get("output")
    if output in last_use:
        last_use[output] = len(order)
    expiring: dict[int, list[str]] = {}
    for node, index in last_use.items():
        expiring.setdefault(index, []).append(node)
    live = peak = 0
    for index, node in enumerate(order):
        live += numel(shapes[node])
        peak = max(peak, live)
        live -= sum(numel(shapes[t]) for t in expiring.get(index, ()))
    return peak


def training_elements(order: list[str], shapes) -> int:
    return 2 * sum(numel(shapes[node]) for node in order)

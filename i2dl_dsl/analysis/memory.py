"""Memory estimates in bytes, float32 throughout.

- parameters: every parameter and buffer;
- inference activations: the peak of tensors alive at once when layers run
  in topological order and a tensor is freed after its last reader;
- training activations: every layer output is kept for the backward pass,
  and each gets a gradient of the same size.
"""

from __future__ import annotations

import networkx as nx

from ..layers.base import numel

BYTES = 4


def inference_peak_elements(graph: nx.DiGraph, order: list[str], shapes) -> int:
    last_reader = {node: index for index, node in enumerate(order)}
    for index, node in enumerate(order):
        for source in graph.nodes[node]["inputs"]:
            last_reader[source] = index
    live: dict[str, int] = {}
    peak = 0
    for index, node in enumerate(order):
        live[node] = numel(shapes[node])
        peak = max(peak, sum(live.values()))
        for source in set(graph.nodes[node]["inputs"]):
            if last_reader[source] == index:
                live.pop(source, None)
    return peak


def training_elements(order: list[str], shapes) -> int:
    return 2 * sum(numel(shapes[node]) for node in order)

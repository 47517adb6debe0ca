"""The layer graph's node record: what elaboration knows of one layer.

The graph is a `networkx.DiGraph` whose nodes are dotted layer names; each
carries one `LayerNode` under `NODE`. Its `inputs` are the one truth about
what a layer reads, in order (concat's order is the channel order): the
graph's edges are derived from them when the node is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from ..diagnostics import Span
from ..layers import Layer

NODE = "node"  # the node attribute holding the record

Trail = tuple[tuple[str, Span], ...]  # (block instance, call span), outermost first


@dataclass(frozen=True)
class LayerNode:
    """One layer of the elaborated network."""

    name: str                # dotted, in PyTorch's state_dict style: layer2.0.conv1
    layer: Layer             # its kind and converted arguments
    inputs: tuple[str, ...]  # the nodes it reads, in order; () for the network's input
    span: Span               # where in the source it came from
    trail: Trail = ()        # the block instances it sits in


@dataclass(frozen=True)
class BlockInstance:
    """One use of a block: what code generators need to write it as the source does."""

    block: Any                  # its definition (syntax.ast.BlockDef)
    call: Any                   # the call (syntax.ast.Call)
    values: dict[str, Any]      # its number (and word) parameters' values
    input: str | None           # the tensor its body starts from (`in`)
    tensors: dict[str, str | None]  # its tensor parameters' nodes, in the block's order


def layer_node(graph: nx.DiGraph, name: str) -> LayerNode:
    """The record of the layer called `name`."""
    return graph.nodes[name][NODE]


def add_layer_node(graph: nx.DiGraph, node: LayerNode) -> None:
    """Add `node`, with an edge from each of its inputs."""
    graph.add_node(node.name, **{NODE: node})
    for source in node.inputs:
        graph.add_edge(source, node.name)

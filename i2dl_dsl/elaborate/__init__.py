"""Elaboration: from the syntax tree to the layer graph.

Blocks are expanded with their arguments, repetitions unrolled, residual and
concat blocks closed by the merges that close them (`add`, `concat`), and
every layer given a hierarchical dotted name in PyTorch's `state_dict` style
(`layer2.0.conv1`).

The result is a `networkx.DiGraph` whose nodes are those names, each with
its `LayerNode` record (`layer_node(graph, name)`), and graph attributes
`network`, `params` (the network parameters' values), `input`, `output` and
`groups` (dotted prefix → what it is, for folding).

The pieces, by job: `scope` (namespaces and names), `expand` (chains,
blocks, repetitions, residual and concat), `build` (nodes and their
arguments), `arguments` (a block call's numbers and tensors),
`tensor_params` (which block parameters are tensors), `unknown` (what to
say of a name that is no layer), `inputs` (the input statement), `report`
(each mistake once), `network` (the whole network), `node` (the node record).
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from ..diagnostics import Diagnostics
from ..loader import Program
from .network import elaborate_network
from .node import LayerNode, layer_node

__all__ = ["LayerNode", "elaborate", "layer_node"]


def elaborate(program: Program, diags: Diagnostics, params: dict[str, Any] | None = None) -> nx.DiGraph:
    """Build the layer graph of the program's network, recording errors in
    `diags`; `params` set the network's parameters."""
    return elaborate_network(program, program.main.networks[0], diags, params or {})

"""Analyses of the layer graph: each a pure function; `analyse` runs them all."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..diagnostics import Diagnostics
from ..elaborate import layer_node
from ..layers.base import ReceptiveField, Shape
from . import counts, memory
from .receptive_field import receptive_fields
from .shapes import infer_shapes

MAX_PARAMS = 2**40  # about a trillion: beyond any model that fits a machine


@dataclass(frozen=True)
class Analysis:
    order: list[str]
    shapes: dict[str, Shape]
    params: dict[str, dict[str, Shape]]
    buffers: dict[str, dict[str, Shape]]
    macs: dict[str, int]
    fields: dict[str, ReceptiveField | None]

    def layer_params(self, node: str) -> int:
        return counts.count(self.params.get(node, {}))

    def layer_buffers(self, node: str) -> int:
        return counts.count(self.buffers.get(node, {}))

    @property
    def total_params(self) -> int:
        return sum(self.layer_params(n) for n in self.order)

    @property
    def total_buffers(self) -> int:
        return sum(self.layer_buffers(n) for n in self.order)

    @property
    def total_macs(self) -> int:
        return sum(self.macs.get(n, 0) for n in self.order)

    def memory(self, graph: nx.DiGraph, batch: int) -> dict[str, int]:
        b = memory.BYTES
        return {
            "param_bytes": b * (self.total_params + self.total_buffers),
            "inference_activation_bytes": b * batch * memory.inference_peak_elements(graph, self.order, self.shapes),
            "training_activation_bytes": b * batch * memory.training_elements(self.order, self.shapes),
            "batch": batch,
        }


def analyse(graph: nx.DiGraph, diags: Diagnostics) -> Analysis:
    """Shapes first; the counts only for layers whose shapes are known."""
    order = list(graph.nodes)  # elaboration adds every producer before its readers
    shapes = infer_shapes(graph, order, diags)
    params = counts.parameter_shapes(graph, shapes)
    result = Analysis(order, shapes, params, counts.buffer_shapes(graph, shapes),  # type: ignore[arg-type]
                      counts.macs(graph, shapes), receptive_fields(graph, order, shapes))
    if not diags.errors and result.total_params > MAX_PARAMS:
        largest = max(order, key=result.layer_params)
        diags.error(f"the network has {result.total_params:,} parameters, more than {MAX_PARAMS:,}",
                    layer_node(graph, largest).span,
                    f"the largest layer is '{largest}' with {result.layer_params(largest):,}; check its sizes")
    return result

"""Shape inference: the output shape of every layer, in topological order.

A layer whose input shape is unknown (an earlier error) is skipped, so each
mistake is reported once; identical errors from repeated block instances are
reported once, at the block's source line.
"""

from __future__ import annotations

import networkx as nx

from ..diagnostics import Diagnostic, Diagnostics, UserError
from ..layers.base import MAX_INT, Shape, fmt_shape, numel

MAX_ELEMENTS = 2**31 - 1  # per sample and tensor; larger is surely a typo


def infer_shapes(graph: nx.DiGraph, order: list[str], diags: Diagnostics) -> dict[str, Shape | None]:
    shapes: dict[str, Shape | None] = {}
    reported: set[tuple] = set()
    for node in order:
        data = graph.nodes[node]
        inputs = [shapes.get(source) for source in data["inputs"]]
        if any(shape is None for shape in inputs):
            shapes[node] = None
            continue
        try:
            shape = data["layer"].infer(inputs)
            _check_size(shape)
            shapes[node] = shape
        except UserError as exc:
            shapes[node] = None
            key = (data["span"], exc.message)
            if key not in reported:
                reported.add(key)
                diags.add(layer_error(graph, node, exc))
    return shapes


def layer_error(graph: nx.DiGraph, node: str, exc: UserError) -> Diagnostic:
    """A layer's error at its span, prefixed by its kind and name, with a
    note for the block instance it sits in."""
    data = graph.nodes[node]
    kind = data["layer"].kind
    notes = ()
    if data["trail"]:
        instance, call_span = data["trail"][-1]
        notes = (Diagnostic("note", f"in '{instance}', instantiated here", call_span),)
    return Diagnostic("error", f"{kind} '{node}' {exc.message}", exc.span or data["span"], exc.hints, notes)


def _check_size(shape: Shape) -> None:
    if any(d > MAX_INT for d in shape) or numel(shape) > MAX_ELEMENTS:
        raise UserError(f"output {fmt_shape(shape)} has {numel(shape):,} elements per sample, "
                        f"more than {MAX_ELEMENTS:,}", "check the input size and the channel counts")

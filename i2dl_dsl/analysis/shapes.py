"""Shape inference: the output shape of every layer, in topological order.

A layer whose input shape is unknown (an earlier error) is skipped, so each
mistake is reported once; identical errors from repeated block instances are
reported once, at the block's source line.
"""

from __future__ import annotations

import networkx as nx

from ..diagnostics import Diagnostic, Diagnostics, UserError
from ..elaborate import layer_node
from ..elaborate.report import instance_note
from ..layers.base import MAX_INT, Shape, fmt_shape, numel

MAX_ELEMENTS = 2**31 - 1  # per sample and tensor; larger is surely a typo


def infer_shapes(graph: nx.DiGraph, order: list[str], diags: Diagnostics) -> dict[str, Shape | None]:
    shapes: dict[str, Shape | None] = {}
    reported: set[tuple] = set()
    for name in order:
        node = layer_node(graph, name)
        inputs = [shapes.get(source) for source in node.inputs]
        if any(shape is None for shape in inputs):
            shapes[name] = None
            continue
        try:
            shape = node.layer.infer(inputs)
            _check_size(shape)
            shapes[name] = shape
        except UserError as exc:
            shapes[name] = None
            key = (node.span, exc.message)
            if key not in reported:
                reported.add(key)
                diags.add(layer_error(graph, name, exc))
    return shapes


def layer_error(graph: nx.DiGraph, node: str, exc: UserError) -> Diagnostic:
    """A layer's error at its span, prefixed by its kind and name, with a
    note for the block instance it sits in."""
    record = layer_node(graph, node)
    return Diagnostic("error", f"{record.layer.kind} '{node}' {exc.message}", exc.span or record.span, exc.hints,
                      instance_note(record.trail))


def _check_size(shape: Shape) -> None:
    if any(d > MAX_INT for d in shape) or numel(shape) > MAX_ELEMENTS:
        raise UserError(f"output {fmt_shape(shape)} has {numel(shape):,} elements per sample, "
                        f"more than {MAX_ELEMENTS:,}", "check the input size and the channel counts")

"""Inlay hints: at the end of each statement of the network, the output
shape of its chain, so a file reads like its --summary while it is typed."""

from __future__ import annotations

from dataclasses import dataclass

from ..elaborate import layer_node
from ..layers.base import fmt_shape
from ..syntax import ast
from .workspace import Snapshot


@dataclass(frozen=True)
class Hint:
    line: int        # 0-based, where the hint is shown
    character: int
    label: str


def shape_hints(snapshot: Snapshot) -> list[Hint]:
    """One hint per chain statement of the network body: the shape of the
    last layer it made."""
    found, module = snapshot.found, snapshot.module
    if found is None or module is None or not module.networks:
        return []
    last_of: dict[tuple[int, int], str] = {}  # the statement's (line, col) → its last layer
    starts = {(s.span.line, s.span.col): s for s in module.networks[0].body}
    for name in found.analysis.order:
        node = layer_node(found.graph, name)
        span = node.trail[0][1] if node.trail else node.span  # a block's layers: where the block is called
        for key, stmt in starts.items():
            if _inside(span, stmt.span):
                last_of[key] = name
    hints = []
    for key, stmt in starts.items():
        name = last_of.get(key)
        if name is None or found.analysis.shapes.get(name) is None or isinstance(stmt, ast.InputStmt):
            continue
        hints.append(Hint(stmt.span.end_line - 1, stmt.span.end_col - 1, f"  → {fmt_shape(found.analysis.shapes[name])}"))
    return hints


def _inside(span, outer) -> bool:
    return (outer.line, outer.col) <= (span.line, span.col) and (span.end_line, span.end_col) <= \
        (outer.end_line, outer.end_col)

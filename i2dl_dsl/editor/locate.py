"""What sits at a place in a file: a walk over the syntax tree's nodes (any
dataclass with a span, so new kinds of node are found without changes
here), and the layers of the checked graph that came from a place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

from ..diagnostics import Span
from ..elaborate import layer_node
from ..layers import REGISTRY
from ..syntax import ast
from .convert import contains, same_file
from .workspace import Snapshot


def nodes(tree: Any) -> Iterator[Any]:
    """Every syntax-tree node under `tree` (itself included), parents first."""
    if isinstance(tree, (tuple, list)):
        for item in tree:
            yield from nodes(item)
    elif dataclasses.is_dataclass(tree) and not isinstance(tree, type) and not isinstance(tree, Span):
        yield tree
        for f in dataclasses.fields(tree):
            yield from nodes(getattr(tree, f.name))


def path_at(module: ast.Module, line: int, character: int) -> list[Any]:
    """The nodes whose spans hold the 0-based position, outermost first."""
    found = []
    for node in nodes(module):
        span = getattr(node, "span", None)
        if isinstance(span, Span) and contains(span, line, character):
            found.append(node)
    return found


@dataclass(frozen=True)
class Target:
    """The word at a position and what it names: `layer`, `block`,
    `tensor`, `use`, `input` or `label`."""

    kind: str
    name: str
    span: Span          # the word itself
    node: Any           # the syntax node it belongs to


def target_at(snapshot: Snapshot, line: int, character: int) -> Target | None:
    module = snapshot.module
    if module is None:
        return None
    blocks = blocks_of(snapshot)
    for node in reversed(path_at(module, line, character)):
        found = _classify(node, blocks, line, character)
        if found is not None:
            return found
    return None


def _classify(node: Any, blocks: dict[str, ast.BlockDef], line: int, character: int) -> Target | None:
    if isinstance(node, ast.Call) and contains(node.name_span, line, character):
        kind = "layer" if node.name in REGISTRY else "block" if node.name in blocks else "tensor"
        return Target(kind, node.name, node.name_span, node)
    if isinstance(node, ast.Name):
        return Target("tensor", node.id, node.span, node)
    if isinstance(node, ast.Use):
        return Target("use", node.path, node.span, node)
    if isinstance(node, ast.BlockDef) and contains(node.name_span, line, character):
        return Target("block", node.name, node.name_span, node)
    if isinstance(node, ast.InputStmt):
        return Target("input", node.name, _word(node.span, node.name, "input "), node)
    for name, span in zip(getattr(node, "targets", ()), getattr(node, "target_spans", ())):
        if contains(span, line, character):  # `a, b = x -> chunk(2)`: one of several tensors named
            return Target("tensor", name, span, node)
    if isinstance(node, ast.ChainStmt) and (node.target or node.label):
        word = node.target or node.label
        span = _word(node.span, word)
        if contains(span, line, character):
            return Target("tensor" if node.target else "label", word, span, node)
    return None


def _word(span: Span, word: str, before: str = "") -> Span:
    """The span of `word` written at the start of `span` (after `before`)."""
    col = span.col + len(before)
    return Span(span.path, span.line, col, span.line, col + len(word))


def blocks_of(snapshot: Snapshot) -> dict[str, ast.BlockDef]:
    """The blocks the document sees: its own and those of the files it `use`s."""
    found = snapshot.found
    blocks = dict(found.program.blocks) if found is not None else {}
    if snapshot.module is not None:
        blocks.update({b.name: b for b in snapshot.module.blocks})
    return blocks


# ----------------------------------------------------------------- the graph


def layers_from(snapshot: Snapshot, span: Span) -> list[str]:
    """The graph's layers (in order) a call at `span` made: one per block
    instance it sits in."""
    found = snapshot.found
    if found is None:
        return []
    return [n for n in found.analysis.order if _same_span(layer_node(found.graph, n).span, span)]


def instances_of(snapshot: Snapshot, call_span: Span) -> list[list[str]]:
    """For a block call: the layers of each instance it made, in order."""
    found = snapshot.found
    if found is None:
        return []
    groups: dict[str, list[str]] = {}
    for n in found.analysis.order:
        for instance, span in layer_node(found.graph, n).trail:
            if _same_span(span, call_span):
                groups.setdefault(instance, []).append(n)
    return list(groups.values())


def _same_span(a: Span, b: Span) -> bool:
    return (a.line, a.col, a.end_line, a.end_col) == (b.line, b.col, b.end_line, b.end_col) and \
        (a.path == b.path or same_file(a.path, b.path))

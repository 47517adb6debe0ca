"""Go to definition, references, rename and the outline, from the syntax
tree's spans: blocks (across `use`d files), named tensors and `use` paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..diagnostics import Span
from ..syntax import ast
from .locate import Target, blocks_of, nodes, target_at
from .workspace import Snapshot


def definition(snapshot: Snapshot, line: int, character: int) -> Span | None:
    """Where the word at the position is defined: a block's name, the
    statement naming a tensor, the file a `use` reads (its start)."""
    target = target_at(snapshot, line, character)
    if target is None:
        return None
    if target.kind == "block":
        block = blocks_of(snapshot).get(target.name)
        return block.name_span if block is not None else None
    if target.kind == "use":
        file = Path(snapshot.path).parent / target.name
        return Span(str(file), 1, 1, 1, 1) if file.exists() else None
    if target.kind in ("tensor", "input"):
        return _tensor_definition(snapshot, target)
    return None


def _tensor_definition(snapshot: Snapshot, target: Target) -> Span | None:
    found = snapshot.found
    if found is not None and target.name in found.graph.graph.get("tensor_spans", {}):
        return found.graph.graph["tensor_spans"][target.name]
    for node in nodes(snapshot.module):  # a block's own tensors, or an unchecked file
        if isinstance(node, ast.InputStmt) and node.name == target.name:
            return Span(node.span.path, node.span.line, node.span.col + 6, node.span.line,
                        node.span.col + 6 + len(node.name))
        if isinstance(node, ast.ChainStmt) and node.target == target.name:
            return _start_word(node.span, target.name)
    return None


def _start_word(span: Span, word: str) -> Span:
    return Span(span.path, span.line, span.col, span.line, span.col + len(word))


def references(snapshot: Snapshot, line: int, character: int, include_declaration: bool = True) -> list[Span]:
    """Every place in the document that names what the word at the
    position names (blocks and tensors)."""
    target = target_at(snapshot, line, character)
    if target is None or target.kind not in ("block", "tensor", "input"):
        return []
    found: list[Span] = []
    for node in nodes(snapshot.module):
        if isinstance(node, ast.Call) and node.name == target.name:
            found.append(node.name_span)
        elif isinstance(node, ast.Name) and node.id == target.name and target.kind != "block":
            found.append(node.span)
        elif include_declaration and isinstance(node, ast.BlockDef) and node.name == target.name:
            found.append(node.name_span)
        elif include_declaration and isinstance(node, ast.ChainStmt) and node.target == target.name:
            found.append(_start_word(node.span, target.name))
        elif include_declaration and target.name in getattr(node, "targets", ()):
            found.append(node.target_spans[node.targets.index(target.name)])
    declared = definition(snapshot, line, character)
    if include_declaration and declared is not None and declared not in found and declared.line > 0:
        found.append(declared)
    return sorted(set(found), key=lambda s: (s.path, s.line, s.col))


def rename(snapshot: Snapshot, line: int, character: int, new_name: str) -> list[Span] | None:
    """The spans to replace by `new_name` (None: nothing renamable here).
    A block defined in a `use`d file is renamed there too."""
    if not new_name.isidentifier():
        return None
    spans = references(snapshot, line, character)
    return spans or None


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str          # network, block, train, label, tensor, input
    span: Span
    name_span: Span
    children: tuple["Symbol", ...] = ()


def symbols(module: ast.Module) -> list[Symbol]:
    """The outline: networks (with their labels, inputs and named tensors), blocks, train sections."""
    out = [Symbol(b.name, "block", b.span, b.name_span, _body_symbols(b.body)) for b in module.blocks]
    out += [Symbol(n.name, "network", n.span, n.name_span, _body_symbols(n.body)) for n in module.networks]
    out += [Symbol("train", "train", t.span, Span(t.span.path, t.span.line, t.span.col, t.span.line, t.span.col + 5))
            for t in module.trains]
    return sorted(out, key=lambda s: (s.span.line, s.span.col))


def _body_symbols(body) -> tuple[Symbol, ...]:
    out = []
    for stmt in body:
        if isinstance(stmt, ast.InputStmt):
            out.append(Symbol(stmt.name, "input", stmt.span, stmt.span))
        elif isinstance(stmt, ast.ChainStmt) and (stmt.label or stmt.target):
            word = stmt.label or stmt.target
            out.append(Symbol(word, "label" if stmt.label else "tensor", stmt.span, _start_word(stmt.span, word)))
        out += [Symbol(name, "tensor", stmt.span, span)  # several tensors named at once
                for name, span in zip(getattr(stmt, "targets", ()), getattr(stmt, "target_spans", ()))]
    return tuple(out)

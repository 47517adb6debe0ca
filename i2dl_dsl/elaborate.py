"""Elaboration: from the syntax tree to the layer graph.

Blocks are expanded with their arguments, repetitions unrolled, residual and
concat blocks turned into `add` and `concat` layers, and every layer given a
hierarchical dotted name in PyTorch's `state_dict` style (`layer2.0.conv1`).

The result is a `networkx.DiGraph` whose nodes are those names, with

    layer   the Layer instance (its kind, its converted arguments)
    inputs  the ordered tuple of the nodes it reads
    span    where in the source it came from
    trail   the block instances it sits in, outermost first, with their call spans

and graph attributes `network`, `input`, `output`, `groups` (dotted prefix →
what it is, for folding) and `train` (the parsed train section).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .diagnostics import Diagnostic, Diagnostics, Span, UserError, did_you_mean
from .layers import REGISTRY
from .layers.base import P
from .layers.io import Input
from .loader import Program
from .syntax import ast
from .values import bind, evaluate, match

BLOCK_INPUT = "in"  # the tensor a block body starts from
MAX_LAYERS = 200_000  # beyond this, a repetition count is surely a mistake


class _Skip(Exception):
    """An error was recorded; abandon the current chain."""


@dataclass
class Scope:
    prefix: str
    env: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, str] = field(default_factory=dict)
    taken: dict[str, Span | None] = field(default_factory=dict)
    counters: Counter = field(default_factory=Counter)

    def qualify(self, local: str) -> str:
        return f"{self.prefix}.{local}" if self.prefix else local

    def auto(self, stem: str) -> str:
        """The next free automatic name: conv1, conv2, ..."""
        while True:
            self.counters[stem] += 1
            name = f"{stem}{self.counters[stem]}"
            if name not in self.taken:
                self.taken[name] = None
                return name

    def child(self, local: str, env: dict[str, Any] | None = None) -> "Scope":
        return Scope(self.qualify(local), dict(self.env if env is None else env))


class Elaborator:
    def __init__(self, program: Program, diags: Diagnostics):
        self.program = program
        self.diags = diags
        self.graph = nx.DiGraph()
        self.graph.graph["groups"] = {}
        self.block_stack: list[str] = []
        self.trail: list[tuple[str, Span]] = []  # (block instance, call span) of the blocks being expanded

    # ------------------------------------------------------------- entry point
    def network(self, net: ast.NetworkDef) -> nx.DiGraph:
        self.graph.graph["network"] = net.name
        scope = Scope("")
        output = self.body(net.body, scope, None, top_level=True)
        if "input" not in self.graph.graph:
            self.diags.error(f"network '{net.name}' has no input", net.name_span,
                             "declare it first: input x[3, 32, 32] (images) or input x[T, F] (sequences)")
        self.graph.graph["output"] = output
        self._warn_unused(scope, output)
        return self.graph

    # ------------------------------------------------------------- statements
    def body(self, stmts, scope: Scope, current: str | None, top_level: bool = False) -> str | None:
        for stmt in stmts:
            if isinstance(stmt, ast.InputStmt):
                current = self.input(stmt, scope, top_level)
                continue
            try:
                current = self.chain(stmt.chain, scope, current, stmt.label)
            except _Skip:
                current = None
            if stmt.target is not None:
                self.name_tensor(stmt, scope, current)
        return current

    def input(self, stmt: ast.InputStmt, scope: Scope, top_level: bool) -> str | None:
        if not top_level:
            self.diags.error("`input` belongs in the network, not in a block", stmt.span,
                             f"a block starts from the tensor it is applied to, named '{BLOCK_INPUT}'")
            return None
        if "input" in self.graph.graph:
            self.diags.error("a network has one input; this is a second", stmt.span)
            return None
        dims = []
        for dim in stmt.dims:
            try:
                value = evaluate(dim.value, {})
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
                    raise UserError(f"input dimensions are positive integers, got {value!r}", span=dim.span)
            except UserError as exc:
                self.diags.add(exc.diagnostic(dim.span))
                return None
            dims.append(value)
        if not 1 <= len(dims) <= 3:
            self.diags.error(f"input '{stmt.name}' has {len(dims)} dimensions; expected [C, H, W], [T, F] or [F]",
                             stmt.span, "the batch axis is implicit: leave it out")
            return None
        node = stmt.name
        layer = Input(tuple(dims), any(d.name for d in stmt.dims))
        self.graph.add_node(node, layer=layer, inputs=(), span=stmt.span, trail=())
        self.graph.graph["input"] = node
        scope.tensors[stmt.name] = node
        scope.taken[stmt.name] = stmt.span
        return node

    def name_tensor(self, stmt: ast.ChainStmt, scope: Scope, node: str | None) -> None:
        name = stmt.target
        if name in REGISTRY or name in self.program.blocks:
            what = "a layer" if name in REGISTRY else "a block"
            self.diags.error(f"'{name}' is {what}; a tensor needs another name", stmt.span)
        elif name in scope.tensors:
            self.diags.error(f"tensor '{name}' is already defined", stmt.span, "give each named tensor its own name")
        if node is not None:
            scope.tensors[name] = node
        else:
            scope.tensors.setdefault(name, None)  # known, but broken: no follow-on errors

    # ------------------------------------------------------------- chains
    def chain(self, chain: ast.Chain, scope: Scope, current: str | None, label: str | None) -> str | None:
        count = len(chain.elements)
        starts_with_tensor = self._is_tensor_ref(chain.elements[0], scope)
        layers = count - starts_with_tensor
        if label is not None:
            self._claim(scope, label, chain.span)
            if layers > 1:
                self.graph.graph["groups"][scope.qualify(label)] = "sequence"
        position = 0
        for index, element in enumerate(chain.elements):
            if index == 0 and starts_with_tensor:
                current = scope.tensors[element.name]
                if current is None:
                    raise _Skip()
                continue
            if label is not None and layers > 1 and isinstance(element, ast.Repeat):
                # Copies continue the chain's numbering, as nn.Sequential(a, *[b] * n) does.
                for _ in range(self._repeat_count(element, scope)):
                    current = self.call(element.call, scope, current, f"{label}.{position}", first=False)
                    position += 1
                continue
            local = None
            if label is not None:
                local = label if layers == 1 else f"{label}.{position}"
            current = self.element(element, scope, current, local, first=index == 0)
            position += 1
        return current

    def _is_tensor_ref(self, element, scope: Scope) -> bool:
        return isinstance(element, ast.Call) and not element.has_parens and element.name in scope.tensors

    def element(self, element, scope: Scope, current: str | None, local: str | None, first: bool) -> str | None:
        if isinstance(element, ast.Residual):
            return self.residual(element, scope, current, local)
        if isinstance(element, ast.ConcatBlock):
            return self.concat_block(element, scope, current, local)
        if isinstance(element, ast.Repeat):
            return self.repeat(element, scope, current, local)
        return self.call(element, scope, current, local, first)

    def call(self, call: ast.Call, scope: Scope, current: str | None, local: str | None, first: bool) -> str | None:
        if call.name in scope.tensors and not call.has_parens:
            self._fail(f"tensor '{call.name}' can only start a chain", call.span,
                       f"to join it to this chain use add({call.name}) or concat({call.name})")
        if call.name in REGISTRY:
            return self.layer(call, scope, current, local, first)
        if call.name in self.program.blocks:
            return self.block(call, scope, current, local)
        known = [*REGISTRY, *self.program.blocks, *(t for t in scope.tensors)]
        self._fail(f"unknown layer or block '{call.name}'", call.name_span, did_you_mean(call.name, known))

    def layer(self, call: ast.Call, scope: Scope, current: str | None, local: str | None, first: bool) -> str | None:
        cls = REGISTRY[call.name]
        if cls.inputs is None:
            return self.merge(call, scope, current, local, first)
        try:
            args = bind(call.name, cls.signature, call.args, scope.env, call.span)
        except UserError as exc:
            self.diags.add(exc.diagnostic(call.span))
            raise _Skip() from None
        if current is None:
            raise _Skip()
        return self.add_node(cls(args), scope, local, call.span, (current,))

    def merge(self, call: ast.Call, scope: Scope, current: str | None, local: str | None, first: bool) -> str | None:
        cls = REGISTRY[call.name]
        sources = [] if first else [current]
        for arg in call.args:
            if arg.name is not None or not isinstance(arg.value, ast.Name) or arg.value.id not in scope.tensors:
                shown = arg.value.id if isinstance(arg.value, ast.Name) else "this"
                hint = did_you_mean(shown, scope.tensors) if isinstance(arg.value, ast.Name) else ""
                self._fail(f"{call.name} joins named tensors; '{shown}' is not one", arg.span,
                           hint or f"name a tensor first: t = ... , then {call.name}(t, ...)")
            sources.append(scope.tensors[arg.value.id])
        if len(sources) < 2:
            self._fail(f"{call.name} needs at least two tensors, got {len(sources)}", call.span,
                       f"e.g. {call.name}(a, b), or -> {call.name}(b) to join b to this chain")
        if any(s is None for s in sources):
            raise _Skip()
        return self.add_node(cls({}), scope, local, call.span, tuple(sources))

    # ------------------------------------------------------------- blocks
    def block(self, call: ast.Call, scope: Scope, current: str | None, local: str | None) -> str | None:
        block = self.program.blocks[call.name]
        if call.name in self.block_stack:
            cycle = " -> ".join(self.block_stack[self.block_stack.index(call.name):] + [call.name])
            self._fail(f"block '{call.name}' uses itself: {cycle}", call.span, "blocks cannot be recursive")
        env = self.bind_block(block, call, scope)
        local = local or scope.auto(call.name)
        if local not in scope.taken:
            scope.taken[local] = call.span
        inner = scope.child(local, env)
        inner.tensors[BLOCK_INPUT] = current
        self.graph.graph["groups"][inner.prefix] = call.name
        self.block_stack.append(call.name)
        self.trail.append((inner.prefix, call.span))
        try:
            return self.body(block.body, inner, current)
        finally:
            self.block_stack.pop()
            self.trail.pop()

    def bind_block(self, block: ast.BlockDef, call: ast.Call, scope: Scope) -> dict[str, Any]:
        what = f"block '{block.name}'"
        signature = [P(p.name, None) for p in block.params]  # type: ignore[arg-type]
        try:
            values, _ = match(what, signature, call.args, scope.env)
            env: dict[str, Any] = {}
            for param in block.params:
                if param.name in values:
                    env[param.name] = values[param.name]
                elif param.default is not None:
                    env[param.name] = evaluate(param.default, env)
                else:
                    raise UserError(f"{what} needs the argument '{param.name}'",
                                    f"the signature is {block.name}({', '.join(p.name for p in block.params)})")
        except UserError as exc:
            self.diags.add(exc.diagnostic(call.span))
            raise _Skip() from None
        return env

    def _repeat_count(self, rep: ast.Repeat, scope: Scope) -> int:
        try:
            count = evaluate(rep.count, scope.env)
        except UserError as exc:
            self.diags.add(exc.diagnostic(rep.span))
            raise _Skip() from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            self._fail(f"a repetition count is a positive integer, got {count!r}", rep.count.span)
        if count + self.graph.number_of_nodes() > MAX_LAYERS:
            self._fail(f"repeating {count} times makes more than {MAX_LAYERS} layers", rep.count.span)
        return count

    def repeat(self, rep: ast.Repeat, scope: Scope, current: str | None, local: str | None) -> str | None:
        count = self._repeat_count(rep, scope)
        local = local or scope.auto(rep.call.name)
        scope.taken.setdefault(local, rep.span)
        group = scope.child(local)
        self.graph.graph["groups"][group.prefix] = f"{rep.call.name} ×{count}"
        for index in range(count):
            current = self.call(rep.call, scope, current, f"{local}.{index}", first=False)
        return current

    # ------------------------------------------------------------- residual and concat
    def residual(self, res: ast.Residual, scope: Scope, current: str | None, local: str | None) -> str | None:
        body_scope = scope
        if local is not None:
            body_scope = scope.child(local)
            self.graph.graph["groups"][body_scope.prefix] = "residual"
            scope.taken.setdefault(local, res.span)
        body_out = self.body(res.body, body_scope, current)
        shortcut_out = current
        if res.shortcut is not None:
            name = "shortcut" if "shortcut" not in body_scope.taken else body_scope.auto("shortcut")
            body_scope.taken[name] = res.span
            inner = body_scope.child(name)
            inner.tensors[BLOCK_INPUT] = current
            self.graph.graph["groups"][inner.prefix] = "shortcut"
            shortcut_out = self.body(res.shortcut, inner, current)
        if body_out is None or shortcut_out is None:
            raise _Skip()
        add = self._closing_merge("add", "residual", body_scope, res.span, (shortcut_out, body_out))
        self.graph.nodes[add]["layer"].has_shortcut = res.shortcut is not None
        return add

    def concat_block(self, block: ast.ConcatBlock, scope: Scope, current: str | None, local: str | None) -> str | None:
        outer = scope
        if local is not None:
            outer = scope.child(local)
            self.graph.graph["groups"][outer.prefix] = "concat"
            scope.taken.setdefault(local, block.span)
        if len(block.branches) < 2:
            self._fail(f"concat needs at least two branches, got {len(block.branches)}", block.span)
        outputs = []
        for branch in block.branches:
            inner = outer.child(outer.auto("branch"))
            inner.tensors[BLOCK_INPUT] = current
            self.graph.graph["groups"][inner.prefix] = "branch"
            outputs.append(self.body(branch.body, inner, current))
        if any(o is None for o in outputs):
            raise _Skip()
        return self._closing_merge("concat", "concat", outer, block.span, tuple(outputs))

    def _closing_merge(self, kind: str, origin: str, scope: Scope, span: Span, sources: tuple[str, ...]) -> str:
        layer = REGISTRY[kind]({})  # type: ignore[arg-type]
        layer.origin = origin  # type: ignore[attr-defined]
        return self.add_node(layer, scope, None, span, sources)

    # ------------------------------------------------------------- helpers
    def add_node(self, layer, scope, local: str | None, span: Span, inputs: tuple[str, ...]) -> str:
        if local is None:
            local = scope.auto(layer.prefix)
        name = scope.qualify(local)
        if name in self.graph:
            self._fail(f"two layers are named '{name}'", span, "labels must be unique within a block")
        self.graph.add_node(name, layer=layer, inputs=inputs, span=span, trail=tuple(self.trail))
        for source in inputs:
            self.graph.add_edge(source, name)
        return name

    def _claim(self, scope: Scope, label: str, span: Span) -> None:
        if label in scope.taken:
            earlier = scope.taken[label]
            notes = [Diagnostic("note", f"'{label}' is first used here", earlier)] if earlier else []
            self.diags.error(f"duplicate label '{label}'", span, "labels must be unique within a block", notes=notes)
            raise _Skip()
        scope.taken[label] = span

    def _fail(self, message: str, span: Span, *hints: str):
        self.diags.error(message, span, *hints)
        raise _Skip()

    def _warn_unused(self, scope: Scope, output: str | None) -> None:
        for name, node in scope.tensors.items():
            if node is not None and node != output and self.graph.out_degree(node) == 0:
                span = self.graph.nodes[node]["span"]
                self.diags.warning(f"tensor '{name}' is computed but never used", span,
                                   "join it with add(...) or concat(...), or remove it")


def elaborate(program: Program, diags: Diagnostics) -> nx.DiGraph:
    """Build the layer graph of the program's network, recording errors in `diags`."""
    graph = Elaborator(program, diags).network(program.main.networks[0])
    graph.graph["path"] = program.main.path
    return graph

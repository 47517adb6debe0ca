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
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from .diagnostics import Diagnostic, Diagnostics, Span, UserError, did_you_mean
from .layers import REGISTRY
from .layers.base import MAX_INT, REQUIRED, P, numel
from .layers.io import Input
from .loader import Program
from .syntax import ast
from .values import bind, evaluate, expr_text, match, signature_text

BLOCK_INPUT = "in"  # the tensor a block body starts from
MAX_LAYERS = 50_000  # beyond this, a repetition count is surely a mistake (and checking gets slow)
MAX_NESTING = 100  # blocks inside blocks; deeper is surely a mistake


class _Skip(Exception):
    """An error was recorded; abandon the current element of the chain."""


class _Abort(Exception):
    """An error was recorded that makes going on pointless (the network is
    far too large)."""


@dataclass
class Scope:
    prefix: str
    env: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, str | None] = field(default_factory=dict)
    tensor_spans: dict[str, Span] = field(default_factory=dict)
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

    def child(self, local: str, env: dict[str, Any] | None = None, tensors: bool = False) -> "Scope":
        """A nested namespace for names. A block body (`env` given) sees only
        its parameters; residual and concat bodies (`tensors`) also see the
        tensors named around them."""
        return Scope(self.qualify(local), dict(self.env if env is None else env),
                     dict(self.tensors) if tensors else {}, dict(self.tensor_spans) if tensors else {})


class Elaborator:
    def __init__(self, program: Program, diags: Diagnostics):
        self.program = program
        self.diags = diags
        self.graph = nx.DiGraph()
        self.graph.graph["groups"] = {}
        self.block_stack: list[str] = []
        self.trail: list[tuple[str, Span]] = []  # (block instance, call span) of the blocks being expanded
        self.reported: set[tuple[Span | None, str]] = set()
        self.blamed: set[tuple[str, str]] = set()  # (block instance, parameter) with a bad value reported
        self.input_span: Span | None = None  # where the input is declared, even when it is wrong
        self.expanded = 0  # layers and blocks instantiated, built or only checked

    # ------------------------------------------------------------- entry point
    def network(self, net: ast.NetworkDef, overrides: dict[str, Any] | None = None) -> nx.DiGraph:
        self.graph.graph["network"] = net.name
        scope = Scope("", self.network_params(net, overrides or {}))
        errors_before = len(self.diags.errors)
        self._check_input_first(net)
        try:
            output = self.body(net.body, scope, None, top_level=True)
        except _Abort:
            # What was built is a fraction of a network too large to check.
            self.graph.remove_nodes_from(list(self.graph.nodes))
            output = None
        except RecursionError:
            self.diags.error(f"network '{net.name}' is nested too deeply to check", net.name_span,
                             "use fewer blocks inside blocks, or fewer nested residual and concat blocks")
            output = None
        if self.input_span is None:
            self.diags.error(f"network '{net.name}' has no input", net.name_span,
                             "declare it first: input x[3, 32, 32] (images) or input x[T, F] (sequences)")
        self.graph.graph["output"] = output
        # After an error, a chain that was cut short may have been the reader
        # of a tensor: warning about it would be noise.
        if len(self.diags.errors) == errors_before:
            self._warn_unused(scope, output)
        return self.graph

    def network_params(self, net: ast.NetworkDef, overrides: dict[str, Any]) -> dict[str, Any]:
        """Defaults of `network Net(p=...)`, replaced by the values given from
        outside (a search, `--param`)."""
        env: dict[str, Any] = {}
        for param in net.params:
            if param.default is None:
                self.diags.error(f"network parameter '{param.name}' needs a default value", param.span,
                                 f"e.g. network {net.name}({param.name}=...)")
                continue
            try:
                env[param.name] = overrides.get(param.name, evaluate(param.default, env))
            except UserError as exc:
                self._report(exc.diagnostic(param.span))
        unknown = [k for k in overrides if k not in env]
        for key in unknown:
            self.diags.error(f"network '{net.name}' has no parameter '{key}'", net.name_span,
                             did_you_mean(key, env) or (f"its parameters: {', '.join(env)}" if env else
                                                        f"declare one: network {net.name}({key}=...)"))
        self.graph.graph["params"] = dict(env)
        return env

    def _check_input_first(self, net: ast.NetworkDef) -> None:
        inputs = [s for s in net.body if isinstance(s, ast.InputStmt)]
        if inputs and net.body[0] is not inputs[0]:
            first = net.body[0]
            self.diags.error("the network's first statement must be its input", first.span,
                             f"move `input {inputs[0].name}[...]` (line {inputs[0].span.line}) to the top")

    # ------------------------------------------------------------- statements
    def body(self, stmts, scope: Scope, current: str | None, top_level: bool = False) -> str | None:
        for stmt in stmts:
            if isinstance(stmt, ast.InputStmt):
                current = self.input(stmt, scope, top_level)
                continue
            try:
                label_span = _word_span(stmt.span, stmt.label) if stmt.label else None
                current = self.chain(stmt.chain, scope, current, stmt.label, label_span)
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
        if self.input_span is not None:
            note = Diagnostic("note", "the first input is declared here", self.input_span)
            self.diags.error("a network has one input; this is a second", stmt.span, notes=[note])
            return None
        self.input_span = stmt.span
        dims = self._input_dims(stmt)
        if dims is None:
            scope.tensors[stmt.name] = None  # known, but broken: no follow-on errors
            return None
        node = stmt.name
        layer = Input(dims, any(d.name for d in stmt.dims))
        self.graph.add_node(node, layer=layer, inputs=(), span=stmt.span, trail=())
        self.graph.graph["input"] = node
        scope.tensors[stmt.name] = node
        scope.tensor_spans[stmt.name] = stmt.span
        scope.taken[stmt.name] = stmt.span
        return node

    def _input_dims(self, stmt: ast.InputStmt) -> tuple[int, ...] | None:
        dims = []
        for dim in stmt.dims:
            try:
                value = evaluate(dim.value, {})
            except UserError as exc:
                self.diags.add(exc.diagnostic(dim.span))
                return None
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
                shown = f"'{value}'" if isinstance(value, str) else value
                self.diags.error(f"input dimensions are integers from 1 to {MAX_INT}, got {shown}", dim.span)
                return None
            dims.append(value)
        if not 1 <= len(dims) <= 3:
            self.diags.error(f"input '{stmt.name}' has {len(dims)} dimensions; expected [C, H, W], [T, F] or [F]",
                             stmt.span, "the batch axis is implicit: leave it out")
            return None
        if numel(dims) > MAX_INT:
            self.diags.error(f"input '{stmt.name}' has {numel(dims):,} values per sample, more than {MAX_INT:,}",
                             stmt.span, "check the sizes: the batch axis is implicit")
            return None
        return tuple(dims)

    def name_tensor(self, stmt: ast.ChainStmt, scope: Scope, node: str | None) -> None:
        name = stmt.target
        span = _word_span(stmt.span, name)
        if name in REGISTRY or name in self.program.blocks:
            what = "a layer" if name in REGISTRY else "a block"
            self.diags.error(f"'{name}' is {what}; a tensor needs another name", span)
            return
        if name == BLOCK_INPUT and scope.prefix and BLOCK_INPUT in scope.tensors:
            self.diags.error(f"'{BLOCK_INPUT}' is the tensor the block starts from; it cannot be redefined", span,
                             "give this tensor another name")
            return
        if name in scope.tensors:
            earlier = scope.tensor_spans.get(name)
            notes = [Diagnostic("note", f"'{name}' is first defined here", earlier)] if earlier else []
            self.diags.error(f"tensor '{name}' is already defined", span, "give each named tensor its own name",
                             notes=notes)
            return
        scope.tensors[name] = node  # None: known, but broken, so no follow-on errors
        scope.tensor_spans[name] = span

    # ------------------------------------------------------------- chains
    def chain(self, chain: ast.Chain, scope: Scope, current: str | None, label: str | None,
              label_span: Span | None = None) -> str | None:
        """The chain's output node. Once an element fails, the rest of the
        chain is still checked (names, arguments), but nothing more is built."""
        count = len(chain.elements)
        starts_with_tensor = self._is_tensor_ref(chain.elements[0], scope)
        layers = count - starts_with_tensor
        if label is not None and not self._claim(scope, label, label_span or chain.span):
            label = None
        if label is not None and layers > 1:
            self.graph.graph["groups"][scope.qualify(label)] = "sequence"
        position = 0
        for index, element in enumerate(chain.elements):
            if index == 0 and starts_with_tensor:
                current = scope.tensors[element.name]
                continue
            try:
                if label is not None and layers > 1 and isinstance(element, ast.Repeat):
                    # Copies continue the chain's numbering, as nn.Sequential(a, *[b] * n) does.
                    current, position = self._numbered_copies(element, scope, current, label, position)
                    continue
                local = None
                if label is not None:
                    local = label if layers == 1 else f"{label}.{position}"
                current = self.element(element, scope, current, local, first=index == 0)
            except _Skip:
                current = None
            position += 1
        return current

    def _numbered_copies(self, rep: ast.Repeat, scope: Scope, current: str | None, label: str,
                         position: int) -> tuple[str | None, int]:
        for _ in range(self._repeat_count(rep, scope)):
            current = self.call(rep.call, scope, current, f"{label}.{position}", first=False)
            position += 1
            if current is None:
                break  # every copy would be checked the same way
        return current, position

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
        self.expanded += 1
        if self.expanded > MAX_LAYERS:
            self._too_large(call.span)
        if call.name in scope.tensors and not call.has_parens:
            self._fail(f"tensor '{call.name}' can only start a chain", call.span,
                       f"to join it to this chain use add({call.name}) or concat({call.name})")
        if call.name in REGISTRY:
            return self.layer(call, scope, current, local, first)
        if call.name in self.program.blocks:
            return self.block(call, scope, current, local)
        self._unknown(call, scope, first)
        return None

    def _unknown(self, call: ast.Call, scope: Scope, first: bool) -> None:
        name = call.name
        known = [*REGISTRY, *self.program.blocks]
        if name == BLOCK_INPUT and BLOCK_INPUT not in scope.tensors:
            network_input = self.graph.graph.get("input")
            self._fail(f"'{BLOCK_INPUT}' is the tensor a block starts from; the network has no '{BLOCK_INPUT}'",
                       call.name_span, f"the network's input is '{network_input}'" if network_input else "")
        if first and not call.has_parens:
            self._fail(f"unknown tensor, layer or block '{name}'", call.name_span,
                       did_you_mean(name, [*scope.tensors, *known])
                       or "a tensor is named before it is used: t = ... -> ...")
        self._fail(f"unknown layer or block '{name}'", call.name_span, did_you_mean(name, known))

    def layer(self, call: ast.Call, scope: Scope, current: str | None, local: str | None, first: bool) -> str | None:
        cls = REGISTRY[call.name]
        if cls.inputs is None:
            return self.merge(call, scope, current, local, first)
        try:
            args = bind(call.name, cls.signature, call.args, scope.env, call.span)
        except UserError as exc:
            if not self._blamed_already(exc):
                self._report(exc.diagnostic(call.span))
            raise _Skip() from None
        if current is None:
            return None
        return self.add_node(cls(args), scope, local, call.span, (current,))

    def merge(self, call: ast.Call, scope: Scope, current: str | None, local: str | None, first: bool) -> str | None:
        cls = REGISTRY[call.name]
        sources = [] if first else [current]
        for arg in call.args:
            if arg.name is not None or not isinstance(arg.value, ast.Name):
                self._fail(f"{call.name} joins named tensors; this is not a tensor name", arg.span,
                           f"name a tensor first: t = ... , then {call.name}(t, ...)")
            name = arg.value.id
            if name not in scope.tensors:
                self._fail(f"unknown tensor '{name}' in {call.name}(...)", arg.span,
                           did_you_mean(name, scope.tensors) or f"name it first: {name} = ... -> ...")
            sources.append(scope.tensors[name])
        if len(sources) < 2:
            self._fail(f"{call.name} needs at least two tensors, got {len(sources)}", call.span,
                       f"e.g. {call.name}(a, b), or -> {call.name}(b) to join b to this chain")
        if any(s is None for s in sources):
            return None
        return self.add_node(cls({}), scope, local, call.span, tuple(sources))  # type: ignore[arg-type]

    # ------------------------------------------------------------- blocks
    def block(self, call: ast.Call, scope: Scope, current: str | None, local: str | None) -> str | None:
        block = self.program.blocks[call.name]
        if call.name in self.block_stack:
            cycle = " -> ".join(self.block_stack[self.block_stack.index(call.name):] + [call.name])
            self._fail(f"block '{call.name}' uses itself: {cycle}", call.span, "blocks cannot be recursive")
        if len(self.block_stack) >= MAX_NESTING:
            self._fail(f"blocks are nested more than {MAX_NESTING} deep here", call.span)
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
        signature = [P(p.name, None, REQUIRED if p.default is None else expr_text(p.default))  # type: ignore[arg-type]
                     for p in block.params]
        try:
            values, _, _ = match(what, signature, call.args, scope.env)
            env: dict[str, Any] = {}
            for param in block.params:
                if param.name in values:
                    env[param.name] = values[param.name]
                elif param.default is not None:
                    env[param.name] = evaluate(param.default, env)
                else:
                    raise UserError(f"{what} needs the argument '{param.name}'",
                                    f"the signature is {block.name}({signature_text(signature)})")
        except UserError as exc:
            note = Diagnostic("note", f"block '{block.name}' is defined here", block.name_span)
            diagnostic = exc.diagnostic(call.span)
            self._report(replace(diagnostic, notes=(*diagnostic.notes, note)))
            raise _Skip() from None
        return env

    def _repeat_count(self, rep: ast.Repeat, scope: Scope) -> int:
        try:
            count = evaluate(rep.count, scope.env)
        except UserError as exc:
            self._report(exc.diagnostic(rep.span))
            raise _Skip() from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            shown = f"'{count}'" if isinstance(count, str) else count
            self._fail(f"a repetition count is a positive integer, got {shown}", rep.count.span,
                       "leave the '* n' out to use the layer once" if count == 0 else "")
        if count > MAX_LAYERS:
            self._fail(f"repeating {count:,} times makes more than {MAX_LAYERS:,} layers", rep.count.span)
        return count

    def repeat(self, rep: ast.Repeat, scope: Scope, current: str | None, local: str | None) -> str | None:
        count = self._repeat_count(rep, scope)
        local = local or scope.auto(rep.call.name)
        scope.taken.setdefault(local, rep.span)
        group = scope.child(local)
        self.graph.graph["groups"][group.prefix] = f"{rep.call.name} ×{count}"
        for index in range(count):
            current = self.call(rep.call, scope, current, f"{local}.{index}", first=False)
            if current is None:
                break  # every copy would be checked the same way
        return current

    # ------------------------------------------------------------- residual and concat
    def residual(self, res: ast.Residual, scope: Scope, current: str | None, local: str | None) -> str | None:
        body_scope = scope
        if local is not None:
            body_scope = scope.child(local, tensors=True)
            self.graph.graph["groups"][body_scope.prefix] = "residual"
            scope.taken.setdefault(local, res.span)
        body_out = self.body(res.body, body_scope, current)
        shortcut_out = current
        if res.shortcut is not None:
            name = "shortcut" if "shortcut" not in body_scope.taken else body_scope.auto("shortcut")
            body_scope.taken[name] = res.span
            inner = body_scope.child(name, tensors=True)
            inner.tensors[BLOCK_INPUT] = current
            self.graph.graph["groups"][inner.prefix] = "shortcut"
            shortcut_out = self.body(res.shortcut, inner, current)
        if body_out is None or shortcut_out is None:
            return None
        add = self._closing_merge("add", "residual", body_scope, res.span, (shortcut_out, body_out))
        self.graph.nodes[add]["layer"].has_shortcut = res.shortcut is not None
        return add

    def concat_block(self, block: ast.ConcatBlock, scope: Scope, current: str | None, local: str | None) -> str | None:
        outer = scope
        if local is not None:
            outer = scope.child(local, tensors=True)
            self.graph.graph["groups"][outer.prefix] = "concat"
            scope.taken.setdefault(local, block.span)
        outputs = []
        for branch in block.branches:
            inner = outer.child(outer.auto("branch"), tensors=True)
            inner.tensors[BLOCK_INPUT] = current
            self.graph.graph["groups"][inner.prefix] = "branch"
            outputs.append(self.body(branch.body, inner, current))
        if len(block.branches) < 2:
            self._fail(f"concat needs at least two branches, got {len(block.branches)}", block.span,
                       "concat { branch { ... } branch { ... } }")
        if any(o is None for o in outputs):
            return None
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

    def _claim(self, scope: Scope, label: str, span: Span) -> bool:
        """Take `label` in this scope; False (and an error) when it is taken."""
        if label in scope.taken:
            earlier = scope.taken[label]
            notes = [Diagnostic("note", f"'{label}' is first used here", earlier)] if earlier else []
            self.diags.error(f"duplicate label '{label}'", span, "labels must be unique within a block", notes=notes)
            return False
        scope.taken[label] = span
        return True

    def _blamed_already(self, exc: UserError) -> bool:
        """Whether the block parameters a bad value came from have been
        reported in this block instance: one bad argument, one error."""
        if not exc.depends_on or not self.trail:
            return False
        instance = self.trail[-1][0]
        blamed = {(instance, name) for name in exc.depends_on}
        if blamed <= self.blamed:
            return True
        self.blamed |= blamed
        return False

    def _report(self, diagnostic: Diagnostic) -> None:
        """An error in a block body, once, with a note for the instance that
        showed it (the same mistake in every instance is one mistake)."""
        key = (diagnostic.span, diagnostic.message)
        if key in self.reported:
            return
        self.reported.add(key)
        if self.trail:
            instance, call_span = self.trail[-1]
            note = Diagnostic("note", f"in '{instance}', instantiated here", call_span)
            diagnostic = Diagnostic(diagnostic.severity, diagnostic.message, diagnostic.span, diagnostic.hints,
                                    (*diagnostic.notes, note))
        self.diags.add(diagnostic)

    def _fail(self, message: str, span: Span, *hints: str):
        self._report(Diagnostic("error", message, span, tuple(h for h in hints if h)))
        raise _Skip()

    def _too_large(self, span: Span):
        where = self.trail[0][1] if self.trail else span
        self.diags.error(f"the network expands to more than {MAX_LAYERS:,} layers", where,
                         "check the repetition counts")
        raise _Abort()

    def _warn_unused(self, scope: Scope, output: str | None) -> None:
        for name, node in scope.tensors.items():
            if node is None or node == output or node == self.graph.graph.get("input"):
                continue
            if self.graph.out_degree(node) == 0:
                self.diags.warning(f"tensor '{name}' is computed but never used", scope.tensor_spans.get(name),
                                   "join it with add(...) or concat(...), or remove it")


def _word_span(span: Span, word: str) -> Span:
    """The span of the name a statement begins with (`e1` in `e1 = x -> ...`)."""
    return Span(span.path, span.line, span.col, span.line, span.col + len(word))


def elaborate(program: Program, diags: Diagnostics, params: dict[str, Any] | None = None) -> nx.DiGraph:
    """Build the layer graph of the program's network, recording errors in
    `diags`; `params` set the network's parameters."""
    graph = Elaborator(program, diags).network(program.main.networks[0], params)
    graph.graph["path"] = program.main.path
    return graph

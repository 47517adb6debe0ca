"""Expansion: chains, blocks (with their arguments), repetitions, residual
and concat blocks, down to layer calls that the graph builder turns into
nodes. Names follow PyTorch's `state_dict` (`layer2.0.conv1`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn, Sequence

from ..diagnostics import Diagnostic, Span, UserError, did_you_mean
from ..layers import REGISTRY
from ..layers.merge import merge_calls
from ..layers.pieces import gives_pieces
from ..loader import Program
from ..syntax import ast
from ..values import evaluate
from .build import LayerGraphBuilder
from .inputs import NetworkInput
from .report import Reporter, Skip
from .scope import BLOCK_INPUT, Scope, word_span
from .arguments import Tensors, bind_arguments
from .tensor_params import tensor_params
from .unknown import unknown_hint

MAX_LAYERS = 50_000  # beyond this, a repetition count is surely a mistake (and checking gets slow)
MAX_NESTING = 100  # blocks inside blocks; deeper is surely a mistake


class Expander:
    """Walks a network's statements, expanding what they call."""

    def __init__(self, program: Program, reporter: Reporter, builder: LayerGraphBuilder):
        self.program = program
        self.reporter = reporter
        self.diags = reporter.diags
        self.builder = builder
        self.input = NetworkInput(reporter.diags, builder)
        self.block_stack: list[str] = []
        self.expanded = 0  # layers and blocks instantiated, built or only checked
        self._tensor_params: dict[str, dict[str, Span]] = {}  # block → its tensor parameters

    # ------------------------------------------------------------- statements
    def body(self, stmts: Sequence[Any], scope: Scope, current: str | None, top_level: bool = False) -> str | None:
        """The output node of a body's last statement."""
        pieces: ast.PiecesStmt | None = None  # the statement before, when it gave named pieces
        for stmt in stmts:
            if isinstance(stmt, ast.InputStmt):
                current = self.input.statement(stmt, scope, top_level)
                continue
            if isinstance(stmt, ast.PiecesStmt):
                self.pieces(stmt, scope, current)
                current, pieces = None, stmt  # several tensors: the next chain starts from one of them
                continue
            if pieces is not None and not self._starts_alone(stmt.chain, scope):
                self._error("this chain has no tensor to start from: the statement before gives the pieces "
                            + ", ".join(pieces.targets), stmt.chain.elements[0].span,
                            f"start it from one of them: {pieces.targets[0]} -> ...")
                current = None
            pieces = None
            try:
                label_span = word_span(stmt.span, stmt.label) if stmt.label else None
                current = self.chain(stmt.chain, scope, current, stmt.label, label_span)
            except Skip:
                current = None
            if stmt.target is not None:
                self.name_tensor(stmt, scope, current)
        if pieces is not None:
            self._error(f"the last statement gives the pieces {', '.join(pieces.targets)}, but a body ends in "
                        "one tensor", pieces.span, f"join them, e.g. concat({', '.join(pieces.targets)})")
        return current

    def _error(self, message: str, span: Span, *hints: str) -> None:
        """An error that does not stop the body (once per block, with its instance)."""
        self.reporter.report(Diagnostic("error", message, span, hints))

    def pieces(self, stmt: ast.PiecesStmt, scope: Scope, current: str | None) -> None:
        """`a, b = x -> chunk(2)`: the chain up to its last layer, which gives
        the named pieces."""
        *head, last = stmt.chain.elements
        nodes: list[str | None] = [None] * len(stmt.targets)
        try:
            if not (isinstance(last, ast.Call) and last.name in REGISTRY and gives_pieces(REGISTRY[last.name])):
                self.reporter.fail(f"{', '.join(stmt.targets)} = ... names several tensors, so the chain must end "
                                   "in a layer that gives several", last.span,
                                   "end it in chunk(n) (equal pieces) or split([sizes])")
            if head:
                current = self.chain(replace(stmt.chain, elements=tuple(head)), scope, current, None)
            nodes = self.builder.pieces(last, scope, current, stmt)  # type: ignore[arg-type]
        except Skip:
            pass
        for target, span, node in zip(stmt.targets, stmt.target_spans, nodes):
            self.name_tensor(ast.ChainStmt(stmt.chain, None, target, span), scope, node)

    def _starts_alone(self, chain: ast.Chain, scope: Scope) -> bool:
        """Whether a chain reads no tensor from the statement before: it
        starts from a named tensor, or with a merge naming all it reads."""
        first = chain.elements[0]
        return self._is_tensor_ref(first, scope) or (
            isinstance(first, ast.Call) and first.name in REGISTRY and REGISTRY[first.name].inputs is None)

    def name_tensor(self, stmt: ast.ChainStmt, scope: Scope, node: str | None) -> None:
        name = stmt.target
        span = word_span(stmt.span, name)
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
        starts_with_tensor = self._is_tensor_ref(chain.elements[0], scope)
        layers = len(chain.elements) - starts_with_tensor
        if label is not None and not scope.claim(label, label_span or chain.span, self.diags):
            label = None
        if label is not None and layers > 1:
            self.builder.group(scope.qualify(label), "sequence")
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
            except Skip:
                current = None
            position += 1
        return current

    def _numbered_copies(self, rep: ast.Repeat, scope: Scope, current: str | None, label: str,
                         position: int) -> tuple[str | None, int]:
        if rep.call.name not in REGISTRY and rep.call.name not in self.program.blocks:
            self._unknown(rep.call, scope, first=False)  # even when repeated 0 times
        for _ in range(self._repeat_count(rep, scope)):
            current = self.call(rep.call, scope, current, f"{label}.{position}", first=False)
            position += 1
            if current is None:
                break  # every copy would be checked the same way
        return current, position

    def _is_tensor_ref(self, element: Any, scope: Scope) -> bool:
        return isinstance(element, ast.Call) and not element.has_parens and element.name in scope.tensors

    def element(self, element: Any, scope: Scope, current: str | None, local: str | None,
                first: bool) -> str | None:
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
            self.reporter.abort(f"the network expands to more than {MAX_LAYERS:,} layers", call.span,
                                "check the repetition counts")
        if call.name in scope.tensors and not call.has_parens:
            self.reporter.fail(f"tensor '{call.name}' can only start a chain", call.span,
                               f"to join it to this chain use {merge_calls(call.name)}")
        if call.name in REGISTRY:
            return self.builder.layer(call, scope, current, local, first, self._chain_arguments(call, scope))
        if call.name in self.program.blocks:
            return self.block(call, scope, current, local)
        self._unknown(call, scope, first)

    def _chain_arguments(self, call: ast.Call, scope: Scope) -> dict[int, str | None]:
        """The output nodes of the chains among the arguments of a merge or
        a block (`concat(in -> upconv(c, k=2, s=2), skip)`, `up(64, e1 ->
        relu)`), by id of the argument; each chain starts from a named tensor."""
        chains: dict[int, str | None] = {}
        for arg in call.args:
            if not isinstance(arg.value, ast.Chain) or call.name in REGISTRY and REGISTRY[call.name].inputs is not None:
                continue  # a chain given to another layer is refused when its arguments are bound
            if not self._is_tensor_ref(arg.value.elements[0], scope):
                self.reporter.fail(f"a chain inside {call.name}(...) starts from a named tensor", arg.span,
                                   f"e.g. {call.name}(in -> conv(...), t)")
            chains[id(arg)] = self.chain(arg.value, scope, None, None)
        return chains

    def _unknown(self, call: ast.Call, scope: Scope, first: bool) -> NoReturn:
        name = call.name
        if name == BLOCK_INPUT and BLOCK_INPUT not in scope.tensors:
            network_input = self.builder.graph.graph.get("input")
            self.reporter.fail(f"'{BLOCK_INPUT}' is the tensor a block starts from; the network has no "
                               f"'{BLOCK_INPUT}'", call.name_span,
                               f"the network's input is '{network_input}'" if network_input else "")
        if first and not call.has_parens:
            self.reporter.fail(f"unknown tensor, layer or block '{name}'", call.name_span,
                               did_you_mean(name, scope.tensors) or unknown_hint(name, self.program.blocks)
                               or "a tensor is named before it is used: t = ... -> ...")
        self.reporter.fail(f"unknown layer or block '{name}'", call.name_span, unknown_hint(name, self.program.blocks))

    # ------------------------------------------------------------- blocks
    def block(self, call: ast.Call, scope: Scope, current: str | None, local: str | None) -> str | None:
        block = self.program.blocks[call.name]
        if call.name in self.block_stack:
            cycle = " -> ".join(self.block_stack[self.block_stack.index(call.name):] + [call.name])
            self.reporter.fail(f"block '{call.name}' uses itself: {cycle}", call.span, "blocks cannot be recursive")
        if len(self.block_stack) >= MAX_NESTING:
            self.reporter.fail(f"blocks are nested more than {MAX_NESTING} deep here", call.span)
        env, tensors = self.bind_block(block, call, scope, self._chain_arguments(call, scope))
        local = local or scope.auto(call.name)
        if local not in scope.taken:
            scope.taken[local] = call.span
        inner = scope.child(local, env)
        inner.tensors[BLOCK_INPUT] = current
        for name, (node, span) in tensors.items():
            inner.tensors[name], inner.tensor_spans[name] = node, span
        self.builder.group(inner.prefix, call.name)
        self.block_stack.append(call.name)
        try:
            with self.reporter.inside(inner.prefix, call.span):
                return self.body(block.body, inner, current)
        finally:
            self.block_stack.pop()

    def bind_block(self, block: ast.BlockDef, call: ast.Call, scope: Scope,
                   chains: dict[int, str | None] | None = None) -> tuple[dict[str, Any], Tensors]:
        """The block body's parameters: the call's arguments, then defaults;
        numbers (and words) in the first dict, tensors (node, argument span)
        in the second; `chains`: the outputs of chain arguments, by id."""
        if block.name not in self._tensor_params:  # once per block, not per call
            self._tensor_params[block.name] = tensor_params(block, self.program.blocks)
        try:
            return bind_arguments(block, call, scope, self._tensor_params[block.name], chains or {})
        except UserError as exc:
            note = Diagnostic("note", f"block '{block.name}' is defined here", block.name_span)
            diagnostic = exc.diagnostic(call.span)
            self.reporter.report(replace(diagnostic, notes=(*diagnostic.notes, note)))
            raise Skip() from None

    # ------------------------------------------------------------- repetitions
    def _repeat_count(self, rep: ast.Repeat, scope: Scope) -> int:
        try:
            count = evaluate(rep.count, scope.env)
        except UserError as exc:
            self.reporter.report(exc.diagnostic(rep.span))
            raise Skip() from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            shown = f"'{count}'" if isinstance(count, str) else count
            self.reporter.fail(f"a repetition count is an integer ≥ 0, got {shown}", rep.count.span)
        if count > MAX_LAYERS:
            self.reporter.fail(f"repeating {count:,} times makes more than {MAX_LAYERS:,} layers", rep.count.span)
        return count

    def repeat(self, rep: ast.Repeat, scope: Scope, current: str | None, local: str | None) -> str | None:
        count = self._repeat_count(rep, scope)
        if count == 0:  # `* 0` is the identity: no layers, no name taken
            if rep.call.name not in REGISTRY and rep.call.name not in self.program.blocks:
                self._unknown(rep.call, scope, first=False)
            return current
        local = local or scope.auto(rep.call.name)
        scope.taken.setdefault(local, rep.span)
        self.builder.group(scope.child(local).prefix, f"{rep.call.name} ×{count}")
        for index in range(count):
            current = self.call(rep.call, scope, current, f"{local}.{index}", first=False)
            if current is None:
                break  # every copy would be checked the same way
        return current

    # ------------------------------------------------------------- residual and concat
    def residual(self, res: ast.Residual, scope: Scope, current: str | None, local: str | None) -> str | None:
        body_scope = self._block_scope(scope, local, "residual", res.span)
        body_out = self.body(res.body, body_scope, current)
        shortcut_out = current
        if res.shortcut is not None:
            name = "shortcut" if "shortcut" not in body_scope.taken else body_scope.auto("shortcut")
            body_scope.taken[name] = res.span
            shortcut_out = self.body(res.shortcut, self._branch_scope(body_scope, name, "shortcut", current), current)
        if body_out is None or shortcut_out is None:
            return None
        return self.builder.closing("residual", body_scope, res.span, (shortcut_out, body_out),
                                    has_shortcut=res.shortcut is not None)

    def concat_block(self, block: ast.ConcatBlock, scope: Scope, current: str | None,
                     local: str | None) -> str | None:
        outer = self._block_scope(scope, local, "concat", block.span)
        outputs = [self.body(branch.body, self._branch_scope(outer, outer.auto("branch"), "branch", current), current)
                   for branch in block.branches]
        if len(block.branches) < 2:
            self.reporter.fail(f"concat needs at least two branches, got {len(block.branches)}", block.span,
                               "concat { branch { ... } branch { ... } }")
        if any(o is None for o in outputs):
            return None
        return self.builder.closing("concat", outer, block.span, tuple(outputs))  # type: ignore[arg-type]

    def _block_scope(self, scope: Scope, local: str | None, what: str, span: Span) -> Scope:
        """A labelled residual or concat block names its layers under the label."""
        if local is None:
            return scope
        inner = scope.child(local, tensors=True)
        self.builder.group(inner.prefix, what)
        scope.taken.setdefault(local, span)
        return inner

    def _branch_scope(self, outer: Scope, name: str, what: str, current: str | None) -> Scope:
        inner = outer.child(name, tensors=True)
        inner.tensors[BLOCK_INPUT] = current
        self.builder.group(inner.prefix, what)
        return inner

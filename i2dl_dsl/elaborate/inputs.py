"""The network's input statement: one, first, with sensible dimensions."""

from __future__ import annotations

from ..diagnostics import Diagnostic, Diagnostics, Span, UserError
from ..layers.base import MAX_INT, numel
from ..layers.io import Input
from ..syntax import ast
from ..values import evaluate
from .build import LayerGraphBuilder
from .node import LayerNode, add_layer_node
from .scope import BLOCK_INPUT, Scope


def check_input_first(net: ast.NetworkDef, diags: Diagnostics) -> None:
    inputs = [s for s in net.body if isinstance(s, ast.InputStmt)]
    if inputs and net.body[0] is not inputs[0]:
        first = net.body[0]
        diags.error("the network's first statement must be its input", first.span,
                    f"move `input {inputs[0].name}[...]` (line {inputs[0].span.line}) to the top")


class NetworkInput:
    """Turns `input x[...]` into the graph's source node."""

    def __init__(self, diags: Diagnostics, builder: LayerGraphBuilder):
        self.diags = diags
        self.builder = builder
        self.span: Span | None = None  # where the input is declared, even when it is wrong

    def statement(self, stmt: ast.InputStmt, scope: Scope, top_level: bool) -> str | None:
        """The input's node; None after an error."""
        if not top_level:
            self.diags.error("`input` belongs in the network, not in a block", stmt.span,
                             f"a block starts from the tensor it is applied to, named '{BLOCK_INPUT}'")
            return None
        if self.span is not None:
            note = Diagnostic("note", "the first input is declared here", self.span)
            self.diags.error("a network has one input; this is a second", stmt.span, notes=[note])
            return None
        self.span = stmt.span
        dims = self._dims(stmt)
        if dims is None:
            scope.tensors[stmt.name] = None  # known, but broken: no follow-on errors
            return None
        add_layer_node(self.builder.graph, LayerNode(stmt.name, Input(dims), (), stmt.span))
        self.builder.graph.graph["input"] = stmt.name
        scope.tensors[stmt.name] = stmt.name
        scope.tensor_spans[stmt.name] = stmt.span
        scope.taken[stmt.name] = stmt.span
        return stmt.name

    def _dims(self, stmt: ast.InputStmt) -> tuple[int, ...] | None:
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
        return self._checked(stmt, tuple(dims))

    def _checked(self, stmt: ast.InputStmt, dims: tuple[int, ...]) -> tuple[int, ...] | None:
        if not 1 <= len(dims) <= 3:
            self.diags.error(f"input '{stmt.name}' has {len(dims)} dimensions; expected [C, H, W], [T, F] or [F]",
                             stmt.span, "the batch axis is implicit: leave it out")
            return None
        if numel(dims) > MAX_INT:
            self.diags.error(f"input '{stmt.name}' has {numel(dims):,} values per sample, more than {MAX_INT:,}",
                             stmt.span, "check the sizes: the batch axis is implicit")
            return None
        return dims

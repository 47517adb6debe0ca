"""Building the layer graph: each call of a layer kind becomes a node, its
arguments bound to the kind's signature; merges also name the tensors they
join."""

from __future__ import annotations

from typing import Any, Sequence

import networkx as nx

from ..diagnostics import Span, UserError, did_you_mean
from ..layers import REGISTRY, Layer
from ..layers.base import Args
from ..layers.merge import closing_merge
from ..syntax import ast
from ..values import bind
from .node import LayerNode, add_layer_node
from .report import Reporter
from .scope import Scope


class LayerGraphBuilder:
    """Adds layers to `graph` under their dotted names."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        # groups: dotted prefix → what it is, for folding; calls: layer → the call that made
        # it, and instances: block prefix → (its definition, the call, its arguments),
        # so that code generators can write arguments as the source does.
        self.graph = nx.DiGraph(groups={}, calls={}, instances={}, tensor_names={})

    def group(self, prefix: str, what: str) -> None:
        """Record that the names under `prefix` form a block, a repetition, ..."""
        self.graph.graph["groups"][prefix] = what

    def layer(self, call: ast.Call, scope: Scope, current: str | None, local: str | None,
              first: bool) -> str | None:
        """The node of a layer call reading `current` (merges: also the tensors they name)."""
        cls = REGISTRY[call.name]
        if cls.inputs is None:  # a merge
            return self._merge(cls, call, scope, current, local, first)
        args = self._bind(cls, call.args, scope.env, call.span)
        if current is None:
            return None
        name = self.add(cls(args), scope, local, call.span, (current,))
        self.graph.graph["calls"][name] = call
        return name

    def closing(self, block: str, scope: Scope, span: Span, sources: tuple[str, ...],
                has_shortcut: bool = False) -> str:
        """The merge that joins the branches of a `residual` or `concat` block."""
        cls = closing_merge(block)
        args = self._bind(cls, (), scope.env, span)
        return self.add(cls(args, closing=True, has_shortcut=has_shortcut), scope, None, span, sources)

    def add(self, layer: Layer, scope: Scope, local: str | None, span: Span, inputs: tuple[str, ...]) -> str:
        """Add a node named `local` in `scope` (an automatic name when None)."""
        if local is None:
            local = scope.auto(layer.prefix)
        name = scope.qualify(local)
        if name in self.graph:
            self.reporter.fail(f"two layers are named '{name}'", span, "labels must be unique within a block")
        add_layer_node(self.graph, LayerNode(name, layer, inputs, span, self.reporter.trail))
        return name

    def _merge(self, cls: type[Layer], call: ast.Call, scope: Scope, current: str | None, local: str | None,
               first: bool) -> str | None:
        # Positional arguments name the tensors joined; keyword arguments, where
        # the merge declares any, are its own.
        keywords = [a for a in call.args if a.name is not None and cls.signature]
        tensors = [a for a in call.args if a.name is None or not cls.signature]
        sources = [] if first else [current]
        sources += [self._tensor(call.name, arg, scope) for arg in tensors]
        if len(sources) < 2:
            self.reporter.fail(f"{call.name} needs at least two tensors, got {len(sources)}", call.span,
                               f"e.g. {call.name}(a, b), or -> {call.name}(b) to join b to this chain")
        args = self._bind(cls, keywords, scope.env, call.span)
        if any(s is None for s in sources):
            return None
        return self.add(cls(args), scope, local, call.span, tuple(sources))  # type: ignore[arg-type]

    def _tensor(self, merge: str, arg: ast.Arg, scope: Scope) -> str | None:
        """The node of a tensor a merge names (None: known, but broken)."""
        if arg.name is not None or not isinstance(arg.value, ast.Name):
            self.reporter.fail(f"{merge} joins named tensors; this is not a tensor name", arg.span,
                               f"name a tensor first: t = ... , then {merge}(t, ...)")
        name = arg.value.id
        if name not in scope.tensors:
            self.reporter.fail(f"unknown tensor '{name}' in {merge}(...)", arg.span,
                               did_you_mean(name, scope.tensors) or f"name it first: {name} = ... -> ...")
        return scope.tensors[name]

    def _bind(self, cls: type[Layer], args: Sequence[ast.Arg], env: dict[str, Any], span: Span) -> Args:
        try:
            return bind(cls.kind, cls.signature, args, env, span)
        except UserError as exc:
            self.reporter.reject(exc, span)

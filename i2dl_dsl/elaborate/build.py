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
from ..layers.pieces import gives_pieces
from ..syntax import ast
from ..values import bind
from .node import LayerNode, add_layer_node
from .report import Reporter
from .scope import Scope


class LayerGraphBuilder:
    """Adds layers to `graph` under their dotted names."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.graph = nx.DiGraph(groups={})  # groups: dotted prefix → what it is, for folding

    def group(self, prefix: str, what: str) -> None:
        """Record that the names under `prefix` form a block, a repetition, ..."""
        self.graph.graph["groups"][prefix] = what

    def layer(self, call: ast.Call, scope: Scope, current: str | None, local: str | None,
              first: bool, chains: dict[int, str | None] | None = None) -> str | None:
        """The node of a layer call reading `current` (merges: also the tensors
        they name, and those of the chains among their arguments, expanded
        into `chains`)."""
        cls = REGISTRY[call.name]
        if cls.inputs is None:  # a merge
            return self._merge(cls, call, scope, current, local, first, chains or {})
        if gives_pieces(cls):
            self.reporter.fail(f"{call.name} gives several tensors; name each of them", call.span,
                               f"e.g. a, b = x -> {call.name}(...), then a and b start chains or are joined")
        args = self._bind(cls, call.args, scope.env, call.span, scope)
        if current is None:
            return None
        return self.add(cls(args), scope, local, call.span, (current,))

    def pieces(self, call: ast.Call, scope: Scope, current: str | None, stmt: ast.PiecesStmt) -> list[str | None]:
        """The nodes of a layer that gives several tensors (`chunk`, `split`),
        one per name of `a, b = ... -> chunk(2)`."""
        cls = REGISTRY[call.name]
        args = self._bind(cls, call.args, scope.env, call.span)
        count = cls.pieces(args)  # type: ignore[attr-defined]
        if count != len(stmt.targets):
            names = ", ".join(stmt.targets)
            self.reporter.fail(f"{call.name} gives {count} tensors, but {len(stmt.targets)} names are given "
                               f"({names})", stmt.span, "name each piece once, in order")
        if current is None:
            return [None] * count
        base = scope.auto(cls.prefix)
        self.group(scope.qualify(base), call.name)
        return [self.add(cls(args, piece=i), scope, f"{base}.{i}", call.span, (current,))  # type: ignore[call-arg]
                for i in range(count)]

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
               first: bool, chains: dict[int, str | None]) -> str | None:
        # Positional arguments name the tensors read (or are chains giving
        # them, already expanded into `chains`, by id of the argument); so do
        # the keywords the merge declares as tensors (crop's `like`); other
        # keyword arguments, where the merge declares any, are its own.
        named = [a for a in call.args if a.name is not None and a.name in cls.tensor_keywords]
        keywords = [a for a in call.args if a.name is not None and cls.signature and a not in named]
        tensors = [a for a in call.args if a not in named and a not in keywords]
        # At the start of a chain a merge reads only the tensors it names
        # (crop without one crops the chain's tensor, as a layer would).
        sources = [] if first and (tensors or not cls.reads_chain_alone) else [current]
        sources += [self._tensor(call.name, arg, scope, chains, False) for arg in tensors]
        problem = cls.sources_error(len(sources), {a.name for a in named})
        if problem is not None:
            self.reporter.fail(problem[0], call.span, problem[1])
        sources += [self._tensor(call.name, arg, scope, chains, True)
                    for key in cls.tensor_keywords for arg in named if arg.name == key]
        args = self._bind(cls, keywords, scope.env, call.span, scope)
        if any(s is None for s in sources):
            return None
        return self.add(cls(args), scope, local, call.span, tuple(sources))  # type: ignore[arg-type]

    def _tensor(self, merge: str, arg: ast.Arg, scope: Scope, chains: dict[int, str | None],
                keyword: bool) -> str | None:
        """The node of a tensor a merge names (None: known, but broken);
        `keyword`: a tensor keyword such as crop's `like`."""
        if id(arg) in chains:
            return chains[id(arg)]
        if not isinstance(arg.value, ast.Name) or arg.name is not None and not keyword:
            self.reporter.fail(f"{merge} joins named tensors; this is not a tensor name", arg.span,
                               f"name a tensor first: t = ... , then {merge}(t, ...)")
        name = arg.value.id
        if name not in scope.tensors:
            self.reporter.fail(f"unknown tensor '{name}' in {merge}(...)", arg.span,
                               did_you_mean(name, scope.tensors) or f"name it first: {name} = ... -> ...")
        return scope.tensors[name]

    def _bind(self, cls: type[Layer], args: Sequence[ast.Arg], env: dict[str, Any], span: Span,
              scope: Scope | None = None) -> Args:
        try:
            return bind(cls.kind, cls.signature, args, env, span)
        except UserError as exc:
            self.reporter.reject(_tensor_given(cls, args, env, scope, exc) or exc, span)


def _tensor_given(cls: type[Layer], args: Sequence[ast.Arg], env: dict[str, Any], scope: Scope | None,
                  exc: UserError) -> UserError | None:
    """The error of a named tensor given where the layer takes a value,
    said as such (not as an unknown word)."""
    if scope is None:
        return None
    names = [p.name for p in cls.signature]
    for index, arg in enumerate(args):
        value = arg.value
        if arg.span != exc.span or not isinstance(value, ast.Name) or value.id in env or value.id not in scope.tensors:
            continue
        param = arg.name or (names[index] if index < len(names) else None)
        wanted = next((p.type.description for p in cls.signature if p.name == param), "a value")
        return UserError(f"'{value.id}' is a tensor, but {cls.kind}'s argument '{param}' takes {wanted}",
                         f"tensors are joined (add, mul, concat) or start chains: {value.id} -> ...", span=arg.span)
    return None

"""A network as a whole: its parameters, its body expanded, and the warnings
only the finished graph can give."""

from __future__ import annotations

from typing import Any

import networkx as nx

from ..diagnostics import Diagnostics, UserError, did_you_mean
from ..layers.merge import merge_calls
from ..loader import Program
from ..syntax import ast
from ..values import evaluate
from .build import LayerGraphBuilder
from .expand import Expander
from .inputs import check_input_first
from .report import Abort, Reporter
from .scope import Scope


def elaborate_network(program: Program, net: ast.NetworkDef, diags: Diagnostics,
                      overrides: dict[str, Any]) -> nx.DiGraph:
    """The layer graph of `net`, errors recorded in `diags`."""
    reporter = Reporter(diags)
    builder = LayerGraphBuilder(reporter)
    graph = builder.graph
    graph.graph["network"] = net.name
    scope = Scope("", network_params(net, overrides, reporter))
    graph.graph["params"] = dict(scope.env)
    errors_before = len(diags.errors)
    check_input_first(net, diags)
    expander = Expander(program, reporter, builder)
    output = _expand(expander, net, scope)
    if expander.input.span is None:
        diags.error(f"network '{net.name}' has no input", net.name_span,
                    "declare it first: input x[3, 32, 32] (images) or input x[T, F] (sequences)")
    graph.graph["output"] = output
    # The network's named tensors (name → node) and where each is named, for
    # tools that point at them (an editor's hover and go-to-definition).
    graph.graph["tensors"] = {name: node for name, node in scope.tensors.items() if node is not None}
    graph.graph["tensor_spans"] = dict(scope.tensor_spans)
    # After an error, a chain that was cut short may have been the reader
    # of a tensor: warning about it would be noise.
    if len(diags.errors) == errors_before:
        warn_unused(graph, scope, diags)
    return graph


def _expand(expander: Expander, net: ast.NetworkDef, scope: Scope) -> str | None:
    try:
        return expander.body(net.body, scope, None, top_level=True)
    except Abort:
        # What was built is a fraction of a network too large to check.
        expander.builder.graph.remove_nodes_from(list(expander.builder.graph.nodes))
    except RecursionError:
        expander.diags.error(f"network '{net.name}' is nested too deeply to check", net.name_span,
                             "use fewer blocks inside blocks, or fewer nested residual and concat blocks")
    return None


def network_params(net: ast.NetworkDef, overrides: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    """Defaults of `network Net(p=...)`, replaced by the values given from
    outside (a search, `--param`)."""
    env: dict[str, Any] = {}
    for param in net.params:
        if param.default is None:
            reporter.diags.error(f"network parameter '{param.name}' needs a default value", param.span,
                                 f"e.g. network {net.name}({param.name}=...)")
            continue
        try:
            env[param.name] = overrides.get(param.name, evaluate(param.default, env))
        except UserError as exc:
            reporter.report(exc.diagnostic(param.span))
    for key in (k for k in overrides if k not in env):
        reporter.diags.error(f"network '{net.name}' has no parameter '{key}'", net.name_span,
                             did_you_mean(key, env) or (f"its parameters: {', '.join(env)}" if env else
                                                        f"declare one: network {net.name}({key}=...)"))
    return env


def warn_unused(graph: nx.DiGraph, scope: Scope, diags: Diagnostics) -> None:
    """A named tensor that nothing reads is probably a forgotten join."""
    for name, node in scope.tensors.items():
        if node is None or node == graph.graph.get("output") or node == graph.graph.get("input"):
            continue
        if graph.out_degree(node) == 0:
            diags.warning(f"tensor '{name}' is computed but never used", scope.tensor_spans.get(name),
                          f"join it with {merge_calls('...')}, or remove it")

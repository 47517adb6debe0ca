"""The checker's front door: file → parsed, elaborated, analysed network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from .analysis import Analysis, analyse
from .diagnostics import Diagnostic, Diagnostics, did_you_mean
from .elaborate import elaborate
from .loader import Parse, Program, load
from .names import scopes
from .syntax.parser import parse_file
from .trainspec import check_train


@dataclass(frozen=True)
class CheckedNetwork:
    """A network that passed every check, with its analyses."""

    name: str
    path: str
    graph: nx.DiGraph
    analysis: Analysis
    train: dict[str, Any]
    warnings: tuple[Diagnostic, ...]

    @property
    def input(self) -> str:
        return self.graph.graph["input"]

    @property
    def output(self) -> str:
        return self.graph.graph["output"]


def _check_layer_names(section, graph: nx.DiGraph, diags: Diagnostics) -> None:
    """`freeze` and `lr_scale` name layers or blocks: each must exist."""
    prefixes = scopes(graph)
    for stmt in section.stmts:
        if stmt.key not in ("freeze", "lr_scale"):
            continue
        for value in stmt.values:
            name = value.name if stmt.key == "lr_scale" else getattr(value.value, "name", None)
            if name is not None and name not in prefixes:
                diags.error(f"'{stmt.key}' names '{name}', which is no layer or block of the network", value.span,
                            did_you_mean(name, prefixes) or "layer names are listed by --summary")


@dataclass
class Examination:
    """Everything the checker found in a file, mistakes included: the
    graph holds what could be built, `diags` every error and warning.
    Editors read it as it is; `check` insists on no errors."""

    program: Program
    graph: nx.DiGraph
    analysis: Analysis
    train: dict[str, Any]
    diags: Diagnostics


def examine(path: str | Path, params: dict[str, Any] | None = None, parse: Parse = parse_file,
            source: str | None = None) -> Examination:
    """Parse, elaborate and analyse a .net file, collecting every mistake;
    a file that cannot be read or parsed raises CompileError. `parse` reads
    one file (see `loader.load`); with `source`, that text is checked as the
    file `path` (which need not exist)."""
    program = load(path, parse, source=source)
    diags = Diagnostics(list(program.warnings))
    graph = elaborate(program, diags, params)
    section = program.main.trains[0] if program.main.trains else None
    train = check_train(section, diags)
    if section is not None:
        _check_layer_names(section, graph, diags)
    # Chains cut short by an error add no nodes, so the shapes of what was
    # built are still worth checking: independent mistakes are all reported.
    analysis = analyse(graph, diags)
    return Examination(program, graph, analysis, train, diags)


def check(path: str | Path, params: dict[str, Any] | None = None, source: str | None = None) -> CheckedNetwork:
    """Parse, elaborate and analyse a .net file; CompileError lists every
    mistake. `params` set the parameters of `network Net(p=...)`. With
    `source`, that text is checked as the file `path` (which need not exist)."""
    found = examine(path, params, source=source)
    found.diags.raise_if_errors()
    graph = found.graph
    return CheckedNetwork(graph.graph["network"], str(path), graph, found.analysis, found.train,
                          tuple(found.diags.warnings))

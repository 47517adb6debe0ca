"""The checker's front door: file → parsed, elaborated, analysed network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from .analysis import Analysis, analyse
from .diagnostics import Diagnostic, Diagnostics
from .elaborate import elaborate
from .loader import load
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


def check(path: str | Path) -> CheckedNetwork:
    """Parse, elaborate and analyse a .net file; CompileError lists every mistake."""
    program = load(path)
    diags = Diagnostics(list(program.warnings))
    graph = elaborate(program, diags)
    train = check_train(program.main.trains[0] if program.main.trains else None, diags)
    # Chains cut short by an error add no nodes, so the shapes of what was
    # built are still worth checking: independent mistakes are all reported.
    analysis = analyse(graph, diags)
    diags.raise_if_errors()
    graph.graph["train"] = train
    return CheckedNetwork(graph.graph["network"], str(path), graph, analysis, train, tuple(diags.warnings))

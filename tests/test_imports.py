"""The package's modules import one another without cycles. Imports inside
functions count too: a function-level import that closes a cycle only hides
it until the function runs, and makes the order of imports matter."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "i2dl_dsl"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(parents: list[ast.AST]) -> bool:
    return any(isinstance(p, ast.If) and "TYPE_CHECKING" in ast.unparse(p.test) for p in parents)


def _imported(node: ast.ImportFrom, package: str, modules: set[str]) -> list[str]:
    """The package's modules an `from ... import ...` statement loads."""
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
    return submodules or ([target] if target in modules else [])


def import_graph() -> nx.DiGraph:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(paths)
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        stack: list[tuple[ast.AST, list[ast.AST]]] = [(ast.parse(path.read_text()), [])]
        while stack:
            node, parents = stack.pop()
            stack.extend((child, [*parents, node]) for child in ast.iter_child_nodes(node))
            if isinstance(node, ast.ImportFrom) and not _type_checking_only(parents):
                graph.add_edges_from((module, t) for t in _imported(node, package, set(paths)) if t != module)
            elif isinstance(node, ast.Import):
                graph.add_edges_from((module, a.name) for a in node.names if a.name in paths and a.name != module)
    return graph


def test_the_import_graph_reads_imports():
    graph = import_graph()
    assert graph.has_edge("i2dl_dsl.checker", "i2dl_dsl.elaborate")
    assert graph.has_edge("i2dl_dsl.autodiff", "i2dl_dsl.autodiff.driver")


def test_no_import_cycles_in_the_package():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles)

"""The module tree of the emitted PyTorch code, read from the dotted layer names.

Every dotted prefix of a layer name is a module: a block instance (a class
of its own), or a container (a chain's label, a repetition, a residual's
`shortcut`, a concat `branch`). A container whose members form one plain
chain is an `nn.Sequential`, called as a whole; any other is an
`nn.ModuleDict` whose members the enclosing forward calls one by one. So the
`state_dict` names are the layer names, whatever the structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ..elaborate import layer_node


@dataclass
class Scope:
    """One dotted prefix; `children` maps a local name to a sub-scope or a layer's full name."""

    path: str
    children: dict[str, "Scope | str"] = field(default_factory=dict)

    def nodes(self) -> list[str]:
        """Every layer below, in graph order."""
        found: list[str] = []
        for child in self.children.values():
            found += child.nodes() if isinstance(child, Scope) else [child]
        return found


def build_tree(graph: nx.DiGraph) -> Scope:
    """The scope tree of every layer but the input, children in graph (source) order."""
    root = Scope("")
    for name in graph.nodes:
        if name == graph.graph["input"]:
            continue
        scope, parts = root, name.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = scope.children.setdefault(part, Scope(".".join(parts[: depth + 1])))
            if not isinstance(child, Scope):
                raise ValueError(f"layer '{child}' is also a prefix of '{name}'")
            scope = child
        scope.children[parts[-1]] = name
    return root


@dataclass(frozen=True)
class Unit:
    """One call in a forward: a layer, a block instance, or a plain-chain container."""

    kind: str                 # "layer", "block" or "chain"
    path: str                 # the layer's or scope's dotted name
    inputs: tuple[str, ...]   # the tensors (layer names) it reads from outside itself
    output: str               # the layer whose value it returns


class Structure:
    """Which scopes are blocks, which are chains, and what each unit reads."""

    def __init__(self, graph: nx.DiGraph, plain: set[str]):
        self.graph = graph
        self.instances = graph.graph.get("instances", {})
        self.plain = plain  # layers whose forward is a plain module call

    def external_inputs(self, members: list[str]) -> tuple[str, ...]:
        inside, found = set(members), {}
        for name in members:
            for source in layer_node(self.graph, name).inputs:
                if source not in inside:
                    found.setdefault(source, None)
        return tuple(found)

    def outputs(self, members: list[str]) -> list[str]:
        inside = set(members)
        final = self.graph.graph["output"]
        return [n for n in members if n == final or any(s not in inside for s in self.graph.successors(n))]

    def unit(self, child: Scope | str) -> Unit:
        if isinstance(child, str):
            return Unit("layer", child, layer_node(self.graph, child).inputs, child)
        members = child.nodes()
        outputs = self.outputs(members)
        output = outputs[-1] if outputs else members[-1]
        if child.path in self.instances:
            return Unit("block", child.path, self.block_inputs(child, members), output)
        return Unit("chain", child.path, self.external_inputs(members), output)

    def block_inputs(self, scope: Scope, members: list[str]) -> tuple[str, ...]:
        """What a block's forward takes: the tensor it starts from, then its tensor parameters."""
        instance = self.instances[scope.path]
        declared = tuple(n for n in (instance.input, *instance.tensors.values()) if n is not None)
        read = self.external_inputs(members)
        if not set(read) <= set(declared) or len(set(declared)) != len(declared):
            raise ValueError(f"block '{scope.path}' reads {read}, its arguments are {declared}")
        return declared

    def is_chain(self, scope: Scope) -> bool:
        """Its members run one after another, each reading only the one before."""
        if scope.path in self.instances:
            return False
        members = scope.nodes()
        if len(self.outputs(members)) != 1 or len(self.external_inputs(members)) != 1:
            return False
        previous: str | None = None
        for child in scope.children.values():
            if isinstance(child, Scope) and not (child.path in self.instances or self.is_chain(child)):
                return False
            if isinstance(child, str) and child not in self.plain:
                return False
            unit = self.unit(child)
            if len(unit.inputs) != 1 or (previous is not None and unit.inputs[0] != previous):
                return False
            inside = set(child.nodes()) if isinstance(child, Scope) else {child}
            if previous is not None and not set(self.graph.successors(previous)) <= inside:
                return False  # the one before is read further on too
            previous = unit.output
        return True

    def units(self, scope: Scope) -> list[Unit]:
        """The calls of `scope`'s forward: containers that are not chains are opened."""
        found: list[Unit] = []
        for child in scope.children.values():
            if isinstance(child, Scope) and child.path not in self.instances and not self.is_chain(child):
                found += self.units(child)
            else:
                found.append(self.unit(child))
        return found

"""Dotted layer names (`layer2.0.conv1`): which names a block, a label or a
repetition covers. `freeze`, `lr_scale` and the summary's folding all ask.
Also `fresh`, the one way graph builders make a name unique."""

from __future__ import annotations

from typing import Container, Iterable

import networkx as nx


def fresh(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`, ... : the first not in `taken`, which it joins."""
    name, index = base, 1
    while name in taken:
        index += 1
        name = f"{base}_{index}"
    taken.add(name)
    return name


def tensor_name(layer: str, suffix: str) -> str:
    """A layer's parameter or buffer as the state_dict names it: `<layer>.<suffix>`,
    or the layer's own name for the empty suffix (a layer that is one tensor,
    such as ConvNeXt's `layer_scale`)."""
    return f"{layer}.{suffix}" if suffix else layer


def layer_output(layer: str, tensors: Container[str]) -> str:
    """The ONNX tensor that holds a layer's output: the layer's name, or
    `<layer>/out` where one of `tensors` (the model's initializers) took the
    name: the parameter of a layer that is one tensor (`scale`)."""
    return f"{layer}/out" if layer in tensors else layer


def within(name: str, prefix: str) -> bool:
    """`layer2.0.conv1` is within `layer2` and `layer2.0`, not within `layer`."""
    return name == prefix or name.startswith(prefix + ".")


def within_any(name: str, prefixes: Iterable[str]) -> bool:
    return any(within(name, p) for p in prefixes)


def scopes(graph: nx.DiGraph) -> set[str]:
    """Every layer name and every dotted prefix of one: what a setting may name."""
    names = set(graph.nodes) | set(graph.graph.get("groups", {}))
    return names | {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}

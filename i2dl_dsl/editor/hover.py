"""Hover: what the checker knows of the word under the cursor.

A layer: its output shape, parameters, MACs, receptive field and the
output-size formula with the numbers filled in; a block call: the block's
signature and the instance's totals; a label: the totals of the layers
named after it; a named tensor or the input: its shape.
A layer inside a block has one result per instance: the first is shown,
with how many there are.
"""

from __future__ import annotations

from fractions import Fraction

from ..elaborate import layer_node
from ..layers import REGISTRY
from ..layers.base import ReceptiveField, fmt_shape
from ..values import signature_text
from .locate import Target, blocks_of, instances_of, layers_from, target_at
from .workspace import Snapshot


def hover_text(snapshot: Snapshot, line: int, character: int) -> tuple[str, Target] | None:
    """Markdown for the word at the 0-based position, and the word."""
    target = target_at(snapshot, line, character)
    if target is None:
        return None
    text = {"layer": _layer, "block": _block, "tensor": _tensor, "input": _tensor, "label": _label}.get(
        target.kind, _none)(
        snapshot, target)
    return (text, target) if text else None


def _none(snapshot: Snapshot, target: Target) -> str:
    return ""


def _layer(snapshot: Snapshot, target: Target) -> str:
    cls = REGISTRY[target.name]
    head = f"**{cls.kind}**({signature_text(cls.signature)})" + (f" — {cls.doc}" if cls.doc else "")
    names = layers_from(snapshot, target.node.span)
    if not names:
        return head
    return "\n\n".join([head, _layer_facts(snapshot, names[0]), *_instances(names)])


def _layer_facts(snapshot: Snapshot, name: str) -> str:
    found = snapshot.found
    a = found.analysis  # type: ignore[union-attr]
    node = layer_node(found.graph, name)  # type: ignore[union-attr]
    if a.shapes.get(name) is None:
        return f"`{name}`: no shape (an error before it)"
    inputs = [a.shapes[i] for i in node.inputs if a.shapes.get(i) is not None]
    lines = [f"`{name}` → **{fmt_shape(a.shapes[name])}**",
             f"params {a.layer_params(name):,} · MACs {a.macs.get(name, 0):,}" +
             (f" · receptive field {_field(a.fields.get(name))}" if a.fields.get(name) else "")]
    if len(inputs) == len(node.inputs):
        lines += [f"`{f}`" for f in node.layer.formula(inputs, a.shapes[name])]
    return "  \n".join(lines)


def _instances(names: list[str]) -> list[str]:
    if len(names) < 2:
        return []
    shown = ", ".join(f"`{n}`" for n in names[:4]) + (", …" if len(names) > 4 else "")
    return [f"one of {len(names)} instances: {shown}"]


def _field(field: ReceptiveField | None) -> str:
    def number(v: Fraction) -> str:
        return str(v.numerator) if v.denominator == 1 else f"{float(v):.3g}"
    size = "×".join(number(v) for v in field.size)  # type: ignore[union-attr]
    jump = "×".join(number(v) for v in field.jump)  # type: ignore[union-attr]
    return f"{size}, stride {jump}"


def _block(snapshot: Snapshot, target: Target) -> str:
    block = blocks_of(snapshot).get(target.name)
    if block is None:
        return ""
    params = ", ".join(p.name if p.default is None else f"{p.name}={_expr(snapshot, p.default.span)}"
                       for p in block.params)
    head = f"**block {block.name}**({params})"
    instances = instances_of(snapshot, target.node.span) if hasattr(target.node, "args") else []
    if not instances:
        return head
    found = snapshot.found
    a = found.analysis  # type: ignore[union-attr]
    layers = instances[0]
    total_params = sum(a.layer_params(n) for n in layers)
    total_macs = sum(a.macs.get(n, 0) for n in layers)
    last = next((n for n in reversed(layers) if a.shapes.get(n) is not None), None)
    shape = f" → **{fmt_shape(a.shapes[last])}**" if last else ""
    facts = f"{len(layers)} layers{shape}  \nparams {total_params:,} · MACs {total_macs:,}"
    more = [f"one of {len(instances)} instances"] if len(instances) > 1 else []
    return "\n\n".join([head, facts, *more])


def _label(snapshot: Snapshot, target: Target) -> str:
    """A label of the network: the layers named after it, their totals and output."""
    found = snapshot.found
    if found is None:
        return ""
    a = found.analysis
    layers = [n for n in a.order if n == target.name or n.startswith(target.name + ".")]
    if not layers:
        return ""
    last = next((n for n in reversed(layers) if a.shapes.get(n) is not None), None)
    shape = f" → **{fmt_shape(a.shapes[last])}**" if last else ""
    return (f"**{target.name}**: {len(layers)} layers{shape}  \n"
            f"params {sum(a.layer_params(n) for n in layers):,} · MACs {sum(a.macs.get(n, 0) for n in layers):,}")


def _expr(snapshot: Snapshot, span) -> str:
    """An expression as written (a default value)."""
    lines = snapshot.text.split("\n")
    if span.line != span.end_line or span.line > len(lines):
        return "…"
    return lines[span.line - 1][span.col - 1: span.end_col - 1]


def _tensor(snapshot: Snapshot, target: Target) -> str:
    found = snapshot.found
    if found is None:
        return ""
    graph = found.graph
    node = graph.graph.get("input") if target.kind == "input" else graph.graph.get("tensors", {}).get(target.name)
    if node is None or found.analysis.shapes.get(node) is None:
        return ""
    what = "input" if target.kind == "input" else "tensor"
    return f"{what} **{target.name}** → **{fmt_shape(found.analysis.shapes[node])}** (from `{node}`)"

"""The `--summary` report: one row per layer (or per folded block), then totals.

The same rows feed the text table and the JSON document.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .checker import CheckedNetwork
from .elaborate import layer_node
from .layers.base import REGISTRY, ReceptiveField, Shape, fmt_shape
from .names import within_any


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    output_shape: Shape
    params: int
    macs: int
    field: ReceptiveField | None


def rows(net: CheckedNetwork, depth: int | None = None) -> list[Row]:
    """Layers in source order; below `depth` dotted levels, runs of layers of
    one block fold into one row whose output is the block's output."""
    a, graph, groups = net.analysis, net.graph, net.graph.graph["groups"]
    out: list[Row] = []
    current_key: str | None = None
    for node in a.order:
        parts = node.split(".")
        key = ".".join(parts[:depth]) if depth is not None and len(parts) > depth else None
        params, macs = a.layer_params(node), a.macs.get(node, 0)
        if key is not None and key == current_key:
            last = out[-1]
            out[-1] = Row(last.name, last.type, a.shapes[node], last.params + params, last.macs + macs, a.fields[node])
            continue
        current_key = key
        kind = groups.get(key, "block") if key is not None else layer_node(graph, node).layer.kind
        out.append(Row(key or node, kind, a.shapes[node], params, macs, a.fields[node]))
    return out


def frozen_layers(net: CheckedNetwork) -> list[str]:
    prefixes = net.train.get("freeze", [])
    return [n for n in net.analysis.order if within_any(n, prefixes)]


def totals(net: CheckedNetwork, batch: int = 1) -> dict[str, Any]:
    a = net.analysis
    frozen = sum(a.layer_params(n) for n in frozen_layers(net))
    return {
        "params": a.total_params,
        "trainable_params": a.total_params - frozen,
        "buffers": a.total_buffers,
        "macs": a.total_macs,
        "memory": a.memory(net.graph, batch),
    }


def _number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def _field_json(field: ReceptiveField | None) -> dict[str, list] | None:
    if field is None:
        return None
    return {"size": [_number(v) for v in field.size], "stride": [_number(v) for v in field.jump]}


def to_json(net: CheckedNetwork, depth: int | None = None, batch: int = 1) -> dict[str, Any]:
    return document(net.name, {"name": net.input, "shape": list(net.analysis.shapes[net.input])},
                    rows(net, depth), totals(net, batch))


def document(name: str, input_: dict[str, Any], table: list[Row], sums: dict[str, Any]) -> dict[str, Any]:
    """The `--format json` document of any rows and totals."""
    return {
        "network": name,
        "input": input_,
        "layers": [
            {"name": r.name, "type": r.type, "output_shape": list(r.output_shape), "params": r.params,
             "macs": r.macs, "receptive_field": _field_json(r.field)}
            for r in table
        ],
        "totals": sums,
    }


def fold(table: list[Row], depth: int | None) -> list[Row]:
    """Below `depth` dotted name levels, runs of rows of one block become one
    row of type 'block' whose output is the block's last output."""
    if depth is None:
        return list(table)
    out: list[Row] = []
    current: str | None = None
    for row in table:
        parts = row.name.split(".")
        key = ".".join(parts[:depth]) if len(parts) > depth else None
        if key is not None and key == current:
            last = out[-1]
            out[-1] = Row(last.name, last.type, row.output_shape, last.params + row.params, last.macs + row.macs,
                          row.field)
            continue
        current = key
        out.append(Row(key, "block", row.output_shape, row.params, row.macs, row.field) if key else row)
    return out


# ----------------------------------------------------------------- text table


def _axis_pair(values) -> str:
    shown = [f"{float(v):g}" for v in values]
    return shown[0] if shown[0] == shown[1] else "×".join(shown)


def _field_text(field: ReceptiveField | None) -> str:
    if field is None:
        return "-"
    return f"{_axis_pair(field.size)} /{_axis_pair(field.jump)}"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return ""


def _buffer_kinds() -> str:
    """What buffers are, as the layer kinds that keep them declare it."""
    kinds = sorted({cls.holds for cls in REGISTRY.values() if cls.holds})
    return f"   ({'; '.join(kinds)})" if kinds else ""


def format_table(net: CheckedNetwork, depth: int | None = None, batch: int = 1) -> str:
    return table_text(f"network {net.name}   ({net.path})", rows(net, depth), totals(net, batch), batch)


def table_text(title: str, table: list[Row], t: dict[str, Any], batch: int = 1) -> str:
    """The `--summary` table of any rows and totals, under `title`."""
    header = ("layer", "type", "output", "params", "MACs", "receptive field")
    body = [(r.name, r.type, fmt_shape(r.output_shape), f"{r.params:,}", f"{r.macs:,}", _field_text(r.field))
            for r in table]
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    right = {3, 4}

    def line(row) -> str:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "─" * len(line(header))
    m = t["memory"]
    lines = [title, rule, line(header), rule, *map(line, body), rule,
             f"params:            {t['params']:>16,}",
             f"trainable params:  {t['trainable_params']:>16,}",
             f"buffers:           {t['buffers']:>16,}{_buffer_kinds()}",
             f"MACs per sample:   {t['macs']:>16,}",
             f"parameter memory:  {_bytes(m['param_bytes']):>16}",
             f"activations, inference (batch {batch}): {_bytes(m['inference_activation_bytes'])} peak",
             f"activations, training  (batch {batch}): {_bytes(m['training_activation_bytes'])} "
             "(outputs and their gradients)"]
    return "\n".join(lines)

"""Pictures of a network, drawn with Graphviz.

Two pictures: the layer graph (one box per layer, or per folded block, with
dotted-name groups as nested clusters and tensor shapes on the edges) and
the ONNX op graph of an exported model. Nothing here knows a layer kind by
name: a box is coloured by `layer.family` and labelled from `layer.kind`,
`layer.describe()` and the parameter counts of the analysis.

The output format comes from the file suffix. Files are written atomically,
so a failure leaves the previous file (or none), never half of one. Without
Graphviz's `dot` program the DOT text is still written, next to the file
that was asked for.

`graphviz` and `onnx` are imported inside the functions that use them, so
that importing the checker stays fast.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from .diagnostics import UserError
from .elaborate import layer_node
from .files import write_for_user

if TYPE_CHECKING:
    import graphviz
    import onnx

    from .checker import CheckedNetwork

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("TB", "LR")
LEVELS = ("layers", "onnx")  # what a drawing shows: the layer graph, or the exported ONNX ops
INSTALL_HINT = "install Graphviz to draw it, e.g. `apt-get install graphviz` or `brew install graphviz`"

FONT = "DejaVu Sans,Helvetica,Arial,sans-serif"
# family → (fill, outline); pale fills keep the black text readable.
FAMILY_COLOURS: dict[str, tuple[str, str]] = {
    "conv": ("#dbe8f8", "#3b73b9"),
    "pool": ("#dcefd9", "#4f9a48"),
    "fc": ("#eadcf3", "#8250a8"),
    "norm": ("#fdf1c7", "#b8900f"),
    "activation": ("#fde3cf", "#d9782d"),
    "regularization": ("#ececec", "#8a8a8a"),
    "recurrent": ("#d5eeee", "#2f8a8a"),
    "merge": ("#f8d7d7", "#c0392b"),
    "shape": ("#f2f2f2", "#707070"),
    "io": ("#ffffff", "#333333"),
}
OTHER_COLOURS = ("#ffffff", "#888888")
FOLDED_COLOURS = ("#e3e6f5", "#3f4d9c")
CLUSTER_FILLS = ("#f7f7fa", "#efeff5", "#e7e7f0", "#dfdfea")  # darker with nesting
MUTED = "#5f6368"
OUTPUT_NODE = "(output)"  # not a valid layer name, so it cannot clash with one


# ----------------------------------------------------------------- entry points


def draw(net: "CheckedNetwork", path: str | Path, depth: int | None = None, rankdir: str = "TB",
         level: str = "layers") -> Path:
    """Draw `net` to `path` (.svg, .png, .pdf or .dot) and return the path written.

    `depth` folds groups nested deeper than that many dotted levels into one
    box; `level="onnx"` draws the exported ONNX op graph instead of the layers.
    Raises UserError for a bad path or option, and when `dot` is missing (after
    writing the DOT text beside `path`).
    """
    output_format(path)
    if rankdir not in RANKDIRS:
        raise UserError(f"unknown rank direction '{rankdir}'", "use TB (top to bottom) or LR (left to right)")
    if level == "layers":
        return write(layer_graph(net, depth, rankdir), path)
    if level != "onnx":
        raise UserError(f"unknown graph level '{level}'", f"use {' or '.join(LEVELS)}")
    if depth is not None:
        raise UserError("--graph-depth folds blocks of layers; the ONNX op graph has none to fold",
                        "leave out --graph-depth, or draw --graph-level layers")
    return write(onnx_graph(_export(net), rankdir), path)


def output_format(path: str | Path) -> str:
    """The Graphviz format named by the file suffix; UserError for any other."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        shown = f"'.{suffix}'" if suffix else "no suffix"
        raise UserError(f"cannot tell the picture format of '{path}': it has {shown}",
                        "name the file .svg, .png, .pdf or .dot")
    return suffix


def write(dot: "graphviz.Digraph", path: str | Path) -> Path:
    """Write `dot` in the format of the suffix of `path`, atomically."""
    import graphviz

    path = Path(path)
    fmt = output_format(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write '{path}': the folder '{path.parent}' does not exist")
    if fmt == "dot":
        write_for_user(path, lambda f: f.write(dot.source.encode()))
        return path
    try:
        if shutil.which("dot") is None:
            raise graphviz.ExecutableNotFound(["dot"])
        data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        fallback = path.with_suffix(".dot")
        write_for_user(fallback, lambda f: f.write(dot.source.encode()))
        raise UserError(f"cannot draw '{path}': Graphviz's `dot` program was not found; "
                        f"wrote the graph as DOT text to '{fallback}'",
                        INSTALL_HINT, f"then: dot -T{fmt} {fallback} -o {path}") from None
    write_for_user(path, lambda f: f.write(data))
    return path


def _export(net: "CheckedNetwork") -> "onnx.ModelProto":
    try:
        from .lowering.export import to_onnx
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith(__package__ + ".lowering"):
            raise
        raise UserError("--graph-level onnx needs the ONNX exporter, which is not available in this installation",
                        "draw the layer graph instead: --graph-level layers") from None
    return to_onnx(net)


# ----------------------------------------------------------------- shared drawing


def _digraph(name: str, rankdir: str) -> "graphviz.Digraph":
    import graphviz

    dot = graphviz.Digraph(name=name)
    dot.attr(rankdir=rankdir, fontname=FONT, fontsize="11", nodesep="0.22", ranksep="0.32",
             newrank="true", bgcolor="white", pad="0.3")
    dot.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="10",
             margin="0.10,0.04", height="0.3", penwidth="1.1")
    dot.attr("edge", fontname=FONT, fontsize="8", fontcolor=MUTED, color="#7a7f87", arrowsize="0.6",
             penwidth="0.9")
    return dot


def _label(title: str, args: str = "", detail: Sequence[str] = ()) -> str:
    """An HTML-like label: bold title and its arguments, then small grey details."""
    text = f"<b>{html.escape(title)}</b>"
    if args:
        text += f" {html.escape(args)}"
    lines = [d for d in detail if d]
    if lines:
        small = " · ".join(html.escape(d) for d in lines)
        text += f'<br/><font point-size="8" color="{MUTED}">{small}</font>'
    return f"<{text}>"


def _shape_text(dims: Iterable[object]) -> str:
    return "×".join(str(d) for d in dims)


def count_text(n: int) -> str:
    """Parameter counts, short and to three figures: 864, 9,408, 36.9k, 7.00M."""
    if n < 10_000:
        return f"{n:,}"
    for scale, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")):
        value = n / scale
        decimals = 2 if value < 9.995 else 1 if value < 99.95 else 0
        if round(value, decimals) < 1000 or unit == "T":
            break
    return f"{value:,.{decimals}f}{unit}"


def _params_text(n: int) -> str:
    return f"{count_text(n)} params" if n else ""


# ----------------------------------------------------------------- layer graph


@dataclass(frozen=True)
class _Box:
    """One drawn node: a layer, or a block folded into one."""

    id: str
    clusters: tuple[str, ...]  # the groups it sits in, outermost first
    label: str
    colours: tuple[str, str]
    tooltip: str
    folded: bool = False


def layer_graph(net: "CheckedNetwork", depth: int | None = None, rankdir: str = "TB") -> "graphviz.Digraph":
    """The layer graph as a `graphviz.Digraph`, groups deeper than `depth` folded."""
    groups: dict[str, str] = net.graph.graph["groups"]
    owner = {node: _fold_key(node, depth) for node in net.analysis.order}
    boxes = [_layer_box(net, node, groups) if owner[node] == node else _folded_box(net, key, owner, groups)
             for node, key in _first_of_each(owner)]
    dot = _digraph(net.name, rankdir)
    dot.attr(label=f"{net.name}  ·  {count_text(net.analysis.total_params)} params",
             labelloc="t", labeljust="l", fontsize="14")
    _add_clusters(dot, boxes, groups)
    for source, target, shape in _edges(net, owner):
        dot.edge(source, target, label=_shape_text(shape))
    output = net.output
    dot.node(OUTPUT_NODE, "output", shape="plaintext", style="", fontcolor=MUTED)
    dot.edge(owner[output], OUTPUT_NODE, label=_shape_text(net.analysis.shapes[output]))
    return dot


def _fold_key(node: str, depth: int | None) -> str:
    parts = node.split(".")
    return ".".join(parts[:depth]) if depth is not None and len(parts) > depth else node


def _first_of_each(owner: dict[str, str]) -> list[tuple[str, str]]:
    """(node, box) for the first node of each box, in layer order."""
    seen: set[str] = set()
    firsts = []
    for node, key in owner.items():
        if key not in seen:
            seen.add(key)
            firsts.append((node, key))
    return firsts


def _clusters_of(name: str, groups: dict[str, str]) -> tuple[str, ...]:
    parts = name.split(".")
    prefixes = (".".join(parts[:i]) for i in range(1, len(parts)))
    return tuple(p for p in prefixes if p in groups)


def _local(name: str, clusters: tuple[str, ...]) -> str:
    """The name inside its innermost cluster, whose label already shows the prefix."""
    return name[len(clusters[-1]) + 1:] if clusters else name


def _layer_box(net: "CheckedNetwork", node: str, groups: dict[str, str]) -> _Box:
    record = layer_node(net.graph, node)
    layer = record.layer
    clusters = _clusters_of(node, groups)
    params = net.analysis.layer_params(node)
    if not record.inputs:  # the network's input
        label = _label(node, "", [_shape_text(net.analysis.shapes[node])])
    else:
        label = _label(layer.kind, layer.describe(), [_local(node, clusters), _params_text(params)])
    colours = FAMILY_COLOURS.get(layer.family, OTHER_COLOURS)
    return _Box(node, clusters, label, colours, f"{node}: {layer.kind}")


def _folded_box(net: "CheckedNetwork", key: str, owner: dict[str, str], groups: dict[str, str]) -> _Box:
    members = [n for n in net.analysis.order if owner[n] == key]
    params = sum(net.analysis.layer_params(n) for n in members)
    shape = net.analysis.shapes[_group_output(net, members)]
    clusters = _clusters_of(key, groups)
    what = groups.get(key, "block")
    label = _label(key, what, [f"{len(members)} layers", _params_text(params), "→ " + _shape_text(shape)])
    return _Box(key, clusters, label, FOLDED_COLOURS, f"{key}: {what}, {len(members)} layers", folded=True)


def _group_output(net: "CheckedNetwork", members: list[str]) -> str:
    """The last member read from outside the group (or the network output)."""
    inside = set(members)
    leaving = [n for n in members if n == net.output or any(s not in inside for s in net.graph.successors(n))]
    return (leaving or members)[-1]


def _edges(net: "CheckedNetwork", owner: dict[str, str]) -> list[tuple[str, str, tuple[int, ...]]]:
    """Edges between boxes, in input order, each (source, target, shape) once."""
    seen: set[tuple[str, str, tuple[int, ...]]] = set()
    edges = []
    for node in net.analysis.order:
        for source in layer_node(net.graph, node).inputs:
            edge = (owner[source], owner[node], tuple(net.analysis.shapes[source]))
            if edge[0] != edge[1] and edge not in seen:
                seen.add(edge)
                edges.append(edge)
    return edges


def _add_clusters(dot: "graphviz.Digraph", boxes: list[_Box], groups: dict[str, str], level: int = 0,
                  prefix: tuple[str, ...] = ()) -> None:
    """Declare the boxes in nested clusters, keeping layer order within each."""
    here = [b for b in boxes if b.clusters[:level] == prefix]
    emitted: set[str] = set()
    for box in here:
        if len(box.clusters) == level:
            _add_box(dot, box)
            continue
        child = box.clusters[level]
        if child in emitted:
            continue
        emitted.add(child)
        with dot.subgraph(name=f"cluster_{child}") as sub:
            fill = CLUSTER_FILLS[min(level, len(CLUSTER_FILLS) - 1)]
            sub.attr(label=_cluster_label(_local(child, prefix), groups[child]), tooltip=f"{child}: {groups[child]}",
                     style="rounded,filled", fillcolor=fill, color="#b4b7c9", penwidth="1", labeljust="l",
                     fontsize="10", fontcolor="#3c4043", margin="10")
            _add_clusters(sub, here, groups, level + 1, prefix + (child,))


def _cluster_label(name: str, what: str) -> str:
    """`layer2  sequence`, `0  basic`; the type is left out where the name says it (`branch1`)."""
    text = f"<b>{html.escape(name)}</b>"
    if what != name.rsplit(".", 1)[-1].rstrip("0123456789"):
        text += f'  <font color="{MUTED}">{html.escape(what)}</font>'
    return f"<{text}>"


def _add_box(dot: "graphviz.Digraph", box: _Box) -> None:
    fill, line = box.colours
    extra = {"style": "rounded,filled,bold", "penwidth": "1.6"} if box.folded else {}
    dot.node(box.id, box.label, fillcolor=fill, color=line, tooltip=box.tooltip, **extra)


# ----------------------------------------------------------------- ONNX op graph

# op type → family, for colour only; unlisted ops are drawn plain.
ONNX_FAMILIES: dict[str, str] = {
    **dict.fromkeys(("Conv", "ConvTranspose", "Resize", "Upsample"), "conv"),
    **dict.fromkeys(("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"), "pool"),
    **dict.fromkeys(("Gemm", "MatMul"), "fc"),
    **dict.fromkeys(("BatchNormalization", "LayerNormalization", "InstanceNormalization"), "norm"),
    **dict.fromkeys(("Relu", "Sigmoid", "Tanh", "LeakyRelu", "PRelu", "Softmax", "LogSoftmax"), "activation"),
    **dict.fromkeys(("HardSigmoid", "HardSwish", "Gelu", "Elu", "Softplus"), "activation"),
    **dict.fromkeys(("Dropout",), "regularization"),
    **dict.fromkeys(("LSTM", "RNN", "GRU"), "recurrent"),
    **dict.fromkeys(("Add", "Sum", "Concat"), "merge"),
    **dict.fromkeys(("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Split"), "shape"),
}


def onnx_graph(model: "onnx.ModelProto", rankdir: str = "TB") -> "graphviz.Digraph":
    """The op graph of an ONNX model: a box per node, an edge per tensor, with
    the shapes that the graph's inputs, outputs and value_info declare."""
    graph = model.graph
    weights = {t.name: tuple(t.dims) for t in graph.initializer}
    shapes = _declared_shapes(graph)
    dot = _digraph(graph.name or "model", rankdir)
    dot.attr(label=f"{graph.name or 'model'}  ·  ONNX ops", labelloc="t", labeljust="l", fontsize="14")
    producer: dict[str, str] = {}  # tensor → the drawn node that makes it; ids avoid ':' (a port in DOT)
    for index, value in enumerate(v for v in graph.input if v.name not in weights):
        dot.node(f"input{index}", _label(value.name, "", [_shape_text(shapes.get(value.name, ()))]),
                 fillcolor=FAMILY_COLOURS["io"][0], color=FAMILY_COLOURS["io"][1])
        producer[value.name] = f"input{index}"
    for index, node in enumerate(graph.node):
        _add_op(dot, f"op{index}", node, weights)
        for tensor in node.input:
            if tensor in producer:
                dot.edge(producer[tensor], f"op{index}", label=_shape_text(shapes.get(tensor, ())), tooltip=tensor)
        producer.update(dict.fromkeys(node.output, f"op{index}"))
    for index, value in enumerate(graph.output):
        dot.node(f"output{index}", f"<{html.escape(value.name)}>", shape="plaintext", style="", fontcolor=MUTED)
        if value.name in producer:
            dot.edge(producer[value.name], f"output{index}", label=_shape_text(shapes.get(value.name, ())))
    return dot


def _declared_shapes(graph) -> dict[str, tuple[object, ...]]:
    """Tensor name → dims (numbers, or symbols like N; ? where unknown) where the type declares them."""
    from .lowering.graph import shape_of, tensor_types

    shapes = {name: shape_of(declared) for name, declared in tensor_types(graph).items()}
    return {name: tuple("?" if d is None else d for d in shape) for name, shape in shapes.items() if shape is not None}


def _add_op(dot: "graphviz.Digraph", node_id: str, node, weights: dict[str, tuple[int, ...]]) -> None:
    held = [_shape_text(weights[t]) for t in node.input if t in weights]
    detail = [node.name, ("initializers " + ", ".join(held)) if held else ""]
    fill, line = FAMILY_COLOURS.get(ONNX_FAMILIES.get(node.op_type, ""), OTHER_COLOURS)
    dot.node(node_id, _label(node.op_type, "", detail), fillcolor=fill, color=line,
             tooltip=f"{node.name or node.op_type}: {node.op_type}")

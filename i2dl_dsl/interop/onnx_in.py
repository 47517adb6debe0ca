"""Any ONNX model in: the `--summary` of a model made elsewhere.

`i2dl-compile model.onnx --summary` reads the model (header checks and
limits first), runs ONNX's shape inference, and walks the nodes in order:
per-sample output shapes, parameters (the float initialisers; batch-norm
means and variances are buffers), MACs and receptive fields by op type
(onnx_costs.py), and memory. Nodes are grouped into layers by name: the
exporter's scopes (`/layer1/layer1.0/conv1/Conv` → `layer1.0.conv1`, as
PyTorch's exporter writes them; `conv1/Conv @model.net:3:5` as this
project's does) or PyTorch's `name_scopes` metadata; nodes that only
compute shapes or constants get no row. The rows go to the one summary
renderer (summary.py), so the table and JSON are those of a `.net` file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import UserError
from ..layers.base import ReceptiveField
from ..reading import regular_file, require_memory, size_text
from ..summary import Row, document, fold, table_text
from .onnx_costs import NodeView, macs, receptive_field

PROTOBUF_LIMIT = 2**31  # a protobuf message cannot be larger; bigger models keep their tensors in external files
FLOATS = {1: 4, 10: 2, 11: 8, 16: 2}  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16 → bytes
BUFFER_INPUTS = {"BatchNormalization": (3, 4)}  # running mean and variance: values, not parameters
SHAPE_OPS = frozenset({"Shape", "Size"})  # read a tensor's shape, not its values
_OWN_NAME = re.compile(r"^([^/ ]+)/[^/]* @.*:\d+:\d+(_\d+)?$")  # this project's `<layer>/<op> @file:line:col`


@dataclass
class Model:
    """What the summary of an ONNX model is made of."""

    name: str
    path: str
    inputs: list[tuple[str, tuple]]
    rows: list[Row]
    totals: dict[str, Any]
    nodes: int
    unknown_macs: list[str] = field(default_factory=list)  # nodes whose MACs shape inference left open

    def table(self, depth: int | None = None, batch: int = 1) -> str:
        return table_text(f"onnx model {self.name}   ({self.path})", fold(self.rows, depth),
                          self._totals(batch), batch)

    def document(self, depth: int | None = None, batch: int = 1) -> dict[str, Any]:
        name, shape = self.inputs[0] if self.inputs else ("", ())
        return document(self.name, {"name": name, "shape": list(shape[1:])}, fold(self.rows, depth),
                        self._totals(batch))

    def _totals(self, batch: int) -> dict[str, Any]:
        memory = dict(self.totals["memory"])
        for key in ("inference_activation_bytes", "training_activation_bytes"):
            memory[key] *= batch
        memory["batch"] = batch
        return {**self.totals, "memory": memory}


def load(path: str | Path):
    """The onnx.ModelProto at `path`, without external data, after checks that a
    hostile file cannot pass: a regular file, within protobuf's limit and
    the free memory, that parses as an ONNX model holding a graph."""
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(path)
    label = f"'{p}'"
    try:
        info = regular_file(p, label)
    except FileNotFoundError:
        raise UserError(f"model {label} does not exist") from None
    if info.st_size > PROTOBUF_LIMIT:
        raise UserError(f"model {label} is {size_text(info.st_size)}; an .onnx file holds at most 2 GiB",
                        "a larger model keeps its tensors in external data files beside it")
    require_memory(3 * info.st_size, f"reading {label}", "a model larger than the free memory is never read")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError, RecursionError) as exc:
        raise UserError(f"cannot read {label} as an ONNX model: {str(exc) or type(exc).__name__}",
                        "is it an .onnx file? `i2dl-compile MODEL.net --onnx OUT` writes one") from None
    if not model.HasField("graph") or not model.graph.node:
        raise UserError(f"{label} holds no ONNX graph (no nodes)", "is it an .onnx model file?")
    return model


def _batch_of_one(model) -> int:
    """Give the inputs' symbolic batch axis the size 1, so that shape
    inference finds whole sizes for every tensor (the batch axis moves about
    inside some graphs: attention makes its inputs time-major). Returns the
    batch the shapes then hold: 1, or the fixed batch the model was exported
    with."""
    initial = {t.name for t in model.graph.initializer}
    batches = []
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name in initial or not dims:
            continue
        if not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
        batches.append(dims[0].dim_value)
    return batches[0] if batches and batches[0] > 0 else 1


def _shapes(model) -> dict[str, tuple]:
    """Every tensor's full shape that shape inference finds: ints, and None
    for sizes it leaves open."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - a model shape inference cannot read still has its declared shapes
        inferred = model
    shapes = {}
    g = inferred.graph
    for value in [*g.input, *g.value_info, *g.output]:
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def layer_name(node, index: int) -> str:
    """The layer a node belongs to: its scope, as dotted names."""
    for prop in node.metadata_props:  # PyTorch's torch.export-based exporter
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = re.findall(r"'([^']*)'", prop.value)
            if scopes and scopes[-1]:
                return scopes[-1]
    own = _OWN_NAME.match(node.name)
    if own:
        return own.group(1)
    segments = [s for s in node.name.split("/") if s]
    if len(segments) < 2:
        return node.name or f"{node.op_type}_{index}"
    path = ""
    for segment in segments[:-1]:  # PyTorch's TorchScript exporter: scopes absolute or relative
        path = segment if not path or segment.startswith(path + ".") else f"{path}.{segment}"
    return path


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        out[a.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return out


def summarise(path: str | Path) -> Model:
    """Read and summarise the ONNX model at `path`."""
    model = load(path)
    g = model.graph
    batch = _batch_of_one(model)
    shapes = _shapes(model)
    initial = {t.name: t for t in g.initializer}
    inputs = [(i.name, shapes.get(i.name, ())) for i in g.input if i.name not in initial]
    walk = _Walk(shapes, initial, {name for name, _ in inputs}, batch)
    for index, node in enumerate(g.node):
        walk.visit(node, index)
    rows = [Row(name, "input", shape[1:], 0, 0, _unit(shape)) for name, shape in inputs] + walk.rows()
    params, buffers = walk.parameter_counts()
    peak, outputs = walk.activation_bytes({o.name for o in g.output})
    totals = {"params": params, "trainable_params": params, "buffers": buffers, "macs": sum(r.macs for r in rows),
              "memory": {"param_bytes": walk.parameter_bytes(), "inference_activation_bytes": peak,
                         "training_activation_bytes": 2 * outputs, "batch": 1}}
    return Model(g.name or Path(path).stem, str(path), inputs, rows, totals, len(g.node), walk.unknown_macs)


def _unit(shape: tuple) -> ReceptiveField | None:
    return ReceptiveField.unit() if len(shape) == 4 else None


class _Walk:
    """One pass over the nodes in order: layers, counts, fields, lifetimes."""

    def __init__(self, shapes: dict[str, tuple], initial: dict, data: set[str], batch: int):
        self.shapes, self.initial, self.data, self.batch = shapes, initial, set(data), batch
        self.fields: dict[str, ReceptiveField | None] = {name: _unit(shapes.get(name, ())) for name in data}
        self.groups: list[list] = []           # [layer, op types, output, params, macs, field] per row
        self.owner: dict[str, str] = {}        # parameter tensor → layer that first reads it
        self.counted: list[tuple[str, int, bool]] = []  # (tensor, elements, is a buffer), once each
        self.order: list[tuple[str, list[str]]] = [(name, []) for name in data]  # data tensors, and what each read
        self.by_layer: dict[str, list[str]] = {}        # layer → the parameter tensors it reads first
        self.unknown_macs: list[str] = []
        self._aliases: dict[str, str] = {}     # Identity(initializer) outputs: a deduplicated parameter

    def visit(self, node, index: int) -> None:
        layer = layer_name(node, index)
        self._count_parameters(node, layer)
        reads = [name for name in node.input if name in self.data]
        if not reads or node.op_type in SHAPE_OPS:
            return
        view = NodeView(node.op_type, _attrs(node), [self.shapes.get(n) for n in node.input],
                        [self.shapes.get(n) for n in node.output])
        cost = macs(view)
        if cost is None:
            self.unknown_macs.append(node.name or node.op_type)
        out = node.output[0] if node.output else ""
        self.fields[out] = receptive_field(view, [self.fields.get(n) if n in self.data else None for n in node.input])
        self.data.update(o for o in node.output if o)
        self.order.append((out, reads))
        self._add_to_row(layer, node.op_type, out, (cost or 0) // self.batch)

    def _count_parameters(self, node, layer: str) -> None:
        if node.op_type == "Identity" and node.input and node.input[0] in self.initial:
            self._aliases[node.output[0]] = node.input[0]  # PyTorch's exporter shares equal tensors this way
            return
        buffers = BUFFER_INPUTS.get(node.op_type, ())
        for position, name in enumerate(node.input):
            source = self._aliases.get(name, name)
            tensor = self.initial.get(source)
            # A scalar is an operator's constant (Clip's bounds, GELU's √2), not a layer's parameter.
            if tensor is None or tensor.data_type not in FLOATS or not tensor.dims or name in self.owner:
                continue
            self.owner[name] = layer
            self.counted.append((name, math.prod(tensor.dims), position in buffers))
            self.by_layer.setdefault(layer, []).append(name)

    def _add_to_row(self, layer: str, op_type: str, out: str, cost: int) -> None:
        if not self.groups or self.groups[-1][0] != layer:
            self.groups.append([layer, [], out, 0, 0])
        group = self.groups[-1]
        group[1].append((op_type, cost))
        group[2], group[4] = out, group[4] + cost

    def rows(self) -> list[Row]:
        sizes = {name: (elements, buffer) for name, elements, buffer in self.counted}
        claimed: set[str] = set()
        rows = []
        for layer, ops, out, _, cost in self.groups:
            params = 0
            if layer not in claimed:  # a layer's parameters go to its first row
                claimed.add(layer)
                params = sum(sizes[n][0] for n in self.by_layer.get(layer, ()) if not sizes[n][1])
            kind = max(ops, key=lambda op: op[1])[0] if any(c for _, c in ops) else ops[-1][0]
            shape = self.shapes.get(out)
            rows.append(Row(layer, kind, tuple("?" if d is None else d for d in shape[1:]) if shape else ("?",),
                            params, cost, self.fields.get(out)))
        return rows

    def parameter_counts(self) -> tuple[int, int]:
        params = sum(n for _, n, buffer in self.counted if not buffer)
        return params, sum(n for _, n, buffer in self.counted if buffer)

    def parameter_bytes(self) -> int:
        return sum(n * FLOATS[self.initial[self._aliases.get(name, name)].data_type] for name, n, _ in self.counted)

    def activation_bytes(self, outputs: set[str]) -> tuple[int, int]:
        """Per sample, float32: the peak of data tensors alive at once (each
        freed after its last reader), and the sum of all of them."""
        def size(name: str) -> int:
            shape = self.shapes.get(name)
            return 4 * math.prod(d or 1 for d in shape) // self.batch if shape else 0

        last = {name: i for i, (name, _) in enumerate(self.order)}
        for i, (_, reads) in enumerate(self.order):
            for name in reads:
                last[name] = i
        for name in outputs:
            last[name] = len(self.order)
        expiring: dict[int, list[str]] = {}
        for name, at in last.items():
            expiring.setdefault(at, []).append(name)
        live = peak = 0
        for i, (name, _) in enumerate(self.order):
            live += size(name)
            peak = max(peak, live)
            live -= sum(size(n) for n in expiring.get(i, ()))
        return peak, sum(size(name) for name, _ in self.order)

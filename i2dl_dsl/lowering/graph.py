"""The one way this package builds ONNX graphs: layer lowerings, losses and
optimizers (`builder.LayerBuilder`), gradient rules
(`autodiff.context.GradContext`) and graph rewrites (`nchwc`) all make
their nodes and constants through `Builder`, and read graphs through the
proto helpers at the bottom of this file.

    g.op("Mul", [a, b])                        -> "scope/Mul"        one output
    g.op("Split", [x, sizes], outputs=2, axis=0) -> ["scope/Split:0", "scope/Split:1"]
    g.op("Identity", [x], output_names=["loss"]) -> ["loss"]          names chosen by the caller
    g.op("Conv", [x, w], domain="com.microsoft.nchwc", pads=[1, 1, 1, 1])
    g.const([1, 2])                             int64 (integers)
    g.const(0.5)                                the graph's float type (float32 unless set)
    g.const(2, dtype="float32", hint="two")     an explicit dtype wins: a numpy name or
                                                type, or a TensorProto element type

- Inputs are always a list of tensor names ("" for an absent optional input).
  Attributes are keywords; one that is None is left out.
- A node is named `<scope>/<op type>` (plus ` @<file.net:line:col>` when the
  builder knows where its source is), made unique in the graph; it carries
  the builder's `doc` (the source location and what made it) as its
  doc_string, which is how a failure at run time is traced back to a `.net`
  line. One output takes the node's name; several are `<node>:<i>`.
- A constant is an initializer named `<scope>/<hint>`.
- `at(scope, doc)` moves a builder on to name later nodes after another scope.

What builds on it: `LayerBuilder` (a layer's nodes, `<layer>/<op> @file.net:
line:col`, and its parameters via `g.param`); `GradContext` (nodes
`grad/<forward node>/<op>`, each type-inferred as it is built so that
`ctx.shape(t)` is known, `shape=` to override it, small constants shared,
and `ints`, `shape_of`, `reshape_like`, `expand_like`, `zeros`); the NCHWc
rewrite (`<conv>/nchwc/<op>`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..names import fresh

Dim = int | str | None  # a static size, a symbolic one ('N'), or unknown
Shape = tuple[Dim, ...]

FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


@dataclass(kw_only=True)
class Graph:
    """Nodes and initializers of one graph under construction, and every name taken in it."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    float_type: int = TensorProto.FLOAT  # what float constants are made in

    def fresh(self, base: str) -> str:
        """`base`, or `base_2`, ...: a name not yet taken in the graph, now taken."""
        return fresh(base, self.names)

    def initializer(self, name: str, array: np.ndarray) -> str:
        """Add `array` (copied) as the initializer `name`."""
        self.names.add(name)
        self.initializers[name] = numpy_helper.from_array(np.array(array, order="C", copy=True), name)
        return name


class Builder:
    """Makes nodes and constants in a `Graph`, named after a scope."""

    def __init__(self, graph: Graph, scope: str, doc: str = "", where: str = ""):
        self.graph = graph
        self.scope, self.doc = scope, doc
        self.where = where  # `file.net:line:col`, appended to node names so Netron shows the source

    @property
    def float_type(self) -> int:
        return self.graph.float_type

    def at(self, scope: str, doc: str = "") -> None:
        """Name the nodes made from now on `<scope>/<op>`, with this doc_string."""
        self.scope, self.doc = scope, doc

    def fresh(self, base: str) -> str:
        return self.graph.fresh(base)

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, output_names: list[str] | None = None,
           domain: str = "", **attrs: Any) -> str | list[str]:
        """Add one node; returns its output name, or the list of them when
        `outputs` > 1 or `output_names` are given."""
        node_name = self.fresh(f"{self.scope}/{op_type}" + (f" @{self.where}" if self.where else ""))
        if output_names:
            names = list(output_names)
            self.graph.names.update(names)
        else:
            names = [node_name] if outputs == 1 else [self.fresh(f"{node_name}:{i}") for i in range(outputs)]
        node = helper.make_node(op_type, list(inputs), names, name=node_name, doc_string=self.doc,
                                domain=domain or None, **{k: v for k, v in attrs.items() if v is not None})
        self._added(node)
        self.graph.nodes.append(node)
        return names[0] if outputs == 1 and not output_names else names

    def _added(self, node: onnx.NodeProto) -> None:
        """Called with each node before it joins the graph (type inference hooks in here)."""

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """A constant tensor (shapes, axes, scales) as an initializer
        `<scope>/<hint>`. The one dtype rule: an explicit `dtype` wins
        (a numpy name such as "float32", a numpy type, or a TensorProto
        element type); otherwise integer values are int64, booleans bool,
        and float values the graph's float type (float32, unless the
        gradient driver sets the loss's type)."""
        return self.constant(const_array(value, dtype, self.float_type), hint)

    def constant(self, array: np.ndarray, hint: str = "const") -> str:
        """`array` as it is (its dtype kept) as an initializer `<scope>/<hint>`."""
        return self.graph.initializer(self.fresh(f"{self.scope}/{hint}"), array)


def const_array(value: Any, dtype: Any, float_type: int) -> np.ndarray:
    """`value` as an array under `Builder.const`'s dtype rule."""
    if dtype is not None:
        return np.asarray(value, dtype=numpy_dtype(dtype))
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return array.astype(helper.tensor_dtype_to_np_dtype(float_type))
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "b":
        return array
    raise TypeError(f"a constant must be numbers or booleans, not {array.dtype}")


def numpy_dtype(dtype: Any) -> np.dtype:
    """A numpy dtype from a numpy name or type, or a TensorProto element type (an int)."""
    return helper.tensor_dtype_to_np_dtype(dtype) if isinstance(dtype, int) else np.dtype(dtype)


# --- reading graphs -------------------------------------------------------------------


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The value of a node's attribute (strings decoded), or `default`."""
    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def shape_of(type_proto: onnx.TypeProto) -> Shape | None:
    """The shape in a tensor type: ints, symbols ('N') or None per axis; None if unknown."""
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)


def tensor_types(*graphs: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    """The declared type of every tensor of the graphs (inputs, value_info,
    outputs; the first graph to declare one wins), and of every initializer
    of the first graph."""
    types: dict[str, onnx.TypeProto] = {}
    for graph in graphs:
        for info in (*graph.value_info, *graph.input, *graph.output):
            if info.type.HasField("tensor_type") and info.name not in types:
                types[info.name] = info.type
    for tensor in graphs[0].initializer:
        types[tensor.name] = helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims))
    return types


def rename(nodes: list[onnx.NodeProto], tensor: str, name: str) -> bool:
    """Make the node among `nodes` that computes `tensor` write `name`
    instead, and the readers among `nodes` read it. False (and nothing
    changed) when none of `nodes` computes `tensor`."""
    if not any(tensor in node.output for node in nodes):
        return False
    for node in nodes:
        for values in (node.output, node.input):
            for i, value in enumerate(values):
                if value == tensor:
                    values[i] = name
    return True

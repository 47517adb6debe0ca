"""What a gradient rule sees: node making, constants, shapes and attributes.

`GradContext` is the graph builder of `lowering/graph.py` (`ctx.op("Mul", [a,
b])`, `ctx.const(0.5)`) with what rules need besides: every node a rule
makes is type-checked by ONNX shape inference as it is built, so a rule
that wires a node wrongly fails at the line that built it, and the driver
knows the shape of every gradient it has to un-broadcast.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..lowering.graph import FLOAT_TYPES, Builder, Dim, Graph, Shape, attr, shape_of, tensor_types


class NotDifferentiable(Exception):
    """A rule cannot differentiate a node as it is configured; the message says why."""


class GradContext(Builder):
    """Types of every tensor, the constants of the graph, and the new nodes
    (`graph.nodes`) and constants (`graph.initializers`) of the backward pass."""

    attr = staticmethod(attr)  # rules read attributes as `ctx.attr(node, name, default)`

    def __init__(self, model: onnx.ModelProto, blocked_convs: bool = False):
        super().__init__(Graph(), "grad/loss")
        self.model = model
        # The graph will run on onnxruntime's blocked (NCHWc) CPU convolutions,
        # which make Conv the fastest form of most convolution gradients.
        self.blocked_convs = blocked_convs
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21)
        self.consts: dict[str, TensorProto] = {}  # initializers and Constant outputs, forward and new
        self.made: set[str] = set()  # outputs of the backward nodes
        self._small: dict[tuple, str] = {}
        self.types = self._collect(model)

    def _collect(self, model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
        try:  # fills value_info gaps; a graph it cannot fully infer keeps what it has
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True).graph
        except Exception:  # noqa: BLE001 - inference is a best effort here
            inferred = model.graph
        types = tensor_types(inferred, model.graph)
        self.consts.update((tensor.name, tensor) for tensor in model.graph.initializer)
        for node in model.graph.node:
            self.graph.names.update(node.output)
            self.graph.names.add(node.name)
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = node.attribute[0].t
        self.graph.names.update(types)
        return types

    # --- what rules ask about tensors -------------------------------------------------

    def shape(self, name: str) -> Shape | None:
        """The shape of a tensor: ints, symbols ('N') or None per axis; None if unknown."""
        return shape_of(self.types[name]) if name in self.types else None

    def static_shape(self, name: str) -> tuple[int, ...]:
        """The shape, which must be fully known (rules that need sizes use this)."""
        shape = self.shape(name)
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise NotDifferentiable(f"the shape of '{name}' must be static, found {shape}")
        return shape  # type: ignore[return-value]

    def rank(self, name: str) -> int:
        shape = self.shape(name)
        if shape is None:
            raise NotDifferentiable(f"the rank of '{name}' is unknown")
        return len(shape)

    def elem_type(self, name: str) -> int:
        return self.types[name].tensor_type.elem_type if name in self.types else self.float_type

    def is_float(self, name: str) -> bool:
        """Whether a tensor can carry a gradient (unknown types are assumed to)."""
        return name not in self.types or self.elem_type(name) in FLOAT_TYPES

    def value(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor (initializer or Constant output), else None."""
        return numpy_helper.to_array(self.consts[name]) if name in self.consts else None

    # --- making things -----------------------------------------------------------------

    def at(self, label: str, doc: str = "") -> None:
        """Name the nodes made from now on `grad/<label>/<op>`, with this doc_string."""
        super().at(f"grad/{label}", doc)

    def constant(self, array: np.ndarray, hint: str = "const") -> str:
        """As `Builder.constant`; a small constant is made once and shared."""
        key = (array.dtype.str, array.shape, array.tobytes())
        if array.size <= 16 and key in self._small:
            return self._small[key]
        name = super().constant(array, hint)
        if array.size <= 16:
            self._small[key] = name
        self.consts[name] = self.graph.initializers[name]
        self.types[name] = helper.make_tensor_type_proto(self.consts[name].data_type, list(array.shape))
        return name

    def ints(self, values: Sequence[int]) -> str:
        """An int64 vector constant (axes, shapes, pads)."""
        return self.const(list(values), TensorProto.INT64)

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, output_names: list[str] | None = None,
           domain: str = "", shape: Sequence[Dim] | None = None, **attrs: Any) -> str | list[str]:
        """`Builder.op`; `shape` overrides what inference found for a single output."""
        out = super().op(op_type, inputs, outputs, output_names, domain, **attrs)
        if shape is not None:
            elem = self.types[out].tensor_type.elem_type
            self.types[out] = helper.make_tensor_type_proto(elem, list(shape))
        return out

    def _added(self, node: onnx.NodeProto) -> None:
        """Infer the new node's output types now, so a mis-wired rule fails here."""
        schema = onnx.defs.get_schema(node.op_type, self.opset, node.domain)
        types = {i: self.types.get(i) or helper.make_tensor_type_proto(self.float_type, None)
                 for i in node.input if i}
        data = {i: self.consts[i] for i in node.input if i in self.consts
                and self.consts[i].data_type == TensorProto.INT64}  # shapes, axes: small
        try:
            inferred = onnx.shape_inference.infer_node_outputs(
                schema, node, types, data, opset_imports=list(self.model.opset_import),
                ir_version=self.model.ir_version or onnx.IR_VERSION)
        except Exception as exc:  # noqa: BLE001 - re-raised with the node that failed
            raise ValueError(f"gradient node {node.name} ({node.op_type}) is ill-formed: {exc}") from exc
        for out in node.output:
            self.types[out] = inferred.get(out) or helper.make_tensor_type_proto(self.float_type, None)
        self.made.update(node.output)

    # --- shape-aware helpers: static constants where sizes are known, Shape ops where not ---

    def shape_of(self, name: str) -> str:
        """An int64 tensor holding the shape of `name` (a constant when static)."""
        shape = self.shape(name)
        if shape is not None and all(isinstance(d, int) for d in shape):
            return self.ints(shape)
        return self.op("Shape", [name])

    def reshape_like(self, grad: str, like: str) -> str:
        """Reshape `grad` to the shape of `like`; one symbolic axis becomes -1."""
        shape = self.shape(like)
        if shape is None:
            return self.op("Reshape", [grad, self.op("Shape", [like])])
        unknown = [i for i, d in enumerate(shape) if not isinstance(d, int)]
        target = self.ints([-1 if i in unknown else d for i, d in enumerate(shape)]) if len(unknown) <= 1 \
            else self.op("Shape", [like])
        return self.op("Reshape", [grad, target], shape=shape)

    def expand_like(self, grad: str, like: str) -> str:
        """Broadcast `grad` to the shape of `like`."""
        return self.op("Expand", [grad, self.shape_of(like)], shape=self.shape(like))

    def zeros(self, shape_tensor: str, shape: Sequence[Dim] | None) -> str:
        """A zero tensor of the shape held in `shape_tensor`, in the gradient's element type."""
        zero = numpy_helper.from_array(np.zeros(1, helper.tensor_dtype_to_np_dtype(self.float_type)))
        return self.op("ConstantOfShape", [shape_tensor], value=zero, shape=shape)

    def zeros_like(self, like: str) -> str:
        return self.zeros(self.shape_of(like), self.shape(like))

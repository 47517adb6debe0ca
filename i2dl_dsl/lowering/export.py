"""Lower a checked network to an ONNX model, and write it safely.

Every layer lowers itself (`Layer.lower`); this driver walks the layers in
order, names each layer's output tensor after the layer, declares its shape
(with the symbolic batch axis `N`) and assembles the model.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..checker import CheckedNetwork
from ..diagnostics import Span, UserError
from ..elaborate import layer_node
from ..files import temporary_beside
from ..names import layer_output, tensor_name
from ..reading import require_memory
from .builder import BATCH, LayerBuilder, LoweringGraph
from .graph import rename
from .initial_values import initializer
from .weights import match_weights

DEFAULT_OPSET = 21
MIN_OPSET, MAX_OPSET = 18, 22  # Split(num_outputs) needs 18; onnxruntime 1.31 runs up to 22 fully
PROTOBUF_LIMIT = 2**31 - 2**26  # stay clear of protobuf's 2 GiB cap, headers included

# The peak memory of an export, measured as the growth of ru_maxrss across
# to_onnx and save_model: an fc layer of 80 M parameters (320 MB as float32)
# peaked at 4.0 times its float32 bytes (initial values are drawn in float64,
# then held as float32 and again as the TensorProto's data); 3,000 and 6,000
# fc -> relu blocks (6,000 and 12,000 layers of a few parameters) took
# 10.7 to 11.2 KiB per layer (nodes, value infos, names, shape inference).
EXPORT_COPIES = 4
EXPORT_LAYER_BYTES = 16 << 10  # the measured 11 KiB, with room for layers that lower to several nodes


def parameter_shapes(net: CheckedNetwork) -> dict[str, tuple[int, ...]]:
    """Every parameter and buffer of the network by its full name."""
    a = net.analysis
    shapes = {}
    for layer in a.order:
        for suffix, shape in {**a.params.get(layer, {}), **a.buffers.get(layer, {})}.items():
            shapes[tensor_name(layer, suffix)] = tuple(shape)
    return shapes


def buffer_names(net: CheckedNetwork) -> set[str]:
    """The full names of the network's buffers (batch-norm running statistics):
    tensors with values, but no gradient and no optimizer state."""
    return {tensor_name(layer, suffix) for layer, buffers in net.analysis.buffers.items() for suffix in buffers}


def export_bytes(net: CheckedNetwork) -> int:
    """The estimated peak memory of lowering and writing `net`, known before
    anything is allocated: see EXPORT_COPIES and EXPORT_LAYER_BYTES."""
    values = sum(math.prod(shape) for shape in parameter_shapes(net).values())
    return values * np.dtype(np.float32).itemsize * EXPORT_COPIES + len(net.analysis.order) * EXPORT_LAYER_BYTES


def to_onnx(net: CheckedNetwork, opset: int = DEFAULT_OPSET, weights: dict[str, np.ndarray] | None = None,
            seed: int = 0, init: str = "he", weights_source: str = "weights") -> onnx.ModelProto:
    """The inference model. `weights` by name replace the initial values; all must fit."""
    builder, output = lower_network(net, opset, weights, seed, init, weights_source)
    model = assemble(net, builder, output, opset)
    complete_value_info(model)
    return model


def lower_network(net: CheckedNetwork, opset: int = DEFAULT_OPSET, weights: dict[str, np.ndarray] | None = None,
                  seed: int = 0, init: str = "he", weights_source: str = "weights", training: bool = False,
                  strict: bool = True) -> tuple[LoweringGraph, str]:
    """Lower every layer into a LoweringGraph; returns it and the output tensor.
    training=True emits the training-mode forward pass (batch statistics,
    dropout masks, unrolled recurrences). strict=False lets `weights` cover
    only some parameters (the rest are initialised)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"opset {opset} is not supported; choose {MIN_OPSET} to {MAX_OPSET}")
    hint = f"use smaller layers, or check the sizes: i2dl-compile {net.path} --summary"
    require_memory(export_bytes(net), f"exporting network {net.name}", hint, Span.unreadable(net.path))
    given = match_weights(weights, parameter_shapes(net), weights_source, strict) if weights is not None else {}
    scheme = initializer(net.graph, init, seed)

    def init_param(layer: str, suffix: str, shape: tuple[int, ...]) -> np.ndarray:
        name = tensor_name(layer, suffix)
        return given[name] if name in given else scheme(layer, suffix, shape)

    builder = LoweringGraph(init_param, training, opset=opset)
    tensors = _lower_layers(net, builder)
    return builder, tensors[net.output]


def _lower_layers(net: CheckedNetwork, builder: LoweringGraph) -> dict[str, str]:
    graph, a = net.graph, net.analysis
    tensors = {net.input: net.input}
    builder.names.add(net.input)
    for node in a.order:
        record = layer_node(graph, node)
        if not record.inputs:
            continue
        span, layer = record.span, record.layer
        doc = f"{span.path}:{span.line}:{span.col}: {layer.kind}({layer.describe()})"
        view = LayerBuilder(builder, node, doc, [a.shapes[s] for s in record.inputs], a.shapes[node],
                            {**a.params.get(node, {}), **a.buffers.get(node, {})},
                            where=f"{Path(span.path).name}:{span.line}:{span.col}")
        first = len(builder.nodes)
        out = layer.lower(view, [tensors[s] for s in record.inputs])
        tensors[node] = _name_output(view, first, out)
        builder.declare(tensors[node], a.shapes[node])
    return tensors


def _name_output(view: LayerBuilder, first: int, out: str) -> str:
    """Give the layer's output tensor the layer's own name: rename what its
    nodes (from index `first`) made, or copy an input it passed through. A
    layer that is one tensor (`scale`) has given its name to its parameter,
    the state_dict's name; its output is then `<layer>/out` (names.layer_output)."""
    name = layer_output(view.name, view.graph.initializers)
    view.graph.names.add(name)
    if not rename(view.graph.nodes[first:], out, name):
        view.op("Identity", [out], output_names=[name])
    return name


def assemble(net: CheckedNetwork, builder: LoweringGraph, output: str, opset: int) -> onnx.ModelProto:
    shapes = net.analysis.shapes
    inputs = [helper.make_tensor_value_info(net.input, TensorProto.FLOAT, [BATCH, *shapes[net.input]])]
    outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, [BATCH, *shapes[net.output]])]
    infos = [v for name, v in builder.value_infos.items() if name not in (net.input, output)]
    graph = helper.make_graph(builder.nodes, net.name, inputs, outputs, list(builder.initializers.values()),
                              value_info=infos)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="i2dl-dsl",
                              ir_version=helper.find_min_ir_version_for(opsets))
    model.doc_string = f"{net.name} from {net.path}"
    helper.set_model_props(model, {"source": net.path, "network": net.name})
    return model


def complete_value_info(model: onnx.ModelProto) -> None:
    """Declare the tensors inside layers too (a layer's output already is),
    with the shapes ONNX infers for them.

    Inference runs on a copy whose large initializers keep their type and
    dims but not their data, so it is cheap, and works past 2 GiB.
    """
    graph = model.graph
    known = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    known.update(t.name for t in graph.initializer)
    stub = _copy_without(model, "graph")
    stub.graph.CopyFrom(_copy_without(graph, "initializer"))
    stub.graph.initializer.extend(_without_data(t) if _data_bytes(t) > _INLINE_BYTES else t
                                  for t in graph.initializer)
    inferred = onnx.shape_inference.infer_shapes(stub)
    graph.value_info.extend(v for v in inferred.graph.value_info if v.name not in known)


def save_model(model: onnx.ModelProto, path: str | Path) -> None:
    """Write atomically: a temporary file beside the target, then a rename;
    a failed or interrupted write leaves any earlier file as it was.

    Weights past protobuf's 2 GiB limit go to `<name>.data` beside the model
    (ONNX external data); `model` itself is not changed.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise UserError(f"cannot write '{target}': the directory '{target.parent}' does not exist")
    external = sum(t.ByteSize() for t in model.graph.initializer) > PROTOBUF_LIMIT
    data_name = f"{target.name}.data"
    temporaries: list[Path] = []
    try:
        tmp = temporary_beside(target, temporaries)
        if external:
            tmp_data = temporary_beside(target.parent / data_name, temporaries)
            onnx.save_model(_externalised(model, tmp_data, data_name), str(tmp))
            os.replace(tmp_data, target.parent / data_name)
        else:
            onnx.save_model(model, str(tmp))
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write '{target}': {exc.strerror or exc}") from None
    finally:
        for leftover in temporaries:
            if leftover.exists():
                leftover.unlink()


_INLINE_BYTES = 1024  # smaller tensors stay inside the model file
_ALIGN = 4096  # external tensors start on page boundaries, so they can be memory-mapped


def _data_bytes(tensor: onnx.TensorProto) -> int:
    return tensor.ByteSize()  # the data and a few bytes of header; reading raw_data would copy it


def _without_data(tensor: onnx.TensorProto) -> onnx.TensorProto:
    return onnx.TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)


def _externalised(model: onnx.ModelProto, data_file: Path, location: str) -> onnx.ModelProto:
    """A copy of `model` whose large initializers point into `data_file`
    (named `location` relative to the model), which this writes."""
    copy = _copy_without(model, "graph")
    copy.graph.CopyFrom(_copy_without(model.graph, "initializer"))
    with open(data_file, "wb") as data:
        for tensor in model.graph.initializer:
            if _data_bytes(tensor) <= _INLINE_BYTES:
                copy.graph.initializer.append(tensor)
                continue
            raw = tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.to_array(tensor).tobytes()
            offset = -data.tell() % _ALIGN + data.tell()
            data.seek(offset)
            data.write(raw)
            stub = _without_data(tensor)
            stub.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", offset), ("length", len(raw))):
                stub.external_data.add(key=key, value=str(value))
            copy.graph.initializer.append(stub)
    return copy


def _copy_without(message, skipped: str):
    """A copy of a protobuf message without one (large) field."""
    copy = type(message)()
    for field, value in message.ListFields():
        if field.name == skipped:
            continue
        if hasattr(value, "extend"):
            getattr(copy, field.name).extend(value)
        elif hasattr(value, "CopyFrom"):
            getattr(copy, field.name).CopyFrom(value)
        else:
            setattr(copy, field.name, value)
    return copy

"""Lower a checked network to an ONNX model, and write it safely.

Every layer lowers itself (`Layer.lower`); this driver walks the layers in
order, names each layer's output tensor after the layer, declares its shape
(with the symbolic batch axis `N`) and assembles the model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..compiler import CheckedNetwork
from ..diagnostics import UserError
from .builder import BATCH, GraphBuilder, LayerBuilder
from .init import initializer
from .weights import match_weights

DEFAULT_OPSET = 21
MIN_OPSET, MAX_OPSET = 18, 22  # Split(num_outputs) needs 18; onnxruntime 1.31 runs up to 22 fully
PROTOBUF_LIMIT = 2**31 - 2**26  # stay clear of protobuf's 2 GiB cap, headers included


def parameter_shapes(net: CheckedNetwork) -> dict[str, tuple[int, ...]]:
    """Every parameter and buffer of the network by its full name."""
    a = net.analysis
    shapes = {}
    for layer in a.order:
        for suffix, shape in {**a.params.get(layer, {}), **a.buffers.get(layer, {})}.items():
            shapes[f"{layer}.{suffix}"] = tuple(shape)
    return shapes


def to_onnx(net: CheckedNetwork, opset: int = DEFAULT_OPSET, weights: dict[str, np.ndarray] | None = None,
            seed: int = 0, init: str = "he", weights_source: str = "weights") -> onnx.ModelProto:
    """The inference model. `weights` by name replace the initial values; all must fit."""
    builder, output = lower_network(net, opset, weights, seed, init, weights_source)
    return assemble(net, builder, output, opset)


def lower_network(net: CheckedNetwork, opset: int = DEFAULT_OPSET, weights: dict[str, np.ndarray] | None = None,
                  seed: int = 0, init: str = "he", weights_source: str = "weights", training: bool = False,
                  strict: bool = True) -> tuple[GraphBuilder, str]:
    """Lower every layer into a GraphBuilder; returns it and the output tensor.
    training=True emits the training-mode forward pass (batch statistics,
    dropout masks, unrolled recurrences). strict=False lets `weights` cover
    only some parameters (the rest are initialised)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"opset {opset} is not supported; choose {MIN_OPSET} to {MAX_OPSET}")
    given = match_weights(weights, parameter_shapes(net), weights_source, strict) if weights is not None else {}
    scheme = initializer(net.graph, init, seed)

    def init_param(layer: str, suffix: str, shape: tuple[int, ...]) -> np.ndarray:
        name = f"{layer}.{suffix}"
        return given[name] if name in given else scheme(layer, suffix, shape)

    builder = GraphBuilder(init_param, training)
    tensors = _lower_layers(net, builder)
    return builder, tensors[net.output]


def _lower_layers(net: CheckedNetwork, builder: GraphBuilder) -> dict[str, str]:
    graph, a = net.graph, net.analysis
    tensors = {net.input: net.input}
    builder._names.add(net.input)
    for node in a.order:
        data = graph.nodes[node]
        if not data["inputs"]:
            continue
        span = data["span"]
        layer = data["layer"]
        doc = f"{span.path}:{span.line}:{span.col}: {layer.kind}({layer.describe()})"
        view = LayerBuilder(builder, node, doc, [a.shapes[s] for s in data["inputs"]], a.shapes[node],
                            {**a.params.get(node, {}), **a.buffers.get(node, {})})
        first = len(builder.nodes)
        out = layer.lower(view, [tensors[s] for s in data["inputs"]])
        tensors[node] = _name_output(builder, first, out, node, doc)
        builder.declare(node, a.shapes[node])
    return tensors


def _name_output(builder: GraphBuilder, first: int, out: str, name: str, doc: str) -> str:
    """Give the layer's output tensor the layer's own name."""
    builder._names.add(name)
    for node in builder.nodes[first:]:
        if out in node.output:
            node.output[list(node.output).index(out)] = name
            for later in builder.nodes[first:]:
                for i, source in enumerate(later.input):
                    if source == out and later is not node:
                        later.input[i] = name
            return name
    builder.nodes.append(helper.make_node("Identity", [out], [name], name=f"{name}/Identity", doc_string=doc))
    return name


def assemble(net: CheckedNetwork, builder: GraphBuilder, output: str, opset: int) -> onnx.ModelProto:
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


def save_model(model: onnx.ModelProto, path: str | Path) -> None:
    """Write atomically: a temporary file beside the target, then a rename.

    Weights past protobuf's 2 GiB limit go to `<name>.data` beside the model.
    """
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise UserError(f"cannot write '{target}': the directory '{target.parent}' does not exist")
    external = sum(t.ByteSize() for t in model.graph.initializer) > PROTOBUF_LIMIT
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    os.close(fd)
    tmp = Path(tmp_name)
    data_name = f"{target.name}.data"
    tmp_data = tmp.parent / f"{tmp.name}.data"
    try:
        if external:
            onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=tmp_data.name, size_threshold=1024)
            _point_external_data(tmp, data_name)
            os.replace(tmp_data, target.parent / data_name)
        else:
            onnx.save_model(model, str(tmp))
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write '{target}': {exc.strerror or exc}") from None
    finally:
        for leftover in (tmp, tmp_data):
            if leftover.exists():
                leftover.unlink()


def _point_external_data(model_file: Path, data_name: str) -> None:
    """Rewrite the external-data location from the temporary name to the final one."""
    model = onnx.load(str(model_file), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = data_name
    onnx.save_model(model, str(model_file))

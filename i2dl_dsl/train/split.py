"""The training step in two parts, for data-parallel training: a gradient
part (forward in training mode, loss, backward) and an update part (the
optimizer), so that the gradients of several workers can be averaged
between them.

    gradients: x, y, masks, parameters, buffers
               -> loss, output, grad/<param>, new/<buffer>
    update:    parameters, grad/<param>, state/<slot>, lr, step
               -> new/<param>, new/state/<slot>

Both come from the very functions that build the fused step (step.py): the
gradient part is the fused step built with its gradients as outputs and
the optimizer pruned away; the update part is the optimizer that the fused
step appends, emitted over inputs named `grad/<param>`. Run one after the
other on the same batch they compute what the fused step computes, up to
the order of floating-point sums.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..checker import CheckedNetwork
from ..lowering.builder import LoweringGraph
from ..target import Target
from .step import LOSS, StepModel, TrainConfig, build_step, emit_optimizer

GRAD = "grad/"


@dataclass
class SplitStep:
    """The fused step's description (values, names, packing, masks) and its two parts."""

    step: StepModel
    gradients: onnx.ModelProto
    update: onnx.ModelProto


def build_split(net: CheckedNetwork, config: TrainConfig, weights: dict[str, np.ndarray] | None = None,
                target: Target | None = None) -> SplitStep:
    """The gradient and update parts of the step `build_step` makes for the same arguments."""
    step = build_step(net, replace(config, expose_gradients=True), weights, target=target)
    return SplitStep(step, gradient_part(step), update_part(step, config))


def gradient_part(step: StepModel) -> onnx.ModelProto:
    """The step without its optimizer: the outputs a worker sends to the
    collective (gradients, loss) or keeps (output, new buffers), and only
    the nodes, inputs and constants they need."""
    model = onnx.ModelProto()
    model.CopyFrom(step.model)
    graph = model.graph
    wanted = {LOSS, step.output, *(GRAD + p for p in step.trainable), *(f"new/{b}" for b in step.buffers)}
    kept_outputs = [o for o in graph.output if o.name in wanted]
    del graph.output[:]
    graph.output.extend(kept_outputs)
    needed = set(wanted)
    nodes = []
    for node in reversed(graph.node):  # nodes are in topological order: one backward sweep
        if any(name in needed for name in node.output):
            nodes.append(node)
            needed.update(_reads(node))
    _keep(graph.node, reversed(nodes))
    _keep(graph.input, [i for i in graph.input if i.name in needed])
    _keep(graph.initializer, [t for t in graph.initializer if t.name in needed])
    return model


def _reads(node: onnx.NodeProto) -> set[str]:
    """The tensors a node reads: its inputs, and those its subgraphs (an
    If's branches) take from the enclosing graph, found by name."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        for graph in (*attribute.graphs, *([attribute.g] if attribute.HasField("g") else [])):
            for inner in graph.node:
                names |= _reads(inner)
    return names


def _keep(field, items) -> None:
    items = list(items)
    del field[:]
    field.extend(items)


def update_part(step: StepModel, config: TrainConfig) -> onnx.ModelProto:
    """The optimizer alone: the fused step's update, reading `grad/<param>`."""
    shapes = {p: tuple(step.values[p].shape) for p in step.trainable}
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shapes[p]))
              for p in step.trainable for name in (p, GRAD + p)]
    graph = helper.make_graph([], "update", inputs, [])
    model = helper.make_model(graph, opset_imports=list(step.model.opset_import), producer_name="i2dl-dsl",
                              ir_version=step.model.ir_version)
    builder = LoweringGraph(init_param=_no_parameters)
    builder.names.update(i.name for i in inputs)
    emit_optimizer(model, builder, {p: GRAD + p for p in step.trainable}, shapes, config)
    return model


def _no_parameters(layer: str, suffix: str, shape: tuple[int, ...]) -> np.ndarray:
    raise AssertionError(f"the update part has no layer parameters to initialise ({layer}.{suffix})")

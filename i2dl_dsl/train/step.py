"""The training step as one ONNX graph: forward in training mode, loss,
backward (i2dl_dsl.autodiff), optimizer update.

Inputs:  the batch `x`, labels `y`, the random inputs its layers declare
         (dropout masks `<layer>.mask`, see Layer.random_inputs), every
         parameter and buffer by name, optimizer state `state/<slot>` (flat
         over all trainable parameters, see packing.py), the learning rate
         `lr` and the step number `step` (t, from 1).
Outputs: `loss`, the network output, `new/<param>` for every trainable
         parameter, `new/state/<slot>`, and `new/<buffer>` (running statistics).

Parameters are inputs, not initializers, so the session can keep them on the
device and feed each step's outputs to the next (see session.py). Both
graphs are finished for their target (target.py) here, before any session
exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..autodiff import add_gradients
from ..checker import CheckedNetwork
from ..layers.declarations import RandomInput
from ..lowering.builder import BATCH, LayerBuilder, LoweringGraph
from ..lowering.export import TRAINING_OPSET, assemble, buffer_names, lower_network, parameter_shapes
from ..lowering.graph import Builder, Graph, rename
from ..names import within, within_any
from ..target import Target
from . import optimizers
from .losses import LABEL, LOSSES, Loss, label_type, resolve
from .packing import Packing

LR, STEP, LOSS = "lr", "step", "loss"


@dataclass
class TrainConfig:
    loss: str | dict[str, Any] = LOSSES.default  # a name, or {"name": ..., **arguments}
    optimizer: dict[str, Any] = field(default_factory=lambda: {
        "name": optimizers.OPTIMIZERS.default, **optimizers.OPTIMIZERS[optimizers.OPTIMIZERS.default].defaults()})
    weight_decay: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    frozen: tuple[str, ...] = ()        # layer-name prefixes that get no gradient
    lr_scale: dict[str, float] = field(default_factory=dict)  # layer-name prefix → factor
    seed: int = 0
    init: str = "he"
    expose_gradients: bool = False      # also output `grad/<param>` (for tests and debugging)


@dataclass
class StepModel:
    model: onnx.ModelProto
    eval_model: onnx.ModelProto
    values: dict[str, np.ndarray]       # parameters and buffers, initial values
    trainable: list[str]
    buffers: list[str]
    state: dict[str, np.ndarray]        # optimizer slots per parameter (`state/<param>/<slot>`), zeros
    masks: dict[str, RandomInput]       # every random input by name, as its layer declares it
    loss: Loss
    output: str
    input: str
    packing: Packing                    # where each trainable parameter sits in the flat slots
    slots: tuple[str, ...]              # the optimizer's slot names; in the graph, flat `state/<slot>`
    target: Target                      # the device both graphs are written for

    def flat_slot(self, name: str) -> tuple[str, str] | None:
        """(flat slot tensor, parameter) for a per-parameter name `state/<param>/<slot>`."""
        if not name.startswith("state/") or name.count("/") < 2:
            return None
        param, slot = name[len("state/"):].rsplit("/", 1)
        return (state_name(None, slot), param) if slot in self.slots else None


def _scale_for(name: str, scales: dict[str, float]) -> float:
    best = [(len(p), s) for p, s in scales.items() if within(name, p)]
    return max(best)[1] if best else 1.0


def _as_inputs(graph: onnx.GraphProto, names: set[str]) -> dict[str, np.ndarray]:
    """Move the initializers named in `names` to graph inputs; returns their values."""
    values = {}
    kept = []
    for tensor in graph.initializer:
        if tensor.name in names:
            values[tensor.name] = numpy_helper.to_array(tensor)
            graph.input.append(helper.make_tensor_value_info(tensor.name, TensorProto.FLOAT, list(tensor.dims)))
        else:
            kept.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return values


def _append(model: onnx.ModelProto, builder: LoweringGraph) -> None:
    model.graph.node.extend(builder.nodes)
    model.graph.initializer.extend(builder.initializers.values())


def _scalar_input(graph: onnx.GraphProto, name: str) -> None:
    graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, []))


def build_step(net: CheckedNetwork, config: TrainConfig, weights: dict[str, np.ndarray] | None = None,
               opset: int = TRAINING_OPSET, target: Target | None = None) -> StepModel:
    """The training step and evaluation graphs, finished for `target` (None:
    this machine's CPU, `Target.resolve("cpu")`): on a CPU with onnxruntime's
    blocked convolutions, the convolution gradients take the forms those are
    fastest at and the convolutions are rewritten to them."""
    target = target or Target.resolve("cpu")
    loss = resolve(config.loss)
    builder, output = lower_network(net, opset, weights, config.seed, config.init, training=True, strict=False)
    out_shape = net.analysis.shapes[net.output]
    g = LayerBuilder(builder, "loss", f"{net.path}: train loss {loss.name}", [out_shape], (), {})
    total = loss.emit(g, output, LABEL, out_shape)
    shapes = parameter_shapes(net)
    buffers = list(builder.buffer_updates)
    fixed = buffer_names(net)
    trainable = [n for n in shapes if n not in fixed and not within_any(n, config.frozen)]
    total = _penalties(g, total, [n for n in trainable if ".weight" in n], config)
    g.op("Identity", [total], output_names=[LOSS])

    model = assemble(net, builder, output, opset)
    values = _as_inputs(model.graph, set(shapes))
    # Class labels: one per sample, or one per pixel for a dense output [K, H, W] (segmentation).
    label_dims = ([BATCH, *out_shape[1:]] if loss.integer_labels else [BATCH, *out_shape])
    model.graph.input.append(helper.make_tensor_value_info(LABEL, label_type(loss), label_dims))
    for name, draw in builder.random_inputs.items():
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *draw.shape]))
    model.graph.output.insert(0, helper.make_tensor_value_info(LOSS, TensorProto.FLOAT, []))

    grads = add_gradients(model, LOSS, trainable, blocked_convs=target.blocked_convs)
    if config.expose_gradients:
        _copies(model, {grad: f"grad/{param}" for param, grad in grads.items() if grad != f"grad/{param}"}, "expose")
        for param in grads:
            model.graph.output.append(helper.make_tensor_value_info(f"grad/{param}", TensorProto.FLOAT,
                                                                    list(shapes[param])))
    state, packing = emit_optimizer(model, builder, grads, shapes, config)
    _copies(model, {builder.buffer_updates[name]: f"new/{name}" for name in buffers}, "new")
    for name in buffers:
        model.graph.output.append(helper.make_tensor_value_info(f"new/{name}", TensorProto.FLOAT, list(shapes[name])))
    return StepModel(target.rewrite(model), target.rewrite(eval_model(net, values, opset)), values, trainable,
                     buffers, state, dict(builder.random_inputs), loss, output, net.input, packing,
                     optimizers.OPTIMIZERS[config.optimizer["name"]].slots, target)


def _copies(model: onnx.ModelProto, copies: dict[str, str], scope: str) -> None:
    """Identity nodes that copy each tensor (key) to a name of the step's
    outputs (value: `grad/<param>`, `new/<buffer>`)."""
    graph = Graph(names={name for node in model.graph.node for name in (node.name, *node.output)})
    g = Builder(graph, scope)
    for tensor, name in copies.items():
        g.op("Identity", [tensor], output_names=[name])
    model.graph.node.extend(graph.nodes)


def _penalties(g, total: str, weights: list[str], config: TrainConfig) -> str:
    """L1: λ Σ|w|, L2: λ Σ w², over the weights (not biases)."""
    for coefficient, term in ((config.l1, "Abs"), (config.l2, "Square")):
        if not coefficient or not weights:
            continue
        parts = [g.op("ReduceSum", [g.op("Abs", [w]) if term == "Abs" else g.op("Mul", [w, w])], keepdims=0)
                 for w in weights]
        penalty = parts[0] if len(parts) == 1 else g.op("Sum", parts)
        total = g.op("Add", [total, g.op("Mul", [penalty, g.const(coefficient, dtype="float32", hint="lambda")])])
    return total


def emit_optimizer(model, builder: LoweringGraph, grads: dict[str, str], shapes, config: TrainConfig
                   ) -> tuple[dict[str, np.ndarray], Packing]:
    """The update over one flat vector of all trainable parameters (see
    packing.py), reading each parameter's gradient from `grads`; adds `lr`,
    `step` and the flat slots as inputs. Returns the optimizer state, per
    parameter, and the layout. (split.py builds the update alone with it.)"""
    opts = dict(config.optimizer)
    name = opts.pop("name")
    graph = model.graph
    _scalar_input(graph, LR)
    _scalar_input(graph, STEP)
    packing = Packing.of({param: shapes[param] for param in grads})
    state = {state_name(param, slot): np.zeros(shapes[param], dtype=np.float32)
             for param in grads for slot in optimizers.OPTIMIZERS[name].slots}
    if not grads:
        return state, packing
    optimizer_builder = LoweringGraph(builder.init_param)
    optimizer_builder.names.update(builder.names)
    g = LayerBuilder(optimizer_builder, "optimizer", f"optimizer {name}", [], (), {})
    params = packing.emit_pack(g, packing.names)
    gradient = packing.emit_pack(g, [grads[param] for param in packing.names])
    lr = packing.emit_runs(g, {p: _scale_for(p, config.lr_scale) for p in packing.names}, LR)
    slots = {slot: state_name(None, slot) for slot in optimizers.OPTIMIZERS[name].slots}
    for flat in slots.values():
        graph.input.append(helper.make_tensor_value_info(flat, TensorProto.FLOAT, [packing.size]))
    new_params, new_slots = optimizers.update(g, name, params, gradient, lr, STEP, slots, opts,
                                              config.weight_decay)
    for slot, tensor in new_slots.items():
        rename(optimizer_builder.nodes, tensor, f"new/{slots[slot]}")
        graph.output.append(helper.make_tensor_value_info(f"new/{slots[slot]}", TensorProto.FLOAT, [packing.size]))
    outputs = [f"new/{param}" for param in packing.names]
    packing.emit_unpack(g, new_params, outputs)
    for param, out in zip(packing.names, outputs):
        graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, list(shapes[param])))
    _append(model, optimizer_builder)
    return state, packing


def state_name(param: str | None, slot: str) -> str:
    """`state/<param>/<slot>`: one parameter's optimizer slot as checkpoints
    and users see it; `state/<slot>` (param None): the flat slot in the graph."""
    return f"state/{slot}" if param is None else f"state/{param}/{slot}"


def eval_model(net: CheckedNetwork, values: dict[str, np.ndarray], opset: int) -> onnx.ModelProto:
    """The inference graph with parameters and buffers as inputs, so the
    evaluation reads the very tensors the training step keeps on the device."""
    builder, output = lower_network(net, opset, dict(values), training=False)
    model = assemble(net, builder, output, opset)
    _as_inputs(model.graph, set(values))
    return model

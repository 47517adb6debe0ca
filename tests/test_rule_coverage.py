"""Every ONNX op that a lowering or a loss puts on the path to the loss has a
gradient rule (`i2dl_dsl.autodiff.RULES`) and a finite-difference case
(`CASES` in tests/test_autodiff.py).

The ops are collected from the example networks of tests/test_every_layer.py,
lowered in training mode and in inference mode, and from a training step per
loss (with the L1 and L2 penalties). An op counts when it is differentiable
there: it reads a float tensor computed from the input or a parameter, writes
a float tensor, and the loss (or the network's output) depends on what it
writes. Shape arithmetic, label encodings and the optimizer's update do not
count. Each op is charged to the layer kind whose lowering emitted it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import onnx
import pytest
from onnx import TensorProto

from i2dl_dsl.autodiff import RULES, MissingGradient
from i2dl_dsl.checker import CheckedNetwork
from i2dl_dsl.lowering.export import TRAINING_OPSET, assemble, lower_network
from i2dl_dsl.train.losses import LOSSES
from test_autodiff import CASES
from test_every_layer import EXAMPLES, INPUT_KIND, Example, compile_example, compile_source, training_step

FLOATS = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
# Ops a layer emits only in inference mode, and why they need no rule: only
# the training step is differentiated. test_inference_only_ops_are_so keeps this honest.
INFERENCE_ONLY = {
    "LSTM": "the training step unrolls the recurrence into ops with rules (layers/recurrent.py)",
    "RNN": "the training step unrolls the recurrence into ops with rules (layers/recurrent.py)",
}
PENALTIES = {"l1": 1e-3, "l2": 1e-3}  # their terms join the loss: their ops need rules too
LOSS_NETWORK = Example("5", "fc(4) -> fc(3)")  # two weights, so the penalties sum over several


# ----------------------------------------------------------------- the library's entry points


def lowered(net: CheckedNetwork, training: bool) -> tuple[onnx.ModelProto, set[str]]:
    """The network's forward graph in one mode, and its float sources: the
    input and the learnable parameters (not the buffers: nothing differentiates
    with respect to batch norm's running statistics)."""
    builder, output = lower_network(net, training=training, strict=False)
    learnable = {f"{layer}.{suffix}" for layer, params in net.analysis.params.items() for suffix in params}
    return assemble(net, builder, output, TRAINING_OPSET), {net.input, *learnable}


def loss_model(loss: str) -> tuple[onnx.ModelProto, set[str]]:
    """A training step with this loss, and its float sources."""
    step = training_step(compile_source("loss", LOSS_NETWORK), loss=loss, expose_gradients=False, **PENALTIES)
    return step.model, {step.input, *step.trainable}


def finite_difference_ops() -> set[str]:
    """The op types tests/test_autodiff.py checks against finite differences."""
    return {param.values[0].op for param in CASES}


# ----------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Use:
    """Where a differentiable op was emitted."""

    kind: str      # the layer kind (or `loss <name>`) whose lowering emitted it
    node: str
    mode: str      # training, inference or loss


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {t.name: t.data_type for t in graph.initializer}
    types.update({v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)})
    return {name: elem for name, elem in types.items() if elem != TensorProto.UNDEFINED}


def on_the_path(model: onnx.ModelProto, sources: set[str], target: str) -> list[onnx.NodeProto]:
    """The nodes that carry a gradient from a source to `target`: they read a
    float tensor computed from a source, and `target` depends on a float
    tensor they write. A tensor of unknown type counts as float."""
    types = elem_types(model)
    is_float = lambda name: types.get(name, TensorProto.FLOAT) in FLOATS  # noqa: E731
    live = {s for s in sources if is_float(s)}
    reached = []
    for node in model.graph.node:  # ONNX graphs are stored in topological order
        if any(i in live for i in node.input):
            live.update(o for o in node.output if is_float(o))
            reached.append(node)
    needed = {target}
    for node in reversed(model.graph.node):
        if any(o in needed for o in node.output):
            needed.update(node.input)
    return [n for n in reached if any(o in live and o in needed for o in n.output)]


def emitter(node: onnx.NodeProto, default: str) -> str:
    """The layer kind a lowering wrote into the node's doc_string (`path:line:col: kind(args)`)."""
    found = re.match(r".+?:\d+:\d+: (\w+)\(", node.doc_string)
    return found[1] if found else default


@lru_cache(maxsize=None)
def layer_uses() -> dict[str, list[Use]]:
    """Op type → where a layer lowering emits it, over every example and both modes."""
    uses = defaultdict(list)
    for kind in EXAMPLES:
        net = compile_example(kind)
        for mode in ("training", "inference"):
            model, sources = lowered(net, mode == "training")
            for node in on_the_path(model, sources, model.graph.output[0].name):
                uses[node.op_type].append(Use(emitter(node, kind), node.name, mode))
    return dict(uses)


def kind_ops(kind: str, mode: str) -> dict[str, str]:
    """Op type → one node that shows it, for the ops this kind emits in this mode."""
    return {op: uses_of[0].node for op, found in layer_uses().items()
            if (uses_of := [u for u in found if u.kind == kind and u.mode == mode])}


# ----------------------------------------------------------------- the tests

MODES = ("training", "inference")
ADD_A_RULE = ("add a rule to RULES (i2dl_dsl/autodiff/rules*.py), or lower the layer with ops that have rules "
              "(CONTRIBUTING.md says when to compose)")
ADD_A_CASE = 'add a line c("{op}", ...) to CASES in tests/test_autodiff.py'


def gaps(ops: dict[str, str], exempt: dict[str, str]) -> list[str]:
    """What each op lacks, and where to add it."""
    problems = []
    for op, node in sorted(ops.items()):
        if op in exempt:
            continue
        if op not in RULES:
            problems.append(f"'{op}' (node '{node}') has no gradient rule: {ADD_A_RULE}")
        if op not in finite_difference_ops():
            problems.append(f"'{op}' (node '{node}') has no finite-difference case: {ADD_A_CASE.format(op=op)}")
    return problems


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_layer_ops_have_rules_and_cases(kind: str, mode: str) -> None:
    problems = gaps(kind_ops(kind, mode), INFERENCE_ONLY if mode == "inference" else {})
    assert not problems, f"layer kind '{kind}', {mode} mode:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_ops_have_rules_and_cases(loss: str) -> None:
    try:
        model, sources = loss_model(loss)
    except MissingGradient as exc:
        pytest.fail(f"loss '{loss}': {exc}\n{ADD_A_RULE}")
    ops = {node.op_type: node.name for node in on_the_path(model, sources, "loss")}
    problems = gaps(ops, {})
    assert not problems, f"loss '{loss}' (with the L1 and L2 penalties):\n  " + "\n  ".join(problems)


def test_every_kind_is_seen_lowering() -> None:
    """The walk charges ops to every kind but the input in both modes (a
    broken walk or doc_string would otherwise check nothing)."""
    silent = [(kind, mode) for kind in EXAMPLES for mode in MODES if kind != INPUT_KIND and not kind_ops(kind, mode)]
    assert not silent, f"no differentiable op found for {silent}"


def test_inference_only_ops_are_so() -> None:
    for op, why in INFERENCE_ONLY.items():
        modes = {use.mode for use in layer_uses().get(op, [])}
        assert modes == {"inference"}, f"INFERENCE_ONLY lists '{op}' ({why}), but it is emitted in {modes or 'no mode'}"


def test_the_walk_leaves_out_what_carries_no_gradient() -> None:
    """Label encodings and running statistics are in the graphs but off the path."""
    hinge, sources = loss_model("hinge")
    assert "OneHot" in {n.op_type for n in hinge.graph.node}
    assert "OneHot" not in {n.op_type for n in on_the_path(hinge, sources, "loss")}
    model, sources = lowered(compile_example("batchnorm"), training=True)
    assert "Size" in {n.op_type for n in model.graph.node}
    assert "Size" not in {n.op_type for n in on_the_path(model, sources, model.graph.output[0].name)}

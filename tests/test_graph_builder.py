"""The one graph builder (i2dl_dsl/lowering/graph.py): node and output naming,
the dtype rule of `const`, and the proto helpers every builder shares."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from i2dl_dsl.autodiff.context import GradContext
from i2dl_dsl.lowering import nchwc
from i2dl_dsl.lowering.builder import LoweringGraph, LayerBuilder
from i2dl_dsl.lowering.graph import Builder, Graph, attr, rename, shape_of, tensor_types


def builder(float_type: int = TensorProto.FLOAT) -> Builder:
    return Builder(Graph(float_type=float_type), "layer", doc="net.net:3:5: conv(8)")


def dtype_of(b: Builder, name: str) -> np.dtype:
    return numpy_helper.to_array(b.graph.initializers[name]).dtype


def test_one_output_is_named_after_its_node() -> None:
    b = builder()
    out = b.op("Relu", ["x"])
    node = b.graph.nodes[-1]
    assert out == node.name == "layer/Relu" and list(node.output) == [out]
    assert node.doc_string == "net.net:3:5: conv(8)"


def test_names_are_unique_and_several_outputs_are_numbered() -> None:
    b = builder()
    first, second = b.op("Relu", ["x"]), b.op("Relu", ["x"])
    parts = b.op("Split", ["x"], outputs=2, axis=0)
    assert first != second
    assert parts == ["layer/Split:0", "layer/Split:1"]


def test_output_names_are_kept_and_always_a_list() -> None:
    b = builder()
    assert b.op("Identity", ["x"], output_names=["loss"]) == ["loss"]
    assert "loss" in b.graph.names


def test_a_none_attribute_is_left_out_and_the_domain_is_set() -> None:
    b = builder()
    b.op("Conv", ["x", "w"], domain="com.microsoft.nchwc", pads=[1, 1, 1, 1], group=None)
    node = b.graph.nodes[-1]
    assert node.domain == "com.microsoft.nchwc" and [a.name for a in node.attribute] == ["pads"]


def test_the_source_location_is_part_of_a_node_name() -> None:
    b = Builder(Graph(), "conv1", where="net.net:3:5")
    assert b.graph.nodes == [] and b.op("Conv", ["x", "w"]) == "conv1/Conv @net.net:3:5"


@pytest.mark.parametrize("value, want", [
    (3, np.int64), ([1, -1], np.int64), (np.array([2], np.int32), np.int64),
    (0.5, np.float32), ([0.0, 1.0], np.float32), (np.ones(2), np.float32), (True, np.bool_),
])
def test_const_dtype_rule(value, want) -> None:
    b = builder()
    assert dtype_of(b, b.const(value)) == want


@pytest.mark.parametrize("dtype", ["float32", np.float32, TensorProto.FLOAT])
def test_an_explicit_dtype_wins(dtype) -> None:
    b = builder()
    assert dtype_of(b, b.const(2, dtype=dtype, hint="two")) == np.float32


def test_float_constants_take_the_graphs_float_type() -> None:
    b = builder(TensorProto.DOUBLE)
    assert dtype_of(b, b.const(0.5)) == np.float64 and dtype_of(b, b.const(2)) == np.int64


def test_a_constant_is_named_after_its_scope_and_hint() -> None:
    b = builder()
    assert b.const([1], hint="axes") == "layer/axes"
    b.at("other")
    assert b.const([1], hint="axes") == "other/axes"


def test_layer_builder_and_grad_context_share_the_core_op() -> None:
    """One op() implementation: lowerings and rewrites use it as it is."""
    assert LayerBuilder.op is Builder.op and nchwc._Rewrite.op is Builder.op
    g = LayerBuilder(LoweringGraph(lambda *_: np.zeros(1)), "fc", "doc", [(3,)], (3,), {})
    assert g.op("Relu", ["x"]) == "fc/Relu" and g.const([1]) == "fc/const"


def test_grad_context_shares_small_constants_and_infers_types() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    ctx = GradContext(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    assert ctx.const(2.0) == ctx.const(2.0) != ctx.const(2)
    doubled = ctx.op("Mul", ["x", ctx.const(2.0)])
    assert ctx.shape(doubled) == ("N", 3) and doubled.startswith("grad/loss/")
    with pytest.raises(ValueError, match="ill-formed"):
        ctx.op("Mul", ["x", ctx.const(2)])  # int64 times float32: caught where it is built


def test_attr_decodes_strings_and_falls_back_to_the_default() -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], auto_pad="VALID", kernel_shape=[2, 2])
    assert attr(node, "auto_pad") == "VALID" and attr(node, "kernel_shape") == [2, 2]
    assert attr(node, "ceil_mode", 0) == 0


def test_tensor_types_and_shapes() -> None:
    graph = helper.make_graph([], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.zeros((2, 4), np.int64), "w")])
    types = tensor_types(graph)
    assert shape_of(types["x"]) == ("N", 3) and shape_of(types["w"]) == (2, 4)
    assert shape_of(types["y"]) is None and types["w"].tensor_type.elem_type == TensorProto.INT64


def test_rename_moves_the_producer_and_its_readers() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"])]
    assert rename(nodes, "a", "hidden")
    assert list(nodes[0].output) == ["hidden"] and list(nodes[1].input) == ["hidden"]


def test_rename_leaves_a_tensor_no_node_makes() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"])]
    assert not rename(nodes, "x", "input")
    assert list(nodes[0].input) == ["x"]


def test_no_node_of_a_builder_fails_the_checker() -> None:
    b = builder()
    y = b.op("Mul", ["x", b.const(2.0)])
    graph = helper.make_graph(b.graph.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [3])],
                              list(b.graph.initializers.values()))
    onnx.checker.check_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), full_check=True)

"""Exported models hold their parameters as plain initialisers: each
recurrent layer is one ONNX LSTM/RNN node reading W, R and B stored in
ONNX's gate order (rearranged once in NumPy), a per-channel PReLU reads its
slopes stored as [C, 1, 1]; reading the file's weights gives PyTorch's
tensors back by name. The training session's evaluation graph, whose
parameters are inputs, keeps rearranging them in the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.lowering.export import parameter_shapes, save_model, to_onnx
from i2dl_dsl.lowering.weights import read_weights
from i2dl_dsl.runtime import create_session
from i2dl_dsl.train.step import eval_model
from helpers import random_weights

ROOT = Path(__file__).resolve().parents[1]
RESHUFFLING = {"Split", "Concat", "Unsqueeze"}  # what rearranging constants in a graph takes


def compile_body(tmp_path: Path, input_decl: str, body: str):
    source = tmp_path / "case.net"
    source.write_text(f"network Case {{\n    input x[{input_decl}]\n    {body}\n}}\n")
    return check(source)


@pytest.mark.parametrize("name", ["lstm_classifier", "rnn_classifier", "adding_lstm", "adding_rnn"])
def test_each_recurrent_layer_is_one_node(name: str) -> None:
    model = to_onnx(check(ROOT / "models" / f"{name}.net"))
    ops = [node.op_type for node in model.graph.node]
    assert not RESHUFFLING & set(ops), ops
    recurrent = [node for node in model.graph.node if node.op_type in ("LSTM", "RNN")]
    stored = {t.name for t in model.graph.initializer}
    for node in recurrent:
        layer = node.name.split("/")[0]
        assert list(node.input[1:4]) == [f"{layer}/W", f"{layer}/R", f"{layer}/B"]
        assert set(node.input[1:4]) <= stored


@pytest.mark.parametrize("body, op", [("lstm(5) -> lstm(4, sequences=false)", "LSTM"),
                                      ("rnn(5) -> rnn(4, sequences=false)", "RNN")])
def test_stored_order_computes_what_the_graph_reordering_did(tmp_path: Path, body: str, op: str) -> None:
    net = compile_body(tmp_path, "T=6, 3", body)
    weights = random_weights(parameter_shapes(net), seed=4)
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    exported = create_session(to_onnx(net, weights=weights).SerializeToString(), "cpu").run({net.input: x})[0]
    graph_form = eval_model(net, weights, 21)  # parameters as inputs, reordered in the graph
    assert RESHUFFLING & {n.op_type for n in graph_form.graph.node}
    fed = create_session(graph_form.SerializeToString(), "cpu").run({net.input: x, **weights})[0]
    np.testing.assert_allclose(exported, fed, rtol=1e-6, atol=1e-6)


def test_per_channel_prelu_slopes_are_stored_broadcastable(tmp_path: Path) -> None:
    net = compile_body(tmp_path, "3, 4, 4", "conv(5, k=1) -> prelu(per_channel=true)")
    weights = random_weights(parameter_shapes(net), seed=2)
    model = to_onnx(net, weights=weights)
    assert "Unsqueeze" not in {n.op_type for n in model.graph.node}
    (slope,) = [t for t in model.graph.initializer if t.name == "prelu1/slope"]
    assert list(slope.dims) == [5, 1, 1]


@pytest.mark.parametrize("body", ["lstm(5) -> rnn(4)", "conv(5, k=1) -> prelu(per_channel=true) -> flatten -> fc(2)"])
def test_weights_read_back_from_an_export_are_the_parameters(tmp_path: Path, body: str) -> None:
    net = compile_body(tmp_path, "T=6, 3" if "lstm" in body else "3, 4, 4", body)
    weights = random_weights(parameter_shapes(net), seed=3)
    save_model(to_onnx(net, weights=weights), tmp_path / "m.onnx")
    read = read_weights(tmp_path / "m.onnx")
    assert sorted(read) == sorted(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(read[name], value, err_msg=name)


def test_the_documented_node_count() -> None:
    """docs/interop.md: lstm_classifier exports as 8 nodes (32 with the gates reordered in the graph)."""
    model = to_onnx(check(ROOT / "models" / "lstm_classifier.net"))
    assert len(model.graph.node) == 8
    assert "`lstm_classifier` is 8 nodes" in (ROOT / "docs" / "interop.md").read_text().replace("\n  ", " ")

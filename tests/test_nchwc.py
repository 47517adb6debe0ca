"""The rewrite of convolutions to onnxruntime's blocked (NCHWc) CPU kernels:
same results as the plain Conv, for the shapes and settings that need
padding, symbolic channels or the plain-input filter layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from i2dl_dsl.lowering import nchwc

ort = pytest.importorskip("onnxruntime")
BLOCK = nchwc.block_size()
needs_blocked = pytest.mark.skipif(not BLOCK, reason="this CPU or onnxruntime build has no blocked convolutions")


def conv_model(x_dims: list, w_shape: tuple, bias: bool = False, elem=TensorProto.FLOAT, **attrs) -> onnx.ModelProto:
    inputs = ["x", "w"] + (["b"] if bias else [])
    infos = [helper.make_tensor_value_info("x", elem, x_dims), helper.make_tensor_value_info("w", elem, list(w_shape)),
             helper.make_tensor_value_info("b", elem, [w_shape[0]])][:len(inputs)]
    graph = helper.make_graph([helper.make_node("Conv", inputs, ["y"], name="conv", **attrs)], "g", infos,
                              [helper.make_tensor_value_info("y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


def run(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def blocked_ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node if n.domain == nchwc.DOMAIN]


# (batch, in channels, out channels, kernel, attributes): channel counts
# below the block (plain-input layout), at and above it, not multiples of 4
# (padded before ReorderInput), out channels padded up to the block.
SHAPES = [
    pytest.param(3, 1, 32, 3, dict(pads=[1, 1, 1, 1]), id="one-channel"),
    pytest.param(2, 6, 16, 5, {}, id="lenet-c3"),
    pytest.param(2, 16, 120, 5, {}, id="lenet-c5-outs-padded"),
    pytest.param(2, 3, 64, 7, dict(strides=[2, 2], pads=[3, 3, 3, 3]), id="stem-stride2"),
    pytest.param(2, 24, 48, 3, dict(strides=[2, 2], pads=[1, 1, 1, 1]), id="ins-24"),
    pytest.param(2, 20, 10, 3, dict(pads=[1, 1, 1, 1]), id="ins-20-outs-10"),
    pytest.param(2, 32, 32, 3, dict(pads=[0, 1, 2, 0]), id="asymmetric-pads"),
    pytest.param(2, 8, 16, 3, dict(dilations=[2, 2], pads=[1, 1, 1, 1]), id="dilation"),
    pytest.param(2, 32, 64, 1, dict(strides=[2, 2]), id="1x1-stride2"),
    pytest.param(2, 17, 5, 2, dict(auto_pad="VALID"), id="valid"),
]


@needs_blocked
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("batch, ins, outs, k, attrs", SHAPES)
def test_blocked_conv_matches_plain(batch, ins, outs, k, attrs, bias) -> None:
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((batch, ins, 9, 10)).astype(np.float32),
             "w": rng.standard_normal((outs, ins, k, k)).astype(np.float32),
             "b": rng.standard_normal(outs).astype(np.float32)}
    model = conv_model(["N", ins, 9, 10], (outs, ins, k, k), bias, **attrs)
    feeds = {n: feeds[n] for n in ("x", "w", "b")[:2 + bias]}
    blocked = nchwc.blocked_convolutions(model, BLOCK)
    assert "Conv" in blocked_ops(blocked) and not [n for n in blocked.graph.node if n.op_type == "Conv" and not n.domain]
    want = run(model, feeds)
    np.testing.assert_allclose(run(blocked, feeds), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@needs_blocked
@pytest.mark.parametrize("channels", [5, 12, 16, 32, 37])
def test_symbolic_channels_are_padded_at_run_time(channels: int) -> None:
    """A weight gradient taken as a Conv has the batch as its channels:
    a count known only when the step runs."""
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((2, channels, 8, 8)).astype(np.float32),
             "w": rng.standard_normal((16, channels, 3, 3)).astype(np.float32)}
    model = conv_model(["N", "C", 8, 8], (16, "C", 3, 3), pads=[1, 1, 1, 1])
    blocked = nchwc.blocked_convolutions(model, BLOCK)
    assert "Conv" in blocked_ops(blocked)
    # The padding is decided when the step runs, in the branches of an If:
    # a count that needs none is not copied by a Pad of nothing.
    top = [n.op_type for n in blocked.graph.node]
    assert "Pad" not in top and top.count("If") == 2
    want = run(model, feeds)
    np.testing.assert_allclose(run(blocked, feeds), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("model", [
    pytest.param(conv_model(["N", 4, 9], (8, 4, 3)), id="1d"),
    pytest.param(conv_model(["N", 4, 8, 8], (8, 2, 3, 3), group=2), id="grouped"),
    pytest.param(conv_model(["N", 4, 8, 8], (8, 4, 3, 3), elem=TensorProto.DOUBLE), id="float64"),
    pytest.param(conv_model(["N", 4, 8, 8], (8, 4, 3, 3), auto_pad="SAME_UPPER"), id="same-upper"),
])
def test_other_convolutions_are_left_alone(model: onnx.ModelProto) -> None:
    rewritten = nchwc.blocked_convolutions(model, 16)
    assert [n.op_type for n in rewritten.graph.node] == ["Conv"] and not blocked_ops(rewritten)


def test_the_environment_can_turn_blocked_kernels_off(monkeypatch) -> None:
    monkeypatch.setenv("I2DL_BLOCKED_CONVS", "0")
    nchwc.block_size.cache_clear()
    try:
        assert nchwc.block_size() == 0
    finally:
        monkeypatch.undo()
        nchwc.block_size.cache_clear()
    assert nchwc.block_size() == BLOCK


@needs_blocked
def test_training_step_runs_blocked_and_agrees_with_plain() -> None:
    """The digits CNN's step graph on the CPU: its convolutions (forward and
    backward) run on the blocked kernels, and three steps give the losses
    and parameters of the same graph run with the plain Conv."""
    from i2dl_dsl.checker import check
    from i2dl_dsl.train.session import TrainingSession
    from i2dl_dsl.target import Target
    from i2dl_dsl.train.step import TrainConfig, build_step

    net = check(Path(__file__).resolve().parents[1] / "models" / "digits_cnn.net")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 16)
    results = {}
    for blocked in (True, False):
        step = build_step(net, TrainConfig(), target=Target("cpu", BLOCK if blocked else 0))
        masks = {m: np.ones((16, *draw.shape), np.float32) for m, draw in step.masks.items()}
        session = TrainingSession(step, "cpu", 2)
        source = onnx.load_from_string(session.step_session.source)
        # 3 forward, 2 input gradients, 2 weight gradients (conv1's, with one
        # input channel, stays an im2col)
        assert blocked_ops(source).count("Conv") == (7 if blocked else 0)
        losses = [session.train_step(x, y, masks, 1e-3, i + 1)[0] for i in range(3)]
        results[blocked] = losses, session.parameters()
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-5)
    for name, value in results[False][1].items():
        np.testing.assert_allclose(results[True][1][name], value, rtol=1e-4, atol=1e-5, err_msg=name)

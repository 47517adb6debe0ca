"""Graphs finished for their target before a session exists (target.py,
train/step.py), and every training run going through runtime.Session, so a
failing node is reported at its .net line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from i2dl_dsl import runtime
from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.lowering import nchwc
from i2dl_dsl.target import Target
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.step import TrainConfig, build_step

ROOT = Path(__file__).resolve().parents[1]
BLOCK = nchwc.block_size()
SGD = {"name": "sgd"}


def compile_net(tmp_path: Path, text: str):
    source = tmp_path / "step.net"
    source.write_text(text)
    return check(source)


def nchwc_ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node if n.domain == nchwc.DOMAIN]


@pytest.fixture(scope="module")
def digits():
    return check(ROOT / "models" / "digits_cnn.net")


def test_cpu_target_takes_this_machines_block_and_cuda_none():
    assert Target.resolve("cpu") == Target("cpu", BLOCK)
    with pytest.raises(ValueError, match="CPU kernels"):
        Target("cuda", 8)
    with pytest.raises(ValueError, match="cpu or cuda"):
        Target("auto")


def test_the_environment_turns_the_blocked_target_off(monkeypatch):
    monkeypatch.setenv("I2DL_BLOCKED_CONVS", "0")
    nchwc.block_size.cache_clear()
    try:
        assert Target.resolve("cpu") == Target("cpu", 0)
    finally:
        monkeypatch.undo()
        nchwc.block_size.cache_clear()


def test_auto_resolves_to_what_runtime_can_run_here():
    usable = runtime.cuda_available()[0]
    assert Target.resolve("auto").device == ("cuda" if usable else "cpu")
    with pytest.raises(UserError, match="unknown device"):
        Target.resolve("tpu")


@pytest.mark.skipif(not BLOCK, reason="this CPU or onnxruntime build has no blocked convolutions")
def test_the_step_builder_applies_the_targets_rewrite(digits):
    """The blocked CPU target's graphs hold the NCHWc convolutions when
    built; the plain CPU and the CUDA targets' hold none, and the session
    runs the very bytes it was given."""
    blocked = build_step(digits, TrainConfig(optimizer=SGD), target=Target("cpu", BLOCK))
    assert "Conv" in nchwc_ops(blocked.model) and "Conv" in nchwc_ops(blocked.eval_model)
    for target in (Target("cpu", 0), Target("cuda")):
        step = build_step(digits, TrainConfig(optimizer=SGD), target=target)
        assert step.target == target and not nchwc_ops(step.model) and not nchwc_ops(step.eval_model)
    session = TrainingSession(blocked, "cpu")
    assert session.step_session.source == blocked.model.SerializeToString()


def test_runtime_creates_sessions_without_rewriting(digits):
    """A session's model is its caller's, byte for byte: runtime rewrites nothing."""
    model = build_step(digits, TrainConfig(optimizer=SGD), target=Target("cpu", 0)).model.SerializeToString()
    assert runtime.create_session(model, "cpu").source == model


def test_a_session_on_another_device_than_the_target_is_refused(digits):
    step = build_step(digits, TrainConfig(optimizer=SGD), target=Target("cuda"))
    with pytest.raises(UserError, match="built for cuda, not cpu"):
        TrainingSession(step, "cpu")


@pytest.mark.skipif(runtime.cuda_available()[0], reason="this machine can run CUDA")
def test_a_cuda_step_without_cuda_is_a_clear_error(digits):
    """Asked for CUDA where there is none: an error. (Asked for auto, a CUDA
    step falls back to the CPU: tests/test_runtime.py.)"""
    step = build_step(digits, TrainConfig(optimizer=SGD), target=Target("cuda"))
    with pytest.raises(UserError, match="CUDA cannot be used"):
        TrainingSession(step, "cuda")


def test_a_failing_training_step_names_the_net_line(tmp_path):
    """A mask for another batch size than the batch's fails in dropout's Mul:
    the error names the node and the .net file:line:col it came from."""
    net = compile_net(tmp_path, "network Drop {\n    input x[4]\n    fc(3)\n    d: dropout(p=0.25)\n}\n")
    step = build_step(net, TrainConfig(loss="mse", optimizer=SGD))
    session = TrainingSession(step, "cpu")
    x, y = np.ones((3, 4), np.float32), np.zeros((3, 3), np.float32)
    with pytest.raises(runtime.RunFailed) as err:
        session.train_step(x, y, {"d.mask": np.ones((2, 3), np.float32)}, 0.1, 1)
    message = str(err.value)
    assert "in node 'd/Mul" in message and f"({tmp_path / 'step.net'}:4:8: dropout(p=0.25))" in message


def test_a_failing_prediction_names_the_net_line(tmp_path, monkeypatch):
    """predict runs with I/O bindings through runtime too."""
    net = compile_net(tmp_path, "network Fc {\n    input x[4]\n    f: fc(3)\n}\n")
    session = TrainingSession(build_step(net, TrainConfig(loss="mse", optimizer=SGD)), "cpu")
    node = next(n.name for n in session.spec.eval_model.graph.node if n.name.startswith("f/Gemm"))

    def fail(self, binding):
        raise RuntimeError(f"Non-zero status code returned while running Gemm node. Name:'{node}' "
                           "Status Message: out of memory")

    import onnxruntime

    monkeypatch.setattr(onnxruntime.InferenceSession, "run_with_iobinding", fail)
    with pytest.raises(runtime.RunFailed) as err:
        session.predict(np.ones((2, 4), np.float32))
    assert f"in node '{node}' ({tmp_path / 'step.net'}:3:8: fc(3))" in str(err.value)


def test_i2dl_train_reports_a_failing_step_at_its_net_line(tmp_path, monkeypatch, capsys):
    """A step that fails inside onnxruntime ends i2dl-train with exit 1 and the
    node's .net location, not a traceback."""
    from i2dl_dsl.cli.train import main as train_main

    model = tmp_path / "fc.net"
    model.write_text("network Fc {\n    input x[64]\n    f: fc(10)\n}\n")

    def fail(self, binding):
        raise RuntimeError("Non-zero status code returned while running Gemm node. Name:'f/Gemm @fc.net:3:8' "
                           "Status Message: out of memory")

    import onnxruntime

    monkeypatch.setattr(onnxruntime.InferenceSession, "run_with_iobinding", fail)
    code = train_main([str(model), "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"in node 'f/Gemm @fc.net:3:8' ({model}:3:8: fc(10))" in err
    assert "Traceback" not in err and "internal error" not in err

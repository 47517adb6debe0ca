"""Sessions and devices (i2dl_dsl/runtime.py) and the `i2dl-run` command.

Every command's output is captured at the file-descriptor level, so what
onnxruntime prints from native code is seen too; none may hold a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from i2dl_dsl import runtime
from i2dl_dsl.cli import run as run_cli
from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.lowering.export import save_model, to_onnx
from i2dl_dsl.runtime import create_session

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "models" / "lenet5.net"
CUDA_USABLE = runtime.cuda_available()[0]
no_cuda_here = pytest.mark.skipif(CUDA_USABLE, reason="this machine can run CUDA")

FAKE_CUDA_FAILURE = (b"\x1b[1;31m2026-01-01 00:00:00.0 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] "
                     b"Failed to load library libonnxruntime_providers_cuda.so with error: "
                     b"libcudnn.so.9: cannot open shared object file: No such file or directory\n\x1b[m\n")


@pytest.fixture(scope="module")
def lenet():
    return to_onnx(check(LENET), seed=3)


@pytest.fixture
def model_file(tmp_path, lenet) -> Path:
    path = tmp_path / "lenet.onnx"
    save_model(lenet, path)
    return path


def expected_output(model, x: np.ndarray) -> np.ndarray:
    session = create_session(model.SerializeToString(), "cpu").session
    return session.run(None, {"image": x})[0]


def batch(n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 1, 32, 32)).astype(np.float32)


def invoke(capfd, *args) -> tuple[int, str, str]:
    """i2dl-run in-process: (exit code, stdout, stderr)."""
    code = run_cli.main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def cuda_that_fails_to_start(monkeypatch):
    """CUDA looks usable, but the provider does not load: onnxruntime logs
    an error line from native code and runs the session on the CPU."""
    real = onnxruntime.InferenceSession

    class FallingBack(real):
        def __init__(self, model, sess_options=None, providers=None, **kwargs):
            if providers and providers[0] == "CUDAExecutionProvider":
                os.write(2, FAKE_CUDA_FAILURE)
            super().__init__(model, sess_options=sess_options, providers=["CPUExecutionProvider"], **kwargs)

    monkeypatch.setattr(runtime, "cuda_available", lambda: (True, ""))
    monkeypatch.setattr(onnxruntime, "InferenceSession", FallingBack)


# ----------------------------------------------------------------- devices


def test_cpu_device_runs_on_cpu(model_file):
    s = create_session(str(model_file), "cpu")
    assert (s.device, s.providers, s.device_note) == ("cpu", ["CPUExecutionProvider"], "running on CPU")


@no_cuda_here
def test_auto_without_cuda_runs_on_cpu_with_a_plain_note(model_file, capfd):
    s = create_session(str(model_file), "auto")
    assert s.device == "cpu"
    assert s.device_note.startswith("running on CPU: ")
    assert capfd.readouterr() == ("", "")


@no_cuda_here
def test_auto_without_cuda_on_the_command_line(model_file, tmp_path, capfd):
    np.save(tmp_path / "x.npy", batch())
    code, out, err = invoke(capfd, model_file, "--input", tmp_path / "x.npy")
    assert code == 0
    assert err.splitlines()[0].startswith("running on CPU")
    assert len(err.splitlines()) == 1


@no_cuda_here
def test_cuda_without_cuda_exits_2(model_file, capfd):
    code, out, err = invoke(capfd, model_file, "--device", "cuda")
    assert code == 2
    assert "--device cuda: CUDA cannot be used:" in err
    assert "--device cpu" in err
    assert out == ""


@pytest.mark.skipif(not CUDA_USABLE, reason="needs a machine that can run CUDA")
def test_cuda_runs_on_cuda_and_agrees_with_cpu(model_file):
    s = create_session(str(model_file), "cuda")
    assert (s.device, s.providers[0], s.device_note) == ("cuda", "CUDAExecutionProvider", "running on CUDA")
    x = {"image": batch()}
    cpu = create_session(str(model_file), "cpu").run(x)[0]
    np.testing.assert_allclose(s.run(x)[0], cpu, rtol=1e-4, atol=1e-4)


def test_cuda_listed_but_not_starting_is_an_error_for_cuda(model_file, cuda_that_fails_to_start, capfd):
    with pytest.raises(UserError, match="the CUDA provider did not start: libcudnn.so.9: cannot open"):
        create_session(str(model_file), "cuda")
    assert capfd.readouterr().err == ""


def test_cuda_listed_but_not_starting_falls_back_for_auto(model_file, cuda_that_fails_to_start, capfd):
    s = create_session(str(model_file), "auto")
    assert s.device == "cpu"
    assert s.device_note == "running on CPU: CUDA did not start (libcudnn.so.9: cannot open shared object file: " \
                            "No such file or directory)"
    assert capfd.readouterr().err == ""


def test_a_cuda_training_step_falls_back_to_the_cpu_for_auto(cuda_that_fails_to_start, tmp_path, capfd):
    """A step built for CUDA, asked for auto where the CUDA provider does not
    start, trains on the CPU (as any auto session does) instead of failing."""
    from i2dl_dsl.target import Target
    from i2dl_dsl.train.session import TrainingSession
    from i2dl_dsl.train.step import TrainConfig, build_step

    (tmp_path / "fc.net").write_text("network Fc {\n    input x[4]\n    fc(3)\n}\n")
    step = build_step(check(tmp_path / "fc.net"), TrainConfig(loss="mse", optimizer={"name": "sgd"}),
                      target=Target("cuda"))
    session = TrainingSession(step, "auto")
    assert session.device == "cpu"
    assert session.step_session.device_note.startswith("running on CPU: CUDA did not start")
    loss, _ = session.train_step(np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32), {}, 0.1, 1)
    assert np.isfinite(loss)
    assert capfd.readouterr().err == ""


def test_cuda_listed_but_not_starting_on_the_command_line(model_file, cuda_that_fails_to_start, capfd):
    code, out, err = invoke(capfd, model_file, "--device", "cuda")
    assert code == 2
    assert "error: --device cuda: the CUDA provider did not start: libcudnn.so.9" in err
    assert "provider_bridge" not in err


def test_build_without_cuda_provider_is_named(model_file, monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(UserError, match="no CUDA provider"):
        create_session(str(model_file), "cuda")


def test_unknown_device_is_a_user_error(model_file):
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        create_session(str(model_file), "tpu")


# ----------------------------------------------------------------- running models


def test_onnx_model_output_written_as_npy(model_file, lenet, tmp_path, capfd):
    x = batch()
    np.save(tmp_path / "x.npy", x)
    code, out, _ = invoke(capfd, model_file, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                          "--device", "cpu")
    assert code == 0
    assert f"wrote {tmp_path / 'y.npy'}: shape [3, 10]" in out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(lenet, x))


def test_net_model_is_compiled_with_the_seed(lenet, tmp_path, capfd):
    x = batch()
    np.save(tmp_path / "x.npy", x)
    code, _, _ = invoke(capfd, LENET, "--seed", "3", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(lenet, x))


def test_net_model_with_weights(tmp_path, capfd):
    net = check(LENET)
    rng = np.random.default_rng(5)
    from i2dl_dsl.lowering.export import parameter_shapes

    weights = {n: rng.standard_normal(s).astype(np.float32) * 0.1 for n, s in parameter_shapes(net).items()}
    np.savez(tmp_path / "w.npz", **weights)
    x = batch()
    np.save(tmp_path / "x.npy", x)
    code, _, _ = invoke(capfd, LENET, "--weights", tmp_path / "w.npz", "--input", tmp_path / "x.npy",
                        "--output", tmp_path / "y.npy")
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(to_onnx(net, weights=weights), x))


def test_one_sample_without_batch_axis(model_file, lenet, tmp_path, capfd):
    x = batch(1)
    np.save(tmp_path / "x.npy", x[0])
    code, _, _ = invoke(capfd, model_file, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(lenet, x))


def test_random_input_of_the_given_batch(model_file, capfd):
    code, out, _ = invoke(capfd, model_file, "--batch", "4")
    assert code == 0
    assert "output shape [4, 10]" in out


def test_output_is_printed_without_output_file(model_file, tmp_path, capfd):
    code, out, _ = invoke(capfd, model_file)
    assert code == 0
    assert "output shape [1, 10]" in out and "argmax per sample:" in out


def test_bench_reports_percentiles_and_throughput(model_file, capfd):
    code, out, _ = invoke(capfd, model_file, "--bench", "--batch", "2")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("latency"))
    assert "batch 2" in line
    for word in ("p50", "p90", "p99", "throughput", "samples/s"):
        assert word in line


def test_benchmark_percentiles_are_ordered(model_file):
    s = create_session(str(model_file), "cpu")
    r = run_cli.benchmark(s, {"image": batch(2)}, 2, seconds=0.2)
    assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
    assert r["runs"] >= 20 and r["throughput"] > 0


# ----------------------------------------------------------------- output files


def test_failed_output_write_leaves_earlier_file(model_file, tmp_path, capfd, monkeypatch):
    (tmp_path / "y.npy").write_bytes(b"earlier")

    def failing_save(f, array, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", failing_save)
    code, _, err = invoke(capfd, model_file, "--output", tmp_path / "y.npy")
    assert code == 2
    assert "No space left on device" in err
    assert (tmp_path / "y.npy").read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.onnx", "y.npy"]


def test_output_into_missing_directory_exits_2(model_file, tmp_path, capfd):
    code, _, err = invoke(capfd, model_file, "--output", tmp_path / "nowhere" / "y.npy")
    assert code == 2
    assert "does not exist" in err


# ----------------------------------------------------------------- wrong inputs


@pytest.mark.parametrize("array, said", [
    (np.zeros((2, 1, 32, 32), np.float64), "is float64; the model expects float32 [N, 1, 32, 32]"),
    (np.zeros((2, 1, 32, 32), np.int32), "is int32; the model expects float32 [N, 1, 32, 32]"),
    (np.zeros((32, 32), np.float32), "has shape [32, 32]; the model expects [N, 1, 32, 32]"),
    (np.zeros((2, 1, 1, 32, 32), np.float32), "has shape [2, 1, 1, 32, 32]; the model expects [N, 1, 32, 32]"),
    (np.zeros((2, 1, 28, 28), np.float32), "has shape [2, 1, 28, 28]; the model expects [N, 1, 32, 32]"),
    (np.zeros((2, 3, 32, 32), np.float32), "has shape [2, 3, 32, 32]; the model expects [N, 1, 32, 32]"),
    (np.zeros((0, 1, 32, 32), np.float32), "holds no samples"),
], ids=["float64", "int32", "rank2", "rank5", "spatial", "channels", "empty"])
def test_wrong_input_exits_2_naming_the_expected_shape(model_file, tmp_path, capfd, array, said):
    np.save(tmp_path / "x.npy", array)
    code, out, err = invoke(capfd, model_file, "--input", tmp_path / "x.npy")
    assert code == 2
    assert said in err
    assert out == ""


@pytest.mark.parametrize("content", [b"not numpy at all", b""], ids=["garbage", "empty"])
def test_unreadable_input_exits_2(model_file, tmp_path, capfd, content):
    (tmp_path / "x.npy").write_bytes(content)
    code, _, err = invoke(capfd, model_file, "--input", tmp_path / "x.npy")
    assert code == 2
    assert "cannot read input" in err


def test_pickled_input_is_refused(model_file, tmp_path, capfd):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = invoke(capfd, model_file, "--input", tmp_path / "x.npy")
    assert code == 2
    assert "cannot read input" in err


def test_missing_input_exits_2(model_file, tmp_path, capfd):
    code, _, err = invoke(capfd, model_file, "--input", tmp_path / "absent.npy")
    assert code == 2
    assert "does not exist" in err


# ----------------------------------------------------------------- wrong models


def test_missing_model_exits_2(tmp_path, capfd):
    code, _, err = invoke(capfd, tmp_path / "absent.onnx")
    assert code == 2
    assert "does not exist" in err


@pytest.mark.parametrize("content", [b"\x08\x07garbage\xff\xfe" * 10, b""], ids=["garbage", "empty"])
def test_corrupt_model_exits_2(tmp_path, capfd, content):
    (tmp_path / "m.onnx").write_bytes(content)
    code, _, err = invoke(capfd, tmp_path / "m.onnx")
    assert code == 2
    assert "onnxruntime cannot load" in err


def test_truncated_model_exits_2(model_file, capfd):
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    code, _, err = invoke(capfd, model_file)
    assert code == 2
    assert "onnxruntime cannot load" in err


def test_external_data_missing_exits_2(lenet, tmp_path, capfd, monkeypatch):
    from i2dl_dsl.lowering import export

    monkeypatch.setattr(export, "PROTOBUF_LIMIT", 10_000)
    save_model(lenet, tmp_path / "m.onnx")
    (tmp_path / "m.onnx.data").unlink()
    code, _, err = invoke(capfd, tmp_path / "m.onnx")
    assert code == 2
    assert "onnxruntime cannot load" in err


def test_broken_net_exits_2(tmp_path, capfd):
    (tmp_path / "bad.net").write_text("network Bad {\n    input x[3, 8, 8]\n    conv(4, k=9)\n}\n")
    code, _, err = invoke(capfd, tmp_path / "bad.net")
    assert code == 2
    assert "bad.net:3:5: error:" in err


def test_weights_for_onnx_model_exits_2(model_file, tmp_path, capfd):
    np.savez(tmp_path / "w.npz", a=np.zeros(1))
    code, _, err = invoke(capfd, model_file, "--weights", tmp_path / "w.npz")
    assert code == 2
    assert "--weights applies to .net models" in err


# ----------------------------------------------------------------- failures while running


def _conv2_node_name() -> str:
    """The node name carries the layer, the op and the source location."""
    line = next(n for n, text in enumerate(LENET.read_text().splitlines(), 1) if "conv(16, k=5)" in text)
    column = LENET.read_text().splitlines()[line - 1].index("conv(16") + 1
    return f"conv2/Conv @{LENET.name}:{line}:{column}"


CONV2 = _conv2_node_name()


@pytest.fixture
def failing_conv2(monkeypatch):
    """onnxruntime fails inside LeNet-5's second convolution."""
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    def run(self, *args, **kwargs):
        raise RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while "
                               f"running Conv node. Name:'{CONV2}' Status Message: out of memory")

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", run)


def conv2_location() -> str:
    """Where LeNet-5's second convolution is written."""
    for number, line in enumerate(LENET.read_text().splitlines(), 1):
        if "conv(16, k=5)" in line:
            return f"{LENET}:{number}:{line.index('conv(16') + 1}"
    raise AssertionError("LeNet-5 has no conv(16, k=5)")


def test_failure_while_running_names_the_source_line(model_file, failing_conv2):
    s = create_session(str(model_file), "cpu")
    with pytest.raises(runtime.RunFailed) as err:
        s.run({"image": batch()})
    assert f"in node '{CONV2}' ({conv2_location()}: conv(16, k=5))" in str(err.value)
    assert "out of memory" in str(err.value)


def test_failure_while_running_a_net_exits_1_with_the_source_line(failing_conv2, capfd):
    code, _, err = invoke(capfd, LENET)
    assert code == 1
    assert f"error: onnxruntime failed in node '{CONV2}' ({conv2_location()}: conv(16, k=5))" in err


# ----------------------------------------------------------------- models past protobuf's limit


def test_large_net_runs_from_external_data(lenet, tmp_path, capfd, monkeypatch):
    from i2dl_dsl.lowering import export

    monkeypatch.setattr(export, "PROTOBUF_LIMIT", 10_000)
    x = batch()
    np.save(tmp_path / "x.npy", x)
    code, _, _ = invoke(capfd, LENET, "--seed", "3", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_output(lenet, x))

"""Weights as safetensors: read by every command that takes --weights,
written by every run; PyTorch's pickles only behind --allow-pickle; hostile
files refused with a clear message (exit 2)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from safetensors.numpy import load_file, save_file  # noqa: E402

from helpers import random_weights, tensors, train  # noqa: E402
from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.cli.compile import main as compile_main  # noqa: E402
from i2dl_dsl.cli.run import main as run_main  # noqa: E402
from i2dl_dsl.lowering.export import parameter_shapes  # noqa: E402
from i2dl_dsl.lowering.weights import read_weights  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402
from reference.torch_models import digits_cnn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DIGITS_CNN = ROOT / "models" / "digits_cnn.net"
TINY = "network Tiny {\n    input x[64]\n    fc(16) -> relu -> fc(10)\n}\n"


def _torch_model(seed: int = 0) -> torch.nn.Module:
    """The digits CNN in PyTorch, with random running statistics: its
    state_dict carries `num_batches_tracked`, as every PyTorch batch norm's does."""
    torch.manual_seed(seed)
    model = digits_cnn()
    for name, buffer in model.state_dict().items():
        if name.endswith("running_mean"):
            buffer.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
    return model.eval()


def _onnx_output(model_path: Path, x: np.ndarray) -> np.ndarray:
    session = create_session(str(model_path), "cpu")
    return session.run({session.session.get_inputs()[0].name: x})[0]


def test_pytorch_safetensors_export_computes_pytorchs_output(tmp_path):
    model = _torch_model()
    assert any(k.endswith("num_batches_tracked") for k in model.state_dict())
    safetensors_torch.save_file(model.state_dict(), tmp_path / "w.safetensors")
    out = tmp_path / "m.onnx"
    assert compile_main([str(DIGITS_CNN), "--onnx", str(out), "--weights", str(tmp_path / "w.safetensors")]) == 0
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(_onnx_output(out, x), expected, rtol=1e-4, atol=1e-5)


def test_a_run_writes_safetensors_that_pytorch_loads(tmp_path):
    assert train(DIGITS_CNN, tmp_path / "run", "--epochs", "1") == 0
    written = load_file(tmp_path / "run" / "weights.safetensors")  # the library's own reader
    npz = tensors(tmp_path / "run" / "weights.npz")
    assert written.keys() == npz.keys()
    for name in npz:
        np.testing.assert_array_equal(written[name], npz[name])
    model = digits_cnn().eval()
    missing, unexpected = model.load_state_dict(safetensors_torch.load_file(tmp_path / "run" / "weights.safetensors"),
                                                strict=False)
    assert unexpected == [] and all(name.endswith("num_batches_tracked") for name in missing)
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_onnx_output(tmp_path / "run" / "model.onnx", x),
                               model(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_train_and_run_take_safetensors(tmp_path, capsys):
    net = tmp_path / "tiny.net"
    net.write_text(TINY)
    weights = random_weights(parameter_shapes(check(str(net))))
    save_file(weights, tmp_path / "w.safetensors")
    np.savez(tmp_path / "w.npz", **weights)
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outputs = []
    for source in ("w.safetensors", "w.npz"):
        assert run_main([str(net), "--weights", str(tmp_path / source), "--input", str(tmp_path / "x.npy"),
                         "--output", str(tmp_path / f"{source}.npy")]) == 0
        outputs.append(np.load(tmp_path / f"{source}.npy"))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    expected = np.maximum(x @ weights["fc1.weight"].T + weights["fc1.bias"], 0) @ weights["fc2.weight"].T \
        + weights["fc2.bias"]
    np.testing.assert_allclose(outputs[0], expected, rtol=1e-5, atol=1e-5)
    assert train(net, tmp_path / "run", "--epochs", "1", "--weights", str(tmp_path / "w.safetensors")) == 0
    assert "4 of 4 tensors loaded" in capsys.readouterr().err


def test_half_precision_tensors_read_as_their_values(tmp_path):
    values = torch.randn(3, 5)
    safetensors_torch.save_file({"a": values.to(torch.bfloat16), "b": values.to(torch.float16)},
                                tmp_path / "w.safetensors")
    read = read_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(read["a"], values.to(torch.bfloat16).float().numpy())
    np.testing.assert_array_equal(read["b"], values.to(torch.float16).numpy())


def test_num_batches_tracked_is_ignored_in_npz_too(tmp_path):
    state = {k: v.numpy() for k, v in _torch_model().state_dict().items()}
    np.savez(tmp_path / "w.npz", **state)
    assert compile_main([str(DIGITS_CNN), "--onnx", str(tmp_path / "m.onnx"), "--weights",
                         str(tmp_path / "w.npz")]) == 0


def test_pickles_are_refused_unless_allowed(tmp_path, capsys):
    model = _torch_model(3)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "m.onnx"
    assert compile_main([str(DIGITS_CNN), "--onnx", str(out), "--weights", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert "run any code" in err and "--allow-pickle" in err and "Traceback" not in err and not out.exists()
    assert compile_main([str(DIGITS_CNN), "--onnx", str(out), "--weights", str(tmp_path / "w.pt"),
                         "--allow-pickle"]) == 0
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_onnx_output(out, x), model(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_a_pickle_of_a_whole_model_is_refused_by_the_restricted_loader(tmp_path, capsys):
    torch.save(_torch_model(), tmp_path / "model.pt")  # a module, not a state_dict: needs full unpickling
    assert compile_main([str(DIGITS_CNN), "--onnx", str(tmp_path / "m.onnx"), "--weights",
                         str(tmp_path / "model.pt"), "--allow-pickle"]) == 2
    err = capsys.readouterr().err
    assert "weights_only=True" in err and "Traceback" not in err


def _header_file(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


HOSTILE = {
    "empty": (lambda p: p.write_bytes(b""), "shorter than a header"),
    "huge header": (lambda p: _header_file(p, {}, length=2**62), "more than the file holds"),
    "header past the end": (lambda p: _header_file(p, {}, length=10_000), "more than the file holds"),
    "not json": (lambda p: _header_file(p, b"\xff\xfe not json"), "not JSON"),
    "a list": (lambda p: _header_file(p, [1, 2]), "not a JSON object"),
    "unknown dtype": (lambda p: _header_file(p, {"fc1.weight": {"dtype": "F99", "shape": [2],
                                                                 "data_offsets": [0, 8]}}, bytes(8)), '"F99"'),
    "bad shape": (lambda p: _header_file(p, {"fc1.weight": {"dtype": "F32", "shape": [-2],
                                                             "data_offsets": [0, 8]}}, bytes(8)), "[-2]"),
    "size mismatch": (lambda p: _header_file(p, {"fc1.weight": {"dtype": "F32", "shape": [1000, 1000],
                                                                 "data_offsets": [0, 8]}}, bytes(8)), "4,000,000 bytes"),
    "truncated": (lambda p: _header_file(p, {"fc1.weight": {"dtype": "F32", "shape": [16, 64],
                                                             "data_offsets": [0, 4096]}}, bytes(100)),
                  "is the file complete"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_safetensors_exit_2_with_a_clear_message(case, tmp_path, capsys):
    make, message = HOSTILE[case]
    bad = tmp_path / "bad.safetensors"
    make(bad)
    net = tmp_path / "tiny.net"
    net.write_text(TINY)
    assert compile_main([str(net), "--onnx", str(tmp_path / "m.onnx"), "--weights", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.safetensors" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()

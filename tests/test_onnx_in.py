"""Any ONNX model in: `i2dl-compile model.onnx --summary` gives the table
of the `.net` file for models exported by PyTorch (torch.onnx.export of the
zoo's PyTorch references) and by this project; hostile files exit 2."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.interop.onnx_in import summarise
from i2dl_dsl.lowering.export import parameter_shapes, save_model, to_onnx
from i2dl_dsl.summary import to_json
from i2dl_dsl.zoo import zoo_models

ROOT = Path(__file__).resolve().parents[1]
LARGE = 20_000_000  # parameters: exporting these takes seconds and hundreds of MB each
REFERENCES = ["lenet5", "mlp", "logistic_regression", "lstm_classifier", "rnn_classifier", "digits_cnn",
              "resnet_small", "resnet18", "googlenet", "fcn", "alexnet", "vgg16", "resnet50"]


def _params(name: str) -> int:
    return check(str(ROOT / "models" / f"{name}.net")).analysis.total_params


# Known gaps: PyTorch's scope names of a torchvision-named residual's
# `downsample` are grouped twice (`layer2.downsample.downsample.0`); a
# channel shuffle's Reshape/Transpose does not carry the receptive field.
EXPORT_GAPS = {"resnet_small", "resnet18", "googlenet", "resnet50"}
OWN_GAPS = {"shufflenet_v2_x1_0"}


def _sized(names, gaps=frozenset()):
    marked = []
    for n in names:
        marks = [pytest.mark.slow] if _params(n) > LARGE else []
        if n in gaps:
            marks.append(pytest.mark.xfail(strict=True, reason="grouping of downsample scopes; RF through a shuffle"))
        marked.append(pytest.param(n, marks=marks))
    return marked


def _totals(document: dict) -> tuple[int, int, int]:
    t = document["totals"]
    return t["params"], t["buffers"], t["macs"]


def _torch_export(name: str, path: Path) -> None:
    """The PyTorch reference of a zoo model, exported as a PyTorch user would
    (TorchScript exporter, batch axis dynamic). Weights are random, so that
    no two tensors are equal (the exporter shares equal ones), and the model
    is exported as it is (PRESERVE: batch norms not folded into convolutions)."""
    torch = pytest.importorskip("torch")
    from reference import torch_models

    model = getattr(torch_models, name)().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.dtype.is_floating_point:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    x = torch.zeros(2, *check(str(ROOT / "models" / f"{name}.net")).analysis.shapes[_input(name)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=18, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}}, training=torch.onnx.TrainingMode.PRESERVE)


def _input(name: str) -> str:
    return check(str(ROOT / "models" / f"{name}.net")).input


@pytest.mark.parametrize("name", _sized(REFERENCES, EXPORT_GAPS))
def test_pytorch_exports_have_the_net_files_totals_and_rows(name, tmp_path):
    pytest.importorskip("torch")
    _torch_export(name, tmp_path / "model.onnx")
    net = check(str(ROOT / "models" / f"{name}.net"))
    expected = to_json(net)
    got = summarise(tmp_path / "model.onnx").document()
    assert _totals(got) == _totals(expected)
    rows = {r["name"]: r for r in expected["layers"]}
    for row in got["layers"][1:]:  # PyTorch drops layers that do nothing in eval mode (dropout)
        want = rows[row["name"]]
        assert (row["output_shape"], row["params"], row["macs"], row["receptive_field"]) == \
               (want["output_shape"], want["params"], want["macs"], want["receptive_field"]), row["name"]
    counted = [r["name"] for r in expected["layers"] if r["params"] or r["macs"]]
    assert [n for n in counted if n not in {r["name"] for r in got["layers"]}] == []


@pytest.mark.parametrize("name", _sized((m.name for m in zoo_models()), OWN_GAPS))
def test_own_exports_have_the_net_files_summary(name, tmp_path):
    net = check(str(ROOT / "models" / f"{name}.net"))
    save_model(to_onnx(net), tmp_path / "model.onnx")
    expected, got = to_json(net), summarise(tmp_path / "model.onnx").document()
    assert _totals(got) == _totals(expected)
    strip = [{k: v for k, v in r.items() if k != "type"} for r in expected["layers"]]
    assert [{k: v for k, v in r.items() if k != "type"} for r in got["layers"]] == strip
    assert got["input"] == expected["input"]


def test_the_command_prints_the_table_json_and_folds(tmp_path, capsys):
    net = check(str(ROOT / "models" / "resnet_small.net"))
    model = tmp_path / "resnet_small.onnx"
    save_model(to_onnx(net), model)
    assert compile_main([str(model), "--summary", "--depth", "1"]) == 0
    table = capsys.readouterr().out
    assert table.startswith(f"onnx model ResNetSmall   ({model})")
    assert compile_main([str(ROOT / "models" / "resnet_small.net"), "--summary", "--depth", "1"]) == 0
    same = capsys.readouterr().out
    assert table.splitlines()[-7:] == same.splitlines()[-7:]  # the totals
    untyped = [{k: v for k, v in r.items() if k != "type"} for r in to_json(net, depth=1)["layers"]]
    assert [{k: v for k, v in r.items() if k != "type"} for r in summarise(model).document(depth=1)["layers"]] \
        == untyped
    assert len(table.splitlines()) == len(same.splitlines())
    assert compile_main([str(model), "--summary", "--format", "json", "--batch", "4"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["totals"]["memory"]["batch"] == 4
    assert compile_main([str(model)]) == 0
    assert f"ok: ONNX model ResNetSmall, {len(to_onnx(net).graph.node)} nodes, 78,042 parameters" in \
        capsys.readouterr().out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_the_op_graph_is_drawn(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    save_model(to_onnx(check(str(ROOT / "models" / "lenet5.net"))), model)
    assert compile_main([str(model), "--graph", str(tmp_path / "m.svg")]) == 0
    assert "<svg" in (tmp_path / "m.svg").read_text() and "Conv" in (tmp_path / "m.svg").read_text()


def test_gru_and_attention_macs(tmp_path):
    """nn.GRU: T·3H·(I + H); nn.MultiheadAttention: four projections T·E·E
    each, then Q·Kᵀ and weights·V, T·T·E each (PyTorch's definitions)."""
    torch = pytest.importorskip("torch")
    T, I, H, E = 7, 5, 6, 8

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(I, H, batch_first=True)
            self.up = torch.nn.Linear(H, E)
            self.attention = torch.nn.MultiheadAttention(E, 2, batch_first=True)

        def forward(self, x):
            y = self.up(self.gru(x)[0])
            return self.attention(y, y, y, need_weights=False)[0]

    model = Net().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, T, I),), str(tmp_path / "m.onnx"), dynamo=False, opset_version=18)
    summary = summarise(tmp_path / "m.onnx")
    expected = T * 3 * H * (I + H) + T * H * E + 4 * T * E * E + 2 * T * T * E
    assert summary.totals["macs"] == expected
    assert summary.totals["params"] == sum(p.numel() for p in model.parameters())
    assert summary.unknown_macs == []


def _sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk space."""
    with open(path, "wb") as f:
        f.truncate(size)


HOSTILE = {
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "cannot read"),
    "empty": (lambda p: p.write_bytes(b""), "holds no ONNX graph"),
    "a .net file": (lambda p: p.write_text("network A {\n input x[4]\n fc(2)\n}\n"), "cannot read"),
    "larger than protobuf allows": (lambda p: _sparse(p, 2**31 + 1), "at most 2 GiB"),
    "a directory": (lambda p: p.mkdir(), "is a directory"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_onnx_files_exit_2_with_a_clear_message(case, tmp_path, capsys):
    make, message = HOSTILE[case]
    path = tmp_path / "model.onnx"
    make(path)
    assert compile_main([str(path), "--summary"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "internal error" not in err


def test_net_only_flags_are_refused_for_onnx(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    save_model(to_onnx(check(str(ROOT / "models" / "mlp.net"))), model)
    weights = tmp_path / "w.npz"
    np.savez(weights, **{n: np.zeros(s, np.float32) for n, s in parameter_shapes(check(str(ROOT / "models" /
                                                                                           "mlp.net"))).items()})
    assert compile_main([str(model), "--weights", str(weights)]) == 2
    assert "--weights applies to .net models" in capsys.readouterr().err
    assert compile_main([str(tmp_path / "missing.onnx"), "--summary"]) == 2
    assert "does not exist" in capsys.readouterr().err

"""The Python API (i2dl_dsl/__init__.py, api.py, api_train.py): the same
figures, tables, errors and trainings as the commands, from Python."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import i2dl_dsl
from i2dl_dsl.cli.compile import main as compile_main
from helpers import tensors
from helpers import train as train_cli

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "models" / "lenet5.net"
TINY = """network Tiny {
    input x[64]
    fc(16) -> relu -> fc(10)
}
train {
    optimizer sgd(lr=0.1)
    epochs 3
}
"""


def _cli(capsys, *args: str) -> str:
    assert compile_main(list(args)) == 0
    return capsys.readouterr().out


def test_summary_is_the_commands_table_and_json(capsys):
    net = i2dl_dsl.check(LENET)
    assert str(net.summary()) + "\n" == _cli(capsys, str(LENET), "--summary")
    assert net.summary(depth=1).to_dict() == json.loads(_cli(capsys, str(LENET), "--summary", "--format", "json",
                                                              "--depth", "1"))


def test_figures_equal_pytorchs_counts():
    torch = pytest.importorskip("torch")
    from reference.torch_models import lenet5

    net = i2dl_dsl.check(LENET)
    reference = lenet5()
    assert net.params == sum(p.numel() for p in reference.parameters()) == net.trainable_params
    named = dict(reference.named_modules())
    for layer in net.layers:
        if layer.type == "input":
            continue
        assert layer.params == sum(p.numel() for p in named[layer.name].parameters()), layer.name
    assert net.macs == sum(layer.macs for layer in net.layers)
    x = torch.zeros(1, *net.input_shape)
    outputs = {}
    for layer in net.layers[1:]:
        named[layer.name].register_forward_hook(lambda m, i, o, name=layer.name: outputs.__setitem__(name, o))
    reference(x)
    assert {layer.name: layer.output_shape for layer in net.layers[1:]} == \
           {name: tuple(o.shape[1:]) for name, o in outputs.items()}


def test_layers_carry_receptive_fields():
    conv3 = next(layer for layer in i2dl_dsl.check(LENET).layers if layer.name == "conv3")
    # conv 5 → 5; pool 2/2 → 6, jump 2; conv 5 → 6 + 4·2 = 14; pool → 16, jump 4; conv 5 → 16 + 4·4 = 32
    assert conv3.receptive_field == {"size": [32, 32], "stride": [4, 4]}


def test_source_text_and_parameters():
    net = i2dl_dsl.check(source="network A(c=4) {\n    input x[3, 8, 8]\n    conv(c, k=3)\n}\n", params={"c": 6})
    assert net.path == "<source>" and net.name == "A"
    assert net.output_shape == (6, 6, 6)
    assert net.params == 6 * 3 * 9 + 6


def test_zoo_names_are_found():
    assert i2dl_dsl.check("lenet5").params == i2dl_dsl.check(LENET).params


def test_compile_error_has_located_diagnostics_rendered_as_the_command_does(tmp_path, capsys):
    text = "network A {\n    input x[3, 8, 8]\n    conv(4, k=9)\n}\n"
    with pytest.raises(i2dl_dsl.CompileError) as caught:
        i2dl_dsl.check(source=text)
    (d,) = caught.value.diagnostics
    assert (d.path, d.line, d.column) == ("<source>", 3, 5)
    assert "8 - 9" in d.message
    file = tmp_path / "a.net"
    file.write_text(text)
    assert compile_main([str(file)]) == 2
    printed = capsys.readouterr().err.strip()
    assert str(caught.value) == printed.replace(str(file), "<source>")
    assert " 3 |     conv(4, k=9)" in str(caught.value) and "^" in str(caught.value)


def test_a_missing_file_is_a_compile_error():
    with pytest.raises(i2dl_dsl.CompileError, match="does not exist") as caught:
        i2dl_dsl.check("no/such/model.net")
    assert caught.value.diagnostics[0].line is None


def test_empty_and_oversized_sources_are_refused():
    with pytest.raises(i2dl_dsl.CompileError, match="empty"):
        i2dl_dsl.check(source="  \n")
    with pytest.raises(i2dl_dsl.CompileError, match="at most 1.0 MiB"):
        i2dl_dsl.check(source="#" * (1 << 21))
    with pytest.raises(TypeError):
        i2dl_dsl.check()
    assert i2dl_dsl.check("mine.net", source=TINY).path == "mine.net"


def test_graph_is_a_digraph_of_the_layers_or_the_ops():
    import graphviz

    net = i2dl_dsl.check(LENET)
    layers = net.graph()
    assert isinstance(layers, graphviz.Digraph) and "conv3" in layers.source
    assert "Conv" in net.graph(level="onnx").source
    with pytest.raises(i2dl_dsl.CompileError, match="unknown graph level"):
        net.graph(level="ops")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_inline_svg_for_jupyter():
    svg = i2dl_dsl.check(LENET)._repr_svg_()
    assert "<svg" in svg and "conv3" in svg


def test_summary_html_lists_every_layer():
    net = i2dl_dsl.check(LENET)
    page = net.summary()._repr_html_()
    assert page.count("<tr>") == len(net.layers) + 1
    assert f"{net.params:,}" in page


def test_to_onnx_with_pytorchs_weights_computes_pytorchs_output():
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from reference.torch_models import lenet5

    reference = lenet5().eval()
    weights = {k: v.numpy() for k, v in reference.state_dict().items()}
    model = i2dl_dsl.check(LENET).to_onnx(weights=weights, opset=20)
    assert model.opset_import[0].version == 20
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, reference(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_to_onnx_seeds_its_initial_values():
    net = i2dl_dsl.check(LENET)
    first, again, other = net.to_onnx(seed=1), net.to_onnx(seed=1), net.to_onnx(seed=2)
    assert first.graph.initializer[0] == again.graph.initializer[0] != other.graph.initializer[0]


def test_train_equals_i2dl_train_and_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.net").write_text(TINY)
    run = i2dl_dsl.train(i2dl_dsl.check("tiny.net"), "digits", epochs=2, batch=32, device="cpu", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.net"]
    assert [row["epoch"] for row in run.history] == [1, 2] and run.out is None
    assert train_cli(tmp_path / "tiny.net", tmp_path / "cli", "--epochs", "2", "--batch", "32") == 0
    written = tensors(tmp_path / "cli" / "weights.npz")
    assert written.keys() == run.weights.keys()
    for name in written:
        np.testing.assert_array_equal(run.weights[name], written[name])
    result = json.loads((tmp_path / "cli" / "result.json").read_text())
    assert run.test == {"loss": result["test_loss"], "accuracy": result["test_acc"], "samples": result["test_samples"]}


def test_train_on_arrays_predicts_with_the_trained_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 64)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    run = i2dl_dsl.train(i2dl_dsl.check(source=TINY), (x, y), epochs=10, batch=16, quiet=True,
                         out=tmp_path / "run")
    assert (tmp_path / "run" / "weights.npz").is_file() and run.out == tmp_path / "run"
    w = run.weights
    expected = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0) @ w["fc2.weight"].T + w["fc2.bias"]
    np.testing.assert_allclose(run.predict(x), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run.predict(x[0]), expected[0], rtol=1e-4, atol=1e-5)
    assert run.history[-1]["train_acc"] > 0.8


def test_train_refuses_a_finished_run_directory_unless_told(tmp_path):
    net = i2dl_dsl.check(source=TINY)
    i2dl_dsl.train(net, epochs=1, quiet=True, out=tmp_path)
    with pytest.raises(i2dl_dsl.CompileError, match="holds a finished run"):
        i2dl_dsl.train(net, epochs=1, quiet=True, out=tmp_path)
    assert len(i2dl_dsl.train(net, epochs=1, quiet=True, out=tmp_path, overwrite=True).history) == 1


def test_train_settings_are_checked():
    net = i2dl_dsl.check(source=TINY)
    with pytest.raises(TypeError, match="unknown settings epoch"):
        i2dl_dsl.train(net, epoch=2)
    with pytest.raises(i2dl_dsl.CompileError, match="'fc9' is no layer or block"):
        i2dl_dsl.train(net, freeze=["fc9"])
    with pytest.raises(i2dl_dsl.CompileError, match="x has 3 samples but y has 2"):
        i2dl_dsl.train(net, (np.zeros((3, 64)), np.zeros(2, np.int64)))


def test_freeze_keeps_the_frozen_layer(tmp_path):
    net = i2dl_dsl.check(source=TINY)
    run = i2dl_dsl.train(net, epochs=1, quiet=True, freeze=["fc1"], lr_scale={"fc2": 0.5}, seed=3)
    untouched = net.to_onnx(seed=3)
    from onnx import numpy_helper

    initial = {t.name: numpy_helper.to_array(t) for t in untouched.graph.initializer}
    np.testing.assert_array_equal(run.weights["fc1.weight"], initial["fc1.weight"])
    assert not np.array_equal(run.weights["fc2.weight"], initial["fc2.weight"])


def test_version_is_the_commands():
    out = subprocess.run([sys.executable, "-m", "i2dl_dsl.cli.compile", "--version"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == f"i2dl-compile {i2dl_dsl.__version__}"
    assert i2dl_dsl.__version__ != "unknown"


def test_train_is_callable_however_the_package_was_reached():
    import i2dl_dsl.train.loop  # noqa: F401 - binds the subpackage to i2dl_dsl.train
    from i2dl_dsl import train

    assert train is i2dl_dsl.train and callable(train)
    assert "train" in dir(i2dl_dsl) and "check" in dir(i2dl_dsl)


def test_to_onnx_reads_weights_files_and_refuses_pickles_unless_allowed(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from onnx import numpy_helper

    from reference.torch_models import lenet5

    state = lenet5().state_dict()
    safetensors_torch.save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pt")
    net = i2dl_dsl.check(LENET)
    model = net.to_onnx(weights=tmp_path / "w.safetensors")
    written = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(written["conv1.weight"], state["conv1.weight"].numpy())
    with pytest.raises(i2dl_dsl.CompileError, match="run any code"):
        net.to_onnx(weights=tmp_path / "w.pt")
    assert net.to_onnx(weights=tmp_path / "w.pt", allow_pickle=True) == model

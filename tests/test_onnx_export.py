"""The exported ONNX model as a file: every zoo model passes ONNX's full
check, ONNX's own shape inference agrees with the checker's shapes, the
initial weights are named, deterministic and drawn with the right spread,
weights round-trip, and files are written atomically (with external data
past protobuf's 2 GiB limit)."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.checker import CheckedNetwork, check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.names import layer_output
from i2dl_dsl.lowering import export
from i2dl_dsl.lowering.export import parameter_shapes, save_model, to_onnx
from i2dl_dsl.lowering.weights import read_weights
from i2dl_dsl.runtime import create_session

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ZOO = sorted(p for p in MODELS.glob("**/*.net") if re.search(r"^\s*network\s", p.read_text(), re.M))
LENET = MODELS / "lenet5.net"


@lru_cache(maxsize=None)
def exported(path: Path) -> tuple[CheckedNetwork, onnx.ModelProto]:
    net = check(path)
    return net, to_onnx(net, seed=0)


def zoo_id(path: Path) -> str:
    return str(path.relative_to(MODELS))


def dims(value_info: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def run(model: onnx.ModelProto | str, x: np.ndarray) -> np.ndarray:
    source = model if isinstance(model, str) else model.SerializeToString()
    session = create_session(source, "cpu").session
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def write_net(tmp_path: Path, body: str, inp: str = "3, 8, 8") -> Path:
    path = tmp_path / "net.net"
    path.write_text(f"network Net {{\n    input x[{inp}]\n{body}\n}}\n")
    return path


def without_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model's graph with no value_info. Large weights keep their type and
    dims, which is all inference reads of them, but not their data."""
    def light(t: onnx.TensorProto) -> onnx.TensorProto:
        return onnx.TensorProto(name=t.name, data_type=t.data_type, dims=t.dims) \
            if t.data_type == TensorProto.FLOAT and t.ByteSize() > 4096 else t

    g = model.graph
    graph = helper.make_graph(g.node, g.name, g.input, g.output, [light(t) for t in g.initializer])
    return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


# ----------------------------------------------------------------- the zoo


def test_zoo_is_found():
    names = {p.name for p in ZOO}
    assert {"lenet5.net", "resnet18.net", "googlenet.net", "fcn.net", "lstm_classifier.net"} <= names


@pytest.mark.parametrize("path", ZOO, ids=zoo_id)
def test_zoo_model_passes_full_check(path):
    _, model = exported(path)
    onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("path", ZOO, ids=zoo_id)
def test_zoo_shape_inference_agrees_with_checker(path):
    """Without our value_info, ONNX infers every layer's output shape itself."""
    net, model = exported(path)
    inferred = shape_inference.infer_shapes(without_value_info(model), strict_mode=True)
    found = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    initializers = {t.name for t in model.graph.initializer}
    layers = {n: layer_output(n, initializers) for n in net.analysis.order if n != net.input}
    wrong = {n: dims(found[t]) if t in found else None for n, t in layers.items()
             if t not in found or dims(found[t]) != ["N", *net.analysis.shapes[n]]}
    assert wrong == {}
    assert all(found[t].type.tensor_type.elem_type == TensorProto.FLOAT for t in layers.values())


@pytest.mark.parametrize("path", ZOO, ids=zoo_id)
def test_zoo_declares_every_intermediate_tensor(path):
    _, model = exported(path)
    graph = model.graph
    declared = {v.name: v for v in graph.value_info}
    outputs = {v.name for v in graph.output}
    produced = [o for node in graph.node for o in node.output if o not in outputs]
    assert [o for o in produced if o not in declared] == []
    assert [o for o in produced if not all(d.dim_param or d.dim_value for d in
                                           declared[o].type.tensor_type.shape.dim)] == []


@pytest.mark.parametrize("path", ZOO, ids=zoo_id)
def test_zoo_layer_outputs_carry_checker_shapes(path):
    net, model = exported(path)
    declared = {v.name: dims(v) for v in (*model.graph.value_info, *model.graph.output)}
    initializers = {t.name for t in model.graph.initializer}
    assert {n: declared.get(layer_output(n, initializers)) for n in net.analysis.order if n != net.input} == \
        {n: ["N", *net.analysis.shapes[n]] for n in net.analysis.order if n != net.input}


@pytest.mark.parametrize("path", ZOO, ids=zoo_id)
def test_zoo_initializers_are_named_like_parameters(path):
    net, model = exported(path)
    named = {t.name: tuple(t.dims) for t in model.graph.initializer if "/" not in t.name}
    assert named == parameter_shapes(net)


def test_initializer_names_follow_state_dict():
    _, model = exported(MODELS / "resnet18.net")
    names = {t.name for t in model.graph.initializer}
    assert {"layer2.0.conv1.weight", "layer2.0.bn1.running_var", "layer2.0.shortcut.conv1.weight",
            "fc.bias"} <= names


def test_batch_axis_is_symbolic():
    _, model = exported(LENET)
    assert dims(model.graph.input[0]) == ["N", 1, 32, 32]
    assert dims(model.graph.output[0]) == ["N", 10]
    for batch in (1, 5):
        assert run(model, np.zeros((batch, 1, 32, 32), np.float32)).shape == (batch, 10)


@pytest.mark.parametrize("opset", [18, 21, 22])
def test_ir_version_is_one_onnxruntime_reads(opset):
    model = to_onnx(check(LENET), opset=opset)
    assert model.opset_import[0].version == opset
    assert model.ir_version <= 10
    run(model, np.zeros((1, 1, 32, 32), np.float32))


@pytest.mark.parametrize("opset", [17, 23])
def test_unsupported_opset_is_a_user_error(opset):
    with pytest.raises(UserError, match="opset"):
        to_onnx(check(LENET), opset=opset)


# ----------------------------------------------------------------- source locations


def test_node_doc_string_holds_source_location(tmp_path):
    path = write_net(tmp_path, "    first: conv(4, k=3) -> relu\n\n      head: flatten")
    model = to_onnx(check(path))
    docs = {node.name.split("/")[0]: node.doc_string for node in model.graph.node}
    assert docs["first.0"].startswith(f"{path}:3:12: conv(")
    assert docs["first.1"].startswith(f"{path}:3:28: relu")
    assert docs["head"].startswith(f"{path}:5:13: flatten")


def test_every_node_is_named_after_its_layer():
    net, model = exported(MODELS / "googlenet.net")
    layers = set(net.analysis.order)
    assert [n.name for n in model.graph.node if n.name.split("/")[0] not in layers] == []
    assert all(re.match(r".+:\d+:\d+: ", n.doc_string) for n in model.graph.node)


# ----------------------------------------------------------------- initial weights


def test_same_seed_gives_same_bytes():
    net = check(LENET)
    assert to_onnx(net, seed=7).SerializeToString() == to_onnx(net, seed=7).SerializeToString()


def test_another_seed_gives_other_weights():
    net = check(LENET)
    a, b = initializers(to_onnx(net, seed=7)), initializers(to_onnx(net, seed=8))
    assert not np.array_equal(a["conv1.weight"], b["conv1.weight"])
    assert not np.array_equal(a["fc2.weight"], b["fc2.weight"])


def test_cli_export_is_byte_for_byte_reproducible(tmp_path):
    for name in ("a.onnx", "b.onnx"):
        assert compile_main([str(LENET), "--onnx", str(tmp_path / name), "--seed", "3"]) == 0
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_weights_do_not_depend_on_other_layers(tmp_path):
    """Each parameter draws from a generator seeded by its own name."""
    alone = to_onnx(check(write_net(tmp_path, "    a: conv(4, k=3)")), seed=1)
    after_another = to_onnx(check(write_net(tmp_path, "    z: conv(3, k=1)\n    a: conv(4, k=3)")), seed=1)
    np.testing.assert_array_equal(initializers(alone)["a.weight"], initializers(after_another)["a.weight"])


INIT_NET = "    c: conv(64, k=3, p=1)\n    flatten\n    f: fc(300)\n    b: batchnorm\n    p: prelu(per_channel=true, init=0.2)"


@pytest.mark.parametrize("scheme, std", [
    ("he", lambda fan_in: np.sqrt(2 / fan_in)),
    ("xavier", lambda fan_in: np.sqrt(1 / fan_in)),
    ("gaussian", lambda fan_in: 0.01),
])
def test_init_scheme_spread(tmp_path, scheme, std):
    values = initializers(to_onnx(check(write_net(tmp_path, INIT_NET, "16, 4, 4")), init=scheme, seed=0))
    for name, fan_in in (("c.weight", 16 * 3 * 3), ("f.weight", 64 * 4 * 4)):
        w = values[name].astype(np.float64)
        # The sample std of n normals is within 3/sqrt(2n) of the truth, relatively, 99.7% of the time.
        assert abs(w.std() / std(fan_in) - 1) < 3 / np.sqrt(2 * w.size)
        assert abs(w.mean()) < 3 * std(fan_in) / np.sqrt(w.size)


def test_init_fixed_values(tmp_path):
    values = initializers(to_onnx(check(write_net(tmp_path, INIT_NET, "16, 4, 4")), seed=0))
    expected = {"c.bias": 0.0, "f.bias": 0.0, "b.weight": 1.0, "b.bias": 0.0, "b.running_mean": 0.0,
                "b.running_var": 1.0, "p.weight": 0.2}
    assert {n: values[n].dtype for n in values} == {n: np.float32 for n in values}
    assert [n for n, v in expected.items() if not np.all(values[n] == np.float32(v))] == []


# ----------------------------------------------------------------- weights by name


def test_weights_round_trip_through_npz(tmp_path):
    net, model = exported(LENET)
    np.savez(tmp_path / "w.npz", **{n: a for n, a in initializers(model).items() if "/" not in n})
    again = to_onnx(net, weights=read_weights(tmp_path / "w.npz"), seed=99)
    assert again.SerializeToString() == model.SerializeToString()


def test_weights_round_trip_through_onnx(tmp_path):
    net, model = exported(MODELS / "lstm_classifier.net")
    save_model(model, tmp_path / "m.onnx")
    read = read_weights(tmp_path / "m.onnx")
    assert set(read) == set(parameter_shapes(net))
    again = to_onnx(net, weights=read, seed=99)
    assert again.SerializeToString() == model.SerializeToString()


def test_cli_weights_from_npz(tmp_path, capsys):
    net, model = exported(LENET)
    np.savez(tmp_path / "w.npz", **{n: a for n, a in initializers(model).items() if "/" not in n})
    assert compile_main([str(LENET), "--onnx", str(tmp_path / "m.onnx"), "--weights", str(tmp_path / "w.npz")]) == 0
    assert (tmp_path / "m.onnx").read_bytes() == model.SerializeToString()


def test_npz_is_read_without_pickle(tmp_path):
    np.savez(tmp_path / "w.npz", **{"conv1.weight": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(UserError, match="cannot read weights"):
        read_weights(tmp_path / "w.npz")


def _lenet_weights() -> dict[str, np.ndarray]:
    _, model = exported(LENET)
    return {n: a for n, a in initializers(model).items() if "/" not in n}


def _mismatch(weights) -> str:
    with pytest.raises(UserError) as err:
        to_onnx(check(LENET), weights=weights, weights_source="w.npz")
    return err.value.message


def test_mismatch_lists_missing_names():
    weights = _lenet_weights()
    del weights["conv1.bias"], weights["fc2.weight"]
    assert "missing from the weights:\n  conv1.bias\n  fc2.weight" in _mismatch(weights)


def test_mismatch_lists_unexpected_names():
    weights = {**_lenet_weights(), "conv9.weight": np.zeros(3, np.float32)}
    assert "not in the network:\n  conv9.weight" in _mismatch(weights)


def test_mismatch_lists_wrong_shapes():
    weights = {**_lenet_weights(), "conv1.weight": np.zeros((6, 1, 3, 3), np.float32)}
    assert "shapes that do not match:\n  conv1.weight: expected [6, 1, 5, 5], got [6, 1, 3, 3]" in _mismatch(weights)


def test_mismatch_lists_every_problem_at_once():
    weights = {**_lenet_weights(), "extra": np.zeros(1, np.float32), "fc1.bias": np.zeros(3, np.float32)}
    del weights["conv2.weight"]
    message = _mismatch(weights)
    assert "conv2.weight" in message and "extra" in message and "fc1.bias: expected [84], got [3]" in message


def test_mismatch_lists_arrays_that_are_not_numbers():
    weights = {**_lenet_weights(), "fc2.bias": np.array(["x"] * 10)}
    assert "arrays that are not real numbers:\n  fc2.bias: <U1" in _mismatch(weights)


def test_cli_weight_mismatch_exits_2(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", **{"conv1.weight": np.zeros((6, 1, 3, 3), np.float32)})
    code = compile_main([str(LENET), "--onnx", str(tmp_path / "m.onnx"), "--weights", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err
    assert code == 2
    assert "conv1.weight: expected [6, 1, 5, 5], got [6, 1, 3, 3]" in err and "fc2.bias" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


# ----------------------------------------------------------------- atomic writes


def _failing_save(exc: BaseException):
    def save(model, path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise exc
    return save


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), RuntimeError("boom"), KeyboardInterrupt()],
                         ids=["oserror", "other", "interrupt"])
def test_failed_write_leaves_no_file(tmp_path, monkeypatch, exc):
    _, model = exported(LENET)
    monkeypatch.setattr(onnx, "save_model", _failing_save(exc))
    with pytest.raises((UserError, type(exc))):
        save_model(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    _, model = exported(LENET)
    (tmp_path / "m.onnx").write_bytes(b"the earlier model")
    monkeypatch.setattr(onnx, "save_model", _failing_save(OSError(28, "No space left on device")))
    with pytest.raises(UserError, match="No space left on device"):
        save_model(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == b"the earlier model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_written_file_has_ordinary_permissions(tmp_path):
    _, model = exported(LENET)
    save_model(model, tmp_path / "m.onnx")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "m.onnx").stat().st_mode & 0o777 == 0o666 & ~umask


def test_missing_directory_is_a_user_error(tmp_path):
    _, model = exported(LENET)
    with pytest.raises(UserError, match="does not exist"):
        save_model(model, tmp_path / "nowhere" / "m.onnx")


# ----------------------------------------------------------------- external data


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(export, "PROTOBUF_LIMIT", 10_000)


def test_large_model_writes_external_data(tmp_path, small_limit):
    _, model = exported(LENET)
    save_model(model, tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    assert (tmp_path / "m.onnx").stat().st_size < 50_000 < (tmp_path / "m.onnx.data").stat().st_size
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)


def test_external_data_model_gives_the_same_outputs(tmp_path, small_limit):
    _, model = exported(LENET)
    save_model(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(run(str(tmp_path / "m.onnx"), x), run(model, x))


def test_external_data_weights_read_back(tmp_path, small_limit):
    _, model = exported(LENET)
    save_model(model, tmp_path / "m.onnx")
    read = read_weights(tmp_path / "m.onnx")
    assert all(np.array_equal(read[n], a) for n, a in _lenet_weights().items())


def test_external_data_leaves_the_model_in_memory_whole(tmp_path, small_limit):
    _, model = exported(LENET)
    before = model.SerializeToString()
    save_model(model, tmp_path / "m.onnx")
    assert model.SerializeToString() == before


def test_failed_external_write_leaves_no_files(tmp_path, small_limit, monkeypatch):
    _, model = exported(LENET)
    monkeypatch.setattr(onnx, "save_model", _failing_save(OSError(28, "No space left on device")))
    with pytest.raises(UserError):
        save_model(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []

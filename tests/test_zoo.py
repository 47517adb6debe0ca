"""The model zoo against published parameter counts and against the same
networks written by hand in PyTorch (tests/reference/torch_models.py).

PyTorch is the oracle for parameter and buffer names and shapes, totals, and
every layer's output shape; the published counts need no PyTorch.
Golden files pin the `--summary` output; UPDATE_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import zipfile
from functools import lru_cache
from pathlib import Path

import pytest

from i2dl_dsl import zoo
from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.cli.run import main as run_main
from i2dl_dsl.cli.train import main as train_main
from i2dl_dsl.checker import CheckedNetwork, check

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
GOLDEN = Path(__file__).resolve().parent / "golden"

ZOO = ("lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "fcn",
       "lstm_classifier", "rnn_classifier", "logistic_regression", "mlp")

# Published parameter counts: torchvision's model documentation,
# `torchvision.models.<Model>_Weights.IMAGENET1K_V1.meta["num_params"]`
# (GoogLeNet without its auxiliary classifiers).
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "googlenet": 6_624_904,
}

# LeNet-5 as LeCun et al., "Gradient-based learning applied to document
# recognition" (1998), counts it layer by layer: C1 156, C5 48,120 and F6
# 10,164 trainable parameters. The classic reproduction connects C3 fully
# (16·(6·25) + 16 = 2,416) and ends in a linear 10-way layer (84·10 + 10 =
# 850), for 61,706 in all.
LENET5_PAPER_LAYERS = {"conv1": 156, "conv3": 48_120, "fc1": 10_164}
LENET5_PARAMS = 61_706


@lru_cache(maxsize=None)
def compiled(model: str) -> CheckedNetwork:
    return check(MODELS / f"{model}.net")


def our_tensors(net: CheckedNetwork) -> dict[str, tuple[int, ...]]:
    """Every parameter and buffer, by state_dict name."""
    a = net.analysis
    out: dict[str, tuple[int, ...]] = {}
    for table in (a.params, a.buffers):
        for node, tensors in table.items():
            for suffix, shape in tensors.items():
                out[f"{node}.{suffix}"] = tuple(shape)
    return out


# ----------------------------------------------------------------- no PyTorch needed


@pytest.mark.parametrize("model", ZOO)
def test_model_checks_cleanly(model):
    net = compiled(model)
    assert net.analysis.total_params > 0
    assert net.warnings == ()


@pytest.mark.parametrize("model", sorted(TORCHVISION_PARAMS))
def test_parameter_count_equals_torchvision(model):
    assert compiled(model).analysis.total_params == TORCHVISION_PARAMS[model]


def test_lenet5_parameter_count():
    assert compiled("lenet5").analysis.total_params == LENET5_PARAMS


def test_lenet5_layers_match_the_paper():
    a = compiled("lenet5").analysis
    assert {name: a.layer_params(name) for name in LENET5_PAPER_LAYERS} == LENET5_PAPER_LAYERS


# ----------------------------------------------------------------- against PyTorch


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("torch")
    from reference import torch_models

    return torch_models


def shape_only(reference, model: str):
    """The PyTorch build on the meta device: names and shapes, no storage."""
    import torch

    with torch.device("meta"):
        return reference.BUILDERS[model]()


def torch_tensors(module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in module.state_dict().items()
            if not name.endswith("num_batches_tracked")}


@pytest.mark.parametrize("model", ZOO)
def test_parameter_count_equals_pytorch(reference, model):
    module = shape_only(reference, model)
    assert compiled(model).analysis.total_params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("model", ZOO)
def test_buffer_count_equals_pytorch(reference, model):
    module = shape_only(reference, model)
    expected = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    assert compiled(model).analysis.total_buffers == expected


@pytest.mark.parametrize("model", ZOO)
def test_parameter_names_and_shapes_equal_state_dict(reference, model):
    assert our_tensors(compiled(model)) == torch_tensors(shape_only(reference, model))


@pytest.mark.parametrize("model", ZOO)
def test_every_layer_has_a_pytorch_module(reference, model):
    net = compiled(model)
    modules = dict(shape_only(reference, model).named_modules())
    assert [n for n in net.analysis.order if n != net.input and n not in modules] == []


@pytest.mark.parametrize("model", ZOO)
def test_layer_output_shapes_equal_pytorch(reference, model):
    import torch

    net = compiled(model)
    module = reference.BUILDERS[model]().eval()
    seen: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module, _inputs, output):
            seen[name] = tuple(output.shape[1:])  # without the batch axis, as the compiler reports
        return hook

    for name, sub in module.named_modules():
        if name in net.analysis.shapes:
            sub.register_forward_hook(record(name))
    batch = 2
    with torch.no_grad():
        out = module(torch.randn(batch, *net.analysis.shapes[net.input]))
    assert tuple(out.shape) == (batch, *net.analysis.shapes[net.output])
    assert seen == {name: net.analysis.shapes[name] for name in seen}
    assert len(seen) == len(net.analysis.order) - 1  # every layer but the input was seen


# ----------------------------------------------------------------- golden summaries

GOLDEN_CASES = {
    "summary_lenet5.txt": ["models/lenet5.net", "--summary"],
    "summary_lenet5.json": ["models/lenet5.net", "--summary", "--format", "json"],
    "summary_resnet18_depth2.txt": ["models/resnet18.net", "--summary", "--depth", "2"],
    "summary_resnet18_depth2.json": ["models/resnet18.net", "--summary", "--depth", "2", "--format", "json"],
}


@pytest.mark.parametrize("golden", sorted(GOLDEN_CASES))
def test_summary_matches_golden_file(golden, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the table names the model by the path it was given
    assert compile_main(GOLDEN_CASES[golden]) == 0
    output = capsys.readouterr().out
    path = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(output, encoding="utf-8")
    assert output == path.read_text(encoding="utf-8"), f"regenerate with UPDATE_GOLDEN=1 if intended: {path}"
    if golden.endswith(".json"):
        model = Path(GOLDEN_CASES[golden][0]).stem
        assert json.loads(output)["totals"]["params"] == compiled(model).analysis.total_params


# ----------------------------------------------------------------- the zoo by name, and in the wheel

def test_every_zoo_file_is_listed_with_its_first_comment_line():
    listed = {m.name: m for m in zoo.zoo_models()}
    assert set(listed) == {p.stem for p in MODELS.glob("*.net")}
    first = (MODELS / "resnet18.net").read_text(encoding="utf-8").splitlines()[0]
    assert listed["resnet18"].description == first.lstrip("# ")


def test_list_models_prints_names_descriptions_and_parameters(capsys):
    assert compile_main(["--list-models"]) == 0
    out = capsys.readouterr().out
    for model in zoo.zoo_models():
        line = next(line for line in out.splitlines() if line.split()[0] == model.name)
        assert f"{compiled(model.name).analysis.total_params:,}" in line.split()
        assert line.endswith(model.description)


def test_a_bare_zoo_name_compiles_from_any_directory(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert compile_main(["resnet18", "--summary"]) == 0
    assert f"{TORCHVISION_PARAMS['resnet18']:,}" in capsys.readouterr().out


def test_a_path_that_exists_wins_over_the_zoo(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    Path("resnet18").write_text("network Tiny {\n    input x[3]\n    fc(2)\n}\n", encoding="utf-8")
    assert compile_main(["resnet18"]) == 0
    assert "network Tiny" in capsys.readouterr().out


@pytest.mark.parametrize("given", ["resnet18.net", "elsewhere/resnet18.net"])
def test_a_missing_file_named_like_a_zoo_model_names_it(given, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert compile_main([given]) == 2
    err = capsys.readouterr().err
    assert f"file '{given}' does not exist" in err
    assert "did you mean the zoo model 'resnet18'? run i2dl-compile resnet18" in err


def test_an_unknown_bare_name_suggests_the_nearest_zoo_model(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert compile_main(["resnet19"]) == 2
    err = capsys.readouterr().err
    assert "'resnet19' is neither a file nor a zoo model" in err and "'resnet18'" in err
    assert "--list-models" in err


def test_run_and_train_take_a_zoo_name(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_main(["lenet5", "--device", "cpu", "--output", "y.npy"]) == 0
    assert Path("y.npy").exists()
    assert train_main(["linear_regression", "--out", "run", "--device", "cpu", "--quiet", "--epochs", "1"]) == 0
    assert Path("run", "model.onnx").exists()
    assert train_main(["digits_cnn.net", "--quiet"]) == 2
    assert "run i2dl-train digits_cnn" in capsys.readouterr().err


def test_compile_without_a_model_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        compile_main([])
    assert exit_.value.code == 2
    assert "--list-models" in capsys.readouterr().err


def test_pyproject_ships_every_zoo_file_as_package_data():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert "i2dl_dsl.models" in config["packages"]
    assert config["package-dir"]["i2dl_dsl.models"] == "models"
    globs = config["package-data"]["i2dl_dsl.models"]
    for path in MODELS.glob("*.net"):
        assert any(fnmatch.fnmatch(path.name, g) for g in globs), path.name


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the checkout (the build leaves build/ behind)."""
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for folder in ("i2dl_dsl", "grammars", "models"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(source)], check=True, capture_output=True, timeout=120)
    return next((tmp_path / "wheel").glob("*.whl"))


def test_the_wheel_carries_the_zoo_and_an_install_finds_it(tmp_path):
    pytest.importorskip("setuptools", minversion="68")
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    assert {f"i2dl_dsl/models/{p.name}" for p in MODELS.glob("*.net")} <= names
    # The installed package, imported from elsewhere, finds its own copy.
    found = subprocess.run([sys.executable, "-c", "from i2dl_dsl import zoo; print(zoo.zoo_path('resnet18'))"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
                           capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert Path(found) == tmp_path / "site" / "i2dl_dsl" / "models" / "resnet18.net"

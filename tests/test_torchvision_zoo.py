"""The zoo files named after torchvision's builders against torchvision itself
(tests/torchvision_oracle.py): every state_dict name and shape, the
parameter total, the multiply-adds, and the exported ONNX model's output
with torchvision's randomly initialised weights loaded by `--weights`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from torchvision_oracle import build, macs, tensors, torchvision_models

from i2dl_dsl.checker import CheckedNetwork, check
from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.lowering.export import parameter_shapes
from i2dl_dsl.lowering.weights import fits
from i2dl_dsl.runtime import create_session

MODELS = Path(__file__).resolve().parents[1] / "models"

# Every zoo file named after a torchvision builder.
TORCHVISION_ZOO = ("alexnet", "vgg16", "vgg19_bn", "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2",
                   "googlenet", "inception_v3", "densenet121", "squeezenet1_0", "mnasnet1_0", "mobilenet_v2",
                   "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2_x1_0", "convnext_tiny",
                   "regnet_y_400mf")
# Those whose export and run with torchvision's weights took over 10 s on two
# shared CPU cores.
SLOW = {"alexnet", "vgg16", "vgg19_bn", "densenet121", "resnext50_32x4d", "wide_resnet50_2", "inception_v3",
        "convnext_tiny"}
# torchvision's published parameter counts include the auxiliary heads these files leave out.
WITH_AUX = {"googlenet", "inception_v3"}


@lru_cache(maxsize=None)
def compiled(model: str) -> CheckedNetwork:
    return check(MODELS / f"{model}.net")




@pytest.mark.parametrize("model", TORCHVISION_ZOO)
def test_state_dict_names_shapes_and_parameter_total(model):
    theirs = build(model, device="meta")
    net = compiled(model)
    mine, expected = parameter_shapes(net), tensors(theirs)
    assert sorted(mine) == sorted(expected)
    # The same shapes; a Linear's [out, in] is a 1x1 convolution's [out, in, 1, 1] (ConvNeXt).
    assert [n for n in mine if not fits(expected[n], mine[n])] == []
    assert net.analysis.total_params == sum(p.numel() for p in theirs.parameters())


@pytest.mark.parametrize("model", TORCHVISION_ZOO)
def test_multiply_adds_equal_torchs_count(model):
    net = compiled(model)
    assert net.analysis.total_macs == macs(build(model, device="meta"), net.analysis.shapes[net.input])


@pytest.mark.parametrize("model", TORCHVISION_ZOO)
def test_published_figures(model):
    """torchvision's documentation of its ImageNet weights: `num_params`, and
    `_ops`, its multiply-adds in billions to three decimals."""
    meta = next(iter(torchvision_models().get_model_weights(model))).meta
    a = compiled(model).analysis
    assert round(a.total_macs / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-9)
    if model not in WITH_AUX:
        assert a.total_params == meta["num_params"]


def _slow(models):
    return [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in models]


@pytest.mark.parametrize("model", _slow(TORCHVISION_ZOO))
def test_onnx_output_equals_torchvision_with_its_weights(model, tmp_path, capsys):
    import torch

    theirs = build(model, seed=0)
    np.savez(tmp_path / "state_dict.npz", **{n: t.numpy() for n, t in theirs.state_dict().items()})
    onnx_path = tmp_path / f"{model}.onnx"
    code = compile_main([model, "--onnx", str(onnx_path), "--weights", str(tmp_path / "state_dict.npz")])
    err = capsys.readouterr().err
    assert code == 0, err
    counters = sum(n.endswith("num_batches_tracked") for n in theirs.state_dict())
    assert err.count(f"{counters} num_batches_tracked entries ignored") == (1 if counters else 0)
    net = compiled(model)
    x = np.random.default_rng(0).normal(size=(1, *net.analysis.shapes[net.input])).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    got = create_session(str(onnx_path), "cpu").run({net.input: x})[0]
    # 1e-5 relative to the output's scale: float32 sums in another order differ in the last bits.
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


# ----------------------------------------------------------------- the tables that quote them

ROOT = MODELS.parent


def _rows(doc: Path, heading: str) -> dict[str, list[str]]:
    """The cells of the table whose header starts with `heading`, by the model its first cell names."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith(heading):
            inside = True
        elif inside and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`").removesuffix(".net")] = cells
        elif inside and not line.startswith("|"):
            break
    return rows


def test_models_readme_quotes_the_compilers_figures():
    rows = _rows(MODELS / "README.md", "| file | network | input | parameters | MACs |")
    assert sorted(rows) == sorted(TORCHVISION_ZOO)
    for model, cells in rows.items():
        a = compiled(model).analysis
        assert cells[2:] == [f"`{list(a.shapes[compiled(model).input])}`", f"{a.total_params:,}",
                             f"{a.total_macs:,}"], model


def test_readme_quotes_the_compilers_figures():
    rows = _rows(ROOT / "README.md", "| model | input | parameters | MACs |")
    assert sorted(rows) == sorted(TORCHVISION_ZOO)
    for model, cells in rows.items():
        a = compiled(model).analysis
        assert cells[1:] == [f"`{list(a.shapes[compiled(model).input])}`", f"{a.total_params:,}",
                             f"{a.total_macs / 1e9:.3f} G"], model

"""`--emit torch`: the PyTorch source written for a network against the compiler itself.

For every zoo model and every layer kind's example: the emitted module,
given the compiler's weights by `load_state_dict(strict=True)`, computes the
ONNX export's outputs (onnxruntime), and one training step's gradients and
new running statistics equal those of the compiler's training graph. The
source of two small models is compared with golden files, so a change in
how the code reads is seen in review.
"""

from __future__ import annotations

import py_compile
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.interop.torch_code import emit, root_class, to_module  # noqa: E402
from i2dl_dsl.lowering.export import parameter_shapes, to_onnx  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402
from i2dl_dsl.train.step import TrainConfig, build_step  # noqa: E402
from helpers import ZOO_224, ZOO_SMALLER, random_weights, zoo_net  # noqa: E402
from test_every_layer import EXAMPLES, compile_example  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
ZOO = sorted(p.stem for p in (ROOT / "models").glob("*.net"))
# Known gaps of the emitter on the torchvision-named zoo files: labels that
# are numbers (`0:`) become `self.0`, which is not Python, and layers of
# blocks inside labelled chains are looked up under the wrong name.
EMIT_GAP = pytest.mark.xfail(strict=True, reason="--emit torch: numeric labels and names inside labelled chains")
OUTPUT_GAPS = {"convnext_tiny", "densenet121", "efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large",
               "mobilenet_v3_small", "regnet_y_400mf"}
GRADIENT_GAPS = OUTPUT_GAPS | {"inception_v3", "mnasnet1_0", "resnext50_32x4d", "shufflenet_v2_x1_0",
                               "squeezenet1_0", "vgg19_bn", "wide_resnet50_2"}
BIG = sorted([*ZOO_224, *ZOO_SMALLER])  # checked smaller by default, at full size under -m slow
SLOW_GRADIENTS = {"alexnet", "googlenet", "resnet50", "vgg16"}  # 20-45 s each on two cores
BATCH = 3
TOL = 1e-4  # relative to the largest entry of each output or gradient
# ResNet-50's first convolution's gradient passes 53 layers, batch norms over
# 12 values each at the last stage: float32 itself is off by 1.5e-4 there
# (PyTorch in float32 against float64), the compiler's by 4.1e-4.
GRAD_TOL = {"resnet50": 1e-3}


def scaled_weights(net, seed: int) -> dict[str, np.ndarray]:
    """Random weights with He's scale (deep models keep activations of order 1:
    float32 comparisons stay meaningful), biases and γ away from 0 and 1."""
    weights = random_weights(parameter_shapes(net), seed, scale=0.3)
    for name, value in weights.items():
        if value.ndim >= 2:
            weights[name] = value / 0.3 * np.float32(np.sqrt(2.0 / np.prod(value.shape[1:])))
    return weights


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / max(1.0, float(np.abs(theirs).max())))


def inputs_for(net, rng: np.random.Generator) -> np.ndarray:
    shape = net.analysis.shapes[net.input]
    return rng.standard_normal((BATCH, *shape)).astype(np.float32)


def check_outputs(net, seed: int = 0) -> None:
    weights = scaled_weights(net, seed)
    module = to_module(net, weights).eval()
    x = inputs_for(net, np.random.default_rng(seed))
    expected = create_session(to_onnx(net, weights=weights).SerializeToString(), "cpu").run({net.input: x})[0]
    with torch.no_grad():
        ours = module(torch.from_numpy(x)).numpy()
    assert ours.shape == expected.shape
    assert relative_error(ours, expected) <= TOL


class Masked(torch.nn.Module):
    """Inverted dropout with the training graph's mask, standing in for nn.Dropout."""

    def __init__(self, mask: np.ndarray):
        super().__init__()
        self.mask = torch.from_numpy(mask)

    def forward(self, x):
        return x * self.mask


def step_outputs(net, weights, x, y, masks) -> dict[str, np.ndarray]:
    """Every output of one run of the training step (mse, SGD, lr = 0)."""
    step = build_step(net, TrainConfig(loss="mse", optimizer={"name": "sgd"}, expose_gradients=True), weights)
    session = create_session(step.model.SerializeToString(), "cpu")
    feeds = {**step.values, **step.state, step.input: x, "y": y, "lr": np.array(0.0, np.float32),
             "step": np.array(1.0, np.float32), **masks}
    names = [o.name for o in session.session.get_outputs()]
    return dict(zip(names, session.run(feeds)))


def check_gradients(net, seed: int = 0, tol: float = TOL) -> None:
    """One training step of the emitted module (train mode, float64: PyTorch's
    float32 convolution gradients are off by up to 2% of the largest entry in
    GoogLeNet, where the compiler's agree with float64 to 4e-5) against the
    compiler's training graph."""
    weights = scaled_weights(net, seed)
    module = to_module(net, weights).double()
    rng = np.random.default_rng(seed)
    x = inputs_for(net, rng)
    with torch.no_grad():
        y = rng.standard_normal(module.eval()(torch.from_numpy(x).double()).shape).astype(np.float32)
    module.train()
    step = build_step(net, TrainConfig(loss="mse", optimizer={"name": "sgd"}), weights)
    masks = {name: draw.draw(rng, BATCH) for name, draw in step.masks.items()}
    for name, mask in masks.items():
        parent, _, leaf = name.removesuffix(".mask").rpartition(".")
        container = module.get_submodule(parent) if parent else module
        replacement = Masked(mask.astype(np.float64))
        setattr(container, leaf, replacement) if not leaf.isdigit() else container.__setitem__(int(leaf), replacement)
    ours = step_outputs(net, weights, x, y, masks)
    loss = F.mse_loss(module(torch.from_numpy(x).double()), torch.from_numpy(y).double())
    loss.backward()
    assert ours["loss"] == pytest.approx(loss.item(), rel=1e-4)
    for name, p in module.named_parameters():
        assert relative_error(ours[f"grad/{name}"], p.grad.numpy()) <= tol, name
    for name, buffer in module.named_buffers():
        if not name.endswith("num_batches_tracked"):
            assert relative_error(ours[f"new/{name}"], buffer.numpy()) <= tol, name


# ----------------------------------------------------------------- the zoo


@pytest.mark.parametrize("name", [pytest.param(n, marks=EMIT_GAP) if n in OUTPUT_GAPS else n for n in ZOO])
def test_zoo_module_computes_the_onnx_export(name: str, tmp_path: Path) -> None:
    check_outputs(zoo_net(name, tmp_path))


@pytest.mark.parametrize("name", [pytest.param(n, marks=EMIT_GAP) if n in GRADIENT_GAPS else
                                  pytest.param(n, marks=pytest.mark.slow) if n in SLOW_GRADIENTS else n for n in ZOO])
def test_zoo_module_gradients_equal_the_training_graph(name: str, tmp_path: Path) -> None:
    check_gradients(zoo_net(name, tmp_path), tol=GRAD_TOL.get(name, TOL))


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_zoo_module_at_full_size_computes_the_onnx_export(name: str, tmp_path: Path) -> None:
    check_outputs(zoo_net(name, tmp_path, full_size=True))


# ----------------------------------------------------------------- every layer kind


@pytest.mark.parametrize("kind", sorted(k for k in EXAMPLES if k != "input"))
def test_every_kind_computes_the_onnx_export(kind: str) -> None:
    check_outputs(compile_example(kind))


@pytest.mark.parametrize("kind", sorted(k for k in EXAMPLES if k != "input"))
def test_every_kind_gradients_equal_the_training_graph(kind: str) -> None:
    check_gradients(compile_example(kind))


def compile_body(tmp_path: Path, input_decl: str, body: str):
    source = tmp_path / "case.net"
    source.write_text(f"network Case {{\n    input x[{input_decl}]\n    {body}\n}}\n")
    return check(source)


STRUCTURES = """
block unit(c, p=same) {
    a = in -> conv(c, k=3, p=p) -> relu
    b = in -> conv(c, k=1)
    add(a, b) -> batchnorm
}
block pair(c) {
    res: residual {
        t = in -> conv(c, k=1) -> relu
        add(t, in)
    }
    unit(c) * 2
}
network S {
    input x[4, 8, 8]
    stage: pair(4) -> unit(6, p=1)
    unit(6) * 2
    extra: concat {
        branch { conv(3, k=1) }
        branch { maxpool(k=3, s=1, p=1) -> unit(2) }
    }
    global_maxpool -> flatten -> fc(3)
}
"""


def test_blocks_in_labelled_residuals_repetitions_and_branches(tmp_path: Path) -> None:
    """Named tensors inside blocks, a labelled residual (an nn.ModuleDict), repetitions of
    blocks (nn.Sequential), concat branches holding blocks, and a block whose instances
    need two classes (`p=same` is written as the padding it resolves to)."""
    (tmp_path / "s.net").write_text(STRUCTURES)
    net = check(tmp_path / "s.net")
    source = emit(net)
    assert "self.res = nn.ModuleDict({" in source and "class Unit2(nn.Module):" in source
    check_outputs(net)
    check_gradients(net)


@pytest.mark.parametrize("input_decl, body", [
    # uneven padding: F.pad before the module (zeros; -inf for a max)
    ("3, 9, 8", "conv(4, k=4, p=same) -> maxpool(k=2, s=1, p=same) -> avgpool(k=2, s=1, p=same)"),
    # round=ceil: PyTorch's ceil_mode for pools, extra end padding for a convolution
    ("2, 7, 7", "conv(3, k=2, s=2, round=ceil) -> maxpool(k=3, s=2, p=1, round=ceil)"),
    ("4, 6, 6", "conv(4, k=3, d=2, p=2, groups=2, bias=false) -> upconv(2, k=3, s=2, p=1, output_padding=1)"),
    ("4, 6, 6", "prelu(per_channel=true) -> maxout(pieces=2) -> softmax -> upsample(scale=[2, 3], mode=bilinear)"),
    ("T=5, 4", "a = x -> lstm(3)\n    b = x -> rnn(2)\n    concat(a, b) -> maxout(pieces=5) -> softmax"),
    ("6", "fc(4) -> batchnorm(eps=0.001, momentum=0.3) -> leaky_relu(alpha=0.2) -> dropout(p=0.3) -> fc(2)"),
])
def test_pytorch_semantics_differences(tmp_path: Path, input_decl: str, body: str) -> None:
    net = compile_body(tmp_path, input_decl, body)
    check_outputs(net)
    check_gradients(net)


@pytest.mark.parametrize("body", ["avgpool(k=3, s=2, p=1, round=ceil) -> avgpool(k=2, s=2, round=ceil)",
                                  "avgpool(k=3, s=2, p=1, round=ceil, count_include_pad=false)"])
def test_ceil_average_pools(tmp_path: Path, body: str) -> None:
    # Outputs only: the training graph cannot differentiate an average pool
    # with round=ceil after a layer with parameters yet (MissingGradient: its
    # gradient's ConvTranspose needs static shapes).
    check_outputs(compile_body(tmp_path, "2, 7, 7", body))


# ----------------------------------------------------------------- the source as written


@pytest.mark.parametrize("name", ["lenet5", "resnet_small"])
def test_source_matches_the_golden_file(name: str) -> None:
    source = emit(check(ROOT / "models" / f"{name}.net"))
    golden = GOLDEN / f"torch_{name}.py"
    assert source == golden.read_text(), f"regenerate with: i2dl-compile models/{name}.net --emit torch -o {golden}"


def test_one_class_serves_every_instance_of_a_block() -> None:
    source = emit(check(ROOT / "models" / "resnet50.net"))
    assert re.findall(r"^class (\w+)", source, re.M) == ["BottleneckDown", "Bottleneck", "ResNet50"]
    assert "nn.Conv2d(c, c * 4, kernel_size=1, bias=False)" in source
    assert "self.layer2 = nn.Sequential(\n            BottleneckDown(256, 128, s=2)," in source


def test_a_block_class_builds_with_other_arguments(tmp_path: Path) -> None:
    """The class is written in the block's parameters: a new instance has the shapes it asks for."""
    namespace: dict = {}
    exec(emit(check(ROOT / "models" / "resnet_small.net")), namespace)
    block = namespace["BasicDown"](8, 24)
    out = block(torch.zeros(2, 8, 10, 10))
    assert tuple(out.shape) == (2, 24, 5, 5)


def test_named_tensors_are_local_variables() -> None:
    source = emit(check(ROOT / "models" / "fcn.net"))
    assert "pool4 = self.down4(pool3)" in source and "fuse3 = x + up4" in source


def test_network_parameters_are_constructor_arguments() -> None:
    source = emit(check(ROOT / "models" / "digits_cnn.net"))
    assert "def __init__(self, dropout=0.3):" in source and "nn.Dropout(p=dropout)" in source


def test_cli_writes_a_file_that_compiles(tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    done = subprocess.run([sys.executable, "-m", "i2dl_dsl.cli.compile", "models/googlenet.net", "--emit", "torch",
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: PyTorch class GoogLeNet" in done.stderr
    py_compile.compile(str(out), doraise=True)
    assert root_class(out.read_text()) == "GoogLeNet"


def test_cli_prints_the_source_alone_without_o() -> None:
    done = subprocess.run([sys.executable, "-m", "i2dl_dsl.cli.compile", "models/mlp.net", "--emit", "torch"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == emit(check(ROOT / "models" / "mlp.net"))


def test_a_layer_pytorch_cannot_express_is_a_located_error(tmp_path: Path) -> None:
    source = tmp_path / "uneven.net"
    source.write_text("network U {\n    input x[2, 6, 6]\n    avgpool(k=2, s=1, p=same, count_include_pad=false)\n}\n")
    done = subprocess.run([sys.executable, "-m", "i2dl_dsl.cli.compile", str(source), "--emit", "torch"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{source}:3:5: error: cannot write layer 'avgpool1' as PyTorch" in done.stderr
    assert "count_include_pad=false" in done.stderr


def test_a_kind_without_a_translation_is_named(monkeypatch, tmp_path: Path) -> None:
    from i2dl_dsl.layers.activation import Tanh
    from i2dl_dsl.layers.base import Layer

    monkeypatch.setattr(Tanh, "torch_code", Layer.torch_code)
    with pytest.raises(Exception, match="layer kind 'tanh' has no PyTorch translation"):
        emit(check(ROOT / "models" / "lenet5.net"))

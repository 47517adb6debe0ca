"""The activations, per-sample norms, layer scale, stochastic depth, channel
shuffle, adaptive pooling and sequence `fc` in a training step, against
torch autograd: the step's loss and every parameter's gradient, with the
same parameters and the same stochastic-depth masks; parameter counts and
names against torch's modules; drop_path's masks and its inference graph.
Outputs of each layer alone are in tests/test_onnx_layers.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.layers.declarations import ScaledBernoulli  # noqa: E402
from i2dl_dsl.lowering.export import parameter_shapes  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402
from i2dl_dsl.train.step import TrainConfig, build_step  # noqa: E402
from helpers import random_weights  # noqa: E402

GRAD_TOL = 1e-4  # relative to the largest entry of each gradient
BATCH = 4

IMAGE_NET = """\
    c1: conv(8, k=3, p=1)
    a1: hardswish
    n1: layernorm(eps=1e-6)
    c2: conv(8, k=1)
    a2: gelu
    n2: groupnorm(4)
    c3: conv(8, k=3, p=1, groups=8)
    a3: silu
    s: scale(init=0.5)
    d: drop_path(0.5)
    sh: channel_shuffle(2)
    a4: elu(alpha=0.7)
    p: adaptive_avgpool([3, 2])
    a5: hardsigmoid
    flatten
    f1: fc(6)
    a6: softplus(beta=2, threshold=1)
    a7: relu6
    f2: fc(5)"""


def image_net_torch(x, p, masks):
    def conv(name, **kw):
        return lambda t: F.conv2d(t, p[f"{name}.weight"], p[f"{name}.bias"], **kw)

    t = F.hardswish(conv("c1", padding=1)(x))
    t = F.layer_norm(t.permute(0, 2, 3, 1), (8,), p["n1.weight"], p["n1.bias"], 1e-6).permute(0, 3, 1, 2)
    t = F.gelu(conv("c2")(t))
    t = F.group_norm(t, 4, p["n2.weight"], p["n2.bias"])
    t = F.silu(conv("c3", padding=1, groups=8)(t)) * p["s"]
    t = t * masks["d.mask"]
    t = F.elu(F.channel_shuffle(t, 2), 0.7)
    t = F.hardsigmoid(F.adaptive_avg_pool2d(t, (3, 2))).flatten(1)
    t = F.relu6(F.softplus(F.linear(t, p["f1.weight"], p["f1.bias"]), 2, 1))
    return F.linear(t, p["f2.weight"], p["f2.bias"])


SEQUENCE_NET = """\
    f1: fc(8)
    a1: gelu(approximate=tanh)
    n1: layernorm
    f2: fc(3, bias=false)
    s: scale(init=2)
    d: drop_path(0.25)
    flatten
    f3: fc(5)"""


def sequence_net_torch(x, p, masks):
    t = F.gelu(F.linear(x, p["f1.weight"], p["f1.bias"]), approximate="tanh")
    t = F.linear(F.layer_norm(t, (8,), p["n1.weight"], p["n1.bias"]), p["f2.weight"]) * p["s"]
    return F.linear((t * masks["d.mask"]).flatten(1), p["f3.weight"], p["f3.bias"])


def compile_net(tmp_path, input_decl: str, body: str):
    source = tmp_path / "case.net"
    source.write_text(f"network Case {{\n    input x[{input_decl}]\n{body}\n}}\n")
    return check(source)


def run_step(step, x, y, masks):
    session = create_session(step.model.SerializeToString(), "cpu")
    feeds = {**step.values, **step.state, step.input: x, "y": y, "lr": np.array(0.0, np.float32),
             "step": np.array(1.0, np.float32), **masks}
    names = [o.name for o in session.session.get_outputs()]
    return dict(zip(names, session.run(feeds)))


@pytest.mark.parametrize("input_decl, shape, body, reference", [
    ("4, 9, 9", (4, 9, 9), IMAGE_NET, image_net_torch),
    ("T=5, 6", (5, 6), SEQUENCE_NET, sequence_net_torch),
], ids=["image", "sequence"])
def test_training_step_gradients_equal_torch_autograd(tmp_path, input_decl, shape, body, reference) -> None:
    net = compile_net(tmp_path, input_decl, body)
    weights = random_weights(parameter_shapes(net), seed=3, scale=0.4)
    step = build_step(net, TrainConfig(loss="cross_entropy", optimizer={"name": "sgd"}, expose_gradients=True),
                      weights)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, *shape)).astype(np.float32)
    y = rng.integers(0, 5, BATCH)
    masks = {name: draw.draw(rng, BATCH) for name, draw in step.masks.items()}
    assert set(masks) == {"d.mask"} and 0 < np.count_nonzero(masks["d.mask"]) < BATCH  # some dropped, some kept
    ours = run_step(step, x, y, masks)

    params = {k: torch.tensor(v, requires_grad=True) for k, v in weights.items()}
    loss = F.cross_entropy(reference(torch.from_numpy(x), params, {k: torch.from_numpy(m) for k, m in masks.items()}),
                           torch.from_numpy(y))
    loss.backward()
    assert ours["loss"] == pytest.approx(loss.item(), rel=1e-5)
    assert sorted(step.trainable) == sorted(params)
    for name, tensor in params.items():
        expected = tensor.grad.numpy()
        error = np.abs(ours[f"grad/{name}"] - expected).max() / max(1e-3, np.abs(expected).max())
        assert error <= GRAD_TOL, f"{name}: {error:.2e}"


def test_parameter_counts_and_names_equal_torch_modules(tmp_path) -> None:
    net = compile_net(tmp_path, "16, 6, 6", """\
    stem: conv(16, k=3, p=1)
    blk: residual {
        dw: conv(16, k=7, p=3, groups=16)
        norm: layernorm(eps=1e-6)
        layer_scale: scale
    }
    gn: groupnorm(4)
    flatten
    ln: layernorm""")
    shapes = parameter_shapes(net)
    modules = {"blk.norm": torch.nn.LayerNorm(16, eps=1e-6), "gn": torch.nn.GroupNorm(4, 16),
               "ln": torch.nn.LayerNorm(576)}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            assert shapes[f"{prefix}.{key}"] == tuple(value.shape), key
    # torchvision's ConvNeXt CNBlock: `layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)`
    assert shapes["blk.layer_scale"] == (16, 1, 1)
    assert net.analysis.total_params == sum(int(np.prod(s)) for s in shapes.values())


def test_fc_on_a_sequence_counts_every_step(tmp_path) -> None:
    net = compile_net(tmp_path, "T=7, 6", "    l: fc(5)")
    assert net.analysis.shapes["l"] == (7, 5)
    assert net.analysis.params["l"] == {"weight": (5, 6), "bias": (5,)}
    assert net.analysis.macs["l"] == 7 * 6 * 5  # as torch's Linear: every step multiplies the weight matrix


def test_scale_starts_at_its_init(tmp_path) -> None:
    net = compile_net(tmp_path, "3, 4, 4", "    s: scale")
    step = build_step(net, TrainConfig(loss="mse", optimizer={"name": "sgd"}))
    np.testing.assert_array_equal(step.values["s"], np.full((3, 1, 1), 1e-6, np.float32))


def test_drop_path_draws_one_value_per_sample(tmp_path) -> None:
    net = compile_net(tmp_path, "3, 4, 4", "    d: drop_path(0.25)")
    step = build_step(net, TrainConfig(loss="mse", optimizer={"name": "sgd"}))
    assert step.masks == {"d.mask": ScaledBernoulli((1, 1, 1), 0.75)}
    mask = step.masks["d.mask"].draw(np.random.default_rng(1), 4000)
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.75)}
    assert abs(np.mean(mask > 0) - 0.75) < 0.03  # kept with probability 1 - p
    assert abs(mask.mean() - 1.0) < 0.04        # the expectation is unchanged

    x = np.random.default_rng(2).standard_normal((4, 3, 4, 4)).astype(np.float32)
    chosen = np.array([0, 1 / 0.75, 1 / 0.75, 0], np.float32).reshape(4, 1, 1, 1)
    out = run_step(step, x, np.zeros_like(x), {"d.mask": chosen})
    np.testing.assert_array_equal(out["d"], x * chosen)  # whole samples dropped or kept
    inference = create_session(step.eval_model.SerializeToString(), "cpu").run({net.input: x})[0]
    np.testing.assert_array_equal(inference, x)


def test_drop_path_zero_has_no_mask(tmp_path) -> None:
    net = compile_net(tmp_path, "6", "    d: drop_path(0)")
    assert build_step(net, TrainConfig(loss="mse", optimizer={"name": "sgd"})).masks == {}

"""The training step graph against independent oracles.

- the training-mode forward pass: unrolled LSTM/RNN against the inference
  graph's ONNX LSTM/RNN ops; batch statistics and running averages against
  torch's BatchNorm in train mode; dropout masks as inputs;
- whole-model gradients (`expose_gradients`) against torch autograd;
- every loss's value and gradient against torch.nn.functional;
- the L1/L2 penalty terms against a hand computation.

Every test runs the step graph itself on onnxruntime (CPU), with lr = 0 so
that the forward pass, loss and gradients are read before any update.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.lowering.export import parameter_shapes, to_onnx  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402
from helpers import random_weights  # noqa: E402
from i2dl_dsl.train.step import StepModel, TrainConfig, build_step  # noqa: E402

GRAD_TOL = 1e-4  # whole-model gradients, relative to the largest entry of each
SGD = {"name": "sgd"}


# ----------------------------------------------------------------- helpers


def compile_net(tmp_path, input_decl: str, body: str, name: str = "Case"):
    source = tmp_path / f"{name.lower()}.net"
    source.write_text(f"network {name} {{\n    input {input_decl}\n{body}\n}}\n")
    return check(source)


def run_step(step: StepModel, x: np.ndarray, y: np.ndarray, masks: dict[str, np.ndarray] | None = None,
             values: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every output of one run of the step graph, with lr = 0."""
    session = create_session(step.model.SerializeToString(), "cpu")
    feeds = {**step.values, **(values or {}), **step.state, step.input: x, "y": y,
             "lr": np.array(0.0, np.float32), "step": np.array(1.0, np.float32), **(masks or {})}
    names = [o.name for o in session.session.get_outputs()]
    return dict(zip(names, session.run(feeds)))


def run_inference(model, input_name: str, x: np.ndarray) -> np.ndarray:
    return create_session(model.SerializeToString(), "cpu").run({input_name: x})[0]


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / max(1.0, float(np.abs(theirs).max())))


def ops(model) -> set[str]:
    return {node.op_type for node in model.graph.node}


# ----------------------------------------------------------------- recurrences


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("sequences", ["true", "false"])
def test_unrolled_recurrence_equals_the_onnx_op(tmp_path, kind: str, sequences: str) -> None:
    net = compile_net(tmp_path, "x[T=6, 3]", f"    l: {kind}(5, sequences={sequences})")
    weights = random_weights(parameter_shapes(net))
    step = build_step(net, TrainConfig(loss="mse", optimizer=SGD), weights)
    inference = to_onnx(net, weights=weights)
    assert kind.upper() in ops(inference) and kind.upper() not in ops(step.model)

    x = np.random.default_rng(2).standard_normal((4, 6, 3)).astype(np.float32)
    expected = run_inference(inference, net.input, x)
    y = np.zeros_like(expected)
    ours = run_step(step, x, y)["l"]
    assert ours.shape == expected.shape == ((4, 6, 5) if sequences == "true" else (4, 5))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- batch norm


@pytest.mark.parametrize("input_decl, shape", [("x[3, 5, 4]", (6, 3, 5, 4)), ("x[7]", (5, 7))],
                         ids=["BatchNorm2d", "BatchNorm1d"])
def test_batchnorm_training_equals_torch(tmp_path, input_decl: str, shape: tuple[int, ...]) -> None:
    net = compile_net(tmp_path, input_decl, "    bn: batchnorm(eps=1e-3, momentum=0.3)")
    weights = random_weights(parameter_shapes(net))
    step = build_step(net, TrainConfig(loss="mse", optimizer=SGD), weights)
    assert set(step.buffers) == {"bn.running_mean", "bn.running_var"}
    assert not set(step.buffers) & set(step.trainable)

    x = (np.random.default_rng(3).standard_normal(shape) * 2 + 1).astype(np.float32)
    out = run_step(step, x, np.zeros_like(x))

    t = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    expected = F.batch_norm(torch.from_numpy(x), t["bn.running_mean"], t["bn.running_var"], t["bn.weight"],
                            t["bn.bias"], training=True, momentum=0.3, eps=1e-3)  # updates the running stats
    np.testing.assert_allclose(out["bn"], expected.numpy(), rtol=1e-5, atol=1e-5)
    # the running variance takes the unbiased batch variance (Bessel's n/(n-1)), as torch does
    np.testing.assert_allclose(out["new/bn.running_mean"], t["bn.running_mean"].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["new/bn.running_var"], t["bn.running_var"].numpy(), rtol=1e-6, atol=1e-6)


def test_batchnorm_layers_of_one_width_keep_their_own_statistics(tmp_path) -> None:
    """Two batch norms of the same width over two steps in a TrainingSession:
    each layer's running averages follow torch's, and the step never writes
    into the tensors it was given (onnxruntime's BatchNormalization kernel
    aliases its running-statistics outputs to its inputs)."""
    from i2dl_dsl.train.session import TrainingSession

    net = compile_net(tmp_path, "x[4, 3, 3]", "    a: batchnorm(momentum=0.2)\n    tanh\n    b: batchnorm(momentum=0.2)")
    weights = random_weights(parameter_shapes(net))
    session = TrainingSession(build_step(net, TrainConfig(loss="mse", optimizer=SGD), weights), "cpu")
    t = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    rng = np.random.default_rng(5)
    for step in (1, 2):
        x = (rng.standard_normal((5, 4, 3, 3)) * 3 + 2).astype(np.float32)
        given = {name: session.tensors[name] for name in t if "running" in name}
        copies = {name: value.numpy().copy() for name, value in given.items()}
        session.train_step(x, np.zeros_like(x), {}, 0.0, step)
        for name, value in given.items():
            np.testing.assert_array_equal(value.numpy(), copies[name], err_msg=f"{name} written in place")
        hidden = torch.tanh(F.batch_norm(torch.from_numpy(x), t["a.running_mean"], t["a.running_var"],
                                         t["a.weight"], t["a.bias"], training=True, momentum=0.2))
        F.batch_norm(hidden, t["b.running_mean"], t["b.running_var"], t["b.weight"], t["b.bias"], training=True,
                     momentum=0.2)
        for name in given:
            np.testing.assert_allclose(session.tensors[name].numpy(), t[name].numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"step {step}: {name}")


def test_batchnorm_inference_reads_the_running_averages(tmp_path) -> None:
    net = compile_net(tmp_path, "x[2, 3, 3]", "    bn: batchnorm")
    weights = random_weights(parameter_shapes(net))
    step = build_step(net, TrainConfig(loss="mse", optimizer=SGD), weights)
    x = np.random.default_rng(4).standard_normal((3, 2, 3, 3)).astype(np.float32)
    t = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    expected = F.batch_norm(torch.from_numpy(x), t["bn.running_mean"], t["bn.running_var"], t["bn.weight"],
                            t["bn.bias"], training=False)
    feeds = {**weights, net.input: x}
    evaluated = create_session(step.eval_model.SerializeToString(), "cpu").run(feeds)[0]
    np.testing.assert_allclose(evaluated, expected.numpy(), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- dropout


def test_dropout_multiplies_by_its_mask_input(tmp_path) -> None:
    net = compile_net(tmp_path, "x[3, 4, 4]", "    d: dropout(p=0.25)")
    step = build_step(net, TrainConfig(loss="mse", optimizer=SGD))
    assert {name: (draw.shape, draw.keep) for name, draw in step.masks.items()} == {"d.mask": ((3, 4, 4), 0.75)}
    mask_input = next(i for i in step.model.graph.input if i.name == "d.mask")
    dims = [d.dim_param or d.dim_value for d in mask_input.type.tensor_type.shape.dim]
    assert dims == ["N", 3, 4, 4]

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    mask = (rng.random(x.shape) < 0.75).astype(np.float32) / 0.75
    out = run_step(step, x, np.zeros_like(x), {"d.mask": mask})
    np.testing.assert_array_equal(out["d"], x * mask)
    # the inference graph is the identity
    np.testing.assert_array_equal(run_inference(step.eval_model, net.input, x), x)


def test_dropout_with_p_zero_has_no_mask(tmp_path) -> None:
    net = compile_net(tmp_path, "x[4]", "    d: dropout(p=0)")
    assert build_step(net, TrainConfig(loss="mse", optimizer=SGD)).masks == {}


# ----------------------------------------------------------------- whole-model gradients


class Masked(torch.nn.Module):
    """Inverted dropout with a given mask, standing in for nn.Dropout."""

    def __init__(self, mask: np.ndarray):
        super().__init__()
        self.mask = torch.from_numpy(mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def dropout_masks(step: StepModel, batch: int, rng) -> dict[str, np.ndarray]:
    return {name: (rng.random((batch, *draw.shape)) < draw.keep).astype(np.float32) / draw.keep
            for name, draw in step.masks.items()}


def zoo_gradients(name: str, input_shape: tuple[int, ...], seed: int = 0):
    """(our step outputs, torch's module after backward, the step) for a zoo
    model with random parameters and running statistics, in training mode;
    dropout layers get the same mask on both sides."""
    from reference import torch_models

    torch.manual_seed(seed)
    module = getattr(torch_models, name)()
    state = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    weights = random_weights({k: tuple(v.shape) for k, v in state.items()}, seed, scale=0.3)
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=False)
    net = check(f"models/{name}.net")
    step = build_step(net, TrainConfig(loss="cross_entropy", optimizer=SGD, expose_gradients=True), weights)

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, *input_shape)).astype(np.float32)
    y = rng.integers(0, 10, 5)
    masks = dropout_masks(step, 5, rng)
    for mask_name, mask in masks.items():
        setattr(module, mask_name.removesuffix(".mask"), Masked(mask))
    ours = run_step(step, x, y, masks)
    module.train()
    loss = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    assert ours["loss"] == pytest.approx(loss.item(), rel=1e-5)
    return ours, module, step


@pytest.mark.parametrize("name, input_shape", [
    ("lenet5", (1, 32, 32)),
    ("resnet_small", (3, 32, 32)),      # basic blocks with batch norm, identity and projection shortcuts
    ("lstm_classifier", (8, 8)),
    ("digits_cnn", (1, 8, 8)),          # batch norm, max pooling, dropout
])
def test_whole_model_gradients_equal_torch_autograd(name: str, input_shape: tuple[int, ...]) -> None:
    ours, module, step = zoo_gradients(name, input_shape)
    expected = {k: p.grad.numpy() for k, p in module.named_parameters()}
    assert sorted(step.trainable) == sorted(expected)
    errors = {k: relative_error(ours[f"grad/{k}"], g) for k, g in expected.items()}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= GRAD_TOL, f"{worst}: {errors[worst]:.2e}"
    # the running statistics torch updated in the same forward pass
    for k, buffer in module.named_buffers():
        if not k.endswith("num_batches_tracked"):
            np.testing.assert_allclose(ours[f"new/{k}"], buffer.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_padded_ceil_max_pool_gradient_equals_torch(tmp_path) -> None:
    net = compile_net(tmp_path, "x[2, 7, 7]", "    conv(3, k=2) -> maxpool(k=3, s=2, p=1, round=ceil)\n"
                                              "    flatten\n    fc(4)")
    weights = random_weights(parameter_shapes(net), seed=10)
    step = build_step(net, TrainConfig(loss="cross_entropy", optimizer=SGD, expose_gradients=True), weights)
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((3, 2, 7, 7)).astype(np.float32), rng.integers(0, 4, 3)
    ours = run_step(step, x, y)

    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 2), torch.nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
                                 torch.nn.Flatten(), torch.nn.Linear(48, 4))
    names = {"0": "conv1", "3": "fc1"}
    module.load_state_dict({k: torch.from_numpy(weights[f"{names[k[0]]}{k[1:]}"].copy())
                            for k in module.state_dict()})
    F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    for k, p in module.named_parameters():
        assert relative_error(ours[f"grad/{names[k[0]]}{k[1:]}"], p.grad.numpy()) <= GRAD_TOL, k


# ----------------------------------------------------------------- losses


def loss_case(tmp_path, loss: str, z: np.ndarray, y: np.ndarray):
    """The loss of a bias-only layer z = x·I + b evaluated at `z`, and its
    gradient with respect to the bias (= the loss's gradient wrt z, summed over the batch)."""
    classes = z.shape[1]
    net = compile_net(tmp_path, f"x[{classes}]", f"    out: fc({classes})")
    weights = {"out.weight": np.eye(classes, dtype=np.float32), "out.bias": np.zeros(classes, np.float32)}
    step = build_step(net, TrainConfig(loss=loss, optimizer=SGD, expose_gradients=True), weights)
    out = run_step(step, z.astype(np.float32), y)
    np.testing.assert_array_equal(out["out"], z.astype(np.float32))
    return out["loss"], out["grad/out.bias"]


def torch_loss(loss: str, z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    yt = torch.from_numpy(y)
    if loss == "hinge":  # torch averages over the classes too: ours is the multiclass SVM sum
        value = F.multi_margin_loss(zt, yt, p=1, margin=1.0) * z.shape[1]
    else:
        value = {"l1": F.l1_loss, "mse": F.mse_loss, "bce": F.binary_cross_entropy_with_logits,
                 "cross_entropy": F.cross_entropy}[loss](zt, yt.double() if y.dtype != np.int64 else yt)
    value.backward()
    return value.item(), zt.grad.numpy().sum(axis=0)


def loss_inputs(loss: str, seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((6, 4)) * 2
    if loss in ("cross_entropy", "hinge"):
        y = rng.integers(0, 4, 6)
        if loss == "hinge":  # some margins met, some violated, none at the kink
            z[np.arange(6), y] += np.linspace(-1.3, 2.7, 6)
        return z, y.astype(np.int64)
    if loss == "bce":
        return z, rng.random((6, 4)).round()  # 0/1 targets
    return z, rng.standard_normal((6, 4))


@pytest.mark.parametrize("loss", ["l1", "mse", "bce", "cross_entropy", "hinge"])
def test_loss_value_and_gradient_equal_torch(tmp_path, loss: str) -> None:
    z, y = loss_inputs(loss)
    target = y if y.dtype == np.int64 else y.astype(np.float32)
    value, grad = loss_case(tmp_path, loss, z.astype(np.float32), target)
    expected_value, expected_grad = torch_loss(loss, z.astype(np.float32).astype(np.float64), y)
    assert value == pytest.approx(expected_value, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-6)


def test_cross_entropy_gradient_is_softmax_minus_onehot(tmp_path) -> None:
    z, y = loss_inputs("cross_entropy", seed=7)
    _, grad = loss_case(tmp_path, "cross_entropy", z.astype(np.float32), y)
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    expected = (softmax - np.eye(4)[y]).sum(axis=0) / len(y)  # (ŷ - y), averaged over the batch
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_bce_is_finite_on_large_logits(tmp_path) -> None:
    z = np.array([[100.0, -100.0, 100.0, -100.0], [30.0, -30.0, 0.5, -0.5]])
    y = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    value, grad = loss_case(tmp_path, "bce", z.astype(np.float32), y.astype(np.float32))
    assert np.isfinite(value) and np.isfinite(grad).all()
    expected_value, expected_grad = torch_loss("bce", z, y)
    assert value == pytest.approx(expected_value, rel=1e-5)  # the two wrong ±100 logits cost 100 each
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------- penalties


PENALTY_NET = "    fc(5) -> tanh\n    fc(3)"  # fc1, tanh1, fc2


def penalty_outputs(tmp_path, **penalties: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    net = compile_net(tmp_path, "x[4]", PENALTY_NET)
    weights = random_weights(parameter_shapes(net), seed=8)
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)
    step = build_step(net, TrainConfig(loss="cross_entropy", optimizer=SGD, expose_gradients=True, **penalties),
                      weights)
    return run_step(step, x, y), weights


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_penalty_is_lambda_times_the_weights_norm(tmp_path, kind: str) -> None:
    lam = 0.03
    plain, weights = penalty_outputs(tmp_path)
    penalised, _ = penalty_outputs(tmp_path, **{kind: lam})
    matrices = ("fc1.weight", "fc2.weight")  # biases carry no penalty
    if kind == "l2":
        term = lam * sum(float((weights[w].astype(np.float64) ** 2).sum()) for w in matrices)
        slope = {w: 2 * lam * weights[w] for w in matrices}
    else:
        term = lam * sum(float(np.abs(weights[w].astype(np.float64)).sum()) for w in matrices)
        slope = {w: lam * np.sign(weights[w]) for w in matrices}
    assert penalised["loss"] == pytest.approx(plain["loss"] + term, rel=1e-6)
    for name in weights:
        expected = plain[f"grad/{name}"] + slope.get(name, 0.0)
        np.testing.assert_allclose(penalised[f"grad/{name}"], expected, rtol=1e-5, atol=1e-7, err_msg=name)

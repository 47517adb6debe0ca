"""Optimizer updates and learning-rate schedules against torch.optim.

A tiny network trains for three steps on onnxruntime (TrainingSession, the
update inside the ONNX step graph) and in PyTorch (the same module, the
same batches, the same loss, torch.optim); parameters and optimizer state
must agree after every step.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.train.loop import learning_rate  # noqa: E402
from i2dl_dsl.train.run import Settings  # noqa: E402
from i2dl_dsl.train.session import TrainingSession  # noqa: E402
from i2dl_dsl.train.step import TrainConfig, build_step  # noqa: E402

TOL = 1e-5
STEPS = 3

# ours (name and hyperparameters), torch's optimizer, the learning rate; betas away from the defaults
OPTIMIZERS = {
    "sgd": ({"name": "sgd"}, lambda p, lr, wd: torch.optim.SGD(p, lr=lr, weight_decay=wd), 0.1),
    "momentum": ({"name": "momentum", "beta": 0.8},
                 lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.8, weight_decay=wd), 0.1),
    "nesterov": ({"name": "nesterov", "beta": 0.8},
                 lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.8, nesterov=True, weight_decay=wd), 0.1),
    "rmsprop": ({"name": "rmsprop", "beta": 0.9, "eps": 1e-6},
                lambda p, lr, wd: torch.optim.RMSprop(p, lr=lr, alpha=0.9, eps=1e-6, weight_decay=wd), 0.01),
    "adam": ({"name": "adam", "beta1": 0.8, "beta2": 0.95, "eps": 1e-6},
             lambda p, lr, wd: torch.optim.Adam(p, lr=lr, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd), 0.01),
}
# our state slot → torch's state key
SLOTS = {"velocity": "momentum_buffer", "square_avg": "square_avg", "exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    source = tmp_path_factory.mktemp("opt") / "tiny.net"
    source.write_text("network Tiny {\n    input x[4]\n    fc(5) -> tanh\n    fc(3)\n}\n")
    return check(source)


def torch_module() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(OrderedDict(fc1=torch.nn.Linear(4, 5), tanh1=torch.nn.Tanh(),
                                           fc2=torch.nn.Linear(5, 3)))


def batches() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)) for _ in range(STEPS)]


def weights_of(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def torch_step(module, optimizer, x, y) -> float:
    optimizer.zero_grad()
    loss = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    optimizer.step()
    return loss.item()


def assert_close(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], what: str) -> None:
    for name, expected in theirs.items():
        np.testing.assert_allclose(ours[name], expected, rtol=TOL, atol=TOL, err_msg=f"{what}: {name}")


@pytest.mark.parametrize("weight_decay", [0.0, 0.05], ids=["plain", "weight_decay"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_three_steps_equal_torch_optim(net, name: str, weight_decay: float) -> None:
    ours_spec, make_torch, lr = OPTIMIZERS[name]
    module = torch_module()
    step = build_step(net, TrainConfig(optimizer=ours_spec, weight_decay=weight_decay), weights_of(module))
    session = TrainingSession(step, "cpu")
    optimizer = make_torch(module.parameters(), lr, weight_decay)
    params = dict(module.named_parameters())
    for t, (x, y) in enumerate(batches(), start=1):
        loss, _ = session.train_step(x, y, {}, lr, t)
        assert loss == pytest.approx(torch_step(module, optimizer, x, y), rel=TOL)
        assert_close(session.parameters(), weights_of(module), f"step {t}")
        snapshot = session.snapshot()
        for pname, p in params.items():
            for slot, key in SLOTS.items():
                if f"state/{pname}/{slot}" in snapshot:
                    np.testing.assert_allclose(snapshot[f"state/{pname}/{slot}"], optimizer.state[p][key].numpy(),
                                               rtol=TOL, atol=TOL, err_msg=f"step {t}: {pname} {slot}")
    expected_slots = {f"state/{p}/{s}" for p in params for s in SLOTS if s in _slots(name)}
    assert set(step.state) == expected_slots


def _slots(name: str) -> tuple[str, ...]:
    return {"sgd": (), "momentum": ("velocity",), "nesterov": ("velocity",), "rmsprop": ("square_avg",),
            "adam": ("exp_avg", "exp_avg_sq")}[name]


def test_lr_scale_equals_a_torch_parameter_group(net) -> None:
    module = torch_module()
    spec, _, lr = OPTIMIZERS["momentum"]
    step = build_step(net, TrainConfig(optimizer=spec, lr_scale={"fc1": 0.1}), weights_of(module))
    session = TrainingSession(step, "cpu")
    groups = [{"params": module.fc1.parameters(), "lr": lr * 0.1}, {"params": module.fc2.parameters()}]
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.8)
    for t, (x, y) in enumerate(batches(), start=1):
        session.train_step(x, y, {}, lr, t)
        torch_step(module, optimizer, x, y)
        assert_close(session.parameters(), weights_of(module), f"step {t}")


def test_frozen_layers_keep_their_values_and_get_no_state(net) -> None:
    module = torch_module()
    initial = weights_of(module)
    spec, _, lr = OPTIMIZERS["adam"]
    step = build_step(net, TrainConfig(optimizer=spec, frozen=("fc1",)), initial)
    assert step.trainable == ["fc2.weight", "fc2.bias"]
    assert not [s for s in step.state if s.startswith("state/fc1")]
    outputs = {o.name for o in step.model.graph.output}
    assert not [o for o in outputs if o.startswith(("new/fc1", "new/state/fc1"))]

    session = TrainingSession(step, "cpu")
    for p in module.fc1.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(module.fc2.parameters(), lr=lr, betas=(0.8, 0.95), eps=1e-6)
    for t, (x, y) in enumerate(batches(), start=1):
        session.train_step(x, y, {}, lr, t)
        torch_step(module, optimizer, x, y)
    after = session.parameters()
    for name in ("fc1.weight", "fc1.bias"):
        assert after[name].tobytes() == initial[name].tobytes(), name
    assert not np.array_equal(after["fc2.weight"], initial["fc2.weight"])
    assert_close(after, weights_of(module), "after 3 steps")


def test_default_hyperparameters_are_torchs() -> None:
    adam = Settings.merge({"optimizer": {"name": "adam"}}, {}).optimizer()
    rmsprop = Settings.merge({"optimizer": {"name": "rmsprop"}}, {}).optimizer()
    reference_adam = torch.optim.Adam([torch.zeros(1)]).defaults
    reference_rmsprop = torch.optim.RMSprop([torch.zeros(1)]).defaults
    assert (adam["lr"], (adam["beta1"], adam["beta2"]), adam["eps"]) == (
        reference_adam["lr"], reference_adam["betas"], reference_adam["eps"])
    assert (rmsprop["beta"], rmsprop["eps"]) == (reference_rmsprop["alpha"], reference_rmsprop["eps"])


# ----------------------------------------------------------------- schedules

EPOCHS = 12


@pytest.mark.parametrize("schedule, make", [
    ({"name": "constant"}, lambda opt: torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)),
    ({"name": "step", "step_size": 4, "gamma": 0.5}, lambda opt: torch.optim.lr_scheduler.StepLR(opt, 4, 0.5)),
    ({"name": "step", "step_size": 1}, lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1)),
    ({"name": "cosine"}, lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)),
    ({"name": "cosine", "min_lr": 0.01},
     lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS, eta_min=0.01)),
], ids=["constant", "step", "step-default-gamma", "cosine", "cosine-min"])
def test_schedule_equals_torch_scheduler(schedule, make) -> None:
    base = 0.2
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    scheduler = make(optimizer)
    for epoch in range(EPOCHS):
        expected = scheduler.get_last_lr()[0]
        assert learning_rate(base, schedule, epoch, EPOCHS) == pytest.approx(expected, rel=1e-9, abs=1e-12), epoch
        optimizer.step()
        scheduler.step()


def test_the_update_is_one_set_of_kernels_over_the_flat_parameters(tmp_path) -> None:
    """The optimizer's elementwise kernels do not multiply with the number of
    parameters: a network with four times the parameter tensors has the
    same number of update nodes (packing.py), and its state round-trips."""
    from i2dl_dsl.train.packing import Packing

    def update_nodes(layers: int) -> int:
        source = tmp_path / f"deep{layers}.net"
        body = "\n".join("    fc(5) -> tanh" for _ in range(layers))
        source.write_text(f"network Deep {{\n    input x[4]\n{body}\n    fc(3)\n}}\n")
        step = build_step(check(source), TrainConfig(optimizer=OPTIMIZERS["adam"][0]))
        kinds = ("Mul", "Add", "Sub", "Div", "Sqrt", "Pow")
        return sum(n.op_type in kinds for n in step.model.graph.node if n.name.startswith("optimizer/"))

    assert update_nodes(1) == update_nodes(7) > 0

    packing = Packing.of({"a.weight": (2, 3), "a.bias": (3,), "b.weight": (1,)})
    assert packing.size == 10 and [s.offset for s in packing.segments] == [0, 6, 9]
    arrays = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.bias": np.ones(3, np.float32),
              "b.weight": np.array([7.0], np.float32)}
    unpacked = packing.unpack(packing.pack(arrays))
    assert all(np.array_equal(unpacked[k], v) for k, v in arrays.items())
    partial = packing.pack({"a.bias": np.full(3, 2.0, np.float32)}, base=packing.pack(arrays))
    assert list(partial[6:9]) == [2.0, 2.0, 2.0] and partial[9] == 7.0
    with pytest.raises(ValueError, match="a.bias"):
        packing.pack({"a.bias": np.ones(4, np.float32)})

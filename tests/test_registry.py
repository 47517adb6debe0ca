"""The training-side registry, proved by its three newest entries: adamw,
adagrad and smooth_l1, each against torch, from the train section and
from the command line; and the writer of train sections."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from helpers import train  # noqa: E402
from i2dl_dsl.cli.train import parser  # noqa: E402
from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.diagnostics import Diagnostics, value_text  # noqa: E402
from i2dl_dsl.layers.base import Symbol  # noqa: E402
from i2dl_dsl.syntax.parser import parse_text  # noqa: E402
from i2dl_dsl.train.losses import LOSSES, resolve  # noqa: E402
from i2dl_dsl.train.optimizers import OPTIMIZERS  # noqa: E402
from i2dl_dsl.train.session import TrainingSession  # noqa: E402
from i2dl_dsl.train.settings import Settings, config_for  # noqa: E402
from i2dl_dsl.train.step import TrainConfig, build_step  # noqa: E402
from i2dl_dsl.trainspec import check_train, section_text  # noqa: E402

TOL = 1e-5
STEPS = 4
TINY = "network Tiny {\n    input x[4]\n    fc(5) -> tanh\n    fc(3)\n}\n"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    source = tmp_path_factory.mktemp("registry") / "tiny.net"
    source.write_text(TINY)
    return check(source)


def torch_module() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(OrderedDict(fc1=torch.nn.Linear(4, 5), tanh1=torch.nn.Tanh(),
                                           fc2=torch.nn.Linear(5, 3)))


def weights_of(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def section(statements: str) -> dict:
    diags = Diagnostics()
    spec = check_train(parse_text("train {\n" + statements + "\n}\n").trains[0], diags)
    diags.raise_if_errors()
    return spec


def steps_equal_torch(net, config: TrainConfig, optimizer, lr: float, slots: dict[str, str],
                      offsets: dict[str, float] | None = None) -> None:
    """STEPS steps of ours and of torch.optim on the same batches: loss, parameters and state agree.
    `slots` maps our slot to torch's state key; `offsets` what torch's state holds beyond ours."""
    module = torch_module()
    step = build_step(net, config, weights_of(module))
    session = TrainingSession(step, "cpu")
    theirs = optimizer(module.parameters())
    rng = np.random.default_rng(0)
    for t in range(1, STEPS + 1):
        x, y = rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)
        loss, _ = session.train_step(x, y, {}, lr, t)
        theirs.zero_grad()
        expected = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
        expected.backward()
        theirs.step()
        assert loss == pytest.approx(expected.item(), rel=TOL)
        for name, value in weights_of(module).items():
            np.testing.assert_allclose(session.parameters()[name], value, rtol=TOL, atol=TOL, err_msg=f"{t}: {name}")
        snapshot = session.snapshot()
        for pname, p in module.named_parameters():
            for slot, key in slots.items():
                ours = snapshot[f"state/{pname}/{slot}"] + (offsets or {}).get(slot, 0.0)
                np.testing.assert_allclose(ours, theirs.state[p][key].numpy(), rtol=TOL, atol=TOL,
                                           err_msg=f"step {t}: {pname} {slot}")


# ----------------------------------------------------------------- adamw


@pytest.mark.parametrize("decay", [0.0, 0.01, 0.3])
def test_adamw_equals_torch_adamw(net, decay: float) -> None:
    options = {"name": "adamw", "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "weight_decay": decay}
    steps_equal_torch(net, TrainConfig(optimizer=options), lambda p: torch.optim.AdamW(
        p, lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=decay), 0.05,
        {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"})


def test_adamw_from_the_train_section_equals_torch(net) -> None:
    settings = Settings.merge(section("optimizer adamw(lr=1e-3, weight_decay=0.01)"), {})
    steps_equal_torch(net, config_for(settings), lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01), 1e-3,
                      {"exp_avg": "exp_avg"})


def test_the_weight_decay_statement_is_adamws_decoupled_decay(net) -> None:
    """As torch.optim.AdamW(weight_decay=λ): not added to the gradient."""
    config = config_for(Settings.merge(section("optimizer adamw(lr=0.05)\nweight_decay 0.2"), {}))
    assert config.weight_decay == 0.0 and config.optimizer["weight_decay"] == 0.2
    steps_equal_torch(net, config, lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.2), 0.05, {})


def test_adamw_defaults_are_torchs() -> None:
    ours = Settings.merge({}, {"optimizer": "adamw"}).optimizer()
    reference = torch.optim.AdamW([torch.zeros(1)]).defaults
    assert (ours["lr"], (ours["beta1"], ours["beta2"]), ours["eps"], ours["weight_decay"]) == (
        reference["lr"], reference["betas"], reference["eps"], reference["weight_decay"])


# ----------------------------------------------------------------- adagrad


@pytest.mark.parametrize("options, weight_decay", [
    ({}, 0.0),
    ({"lr_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}, 0.0),
    ({"lr_decay": 0.05}, 0.02),
], ids=["defaults", "every-argument", "weight-decay"])
def test_adagrad_equals_torch_adagrad(net, options: dict, weight_decay: float) -> None:
    config = TrainConfig(optimizer={"name": "adagrad", **options}, weight_decay=weight_decay)
    steps_equal_torch(net, config, lambda p: torch.optim.Adagrad(p, lr=0.1, weight_decay=weight_decay, **options),
                      0.1, {"sum": "sum"}, {"sum": options.get("initial_accumulator_value", 0.0)})


def test_adagrad_defaults_are_torchs() -> None:
    ours = Settings.merge({}, {"optimizer": "adagrad"}).optimizer()
    reference = torch.optim.Adagrad([torch.zeros(1)]).defaults
    assert {k: ours[k] for k in ("lr", "lr_decay", "initial_accumulator_value", "eps")} == \
        {k: reference[k] for k in ("lr", "lr_decay", "initial_accumulator_value", "eps")}


# ----------------------------------------------------------------- smooth_l1


def smooth_l1_case(tmp_path, z: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, np.ndarray]:
    """The loss of z = x·I + b at x = z, b = 0, and its gradient wrt b (the loss's wrt z, summed over the batch)."""
    source = tmp_path / "case.net"
    source.write_text(f"network Case {{\n    input x[{z.shape[1]}]\n    out: fc({z.shape[1]})\n}}\n")
    weights = {"out.weight": np.eye(z.shape[1], dtype=np.float32), "out.bias": np.zeros(z.shape[1], np.float32)}
    step = build_step(check(source), TrainConfig(loss={"name": "smooth_l1", "beta": beta}, optimizer={"name": "sgd"},
                                                 expose_gradients=True), weights)
    session = TrainingSession(step, "cpu")
    loss, _ = session.train_step(z, y, {}, 0.0, 1)
    return loss, session.last_gradients["out.bias"].numpy()


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0])
def test_smooth_l1_value_and_gradient_equal_torch(tmp_path, beta: float) -> None:
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((8, 4)) * 2).astype(np.float32)
    y = rng.standard_normal((8, 4)).astype(np.float32)
    value, grad = smooth_l1_case(tmp_path, z, y, beta)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    expected = F.smooth_l1_loss(zt, torch.tensor(y, dtype=torch.float64), beta=beta)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-5)
    np.testing.assert_allclose(grad, zt.grad.numpy().sum(axis=0), rtol=1e-4, atol=1e-6)
    assert resolve({"name": "smooth_l1", "beta": beta}).value(z, y) == pytest.approx(expected.item(), rel=1e-9)


def test_smooth_l1_beta_defaults_to_torchs() -> None:
    assert resolve("smooth_l1").options["beta"] == torch.nn.SmoothL1Loss().beta
    assert section("loss smooth_l1") == {"loss": "smooth_l1"}
    assert section("loss smooth_l1(beta=0.5)") == {"loss": {"name": "smooth_l1", "beta": 0.5}}


# ----------------------------------------------------------------- the command line and the loop


def test_the_command_line_offers_every_registered_entry() -> None:
    actions = {a.dest: a for a in parser()._actions}
    assert tuple(actions["optimizer"].choices) == OPTIMIZERS.names()
    assert tuple(actions["loss"].choices) == LOSSES.names()
    assert {"adamw", "adagrad"} <= set(OPTIMIZERS.names()) and "smooth_l1" in LOSSES.names()


@pytest.mark.parametrize("flags", [["--optimizer", "adamw", "--loss", "smooth_l1"], ["--optimizer", "adagrad"]])
def test_new_entries_train_from_the_command_line(tmp_path, flags: list[str]) -> None:
    model = tmp_path / "digits.net"
    model.write_text("network Digits {\n    input x[64]\n    fc(10)\n}\n")
    out = tmp_path / "run"
    assert train(model, out, "--epochs", "2", "--batch", "128", *flags) == 0
    assert (out / "result.json").exists()


def test_the_loop_reads_whether_the_loss_classifies() -> None:
    onehot = np.eye(3, dtype=np.float32)[[0, 2, 1]]
    assert resolve("cross_entropy").classifies_on(np.array([0, 2, 1]))
    assert resolve("smooth_l1").classifies_on(onehot) and not resolve("smooth_l1").classifies_on(onehot * 0.5)


# ----------------------------------------------------------------- writing values and sections back


def test_values_are_written_as_a_net_file_writes_them() -> None:
    assert [value_text(v) for v in (True, "a.npz", Symbol("same"), [1, 2.5], 1e-3, 0.1 / 3)] == \
        ["true", '"a.npz"', "same", "[1, 2.5]", "0.001", repr(0.1 / 3)]
    assert value_text(Symbol("same"), quote_words=True) == "'same'"


def test_a_written_section_checks_back_to_itself() -> None:
    statements = ("loss smooth_l1(beta=0.25)", "optimizer adagrad(lr=0.05, lr_decay=0.01)", "weight_decay 0.0001",
                  "batch 32", "epochs 3", "seed 2", "schedule step(step_size=2, gamma=0.5)",
                  "early_stopping(patience=2, restore_best=false)", "split(val=0.2, test=0.05)",
                  "augment crop(pad=1), flip, jitter(0.2)", "freeze stem, fc1", "lr_scale fc1=0.5, head=0.1",
                  'data "linear:8"')
    spec = section("\n".join(statements))
    assert section(section_text(spec).split("\n", 1)[1].rsplit("}", 1)[0]) == spec


def test_a_written_call_leaves_out_the_defaults() -> None:
    text = section_text(section("optimizer adamw(lr=0.01)\nschedule cosine()"))
    assert "optimizer adamw(lr=0.01)\n" in text and "schedule cosine\n" in text


# ----------------------------------------------------------------- structure


def test_training_modules_import_each_other_at_module_level() -> None:
    """A function-level import between the training modules hides a cycle."""
    import ast
    from pathlib import Path

    import i2dl_dsl.train

    hidden = []
    for path in Path(i2dl_dsl.train.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                hidden += [f"{path.name}:{inner.lineno}" for inner in ast.walk(node)
                           if isinstance(inner, ast.ImportFrom) and inner.level == 1]
    assert hidden == []


def test_every_optimizer_is_accepted_by_the_train_section_with_its_defaults() -> None:
    for name in OPTIMIZERS:
        assert section(f"optimizer {name}()")["optimizer"] == {"name": name, **OPTIMIZERS[name].defaults()}


def test_every_loss_is_accepted_by_the_train_section_with_its_defaults() -> None:
    for name in LOSSES:
        assert resolve(section(f"loss {name}()")["loss"]).options == LOSSES[name].defaults()


@pytest.mark.parametrize("registry", [LOSSES, OPTIMIZERS], ids=["losses", "optimizers"])
def test_the_language_reference_names_every_registered_entry(registry) -> None:
    """docs/language.md's train section lists the losses and optimizers a
    user can write; a registered entry it does not name is undocumented."""
    reference = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = reference[reference.index("## Training section"):]
    missing = [name for name in registry if re.search(rf"\b{name}\b", section) is None]
    assert not missing, f"docs/language.md's training section does not name: {', '.join(missing)}"

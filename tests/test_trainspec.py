"""The `train { }` section: what a valid one converts to, and that each bad
statement is one error at its own line."""

from __future__ import annotations

import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import CompileError

NETWORK = "network N {\n    input x[4]\n    stem: fc(8) -> relu\n    head: fc(2)\n}\n"
FIRST_TRAIN_LINE = NETWORK.count("\n") + 2  # after the network and `train {`


def train(tmp_path, *statements: str):
    path = tmp_path / "train.net"
    path.write_text(NETWORK + "train {\n" + "".join(f"    {s}\n" for s in statements) + "}\n")
    return check(path).train


def errors(tmp_path, *statements: str):
    with pytest.raises(CompileError) as info:
        train(tmp_path, *statements)
    return [d for d in info.value.diagnostics if d.severity == "error"]


def test_full_section_converts(tmp_path):
    spec = train(
        tmp_path,
        "loss cross_entropy",
        "optimizer adam(lr=1e-3)",
        "weight_decay 1e-4",
        "batch 64",
        "epochs 30",
        "schedule step(step_size=10, gamma=0.5)",
        "early_stopping(patience=5, min_delta=0, restore_best=true)",
        "split(val=0.1, test=0.2)",
        "augment crop(pad=2), flip, jitter(brightness=0.1)",
        "freeze stem",
        "lr_scale head=0.1",
        "seed 0",
        "data digits",
    )
    assert spec == {
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        "weight_decay": 1e-4,
        "batch": 64,
        "epochs": 30,
        "schedule": {"name": "step", "step_size": 10, "gamma": 0.5},
        "early_stopping": {"patience": 5, "min_delta": 0.0, "restore_best": True},
        "split": {"val": 0.1, "test": 0.2},
        "augment": [{"name": "crop", "pad": 2}, {"name": "flip"},
                    {"name": "jitter", "brightness": 0.1, "contrast": 0.0}],
        "freeze": ["stem"],
        "lr_scale": {"head": 0.1},
        "seed": 0,
        "data": "digits",
    }


def test_no_section_is_an_empty_spec(tmp_path):
    path = tmp_path / "bare.net"
    path.write_text(NETWORK)
    assert check(path).train == {}


@pytest.mark.parametrize("optimizer, expected", [
    ("sgd(lr=0.1)", {"name": "sgd", "lr": 0.1}),
    ("momentum(lr=0.1, beta=0.8)", {"name": "momentum", "lr": 0.1, "beta": 0.8}),
    ("nesterov(0.1)", {"name": "nesterov", "lr": 0.1, "beta": 0.9}),
    ("rmsprop(lr=0.01)", {"name": "rmsprop", "lr": 0.01, "beta": 0.99, "eps": 1e-8}),
    ("lbfgs()", {"name": "lbfgs", "lr": 1.0, "history": 10, "max_iter": 100}),
])
def test_optimizers_fill_in_defaults(tmp_path, optimizer, expected):
    assert train(tmp_path, f"optimizer {optimizer}")["optimizer"] == expected


@pytest.mark.parametrize("loss", ["l1", "mse", "bce", "cross_entropy", "hinge"])
def test_every_documented_loss_is_accepted(tmp_path, loss):
    assert train(tmp_path, f"loss {loss}") == {"loss": loss}


@pytest.mark.parametrize("statement", [
    "loss foo",
    "optimizer adamax(lr=1)",  # unknown (adamw is known)
    "optimizer sgd(lr=-1)",
    "optimizer adam(beta1=1.0)",
    "optimizer sgd(rate=0.1)",
    "batch 0",
    "epochs 2.5",
    "seed -1",
    "colour red",
    "early_stopping(patience=0)",
    "early_stopping 3",
    "split(val=1.0)",
    "augment rotate",
    "augment crop(pad=-1)",
    "freeze",
    "lr_scale head",
    "data 3",
    "loss(1)",
    "schedule step()",
    "schedule cosine(min_lr=-1)",
])
def test_bad_statement_is_one_error_at_its_line(tmp_path, statement):
    found = errors(tmp_path, "batch 8", statement)
    assert len(found) == 1
    assert found[0].span is not None and found[0].span.line == FIRST_TRAIN_LINE + 1


def test_setting_twice_is_an_error_at_the_second(tmp_path):
    found = errors(tmp_path, "batch 8", "epochs 2", "batch 16")
    assert len(found) == 1 and "twice" in found[0].message and found[0].span.line == FIRST_TRAIN_LINE + 2


def test_every_bad_statement_is_reported(tmp_path):
    found = errors(tmp_path, "loss foo", "batch 8", "epochs 0", "colour red")
    assert sorted(d.span.line for d in found) == [FIRST_TRAIN_LINE, FIRST_TRAIN_LINE + 2, FIRST_TRAIN_LINE + 3]


@pytest.mark.parametrize("statement", ["freeze stemm", "lr_scale haed=0.1"])
def test_unknown_layer_name_is_an_error(tmp_path, statement):
    assert errors(tmp_path, statement)


def test_split_must_leave_training_data(tmp_path):
    assert errors(tmp_path, "split(val=0.6, test=0.5)")

"""Full-batch L-BFGS (`optimizer lbfgs`): its objective against NumPy, its
optimum against closed forms (least squares, ridge, a frozen first layer),
Adam with the same budget, and the networks it refuses."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.cli.train import main as train_main
from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.train.lbfgs import Objective, minimize
from i2dl_dsl.train.run import Settings, config_for, prepare_data, train_network
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.step import build_step

MODELS = Path(__file__).resolve().parents[1] / "models"
LINEAR = MODELS / "linear_regression.net"
# The graph computes in float32: the loss resolves to ~1e-7 of itself, so a
# line search can place the parameters to about its square root.
TOLERANCE = 1e-4


def _net(tmp_path: Path, body: str, train: str):
    path = tmp_path / "model.net"
    path.write_text(f"network N {{\n{body}\n}}\ntrain {{\n{train}\n}}\n")
    return check(path)


def _train(net, out: Path, **overrides):
    settings = Settings.merge(net.train, overrides)
    result = train_network(net, settings, out, device="cpu", quiet=True)
    return result, dict(np.load(out / "weights.npz"))


def _least_squares(features: np.ndarray, y: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """argmin mean (A θ - y)² + ½ ridge |θ|², A = [features, 1]: weights then bias."""
    a = np.c_[features.astype(np.float64), np.ones(len(features))]
    if not ridge:
        return np.linalg.lstsq(a, y.astype(np.float64).reshape(-1), rcond=None)[0]
    n = len(a)
    return np.linalg.solve(2 / n * a.T @ a + ridge * np.eye(a.shape[1]), 2 / n * a.T @ y.reshape(-1))


def _theta(weights: dict[str, np.ndarray], layer: str) -> np.ndarray:
    return np.r_[weights[f"{layer}.weight"].ravel(), weights[f"{layer}.bias"]]


def _train_split(net, **overrides):
    settings = Settings.merge(net.train, overrides)
    train, _, _ = prepare_data(net, settings, integer_labels=False)
    return train


def _optimum(net, ridge: float = 0.0) -> np.ndarray:
    data = _train_split(net)
    return _least_squares(data.x, data.y, ridge)


def test_objective_is_the_mse_and_its_gradient():
    net = check(LINEAR)
    settings = Settings.merge(net.train, {})
    config = replace(config_for(Settings({**settings.values, "optimizer": {"name": "sgd"}})), expose_gradients=True)
    session = TrainingSession(build_step(net, config), "cpu")
    data = _train_split(net)
    objective = Objective(session, data)
    theta = np.random.default_rng(0).normal(size=data.x.shape[1] + 1)
    loss, gradient = objective(theta)

    a = np.c_[data.x.astype(np.float64), np.ones(len(data))]
    residual = a @ theta - data.y.reshape(-1)
    assert loss == pytest.approx(np.mean(residual ** 2), rel=1e-5)
    np.testing.assert_allclose(gradient, 2 / len(a) * a.T @ residual, rtol=1e-4, atol=1e-5)


def test_lbfgs_reaches_the_least_squares_solution(tmp_path):
    net = check(LINEAR)
    result, weights = _train(net, tmp_path)
    optimum = _optimum(net)
    np.testing.assert_allclose(_theta(weights, "fc1"), optimum, atol=TOLERANCE)
    assert result["optimizer"] == "lbfgs" and result["iterations"] <= 30


def test_the_run_writes_a_row_per_iteration_and_the_test_evaluation(tmp_path):
    result, _ = _train(check(LINEAR), tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, result["iterations"] + 1))
    losses = [float(r["train_loss"]) for r in rows]
    assert all(later <= earlier for earlier, later in zip(losses, losses[1:]))  # a line search never goes up
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["test_samples"] > 0 and saved["test_loss"] == pytest.approx(result["test_loss"])
    assert (tmp_path / "model.onnx").is_file()


def test_adam_with_the_same_budget_stays_further_from_the_optimum(tmp_path):
    """The course's point: on small data the full gradient is cheap and
    exact, and a quasi-Newton step uses it far better than Adam's. Adam gets
    one epoch per L-BFGS evaluation (one pass over the data each) and the
    best of three learning rates."""
    net = check(LINEAR)
    optimum = _optimum(net)
    result, weights = _train(net, tmp_path / "lbfgs")
    lbfgs_distance = np.abs(_theta(weights, "fc1") - optimum).max()
    adam = []
    for lr in (1e-2, 3e-2, 1e-1):
        run, adam_weights = _train(net, tmp_path / f"adam{lr}", optimizer="adam", lr=lr, epochs=result["evaluations"])
        adam.append((np.abs(_theta(adam_weights, "fc1") - optimum).max(), run["final"]["train_loss"]))
    best_distance, best_loss = min(adam)
    assert best_distance > 10 * lbfgs_distance
    assert best_loss > result["final"]["train_loss"]


def test_weight_decay_gives_the_ridge_solution(tmp_path):
    net = check(LINEAR)
    ridge = 0.5
    _, weights = _train(net, tmp_path, weight_decay=ridge)
    optimum = _optimum(net, ridge)
    np.testing.assert_allclose(_theta(weights, "fc1"), optimum, atol=TOLERANCE)


def test_a_frozen_layer_stays_and_the_rest_is_least_squares_on_its_features(tmp_path):
    net = _net(tmp_path, "    input x[8]\n    hidden: fc(4) -> tanh\n    head: fc(1)",
               '    loss mse\n    optimizer lbfgs(max_iter=200)\n    freeze hidden\n    data "linear:8"')
    initial = build_step(net, config_for(Settings.merge(net.train, {"optimizer": "sgd"}))).values
    _, weights = _train(net, tmp_path / "run")
    np.testing.assert_array_equal(weights["hidden.0.weight"], initial["hidden.0.weight"])
    data = _train_split(net)
    features = np.tanh(data.x @ weights["hidden.0.weight"].T + weights["hidden.0.bias"])
    optimum = _least_squares(features, data.y)
    a = np.c_[features.astype(np.float64), np.ones(len(features))]
    best, reached = (np.mean((a @ theta - data.y.reshape(-1)) ** 2) for theta in (optimum, _theta(weights, "head")))
    # A poorer fit than the linear model's: the loss is larger, so float32 places θ less finely.
    assert reached - best <= 1e-6 * best
    np.testing.assert_allclose(_theta(weights, "head"), optimum, atol=10 * TOLERANCE)


def test_minimize_keeps_the_last_iterate_when_interrupted():
    net = check(LINEAR)
    config = replace(config_for(Settings.merge(net.train, {"optimizer": "sgd"})), expose_gradients=True)
    objective = Objective(TrainingSession(build_step(net, config), "cpu"), _train_split(net))
    seen = []

    def stop_at_third(k, theta, value):
        seen.append(theta.copy())
        if k == 3:
            raise KeyboardInterrupt

    result = minimize(objective, on_iteration=stop_at_third)
    assert result.iterations == 3 and "interrupted" in result.message
    np.testing.assert_array_equal(result.theta, seen[-1])


@pytest.mark.parametrize("body, train, says", [
    ("    input x[8]\n    fc(8) -> dropout(p=0.5)\n    fc(1)", "", "dropout"),
    ("    input x[8]\n    fc(8) -> drop_path(0.1)\n    fc(1)", "", "drop_path \\(drop_path1\\) draws new masks"),
    ("    input x[8]\n    fc(8) -> batchnorm -> relu\n    fc(1)", "", "batch norm"),
    ("    input x[8]\n    fc(1)", "    schedule cosine()", "schedule"),
    ("    input x[8]\n    fc(1)", "    early_stopping(patience=2)", "early_stopping"),
])
def test_refuses_what_a_line_search_cannot_use(tmp_path, body, train, says):
    net = _net(tmp_path, body, f'    loss mse\n    optimizer lbfgs()\n    data "linear:8"\n{train}')
    with pytest.raises(UserError, match=says):
        _train(net, tmp_path / "run")


def test_cli_trains_with_lbfgs_from_the_flag(tmp_path, capsys):
    out = tmp_path / "run"
    code = train_main([str(LINEAR), "--optimizer", "lbfgs", "--out", str(out), "--device", "cpu", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "checkpoint.npz" not in printed and "weights.npz" in printed
    assert json.loads((out / "result.json").read_text())["optimizer"] == "lbfgs"


def test_cli_refuses_resume_for_lbfgs(tmp_path, capsys):
    code = train_main([str(LINEAR), "--out", str(tmp_path), "--device", "cpu", "--quiet", "--resume"])
    assert code == 2
    assert "no checkpoint to resume" in capsys.readouterr().err

"""The first chapter's models (linear and logistic regression, a multiclass
SVM, a softmax classifier) and the generated data sets they train on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.train import data as datamod
from i2dl_dsl.train import synthetic
from i2dl_dsl.train.run import Settings, prepare_data, train_network

MODELS = Path(__file__).resolve().parents[1] / "models"


def _train(model: str, out: Path, **overrides):
    net = check(MODELS / f"{model}.net")
    settings = Settings.merge(net.train, overrides)
    result = train_network(net, settings, out, device="cpu", quiet=True)
    return net, settings, result, dict(np.load(out / "weights.npz"))


# ----------------------------------------------------------------- generated data


def test_linear_data_follows_its_weights_with_the_stated_noise():
    x, y = synthetic.linear(5, samples=4000)
    w, b = synthetic.linear_truth(5)
    assert x.shape == (4000, 5) and y.shape == (4000, 1)
    residual = y[:, 0] - (x @ w + b)
    assert residual.std() == pytest.approx(synthetic.LINEAR_NOISE, rel=0.05)
    fitted = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y[:, 0], rcond=None)[0]
    np.testing.assert_allclose(fitted, np.r_[w, b], atol=0.01)


def test_adding_problem_marks_one_value_in_each_half_and_sums_them():
    steps = 12
    x, y = synthetic.adding(steps, samples=500)
    assert x.shape == (500, steps, 2) and y.shape == (500, 1)
    values, markers = x[..., 0], x[..., 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (markers[:, : steps // 2].sum(axis=1) == 1).all() and (markers[:, steps // 2:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), rtol=1e-6)
    assert ((values >= 0) & (values < 1)).all()


def test_adding_problem_mean_predictor_scores_one_sixth():
    """Var(u1 + u2) = 2 · 1/12 for independent uniforms: the baseline a
    network must beat."""
    _, y = synthetic.adding(20, samples=20000)
    assert np.mean((y - y.mean()) ** 2) == pytest.approx(1 / 6, rel=0.03)


def test_generated_sets_are_the_same_every_time():
    first, again = synthetic.adding(10, samples=50), synthetic.adding(10, samples=50)
    np.testing.assert_array_equal(first[0], again[0])


def test_digits_one_against_the_rest_is_binary():
    binary, full = datamod.load("digits:3", (64,)), datamod.load("digits", (64,))
    np.testing.assert_array_equal(binary.x, full.x)
    np.testing.assert_array_equal(binary.y, (full.y == 3).astype(np.int64))


@pytest.mark.parametrize("source, shape, expected", [
    ("adding", (30, 2), (30, 2)),           # T from the network's input
    ("adding:30:100", (30, 2), (30, 2)),
    ("linear", (6,), (6,)),                 # F from the network's input
    ("linear:6:200", (6,), (6,)),
    ("adding:9:40", (18,), (18,)),          # reshaped like any other data
])
def test_data_load_generates_sets_by_name(source, shape, expected):
    data = datamod.load(source, shape)
    assert data.x.shape[1:] == expected


@pytest.mark.parametrize("source, says", [
    ("adding:30", "network's input is \\[20, 2\\]"),
    ("adding:ten", "whole numbers"),
    ("adding:1", "at least 2 steps"),
    ("adding:30:100:5", "at most 2 numbers"),
    ("digits:12", "0 to 9"),
    ("digits:x", "positive class"),
])
def test_data_load_explains_a_bad_generated_set(source, says):
    with pytest.raises(UserError, match=says):
        datamod.load(source, (20, 2))


# ----------------------------------------------------------------- the models


def test_logistic_regression_separates_one_digit_from_the_rest(tmp_path):
    net, settings, result, _ = _train("logistic_regression", tmp_path, data="digits:0")
    _, _, test = prepare_data(net, settings, integer_labels=False)
    majority = max(test.y.mean(), 1 - test.y.mean())  # always answering "not a 0"
    assert result["test_acc"] >= 0.98 > majority


def test_softmax_classifier_reaches_the_optimum_of_its_convex_loss(tmp_path):
    """Cross-entropy plus the l2 penalty is strictly convex: the optimum a
    float64 NumPy minimisation finds is the one the ONNX-driven L-BFGS must
    reach (its parameters differ along directions of pixels that are
    always 0, where only the small penalty curves the loss)."""
    from scipy.optimize import minimize

    net, settings, result, weights = _train("softmax_classifier", tmp_path)
    train, _, _ = prepare_data(net, settings, integer_labels=True)
    x, y, penalty = train.x.astype(np.float64), train.y, settings["l2"]
    rows = np.arange(len(y))

    def objective(theta):
        w, b = theta[:640].reshape(10, 64), theta[640:]
        z = x @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        p = np.exp(z - log_norm[:, None])
        p[rows, y] -= 1
        p /= len(y)
        loss = np.mean(log_norm - z[rows, y]) + penalty * (w ** 2).sum()
        return loss, np.r_[(p.T @ x + 2 * penalty * w).ravel(), p.sum(axis=0)]

    best = minimize(objective, np.zeros(650), jac=True, method="L-BFGS-B",
                    options={"maxiter": 5000, "ftol": 1e-13, "gtol": 1e-8}).fun
    reached, _ = objective(np.r_[weights["fc1.weight"].ravel(), weights["fc1.bias"]])
    assert reached - best <= 1e-5 * best
    assert result["test_acc"] >= 0.94


def test_svm_classifies_digits(tmp_path):
    net, settings, result, weights = _train("svm", tmp_path)
    _, _, test = prepare_data(net, settings, integer_labels=True)
    scores = test.x @ weights["fc1.weight"].T + weights["fc1.bias"]
    assert result["test_acc"] == pytest.approx(np.mean(scores.argmax(axis=1) == test.y))
    assert result["test_acc"] >= 0.93


def test_linear_regression_with_adam_approaches_the_noise_floor(tmp_path):
    """The same model trained by mini-batch Adam: its test MSE comes close to
    the noise variance, the best any predictor can do."""
    _, _, result, _ = _train("linear_regression", tmp_path, optimizer="adam", lr=3e-2, epochs=30)
    assert result["test_loss"] == pytest.approx(synthetic.LINEAR_NOISE ** 2, rel=0.5)

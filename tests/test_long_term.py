"""Long-term dependencies: on the adding problem the vanilla RNN and the LSTM
both learn short sequences, and as the sequence grows only the LSTM does;
the RNN stays at the baseline of predicting the mean (MSE ≈ 1/6)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.train.run import Settings, prepare_data, train_network

MODELS = Path(__file__).resolve().parents[1] / "models"
# Both models get the same data, steps and optimizer: a budget in which the
# LSTM leaves the baseline at 30 steps (most seeds within 3 epochs).
FAST = {"samples": 3000, "epochs": 10, "batch": 32}


def _test_mse(model: str, steps: int, tmp_path: Path, samples: int, epochs: int, batch: int) -> tuple[float, float]:
    """Test MSE of the model with `steps` steps, and of predicting the training mean."""
    source, count = re.subn(r"\[T=\d+,", f"[T={steps},", (MODELS / f"{model}.net").read_text())
    assert count == 1
    path = tmp_path / f"{model}_{steps}.net"
    path.write_text(source)
    net = check(path)
    settings = Settings.merge(net.train, {"data": f"adding:{steps}:{samples}", "epochs": epochs, "batch": batch})
    result = train_network(net, settings, tmp_path / path.stem, device="cpu", quiet=True)
    train, _, test = prepare_data(net, settings, integer_labels=False)
    baseline = float(np.mean((test.y - train.y.mean()) ** 2))
    return result["test_loss"], baseline


def test_both_learn_short_sequences(tmp_path):
    for model in ("adding_rnn", "adding_lstm"):
        mse, baseline = _test_mse(model, 10, tmp_path, **FAST)
        assert mse < 0.25 * baseline, model


def test_only_the_lstm_learns_longer_sequences(tmp_path):
    rnn, baseline = _test_mse("adding_rnn", 30, tmp_path, **FAST)
    lstm, _ = _test_mse("adding_lstm", 30, tmp_path, **FAST)
    assert lstm < 0.1 * baseline
    assert rnn > 0.5 * baseline
    assert baseline == pytest.approx(1 / 6, rel=0.15)


@pytest.mark.slow
def test_at_a_hundred_steps_the_rnn_stays_at_the_baseline_and_the_lstm_does_not(tmp_path):
    rnn, baseline = _test_mse("adding_rnn", 100, tmp_path, samples=5000, epochs=15, batch=50)
    lstm, _ = _test_mse("adding_lstm", 100, tmp_path, samples=5000, epochs=15, batch=50)
    assert lstm < 0.1 * baseline
    assert rnn > 0.8 * baseline

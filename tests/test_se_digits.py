"""models/se_digits.net: squeeze-and-excitation with `mul` broadcasting a
[C, 1, 1] gate over [C, H, W]. One training step's gradients equal torch
autograd's for the same network written in PyTorch (the driver sums the
broadcast gradient back to the gate's shape), and a few epochs on the
digits train it far above chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.runtime import create_session
from i2dl_dsl.train.step import TrainConfig, build_step
from helpers import random_weights, train

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

MODEL = Path(__file__).resolve().parents[1] / "models" / "se_digits.net"
GRAD_TOL = 1e-4  # relative to the largest entry of each gradient


class SE(nn.Module):
    """torchvision's SqueezeExcitation, named as the .net file names it."""

    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(x, 1)))))


class SEDigits(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.se1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), SE(16)
        self.conv2, self.bn2, self.se2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), SE(32)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.se1(F.relu(self.bn1(self.conv1(x))))
        x = F.max_pool2d(self.se2(F.relu(self.bn2(self.conv2(x)))), 2)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def test_one_step_has_torchs_gradients():
    module = SEDigits().train()
    state = {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    weights = random_weights(state, seed=3, scale=0.3)
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=False)
    step = build_step(check(MODEL), TrainConfig(loss="cross_entropy", optimizer={"name": "sgd"},
                                                expose_gradients=True), weights)
    assert sorted(step.trainable) == sorted(k for k, _ in module.named_parameters())

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 6)
    session = create_session(step.model.SerializeToString(), "cpu")
    feeds = {**step.values, **step.state, step.input: x, "y": y, "lr": np.array(0.0, np.float32),
             "step": np.array(1.0, np.float32)}
    ours = dict(zip([o.name for o in session.session.get_outputs()], session.run(feeds)))
    loss = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    assert ours["loss"] == pytest.approx(loss.item(), rel=1e-5)
    for name, p in module.named_parameters():
        expected = p.grad.numpy()
        error = np.abs(ours[f"grad/{name}"] - expected).max() / max(1e-12, np.abs(expected).max())
        assert error <= GRAD_TOL, f"{name}: {error:.2e}"


def test_trains_on_the_digits_far_above_chance(tmp_path):
    # the file's own train section: 6 epochs of adam (about 6 s of CPU); chance is 0.1
    assert train(MODEL, tmp_path / "se") == 0
    result = json.loads((tmp_path / "se" / "result.json").read_text())
    assert result["epochs"] == 6 and result["test_acc"] >= 0.9

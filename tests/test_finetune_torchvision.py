"""Transfer learning from a torchvision checkpoint: MobileNetV2's weights, as
torchvision's state_dict holds them, load through --weights, and with
--freeze features only the classifier learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import tensors, train
from torchvision_oracle import build

ROOT = Path(__file__).resolve().parents[1]


def test_freeze_fine_tunes_mobilenet_v2_head_from_a_torchvision_state_dict(tmp_path):
    pytest.importorskip("torch")
    given = {name: value.detach().numpy().copy() for name, value in build("mobilenet_v2", seed=0).state_dict().items()}
    assert any(name.endswith("num_batches_tracked") for name in given)  # as torchvision saves it
    np.savez(tmp_path / "mobilenet_v2.npz", **given)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.standard_normal((12, 3, 224, 224)).astype(np.float32),
             y=rng.integers(0, 1000, 12).astype(np.int64))
    out = tmp_path / "run"
    code = train(ROOT / "models" / "mobilenet_v2.net", out, "--weights", str(tmp_path / "mobilenet_v2.npz"),
                 "--freeze", "features", "--data", str(tmp_path / "data.npz"), "--epochs", "1", "--batch", "4",
                 "--optimizer", "sgd", "--lr", "0.1")
    assert code == 0
    learned = tensors(out / "weights.npz")
    frozen = [n for n in learned if n.startswith("features.") and n.endswith(".weight")]
    assert len(frozen) > 50
    for name in frozen:  # convolution and batch-norm weights of the frozen part: bit for bit
        np.testing.assert_array_equal(learned[name], given[name], err_msg=name)
    assert not np.array_equal(learned["classifier.1.weight"], given["classifier.1.weight"])
    assert not np.array_equal(learned["classifier.1.bias"], given["classifier.1.bias"])

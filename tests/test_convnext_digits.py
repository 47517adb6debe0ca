"""models/convnext_digits.net: ConvNeXt blocks (depthwise 7x7 convolution,
channel layer norm, GELU bottleneck, layer scale, stochastic depth) train on
the digits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.train.run import Settings, train_network
from i2dl_dsl.train.step import TrainConfig, build_step

MODEL = Path(__file__).resolve().parents[1] / "models" / "convnext_digits.net"


def test_blocks_carry_torchvision_layer_scale_and_stochastic_depth():
    net = check(MODEL)
    shapes = {f"{layer}.{suffix}" if suffix else layer: shape
              for layer, params in net.analysis.params.items() for suffix, shape in params.items()}
    assert shapes["stage1.0.layer_scale"] == (32, 1, 1) and shapes["stage2.1.layer_scale"] == (64, 1, 1)
    step = build_step(net, TrainConfig(loss="cross_entropy", optimizer={"name": "sgd"}))
    assert len(step.masks) == 4 and {d.shape for d in step.masks.values()} == {(1, 1, 1)}


@pytest.mark.slow
def test_trains_on_the_digits_well_above_chance(tmp_path):
    net = check(MODEL)
    start = time.perf_counter()
    result = train_network(net, Settings.merge(net.train, {"epochs": 4}), tmp_path, device="cpu", quiet=True)
    print(f"\nconvnext_digits, 4 epochs: test accuracy {result['test_acc']:.4f} on {result['test_samples']} "
          f"samples in {time.perf_counter() - start:.1f} s")
    assert result["test_acc"] >= 0.8  # ten classes: chance is 0.1


def test_zoo_table_gives_its_parameter_count():
    table = (MODEL.parent / "README.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| `convnext_digits.net` |"))
    assert row.rstrip(" |").rsplit("|", 1)[-1].strip() == f"{check(MODEL).analysis.total_params:,}"

"""Helpers shared by several test files: weights that expose mix-ups, and
running `i2dl-train` in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from i2dl_dsl.cli.train import main as train_main


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int = 1, scale: float = 0.5) -> dict[str, np.ndarray]:
    """Non-zero biases, γ away from 1, positive and varied running variances."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in shapes.items():
        if name.endswith("running_var"):
            weights[name] = rng.uniform(0.3, 3.0, shape)
        else:
            weights[name] = rng.standard_normal(shape) * scale
    return {n: w.astype(np.float32) for n, w in weights.items()}


def train(net: Path, out: Path, *flags: str) -> int:
    """`i2dl-train NET --out OUT --device cpu --quiet FLAGS...`; the exit code."""
    return train_main([str(net), "--out", str(out), "--device", "cpu", "--quiet", *flags])


def tensors(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz (a checkpoint, saved weights)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}

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


# Zoo models made for 224×224 images, checked at a smaller size where tests
# need speed: the smallest input every layer of AlexNet accepts; ResNets at 64
# so that batch norm at the last stage normalises over more than the batch
# (float32 gradients of statistics over 3 values are not reproducible to 1e-4).
ZOO_224 = {"alexnet": 64, "googlenet": 32, "resnet18": 64, "resnet50": 64, "vgg16": 32}
# U-Net (572×572, 31 million parameters) at its smallest valid input, 4 channels wide.
ZOO_SMALLER = {"unet": ("572, 572]", "188, 188]", {"width": 4})}


def zoo_net(name: str, folder: Path, full_size: bool = False):
    """The zoo model `name`, checked; a large one smaller (ZOO_224, ZOO_SMALLER) unless `full_size`."""
    from i2dl_dsl.checker import check

    path = Path(__file__).resolve().parents[1] / "models" / f"{name}.net"
    if full_size or (name not in ZOO_224 and name not in ZOO_SMALLER):
        return check(path)
    size = ZOO_224.get(name)
    old, new, params = ZOO_SMALLER.get(name, ("224, 224]", f"{size}, {size}]", {}))
    small = folder / path.name
    small.write_text(path.read_text().replace(old, new))
    return check(small, params=params)

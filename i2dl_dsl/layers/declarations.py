"""What a layer declares about its tensors beyond their shapes, for the
drivers to read instead of guessing from names: how each parameter or
buffer starts (`Init`: a fan-in scheme, zeros, ones, a constant) and the
random inputs it draws each training step (`RandomInput`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

Shape = tuple[int, ...]  # without the batch axis: [C, H, W], [T, F] or [F]


@dataclass(frozen=True)
class Init:
    """How a parameter or buffer starts: `fan_in`, drawn by the run's scheme
    (he, xavier, gaussian; lowering/initial_values.py) over the tensor's fan-in, or every
    element `constant`."""

    rule: str  # "fan_in" or "constant"
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.rule not in ("fan_in", "constant"):
            raise ValueError(f"unknown initialisation rule {self.rule!r}")


FAN_IN = Init("fan_in")
ZEROS = Init("constant", 0.0)
ONES = Init("constant", 1.0)


def constant(value: float) -> Init:
    return Init("constant", float(value))


class RandomInput(Protocol):
    """A tensor a layer draws afresh each training step, as a graph input."""

    shape: Shape  # per sample: the graph input is [N, *shape]

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` samples' values from `rng`, float32."""


@dataclass(frozen=True)
class ScaledBernoulli:
    """A random input drawn afresh each training step: per element, 1/keep
    with probability keep, else 0 (inverted dropout's mask). `shape` is per
    sample; a shape of ones broadcasts one draw over the sample (a mask
    [1, 1, 1] drops or keeps a whole residual branch: stochastic depth)."""

    shape: Shape
    keep: float

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return (rng.random((count, *self.shape), dtype=np.float32) < self.keep).astype(np.float32) / self.keep


@dataclass(frozen=True)
class TorchCode:
    """How a layer reads in PyTorch source (`Layer.torch_code`).

    `module`: the constructor of its `nn.Module` (`nn.Conv2d(3, 64, kernel_size=7)`),
    or None for a layer that is an expression only (`a + b`). `forward`: the
    expression of its output, with `{m}` for the module and `{0}`, `{1}`, ...
    for its inputs. `width`: the expression of its output's channels or
    features, where it is not the input's (`filters` of a convolution), so that
    a block's class can pass it on symbolically; None: the input's width when
    equal to it, else the number.
    """

    module: str | None
    forward: str = "{m}({0})"
    width: str | None = None
    helpers: tuple[str, ...] = ()  # source of classes the module needs that PyTorch lacks (drop_path's)

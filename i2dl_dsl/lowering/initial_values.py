"""Initial values of parameters: the course's schemes.

    gaussian  w ~ N(0, 0.01²)            small random numbers
    xavier    w ~ N(0, 1/n_in)           keeps the variance through tanh layers
    he        w ~ N(0, 2/n_in)           the same for ReLU layers (half the units are off)

n_in is the fan-in: the product of a weight's dimensions after the first
(in·kh·kw for a conv weight [out, in, kh, kw], in for an fc weight [out, in]).
Which tensors take a scheme and which start at a constant (biases at zero,
a batch-norm scale at one) each layer declares (`Layer.inits`); this module
only draws. Each parameter draws from its own generator, seeded by the run's
seed and the parameter's name, so the values do not depend on the order of
the layers, and adding a layer changes no other layer's weights.
"""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np

from ..elaborate import layer_node
from ..layers.declarations import Init
from ..names import tensor_name

SCHEMES = ("he", "xavier", "gaussian")


def generator(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def initial_value(init: Init, shape: tuple[int, ...], scheme: str, rng: np.random.Generator) -> np.ndarray:
    """A tensor's first value as its layer declares it."""
    if init.rule == "constant":
        return np.full(shape, init.value, dtype=np.float32)
    if len(shape) < 2:
        raise ValueError(f"a fan-in scheme needs a tensor of two or more axes, not {list(shape)}")
    fan_in = int(np.prod(shape[1:]))
    std = {"gaussian": 0.01, "xavier": np.sqrt(1.0 / fan_in), "he": np.sqrt(2.0 / fan_in)}[scheme]
    values = rng.standard_normal(shape, dtype=np.float32)
    values *= np.float32(std)
    return values


def initializer(graph, scheme: str, seed: int) -> Callable[[str, str, tuple[int, ...]], np.ndarray]:
    """The function the graph builder calls for each `<layer>.<suffix>`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}")

    def init(layer: str, suffix: str, shape: tuple[int, ...]) -> np.ndarray:
        declared = layer_node(graph, layer).layer.init_of(suffix)
        return initial_value(declared, shape, scheme, generator(seed, tensor_name(layer, suffix)))

    return init

"""Generated and derived data sets, named by a source string `name:args`.

    linear[:F[:S]]     S samples (default 1,000) of F standard-normal features
                       (default: the network's input size) and one target
                       y = x·w + b + ε, ε ~ N(0, 0.1²), with fixed w and b
                       (see `linear_truth`): least-squares regression.
    adding[:T[:S]]     the adding problem (Hochreiter & Schmidhuber 1997):
                       S sequences (default 5,000) of T steps (default: the
                       network's T) with two features, a value ~ U(0, 1) and
                       a marker that is 1 at exactly two steps, one in each
                       half; the target is the sum of the two marked values.
                       Predicting the mean scores MSE Var(u1 + u2) = 1/6.
    digits:K           the built-in digits as a binary task: 1 for digit K,
                       0 for the other nine (logistic regression).

Every set is drawn from a fixed seed, so every run and every test sees the
same data; the `seed` setting still chooses the split.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..diagnostics import UserError
from .dataset import DIGITS, Dataset, fit_input

DATA_SEED = 0
LINEAR_SAMPLES, LINEAR_NOISE = 1000, 0.1
ADDING_SAMPLES = 5000


def linear_truth(features: int) -> tuple[np.ndarray, float]:
    """The weights w [F] and bias b that `linear:F` is generated from."""
    rng = np.random.default_rng([DATA_SEED, features, 1])
    return rng.normal(size=features).astype(np.float32), float(rng.normal())


def linear(features: int, samples: int = LINEAR_SAMPLES, noise: float = LINEAR_NOISE) -> tuple[np.ndarray, np.ndarray]:
    """x [S, F] and y [S, 1] = x·w + b + noise."""
    rng = np.random.default_rng([DATA_SEED, features, samples, 2])
    w, b = linear_truth(features)
    x = rng.normal(size=(samples, features)).astype(np.float32)
    y = x @ w + b + noise * rng.normal(size=samples).astype(np.float32)
    return x, y.astype(np.float32).reshape(samples, 1)


def adding(steps: int, samples: int = ADDING_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """x [S, T, 2] (value, marker) and y [S, 1], the sum of the two marked values."""
    if steps < 2:
        raise UserError(f"the adding problem needs at least 2 steps, got {steps}")
    rng = np.random.default_rng([DATA_SEED, steps, samples, 3])
    values = rng.random((samples, steps), dtype=np.float32)
    half = steps // 2
    first = rng.integers(0, half, samples)
    second = rng.integers(half, steps, samples)
    markers = np.zeros((samples, steps), np.float32)
    rows = np.arange(samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), y.reshape(samples, 1)


def _digits(digit: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 <= digit <= 9:
        raise UserError(f"'digits:{digit}': the digits run from 0 to 9")
    with np.load(DIGITS, allow_pickle=False) as data:
        x, y = data["x"].astype(np.float32) / 16.0, data["y"]
    return x, (y == digit).astype(np.int64)


def _numbers(source: str, given: list[str], names: tuple[str, ...]) -> list[int]:
    if len(given) > len(names):
        raise UserError(f"data '{source}' takes at most {len(names)} numbers: {':'.join(('name',) + names)}")
    try:
        numbers = [int(value) for value in given]
    except ValueError:
        raise UserError(f"data '{source}': {', '.join(names)} must be whole numbers") from None
    if any(n < 1 for n in numbers):
        raise UserError(f"data '{source}': {', '.join(names)} must be positive")
    return numbers


def _linear(source, given, input_shape):
    numbers = _numbers(source, given, ("F", "S")) or [int(np.prod(input_shape))]
    return linear(*numbers)


def _adding(source, given, input_shape):
    numbers = _numbers(source, given, ("T", "S")) or [input_shape[0]]
    return adding(*numbers)


def _binary_digits(source, given, input_shape):
    if len(given) != 1 or not given[0].isdigit():
        raise UserError(f"data '{source}': name the positive class, e.g. digits:0 (digit 0 against the rest)")
    return _digits(int(given[0]))


SOURCES: dict[str, Callable[[str, list[str], tuple[int, ...]], tuple[np.ndarray, np.ndarray]]] = {
    "linear": _linear, "adding": _adding, "digits": _binary_digits,
}


def handles(source: str) -> bool:
    """Whether `source` names a set of this module (rather than a file or `digits`)."""
    name, _, rest = source.partition(":")
    return name in SOURCES and (name != "digits" or bool(rest)) and not source.endswith(".npz")


def load(source: str, input_shape: tuple[int, ...]) -> Dataset:
    """The data set `source`, its samples fitted to the network's input."""
    name, *given = source.split(":")
    x, y = SOURCES[name](source, given, tuple(input_shape))
    return Dataset(fit_input(x, input_shape, source), y, source)

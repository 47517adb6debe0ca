"""A data set in memory, and fitting its samples to a network's input:
what the loaders (data.py, synthetic.py) share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..diagnostics import UserError

DIGITS = Path(__file__).resolve().parents[1] / "data" / "digits.npz"


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float32 [S, *input]
    y: np.ndarray  # int64 [S] class labels, or float32 [S, *output] targets
    name: str

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> "Dataset":
        return Dataset(self.x[index], self.y[index], self.name)


def fit_input(x: np.ndarray, input_shape: tuple[int, ...], source: str) -> np.ndarray:
    sample = x.shape[1:]
    if tuple(sample) == tuple(input_shape):
        return x
    if int(np.prod(sample)) == int(np.prod(input_shape)):
        return x.reshape(len(x), *input_shape)
    raise UserError(f"samples of '{source}' are {list(sample)}; the network's input is {list(input_shape)}",
                    "change the network's input declaration or the data")

"""Data for training: the embedded digits, or an `.npz` with `x` and `y`.

Samples are fitted to the network's input (an 8×8 digit becomes [1, 8, 8],
[8, 8] or [64] as the network asks); a shape that cannot fit is a clear
error before any training starts. Splits and batch orders are seeded.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..diagnostics import UserError
from ..reading import npz_arrays, npz_headers, open_npz
from . import synthetic
from .dataset import DIGITS, Dataset, fit_input


@dataclass(frozen=True, eq=False)
class Arrays:
    """Samples handed over in memory (the Python API's `train(net, data=(x, y))`)."""

    x: np.ndarray
    y: np.ndarray

    def __str__(self) -> str:  # how the run names its data
        return f"arrays ({len(self.x)} samples)"


def load(source: "str | Arrays", input_shape: tuple[int, ...]) -> Dataset:
    """`digits` (scikit-learn's 1,797 handwritten digits, 8×8, shipped with
    this package), a generated set of synthetic.py (`linear:8`, `adding:50`,
    `digits:0`), the path of an .npz holding arrays `x` and `y`, or Arrays."""
    if isinstance(source, Arrays):
        x, y = np.asarray(source.x), np.asarray(source.y)
        return _dataset(x, y, input_shape, "the arrays (x, y)", "arrays", "arrays")
    if synthetic.handles(source):
        return synthetic.load(source, input_shape)
    if source == "digits":
        x, y = digits()
        return Dataset(fit_input(x, input_shape, "digits"), y, "digits")
    path = Path(source)
    if path.suffix != ".npz":
        raise UserError(f"--data takes 'digits' or an .npz file, got '{source}'",
                        "or a generated set: linear:F, adding:T, digits:K")
    x, y = _read_xy(path, source)
    return _dataset(x, y, input_shape, f"data file '{source}'", source, path.stem)


def _dataset(x: np.ndarray, y: np.ndarray, input_shape: tuple[int, ...], label: str, source: str,
             name: str) -> Dataset:
    """Checked arrays as a Dataset (`label`, `source` name them in errors): float32
    samples fitted to the input, integer labels as int64."""
    _check_arrays(x, y, label)
    labels = y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y.astype(np.float32)
    return Dataset(fit_input(x.astype(np.float32), input_shape, source), labels, name)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The embedded digits as training reads them: x float32 [1797, 8, 8] in
    [0, 1], y int64 class labels 0-9."""
    with np.load(DIGITS, allow_pickle=False) as data:
        return data["x"].astype(np.float32) / 16.0, data["y"].astype(np.int64)


def _read_xy(path: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Arrays x and y of the .npz, their headers checked first; other entries are not unpacked."""
    label = f"data file '{source}'"
    try:
        with open_npz(path, label) as archive:
            return _x_and_y(archive, label)
    except FileNotFoundError:
        raise UserError(f"{label} does not exist") from None


def _x_and_y(archive: zipfile.ZipFile, label: str) -> tuple[np.ndarray, np.ndarray]:
    headers = npz_headers(archive, label)
    missing = [k for k in ("x", "y") if k not in headers]
    if missing:
        raise UserError(f"{label} has no array {' or '.join(repr(m) for m in missing)}",
                        f"it holds {', '.join(headers) or 'nothing'}; save with numpy.savez(path, x=..., y=...)")
    arrays = npz_arrays(archive, headers, ("x", "y"), label)
    return arrays["x"], arrays["y"]


def _check_arrays(x: np.ndarray, y: np.ndarray, label: str) -> None:
    """Numbers, one label per sample, and no NaN or Inf (they would only
    show up later as a NaN loss)."""
    for name, array in (("x", x), ("y", y)):
        if array.ndim == 0 or not np.issubdtype(array.dtype, np.number):
            raise UserError(f"{label}: {name} is {array.dtype} {list(array.shape)}, "
                            "not an array of numbers with one row per sample")
    if len(x) != len(y):
        raise UserError(f"{label}: x has {len(x)} samples but y has {len(y)}")
    if len(x) == 0:
        raise UserError(f"{label} holds no samples")
    for name, array in (("x", x), ("y", y)):
        broken = ~np.isfinite(array).all(axis=tuple(range(1, array.ndim)))
        if broken.any():
            raise UserError(f"{label}: {name} holds NaN or Inf values in {int(broken.sum())} "
                            f"sample(s), the first is sample {int(np.argmax(broken))}",
                            "clean or drop those samples")


def targets(data: Dataset, integer_labels: bool, output_shape: tuple[int, ...]) -> Dataset:
    """Labels as the loss wants them: class indices, or float targets shaped
    like the output (integer classes one-hot encoded; 0/1 kept for one output)."""
    y = data.y
    if integer_labels:
        if y.dtype != np.int64 or y.ndim != 1:
            raise UserError(f"this loss needs integer class labels y [S], got {y.dtype} {list(y.shape)}")
        classes = output_shape[-1]
        if y.min() < 0 or y.max() >= classes:
            raise UserError(f"labels run from {y.min()} to {y.max()}, but the network has {classes} outputs")
        return data
    if y.dtype == np.int64 and y.ndim == 1:
        units = int(np.prod(output_shape))
        if units == 1:
            if set(np.unique(y)) - {0, 1}:
                raise UserError(f"the network has one output, but the labels have {len(np.unique(y))} classes",
                                "one output fits binary 0/1 labels; use fc(K) and cross_entropy for K classes")
            return Dataset(data.x, y.astype(np.float32).reshape(len(y), *output_shape), data.name)
        if y.max() >= units:
            raise UserError(f"labels run to {y.max()}, but the network has {units} outputs")
        return Dataset(data.x, np.eye(units, dtype=np.float32)[y].reshape(len(y), *output_shape), data.name)
    if tuple(y.shape[1:]) != tuple(output_shape):
        raise UserError(f"targets are {list(y.shape[1:])} per sample; the network's output is {list(output_shape)}")
    return data


def split(data: Dataset, val: float, test: float, seed: int) -> tuple[Dataset, Dataset, Dataset]:
    """Seeded shuffle into train, validation and test parts."""
    order = np.random.default_rng([seed, 7]).permutation(len(data))
    n_test, n_val = int(round(test * len(data))), int(round(val * len(data)))
    if len(data) - n_test - n_val < 1:
        raise UserError(f"{len(data)} samples leave nothing to train on after the validation and test splits")
    return (data.subset(order[n_test + n_val:]), data.subset(order[n_test:n_test + n_val]),
            data.subset(order[:n_test]))


def batches(count: int, batch: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's mini-batches: a permutation that depends only on (seed, epoch).
    A last batch of one sample joins the one before it: batch statistics need two."""
    order = np.random.default_rng([seed, epoch, 1]).permutation(count)
    parts = [order[i:i + batch] for i in range(0, count, batch)]
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [np.concatenate(parts[-2:])]
    return parts

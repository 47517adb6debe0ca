"""`i2dl_dsl.train`: the training of `i2dl-train`, called from Python.

The same settings (the network's `train { }` section, then the keyword
arguments over it, exactly as the command's flags), the same loop and the
same files (train/run.py). What differs is where the files go: a notebook
user asked for a result, not a directory, so without `out=` the run trains
in a temporary directory that is removed when it ends; everything worth
keeping (history, test result, weights) is held by the returned `Run`.
With `out=`, the run directory is claimed as `i2dl-train --out` claims it
(locked; a finished run is only replaced with `overwrite=True`).
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from .api import Network, _as_compile_error, check, read_net_weights
from .diagnostics import CompileError, UserError
from .runtime import DEVICES

if TYPE_CHECKING:
    import onnx

# The flags of i2dl-train that set a training setting, as keyword arguments.
SETTINGS = ("epochs", "batch", "optimizer", "lr", "loss", "seed")
SECTION = ("augment", "freeze", "lr_scale")  # read as train-section statements

__all__ = ["Run", "load_digits", "train"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The built-in data set `digits` (scikit-learn's 1,797 handwritten
    digits) as `train(data="digits")` reads it: x float32 [1797, 8, 8] in
    [0, 1], y int64 labels 0-9, before the seeded split."""
    from .train.data import digits

    return digits()


class Run:
    """A finished training run: what `i2dl-train` prints and writes, in memory."""

    def __init__(self, net: Network, result: dict[str, Any], out: Path | None, device: str):
        self.net = net
        self.history: list[dict[str, Any]] = result.pop("history")
        self.weights: dict[str, np.ndarray] = result.pop("weights")
        self.result = result  # result.json's entries
        self.out = out        # the run directory, or None where it was temporary
        self._device = device
        self._session = None

    @property
    def test(self) -> dict[str, Any]:
        """The test split's loss and accuracy (None where it means nothing), and its size."""
        r = self.result
        return {"loss": r["test_loss"], "accuracy": r["test_acc"], "samples": r["test_samples"]}

    def to_onnx(self, opset: int | None = None) -> "onnx.ModelProto":
        """The inference model with the trained weights."""
        return self.net.to_onnx(weights=self.weights, opset=opset)

    def predict(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        """The network's output for samples `x` ([N, *input], or one sample
        without the batch axis), in inference mode (running statistics, no
        dropout), on onnxruntime."""
        from .runtime import create_session

        x = np.asarray(x, dtype=np.float32)
        single = tuple(x.shape) == self.net.input_shape
        if single:
            x = x[None]
        if tuple(x.shape[1:]) != self.net.input_shape:
            raise ValueError(f"samples are {list(x.shape[1:])}; the network's input is {list(self.net.input_shape)}")
        if self._session is None:
            model = self.to_onnx().SerializeToString()
            self._session = _as_compile_error(lambda: create_session(model, self._device))
        name = self._session.session.get_inputs()[0].name
        parts = [self._session.run({name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
        out = np.concatenate(parts) if parts else np.zeros((0, *self.net.output_shape), np.float32)
        return out[0] if single else out

    def __repr__(self) -> str:
        test = self.test
        shown = f", test accuracy {test['accuracy']:.4f}" if test["accuracy"] is not None else ""
        return f"<Run {self.net.name}: {len(self.history)} epochs{shown}>"


def train(net: Network | str | Path, data: str | tuple[np.ndarray, np.ndarray] = "digits", *,
          out: str | Path | None = None, overwrite: bool = False, weights: str | Path | None = None,
          allow_pickle: bool = False, device: str = "auto", threads: int | None = None, quiet: bool = False,
          **overrides: Any) -> Run:
    """Train `net` (a Network, or a .net path or zoo name) as `i2dl-train` does.

    data: "digits", an .npz with arrays x and y, a generated set
    ("linear:8"), or a tuple (x, y) of arrays. overrides: epochs=, batch=,
    optimizer=, lr=, loss=, seed=, augment= (text, as in the train section),
    freeze= (names), lr_scale= ({name: factor}); the `train { }` section
    gives the rest. out: a run directory to write (default: none, see the
    module's docstring). weights: a file to start from (.npz, .safetensors
    or .onnx; .pt/.pth only with allow_pickle), matched by parameter name. Raises CompileError for a mistake
    in the network, the data or a setting.
    """
    net = net if isinstance(net, Network) else check(net)
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    settings = _as_compile_error(lambda: _settings(net, data, overrides))
    given = _as_compile_error(lambda: read_net_weights(net.checked, str(weights), allow_pickle)) \
        if weights is not None else None
    try:
        with _run_directory(out, net, overwrite) as directory:
            result = _train(net, settings, directory, device, quiet, given, threads, weights)
    except UserError as exc:  # a refused directory, data that does not fit, a diverged run
        raise CompileError([exc.diagnostic()]) from None
    return Run(net, result, Path(out) if out is not None else None, device)


def _settings(net: Network, data, overrides: Mapping[str, Any]):
    from .train.data import Arrays
    from .train.settings import Settings, check_settings, section_overrides

    unknown = sorted(set(overrides) - set(SETTINGS) - set(SECTION))
    if unknown:
        raise TypeError(f"train() got unknown settings {', '.join(unknown)}; "
                        f"it takes {', '.join((*SETTINGS, *SECTION))}")
    if isinstance(data, tuple):
        if len(data) != 2:
            raise TypeError("data=(x, y) takes two arrays: the samples and their labels or targets")
        data = Arrays(*data)
    elif isinstance(data, Path):
        data = str(data)
    freeze = overrides.get("freeze")
    lr_scale = overrides.get("lr_scale")
    section = section_overrides(overrides.get("augment"),
                                ",".join(freeze) if isinstance(freeze, (list, tuple)) else freeze,
                                [f"{k}={v}" for k, v in lr_scale.items()] if lr_scale else None)
    given = {"data": data, **{k: overrides.get(k) for k in SETTINGS}, **section}
    settings = Settings.merge(net.checked.train, given)
    check_settings(net.checked, settings)
    return settings


@contextmanager
def _run_directory(out: str | Path | None, net: Network, overwrite: bool) -> Iterator[Path]:
    """`out`, claimed as i2dl-train claims it; else a temporary directory, removed afterwards."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="i2dl-train-") as directory:
            yield Path(directory)
        return
    from .train.rundir import claim

    with claim(str(out), Path(net.path), False, overwrite) as directory:
        yield directory


def _train(net: Network, settings, out: Path, device: str, quiet: bool, weights, threads, source) -> dict[str, Any]:
    from .lowering.export import parameter_shapes
    from .lowering.weights import match_weights
    from .train.rundir import write_failure
    from .train.run import train_network

    if weights is not None:  # shapes that do not fit are an error naming them all
        match_weights(weights, parameter_shapes(net.checked), str(source), strict=False)
    try:
        return train_network(net.checked, settings, out, device, False, quiet, weights, threads)
    except OSError as exc:  # a disk that fills, permissions taken away mid-run
        failure = write_failure(out, exc)
        if failure is None:
            raise
        raise failure from None

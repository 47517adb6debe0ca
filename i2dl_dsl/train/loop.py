"""The training loop: epochs of mini-batches through the ONNX training step,
evaluation, metrics, early stopping, checkpoints and resumption.

Every random choice (batch order, dropout masks) is drawn from a generator
seeded by (seed, epoch, batch), so a resumed run repeats exactly what an
uninterrupted one would have done. Ctrl-C is held while a step and its
bookkeeping run, so the checkpoint it saves is never half a step ahead.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..checker import CheckedNetwork
from ..diagnostics import Diagnostic, UserError, render
from ..elaborate import layer_node
from ..layers.declarations import RandomInput
from . import checkpoint, data as datamod
from .progress import Progress, write_csv
from .results import evaluate
from .rundir import BEST, CHECKPOINT, METRICS
from .schedules import SCHEDULES, learning_rate
from .session import TrainingSession
from .step import StepModel
from .stopping import early_stopping

LAST = CHECKPOINT  # the last finished epoch's checkpoint


@dataclass
class RunOptions:
    out: Path
    epochs: int = 10
    batch: int = 64
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": SCHEDULES.default})
    early_stopping: dict[str, Any] | None = None
    resume: bool = False
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    quiet: bool = False
    schedule_epochs: int | None = None  # the schedule's length when a run is trained in parts (search rungs)
    stop_below: float | None = None     # stop once the training loss is below this (overfitting checks)
    after_epoch: Any = None             # callable(trainer, row) -> True to stop (benchmarks, experiments)


class Diverged(UserError):
    pass


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after the checkpoint was saved: still a KeyboardInterrupt (the
    commands exit 130), whose text says where the run can be continued."""


def random_inputs(declared: dict[str, RandomInput], count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every random input of a batch of `count` samples (dropout masks), each
    drawn as its layer declares, in turn from the one generator."""
    return {name: draw.draw(rng, count) for name, draw in declared.items()}


def check_batch_statistics(net: CheckedNetwork, batch: int) -> None:
    """A layer that normalises with batch statistics (batch norm) needs two
    values per channel in a batch, or its variance is 0/0 (PyTorch refuses
    this too)."""
    a = net.analysis
    for node in a.order:
        layer = layer_node(net.graph, node).layer
        if not layer.batch_statistics:
            continue
        values = batch * int(np.prod(a.shapes[node][1:]))
        if values < 2:
            raise UserError(f"{layer.label} '{node}' sees {values} value per channel in a batch of {batch}: "
                            "its batch variance is undefined", "train with batches of 2 or more samples")


def _check_shapes(path: Path, saved: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Every tensor of a checkpoint has the shape the run gives it: a damaged
    or edited file is refused by name, before onnxruntime sees it."""
    for name, value in expected.items():
        if saved[name].shape != value.shape or saved[name].dtype != value.dtype:
            raise UserError(f"checkpoint '{path}': tensor '{name}' is {list(saved[name].shape)} {saved[name].dtype}, "
                            f"the network expects {list(value.shape)} {value.dtype}",
                            "resume with the same model and settings, or start a new run")


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C until the block is done, then raise it: what the block
    changes (tensors, position, history) changes completely or not at all.
    Signals reach the main thread only; elsewhere this does nothing, as it
    does where the handler was not set from Python."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if previous is None:
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


class Trainer:
    def __init__(self, net: CheckedNetwork, step: StepModel, lr: float, options: RunOptions,
                 train: datamod.Dataset, val: datamod.Dataset, augment=None):
        self.net, self.step, self.lr, self.o = net, step, lr, options
        self.train_data, self.val_data = train, val
        self.augment = augment
        check_batch_statistics(net, min(options.batch, len(train)))
        self.session = TrainingSession(step, options.device, options.threads)
        self.classifies = step.loss.classifies_on(train.y)
        self.stopping = early_stopping(options.early_stopping)
        self.history: list[dict[str, Any]] = []
        self.position = {"epoch": 0, "batch": 0, "step": 0, "sum_loss": 0.0, "correct": 0.0, "seen": 0,
                         "seconds": 0.0}
        self.best = {"loss": math.inf, "epoch": -1, "wait": 0}
        self.val_below = 0
        options.out.mkdir(parents=True, exist_ok=True)
        if options.resume:
            self._restore()

    # ------------------------------------------------------------- checkpoints
    def _meta(self) -> dict[str, Any]:
        return {"position": self.position, "best": self.best, "history": self.history,
                "network": self.net.name, "trainable": self.step.trainable}

    def save(self) -> None:
        checkpoint.save(self.o.out / LAST, self.session.snapshot(), self._meta())

    def _restore(self) -> None:
        tensors, meta = checkpoint.load(self.o.out / LAST)
        expected = set(self.session.snapshot())
        if set(tensors) != expected or meta.get("trainable") != self.step.trainable:
            raise UserError(f"checkpoint '{self.o.out / LAST}' belongs to another network or optimizer",
                            "resume with the same model and settings, or start a new --out directory")
        _check_shapes(self.o.out / LAST, tensors, self.session.snapshot())
        self.session.load(tensors)
        self.position, self.best, self.history = meta["position"], meta["best"], meta["history"]

    # ------------------------------------------------------------- running
    def run(self) -> list[dict[str, Any]]:
        try:
            while self.position["epoch"] < self.o.epochs:
                self._epoch()
                if self._should_stop() or (self.o.after_epoch and self.o.after_epoch(self, self.history[-1])):
                    break
        except KeyboardInterrupt:
            self.save()
            raise Interrupted(f"interrupted: checkpoint saved in {self.o.out / LAST}\n"
                              f"hint: continue with --resume --out {self.o.out}") from None
        if self.stopping and self.stopping.restore_best and self.best["epoch"] >= 0:
            best, _ = checkpoint.load(self.o.out / BEST)
            self.session.load(best)
        return self.history

    def _epoch(self) -> None:
        p = self.position
        epoch = p["epoch"]
        lr = learning_rate(self.lr, self.o.schedule, epoch, self.o.schedule_epochs or self.o.epochs)
        order = datamod.batches(len(self.train_data), self.o.batch, self.o.seed, epoch)
        progress = Progress(epoch, self.o.epochs, len(order), quiet=self.o.quiet, done=p["batch"])
        try:
            while p["batch"] < len(order):
                with deferred_interrupts():
                    self._train_batch(order[p["batch"]], epoch, p["batch"], lr)
                    p["batch"] += 1
                progress.update(p["batch"], p["sum_loss"] / p["seen"], self._train_accuracy(),
                                p["seen"] / p["seconds"])
            with deferred_interrupts():
                self._end_epoch(epoch, lr, progress)
        finally:
            progress.close()

    def _end_epoch(self, epoch: int, lr: float, progress: Progress) -> None:
        """Evaluate, record the epoch, and checkpoint it."""
        p = self.position
        row = self._evaluate(epoch, lr)
        self._check_finite(epoch)
        progress.finish(row)
        self.history.append(row)
        self.position = {"epoch": epoch + 1, "batch": 0, "step": p["step"], "sum_loss": 0.0, "correct": 0.0,
                         "seen": 0, "seconds": 0.0}
        self._track_best(row)
        self._watch_validation_gap(row)
        write_csv(self.o.out / METRICS, self.history)
        self.save()

    def _train_batch(self, index: np.ndarray, epoch: int, batch: int, lr: float) -> None:
        p = self.position
        x, y = self.train_data.x[index], self.train_data.y[index]
        if self.augment is not None:
            x = self.augment(x, np.random.default_rng([self.o.seed, epoch, batch, 3]))
        masks = random_inputs(self.step.masks, len(index), np.random.default_rng([self.o.seed, epoch, batch, 2]))
        start = time.perf_counter()
        loss, out = self.session.train_step(x, y, masks, lr, p["step"] + 1)
        p["seconds"] += time.perf_counter() - start
        if not math.isfinite(loss):
            raise Diverged(f"the loss became {loss} at epoch {epoch + 1}, step {p['step'] + 1}; training stopped",
                           *self._divergence_hints())
        p["step"] += 1
        p["sum_loss"] += loss * len(index)
        p["seen"] += len(index)
        acc = self.step.loss.accuracy(out, y)
        p["correct"] += (acc or 0.0) * len(index)

    def _divergence_hints(self) -> tuple[str, ...]:
        return (f"the last good checkpoint is {self.o.out / LAST}" if self.history else "",
                "lower the learning rate, or check the data for NaN/Inf values")

    def _check_finite(self, epoch: int) -> None:
        """The epoch's last step can leave NaN or Inf weights behind a finite
        loss: they must not overwrite the last good checkpoint."""
        broken = [name for name, value in self.session.parameters().items() if not np.isfinite(value).all()]
        if broken:
            raise Diverged(f"'{broken[0]}' holds NaN or Inf values at the end of epoch {epoch + 1}; "
                           "training stopped", *self._divergence_hints())

    def _train_accuracy(self) -> float | None:
        p = self.position
        return p["correct"] / p["seen"] if self.classifies and p["seen"] else None

    def evaluate(self, dataset: datamod.Dataset) -> tuple[float, float | None]:
        return evaluate(self.session, self.step.loss, dataset)

    def _evaluate(self, epoch: int, lr: float) -> dict[str, Any]:
        p = self.position
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "train_loss": p["sum_loss"] / max(1, p["seen"]),
                               "train_acc": self._train_accuracy(), "samples_per_s": p["seen"] / max(p["seconds"], 1e-9),
                               "seconds": p["seconds"]}
        if len(self.val_data):
            row["val_loss"], row["val_acc"] = self.evaluate(self.val_data)
        return row

    GAP_EPOCHS = 3

    def _watch_validation_gap(self, row: dict[str, Any]) -> None:
        """Warn once when validation loss stays below training loss: most
        likely a bug or a skewed split (dropout and augmentation, which make
        training harder than evaluation, are the innocent explanations).
        The epoch's running training loss lags behind the weights the
        validation sees, so a lower validation loss is confirmed against the
        training loss of the same weights, measured the way `predict` sees it
        on a training sample as large as the validation set (at least 256),
        so that both losses carry the same sampling noise."""
        below = "val_loss" in row and row["val_loss"] < row["train_loss"]
        if below:
            size = min(len(self.train_data), max(len(self.val_data), 256))
            sample = self.train_data.subset(np.arange(size))
            below = row["val_loss"] < self.evaluate(sample)[0]
        self.val_below = self.val_below + 1 if below else 0
        if self.val_below == self.GAP_EPOCHS and not self.o.quiet:
            print(render(Diagnostic("warning", f"validation loss has been below training loss for {self.GAP_EPOCHS} "
                                    "epochs; check the split (is validation data easier, or leaking into training?)")),
                  file=sys.stderr)

    # ------------------------------------------------------------- early stopping
    def _track_best(self, row: dict[str, Any]) -> None:
        if not self.stopping:
            return
        monitored = row.get("val_loss", row["train_loss"])
        if self.stopping.improves(monitored, self.best["loss"]):
            self.best = {"loss": monitored, "epoch": row["epoch"], "wait": 0}
            checkpoint.save(self.o.out / BEST, self.session.parameters(), {"epoch": row["epoch"]})
        else:
            self.best["wait"] += 1

    def _should_stop(self) -> bool:
        if self.o.stop_below is not None and self.history[-1]["train_loss"] < self.o.stop_below:
            return True
        if self.stopping and self.best["wait"] >= self.stopping.patience:
            if not self.o.quiet:
                print(f"early stopping: no improvement for {self.best['wait']} epochs; best was epoch "
                      f"{self.best['epoch']}", file=sys.stderr)
            return True
        return False

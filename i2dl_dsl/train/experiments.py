"""The course's recipes for getting a network to learn and generalise, built
on single training runs: overfitting a few samples, k-fold cross-validation
and bagged ensembles. (Hyperparameter search is in search.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..checker import CheckedNetwork
from ..diagnostics import UserError
from ..target import Target
from . import data as datamod
from .augment import make_augmenter
from .backends import Backend
from .cluster import run_all, threads
from .loop import RunOptions, Trainer
from .losses import resolve
from .results import write_result
from .rundir import RESULT
from .schedules import SCHEDULES
from .settings import Settings, config_for
from .step import build_step


@dataclass
class Prepared:
    """The data of a run, fitted to the network and its loss."""

    data: datamod.Dataset
    integer_labels: bool


def prepare(net: CheckedNetwork, settings: Settings) -> Prepared:
    loss = resolve(settings["loss"])
    dataset = datamod.load(settings["data"], net.analysis.shapes[net.input])
    return Prepared(datamod.targets(dataset, loss.integer_labels, net.analysis.shapes[net.output]),
                    loss.integer_labels)


def minibatch_only(settings: Settings, what: str) -> None:
    """The experiments drive the mini-batch loop; full-batch L-BFGS has its own."""
    if settings.full_batch():
        raise UserError(f"{what} trains with the mini-batch loop, and lbfgs is a full-batch optimizer",
                        "choose another optimizer for it, e.g. --optimizer adam")


def make_trainer(net: CheckedNetwork, settings: Settings, train: datamod.Dataset, val: datamod.Dataset, out: Path,
                 device: str = "auto", quiet: bool = True, epochs: int | None = None, resume: bool = False,
                 weights: dict[str, np.ndarray] | None = None, schedule_epochs: int | None = None,
                 threads: int | None = None) -> Trainer:
    """The trainer of one model on the given split, ready to run."""
    step = build_step(net, config_for(settings), weights, target=Target.resolve(device))
    total = epochs or settings["epochs"]
    options = RunOptions(out=out, epochs=total, batch=settings["batch"], schedule=settings["schedule"],
                         early_stopping=settings.get("early_stopping"), resume=resume, device=device,
                         seed=settings["seed"], quiet=quiet, schedule_epochs=schedule_epochs, threads=threads)
    augment = make_augmenter(settings.get("augment", []), net.analysis.shapes[net.input],
                             net.analysis.shapes[net.output])
    return Trainer(net, step, settings.optimizer()["lr"], options, train, val, augment)


def fit(net: CheckedNetwork, settings: Settings, train: datamod.Dataset, val: datamod.Dataset, out: Path,
        device: str = "auto", weights: dict[str, np.ndarray] | None = None, threads: int | None = None) -> Trainer:
    """Train one model on the given split; returns the trainer (session, history)."""
    run = make_trainer(net, settings, train, val, out, device, weights=weights, threads=threads)
    run.run()
    return run


def _empty(data: datamod.Dataset) -> datamod.Dataset:
    return data.subset(np.arange(0))


LOCAL = Backend()


# ----------------------------------------------------------------- overfitting


def overfit(net: CheckedNetwork, settings: Settings, samples: int, out: Path, device: str = "auto",
            max_epochs: int = 300, target: float = 1e-2, weights: dict[str, np.ndarray] | None = None
            ) -> dict[str, Any]:
    """Train on the first `samples` samples alone: the first debugging step.
    A network that cannot drive the loss to ~0 on a handful of samples has a
    bug, a bad learning rate or a loss that does not fit the labels."""
    minibatch_only(settings, "--overfit")
    prepared = prepare(net, settings)
    if not 1 <= samples <= len(prepared.data):
        raise UserError(f"--overfit {samples}: the data has {len(prepared.data)} samples")
    subset = prepared.data.subset(np.arange(samples))
    plain = Settings({**settings.values, "batch": min(settings["batch"], samples), "augment": [],
                      "early_stopping": None, "schedule": {"name": SCHEDULES.default}})
    step = build_step(net, config_for(plain), weights, target=Target.resolve(device))
    # The samples are also the validation data: the verdict reads their loss as `predict` sees them
    # (running statistics, no dropout), not the epoch's running training loss.
    options = RunOptions(out=out, epochs=max_epochs, batch=plain["batch"], device=device, seed=plain["seed"],
                         quiet=True, after_epoch=lambda _, row: row["val_loss"] < target)
    trainer = Trainer(net, step, plain.optimizer()["lr"], options, subset, subset)
    trainer.run()
    final = trainer.history[-1]
    result = {"samples": samples, "epochs": len(trainer.history), "loss": final["val_loss"],
              "accuracy": final.get("val_acc"), "target": target, "fits": final["val_loss"] < target,
              "train_loss": final["train_loss"]}
    write_result(out / RESULT, result)
    return result


# ----------------------------------------------------------------- cross-validation


def folds(count: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index sets that together cover range(count)."""
    if not 2 <= k <= count:
        raise UserError(f"--cv {k}: k-fold cross-validation needs 2 ≤ k ≤ {count}, "
                        f"the number of samples outside the test split")
    order = np.random.default_rng([seed, 11]).permutation(count)
    return [np.sort(part) for part in np.array_split(order, k)]


def cross_validate(net: CheckedNetwork, settings: Settings, k: int, out: Path, device: str = "auto",
                   weights: dict[str, np.ndarray] | None = None, backend: Backend = LOCAL) -> dict[str, Any]:
    """Mean ± std of the validation metrics over k folds of the data outside
    the test split; then one model trained on all of it, evaluated once on
    the test split. On the ray backend the folds and the final model are
    Ray tasks, run side by side; the numbers are the same."""
    minibatch_only(settings, "--cv")
    prepared = prepare(net, settings)
    train_val, _, test = datamod.split(prepared.data, 0.0, settings["split"]["test"], settings["seed"])
    parts = folds(len(train_val), k, settings["seed"])
    jobs = []
    for index, held in enumerate(parts):
        rest = np.setdiff1d(np.arange(len(train_val)), held)
        jobs.append(partial(_fit_and_score, net, settings, train_val.subset(rest), train_val.subset(held),
                            train_val.subset(held), out / f"fold{index + 1}", device, weights, threads(backend)))
    if len(test):
        jobs.append(partial(_fit_and_score, net, settings, train_val, _empty(train_val), test, out / "final", device,
                            weights, threads(backend)))
    results = run_all(jobs, backend)
    scores = [{"fold": index + 1, "val_loss": loss, "val_acc": acc, "train": len(train_val) - len(held),
               "val": len(held)} for index, (held, (loss, acc)) in enumerate(zip(parts, results))]
    summary: dict[str, Any] = {"k": k, "folds": scores}
    for key in ("val_loss", "val_acc"):
        values = [s[key] for s in scores if s[key] is not None]
        if values:
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    if len(test):
        test_loss, test_acc = results[-1]
        summary["test"] = {"loss": test_loss, "acc": test_acc, "samples": len(test), "trained_on": len(train_val)}
    write_result(out / RESULT, summary)
    return summary


def _fit_and_score(net: CheckedNetwork, settings: Settings, train: datamod.Dataset, val: datamod.Dataset,
                   scored: datamod.Dataset, out: Path, device: str, weights, threads: int | None
                   ) -> tuple[float, float | None]:
    """Train one model, then its loss and accuracy on `scored` (one job of run_all)."""
    return fit(net, settings, train, val, out, device, weights=weights, threads=threads).evaluate(scored)


# ----------------------------------------------------------------- ensembles


def bootstrap(count: int, seed: int, member: int) -> np.ndarray:
    """A member's training sample: `count` indices drawn with replacement."""
    return np.random.default_rng([seed, 13, member]).integers(0, count, count)


def ensemble(net: CheckedNetwork, settings: Settings, members: int, out: Path, device: str = "auto",
             weights: dict[str, np.ndarray] | None = None, backend: Backend = LOCAL) -> dict[str, Any]:
    """Bagging: `members` models, each on a bootstrap sample of the training
    split; their predicted probabilities are averaged. On the ray backend
    the members are Ray tasks, run side by side; the numbers are the same."""
    if members < 2:
        raise UserError("an ensemble needs at least 2 members")
    minibatch_only(settings, "--ensemble")
    prepared = prepare(net, settings)
    split = settings["split"]
    train, val, test = datamod.split(prepared.data, split["val"], split["test"], settings["seed"])
    if not len(test):
        raise UserError("an ensemble is compared with its members on the test split; it is empty",
                        "use split(test=0.1, ...)")
    loss = resolve(settings["loss"])
    jobs = [partial(_member, net, Settings({**settings.values, "seed": settings["seed"] + index}),
                    train.subset(bootstrap(len(train), settings["seed"], index)), val, test.x,
                    out / f"member{index + 1}", device, weights, threads(backend)) for index in range(members)]
    outputs = run_all(jobs, backend)
    singles = [loss.accuracy(z, test.y) for z in outputs]
    if singles[0] is None:
        raise UserError(f"an ensemble is scored by accuracy, which the loss '{loss.name}' does not give")
    result = {"members": members, "single_acc": singles, "mean_single_acc": float(np.mean(singles)),
              "ensemble_acc": loss.accuracy(loss.combine(outputs), test.y), "test_samples": len(test)}
    write_result(out / RESULT, result)
    return result


def _member(net: CheckedNetwork, settings: Settings, sample: datamod.Dataset, val: datamod.Dataset, x: np.ndarray,
            out: Path, device: str, weights, threads: int | None) -> np.ndarray:
    """Train one member; its output on `x` (one job of run_all)."""
    return fit(net, settings, sample, val, out, device, weights=weights, threads=threads).session.predict(x)


def describe(result: dict[str, Any]) -> str:
    """What the user reads."""
    if "fits" in result:
        verdict = ("the model can fit them" if result["fits"] else
                   "the model cannot fit them: check the learning rate, the loss and the labels")
        return (f"overfit {result['samples']} samples: loss {result['loss']:.4g} after {result['epochs']} epochs "
                f"(target < {result['target']:g}); {verdict}")
    if "folds" in result:
        return _describe_cv(result)
    if "members" in result:
        singles = ", ".join(f"{a:.4f}" for a in result["single_acc"])
        return (f"ensemble of {result['members']} on the test split ({result['test_samples']} samples): "
                f"accuracy {result['ensemble_acc']:.4f}\n"
                f"single models: {singles} (mean {result['mean_single_acc']:.4f})")
    return str(result)


def _describe_cv(result: dict[str, Any]) -> str:
    lines = []
    for fold in result["folds"]:
        acc = f" val_acc {fold['val_acc']:.4f}" if fold["val_acc"] is not None else ""
        lines.append(f"fold {fold['fold']}: val_loss {fold['val_loss']:.4f}{acc} "
                     f"({fold['train']} train, {fold['val']} validation)")
    parts = [f"{key} {v['mean']:.4f} ± {v['std']:.4f}" for key, v in result.items()
             if isinstance(v, dict) and "mean" in v]
    lines.append(f"{result['k']}-fold cross-validation: " + ", ".join(parts))
    test = result.get("test")
    if test:
        acc = f"accuracy {test['acc']:.4f}, " if test["acc"] is not None else ""
        lines.append(f"test ({test['samples']} samples, touched once, model trained on all {test['trained_on']}): "
                     f"{acc}loss {test['loss']:.4f}")
    return "\n".join(lines)

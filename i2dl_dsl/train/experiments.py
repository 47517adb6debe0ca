"""The course's recipes for getting a network to learn and generalise, built
on single training runs: overfitting a few samples, k-fold cross-validation
and bagged ensembles. (Hyperparameter search is in search.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler import CheckedNetwork
from ..diagnostics import UserError
from . import data as datamod
from .augment import make_augmenter
from .loop import RunOptions, Trainer
from .run import Settings, config_for
from .step import build_step


@dataclass
class Prepared:
    """The data of a run, fitted to the network and its loss."""

    data: datamod.Dataset
    integer_labels: bool


def prepare(net: CheckedNetwork, settings: Settings) -> Prepared:
    from .losses import LOSSES

    loss = LOSSES[settings["loss"]]
    dataset = datamod.load(settings["data"], net.analysis.shapes[net.input])
    return Prepared(datamod.targets(dataset, loss.integer_labels, net.analysis.shapes[net.output]),
                    loss.integer_labels)


def fit(net: CheckedNetwork, settings: Settings, train: datamod.Dataset, val: datamod.Dataset, out: Path,
        device: str = "auto", quiet: bool = True, epochs: int | None = None, resume: bool = False,
        weights: dict[str, np.ndarray] | None = None, schedule_epochs: int | None = None) -> Trainer:
    """Train one model on the given split; returns the trainer (session, history)."""
    step = build_step(net, config_for(settings), weights)
    total = epochs or settings["epochs"]
    options = RunOptions(out=out, epochs=total, batch=settings["batch"], schedule=settings["schedule"],
                         early_stopping=settings.get("early_stopping"), resume=resume, device=device,
                         seed=settings["seed"], quiet=quiet, schedule_epochs=schedule_epochs)
    augment = make_augmenter(settings.get("augment", []), net.analysis.shapes[net.input])
    trainer = Trainer(net, step, settings.optimizer()["lr"], options, train, val, augment)
    trainer.run()
    return trainer


def _empty(data: datamod.Dataset) -> datamod.Dataset:
    return data.subset(np.arange(0))


# ----------------------------------------------------------------- overfitting


def overfit(net: CheckedNetwork, settings: Settings, samples: int, out: Path, device: str = "auto",
            max_epochs: int = 300, target: float = 1e-2) -> dict[str, Any]:
    """Train on `samples` training samples alone: the first debugging step.
    A network that cannot drive the loss to ~0 on a handful of samples has a
    bug, a bad learning rate or a loss that does not fit the labels."""
    prepared = prepare(net, settings)
    if not 1 <= samples <= len(prepared.data):
        raise UserError(f"--overfit {samples}: the data has {len(prepared.data)} samples")
    subset = prepared.data.subset(np.arange(samples))
    batched = Settings({**settings.values, "batch": min(settings["batch"], samples), "augment": [],
                        "early_stopping": None, "schedule": {"name": "constant"}})
    trainer = _fit_until(net, batched, subset, out, device, max_epochs, target)
    final = trainer.history[-1]
    z = trainer.session.predict(subset.x)
    from .metrics import loss_value

    loss = loss_value(settings["loss"], z, subset.y)
    return {"samples": samples, "epochs": len(trainer.history), "loss": loss, "target": target,
            "fits": loss < target, "train_loss": final["train_loss"]}


def _fit_until(net, settings, subset, out, device, max_epochs: int, target: float) -> Trainer:
    step = build_step(net, config_for(settings))
    options = RunOptions(out=out, epochs=max_epochs, batch=settings["batch"], device=device, seed=settings["seed"],
                         quiet=True, stop_below=target)
    trainer = Trainer(net, step, settings.optimizer()["lr"], options, subset, _empty(subset))
    trainer.run()
    return trainer


# ----------------------------------------------------------------- cross-validation


def folds(count: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index sets that together cover range(count)."""
    if not 2 <= k <= count:
        raise UserError(f"--cv {k}: k-fold cross-validation needs 2 ≤ k ≤ the {count} samples available")
    order = np.random.default_rng([seed, 11]).permutation(count)
    return [np.sort(part) for part in np.array_split(order, k)]


def cross_validate(net: CheckedNetwork, settings: Settings, k: int, out: Path, device: str = "auto"
                   ) -> dict[str, Any]:
    """Mean ± std of the validation metric over k folds. The test split is
    held out and not touched."""
    prepared = prepare(net, settings)
    train_val, _, test = datamod.split(prepared.data, 0.0, settings["split"]["test"], settings["seed"])
    parts = folds(len(train_val), k, settings["seed"])
    scores = []
    for index, held in enumerate(parts):
        rest = np.setdiff1d(np.arange(len(train_val)), held)
        trainer = fit(net, settings, train_val.subset(rest), train_val.subset(held), out / f"fold{index + 1}", device)
        loss, acc = trainer.evaluate(train_val.subset(held))
        scores.append({"fold": index + 1, "val_loss": loss, "val_acc": acc, "train": len(rest), "val": len(held)})
    summary = {"k": k, "folds": scores, "test_samples_held_out": len(test)}
    for key in ("val_loss", "val_acc"):
        values = [s[key] for s in scores if s[key] is not None]
        if values:
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return summary


# ----------------------------------------------------------------- ensembles


def _probabilities(loss: str, z: np.ndarray) -> np.ndarray:
    if loss == "cross_entropy":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if loss == "bce":
        return 1.0 / (1.0 + np.exp(-z))
    return z


def ensemble(net: CheckedNetwork, settings: Settings, members: int, out: Path, device: str = "auto"
             ) -> dict[str, Any]:
    """Bagging: `members` models, each on a bootstrap sample of the training
    split; their predicted probabilities are averaged."""
    from .metrics import accuracy

    if members < 2:
        raise UserError("an ensemble needs at least 2 members")
    prepared = prepare(net, settings)
    split = settings["split"]
    train, val, test = datamod.split(prepared.data, split["val"], split["test"], settings["seed"])
    loss = settings["loss"]
    singles, probabilities = [], []
    for index in range(members):
        rng = np.random.default_rng([settings["seed"], 13, index])
        bootstrap = train.subset(rng.integers(0, len(train), len(train)))
        member = Settings({**settings.values, "seed": settings["seed"] + index})
        trainer = fit(net, member, bootstrap, val, out / f"member{index + 1}", device)
        z = trainer.session.predict(test.x)
        singles.append(accuracy(loss, z, test.y))
        probabilities.append(_probabilities(loss, z))
    averaged = np.mean(probabilities, axis=0)
    scores = averaged if loss not in ("bce",) else np.log(averaged / np.clip(1 - averaged, 1e-12, None))
    return {"members": members, "single_acc": singles, "mean_single_acc": float(np.mean(singles)),
            "ensemble_acc": accuracy(loss, scores, test.y), "test_samples": len(test)}


def describe(result: dict[str, Any]) -> str:
    """One line for the user."""
    if "fits" in result:
        verdict = ("the model can fit them" if result["fits"] else
                   "the model cannot fit them: check the learning rate, the loss and the labels")
        return (f"overfit {result['samples']} samples: loss {result['loss']:.4g} after {result['epochs']} epochs "
                f"(target < {result['target']:g}); {verdict}")
    if "folds" in result:
        parts = [f"{key} {v['mean']:.4f} ± {v['std']:.4f}" for key, v in result.items()
                 if isinstance(v, dict) and "mean" in v]
        return f"{result['k']}-fold cross-validation: " + ", ".join(parts)
    if "members" in result:
        return (f"ensemble of {result['members']}: accuracy {result['ensemble_acc']:.4f} vs single models "
                f"{result['mean_single_acc']:.4f} on average (min {min(result['single_acc']):.4f}, "
                f"max {max(result['single_acc']):.4f})")
    return str(result)



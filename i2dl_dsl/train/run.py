"""One training run from a checked network and its settings: the library
behind `i2dl-train`. The `train { }` section gives the defaults; explicit
settings (the command line) override them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler import CheckedNetwork
from ..diagnostics import UserError
from ..trainspec import OPTIMIZERS
from . import data as datamod
from .augment import make_augmenter
from ..files import save_arrays
from .loop import RunOptions, Trainer, write_result
from .losses import LOSSES
from .progress import plot
from .step import TrainConfig, build_step
from ..target import Target

DEFAULTS: dict[str, Any] = {"loss": "cross_entropy", "optimizer": {"name": "adam"}, "batch": 64, "epochs": 10,
                            "data": "digits", "seed": 0, "weight_decay": 0.0, "l1": 0.0, "l2": 0.0,
                            "split": {"val": 0.1, "test": 0.1}, "schedule": {"name": "constant"}}


@dataclass
class Settings:
    """The merged settings of a run: section, then overrides."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def merge(cls, section: dict[str, Any], overrides: dict[str, Any]) -> "Settings":
        given = {key: value for key, value in overrides.items() if value is not None}
        merged = {**DEFAULTS, **section, **{k: v for k, v in given.items() if k not in ("optimizer", "lr")}}
        optimizer = dict(merged["optimizer"])
        if given.get("optimizer", optimizer["name"]) != optimizer["name"]:
            optimizer = {"name": given["optimizer"]}  # another optimizer starts from its own defaults
        lr = given.get("lr", section.get("lr"))  # --lr, else the section's `lr` statement
        if lr is not None:
            optimizer["lr"] = lr
        merged["optimizer"] = optimizer
        return cls(merged)

    def optimizer(self) -> dict[str, Any]:
        """Name and every hyperparameter, defaults filled in from the signature."""
        chosen = dict(self.values["optimizer"])
        name = chosen["name"]
        if name not in OPTIMIZERS:
            raise UserError(f"unknown optimizer '{name}'; choose one of {', '.join(OPTIMIZERS)}")
        full = {p.name: p.default for p in OPTIMIZERS[name]}
        full.update({k: v for k, v in chosen.items() if k != "name"})
        return {"name": name, **full}

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def config_for(settings: Settings) -> TrainConfig:
    optimizer = settings.optimizer()
    return TrainConfig(loss=settings["loss"], optimizer={k: v for k, v in optimizer.items() if k != "lr"},
                       weight_decay=settings["weight_decay"], l1=settings["l1"], l2=settings["l2"],
                       frozen=tuple(settings.get("freeze", ())), lr_scale=dict(settings.get("lr_scale", {})),
                       seed=settings["seed"])


def prepare_data(net: CheckedNetwork, settings: Settings, integer_labels: bool):
    dataset = datamod.load(settings["data"], net.analysis.shapes[net.input])
    dataset = datamod.targets(dataset, integer_labels, net.analysis.shapes[net.output])
    split = settings["split"]
    return datamod.split(dataset, split["val"], split["test"], settings["seed"])


def train_network(net: CheckedNetwork, settings: Settings, out: Path, device: str = "auto", resume: bool = False,
                  quiet: bool = False, weights: dict[str, np.ndarray] | None = None,
                  threads: int | None = None) -> dict[str, Any]:
    """Train, evaluate on the test split once, write the run's files; returns the result."""
    if settings["optimizer"]["name"] == "lbfgs":  # full batch, driven by SciPy: lbfgs.py
        from .lbfgs import train_lbfgs

        return train_lbfgs(net, settings, out, device, resume, quiet, weights, threads)
    config = config_for(settings)
    train, val, test = prepare_data(net, settings, LOSSES[config.loss].integer_labels)  # data errors come first
    step = build_step(net, config, weights, target=Target.resolve(device))
    options = RunOptions(out=out, epochs=settings["epochs"], batch=settings["batch"], schedule=settings["schedule"],
                         early_stopping=settings.get("early_stopping"), resume=resume, device=device,
                         threads=threads, seed=settings["seed"], quiet=quiet)
    augment = make_augmenter(settings.get("augment", []), net.analysis.shapes[net.input])
    trainer = Trainer(net, step, settings.optimizer()["lr"], options, train, val, augment)
    if not quiet:
        print(f"training {net.name} on {settings['data']} ({len(train)} train, {len(val)} validation, {len(test)} test) "
              f"with {config.optimizer['name']}, {trainer.session.step_session.device_note}", file=sys.stderr)
    history = trainer.run()
    return _finish(net, trainer, history, test, out)


def _finish(net, trainer: Trainer, history, test, out: Path) -> dict[str, Any]:
    from ..onnx.export import save_model, to_onnx

    parameters = trainer.session.parameters()
    save_model(to_onnx(net, weights=parameters), out / "model.onnx")
    save_arrays(out / "weights.npz", parameters)
    test_loss, test_acc = trainer.evaluate(test) if len(test) else (None, None)
    plotted = plot(out / "curves.png", history, f"{net.name}")
    result = {"network": net.name, "epochs": len(history), "device": trainer.session.device,
              "test_loss": test_loss, "test_acc": test_acc, "test_samples": len(test),
              "best_epoch": trainer.best["epoch"] if trainer.o.early_stopping else None,
              "final": history[-1] if history else None, "plot": plotted}
    write_result(out / "result.json", result)
    return result

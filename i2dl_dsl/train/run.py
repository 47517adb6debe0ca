"""One training run from a checked network and its settings: the library
behind `i2dl-train`. The `train { }` section gives the defaults; explicit
settings (the command line) override them (settings.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..checker import CheckedNetwork
from ..target import Target
from .augment import make_augmenter
from .lbfgs import train_lbfgs
from .loop import RunOptions, Trainer
from .losses import resolve
from .results import finish
from .settings import Settings, config_for, prepare_data
from .step import build_step

__all__ = ["Settings", "config_for", "prepare_data", "train_network"]  # the settings' home is settings.py


def train_network(net: CheckedNetwork, settings: Settings, out: Path, device: str = "auto", resume: bool = False,
                  quiet: bool = False, weights: dict[str, np.ndarray] | None = None,
                  threads: int | None = None) -> dict[str, Any]:
    """Train, evaluate on the test split once, write the run's files; returns the result."""
    if settings.full_batch():  # full batch, driven by SciPy: lbfgs.py
        return train_lbfgs(net, settings, out, device, resume, quiet, weights, threads)
    config = config_for(settings)
    train, val, test = prepare_data(net, settings, resolve(config.loss).integer_labels)  # data errors come first
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
    return finish(net, trainer.session, step.loss, history, test, out, net.name,
                  best_epoch=trainer.best["epoch"] if trainer.stopping else None)

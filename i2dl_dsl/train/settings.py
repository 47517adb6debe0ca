"""The settings of one training run: the `train { }` section, then the
command line over it, read into the training configuration. Defaults come
from the registries (losses, optimizers, schedules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..checker import CheckedNetwork
from ..diagnostics import Diagnostics, UserError, did_you_mean
from ..names import scopes
from ..trainspec import SPLIT, check_train
from . import data as datamod
from .augment import make_augmenter
from .losses import LOSSES
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES
from .step import TrainConfig

DEFAULTS: dict[str, Any] = {"loss": LOSSES.default, "optimizer": {"name": OPTIMIZERS.default}, "batch": 64,
                            "epochs": 10, "data": "digits", "seed": 0, "weight_decay": 0.0, "l1": 0.0, "l2": 0.0,
                            "split": {p.name: p.default for p in SPLIT}, "schedule": {"name": SCHEDULES.default}}


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
        entry, options = OPTIMIZERS.split(self.values["optimizer"])
        return {"name": entry.name, **options}

    def full_batch(self) -> bool:
        """Whether the optimizer drives its own full-batch loop (lbfgs)."""
        return OPTIMIZERS[self.values["optimizer"]["name"]].full_batch

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def section_overrides(augment: str | None, freeze: str | None, lr_scale: list[str] | None) -> dict[str, Any]:
    """`--augment`, `--freeze` (comma-separated names) and `--lr-scale`
    (NAME=FACTOR each), read as the train-section statements they stand for."""
    from ..syntax.parser import parse_text

    lines = []
    if augment:
        lines.append(f"augment {augment}")
    if freeze:
        lines.append("freeze " + ", ".join(n.strip() for n in freeze.split(",")))
    if lr_scale:
        lines.append("lr_scale " + ", ".join(lr_scale))
    if not lines:
        return {}
    module = parse_text("train {\n" + "\n".join(lines) + "\n}\n", "<command line>")
    diags = Diagnostics()
    spec = check_train(module.trains[0], diags)
    diags.raise_if_errors()
    return spec


def check_settings(net: CheckedNetwork, settings: Settings) -> None:
    """What the network must agree with: the layers that `freeze` and
    `lr_scale` name exist, and the augmentations fit its input."""
    known = scopes(net.graph)
    for name in [*settings.get("freeze", ()), *settings.get("lr_scale", {})]:
        if name not in known:
            raise UserError(f"'{name}' is no layer or block of {net.name}", did_you_mean(name, known))
    shapes = net.analysis.shapes
    make_augmenter(settings.get("augment", []), shapes[net.input], shapes[net.output])


def config_for(settings: Settings) -> TrainConfig:
    """The step's configuration. With an optimizer that decays the weights
    itself (adamw), the `weight_decay` statement is that decay, as it is
    torch.optim.AdamW's `weight_decay`, not a term added to the gradient."""
    optimizer = settings.optimizer()
    weight_decay = settings["weight_decay"]
    if OPTIMIZERS[optimizer["name"]].decays_weights and weight_decay:
        optimizer["weight_decay"], weight_decay = weight_decay, 0.0
    return TrainConfig(loss=settings["loss"], optimizer={k: v for k, v in optimizer.items() if k != "lr"},
                       weight_decay=weight_decay, l1=settings["l1"], l2=settings["l2"],
                       frozen=tuple(settings.get("freeze", ())), lr_scale=dict(settings.get("lr_scale", {})),
                       seed=settings["seed"])


def prepare_data(net: CheckedNetwork, settings: Settings, integer_labels: bool):
    dataset = datamod.load(settings["data"], net.analysis.shapes[net.input])
    dataset = datamod.targets(dataset, integer_labels, net.analysis.shapes[net.output])
    split = settings["split"]
    return datamod.split(dataset, split["val"], split["test"], settings["seed"])

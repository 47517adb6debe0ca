"""Hyperparameter search with successive halving.

    i2dl-train MODEL.net --search 'lr=1e-4..1e-1:log, batch=32|64|128, dropout=0..0.5' --trials 9

A space is a comma-separated list of `key=range`: `a..b` (uniform),
`a..b:log` (log-uniform) or `a|b|c` (choices). Keys are train settings
(lr, batch, weight_decay, l1, l2, epochs) or parameters of the network
(`network Name(dropout=0.3) { ... }`).

Successive halving ("if a combination starts performing better it usually
stays better"): every trial trains for a few epochs, the better half goes on
(resuming its checkpoint) for twice as many, and so on up to the full budget;
the weak runs are stopped early.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..diagnostics import UserError

SETTINGS = {"lr": float, "batch": int, "weight_decay": float, "l1": float, "l2": float, "epochs": int}


@dataclass(frozen=True)
class Dimension:
    key: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def sample(self, rng: np.random.Generator) -> Any:
        if self.choices:
            return self.choices[rng.integers(len(self.choices))]
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def grid(self, points: int) -> list[Any]:
        if self.choices:
            return list(self.choices)
        if self.log:
            return [float(v) for v in np.geomspace(self.low, self.high, points)]
        return [float(v) for v in np.linspace(self.low, self.high, points)]


_RANGE = re.compile(r"^(?P<low>[^.|:]+(?:\.\d+)?(?:[eE][+-]?\d+)?)\.\.(?P<high>[^|:]+?)(?P<log>:log)?$")


def _number(text: str, where: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"search space: '{text}' in '{where}' is not a number") from None
    return int(value) if value.is_integer() and re.fullmatch(r"[+-]?\d+", text.strip()) else value


def parse_space(text: str, network_params: set[str]) -> list[Dimension]:
    """`lr=1e-4..1e-1:log, batch=32|64` → dimensions; a clear error otherwise."""
    dims = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" not in part:
            raise UserError(f"search space: '{part}' is not key=range", "e.g. lr=1e-4..1e-1:log or batch=32|64|128")
        key, spec = (s.strip() for s in part.split("=", 1))
        if key not in SETTINGS and key not in network_params:
            known = sorted(SETTINGS) + sorted(network_params)
            raise UserError(f"search space: unknown key '{key}'", f"known: {', '.join(known)}")
        dims.append(_dimension(key, spec, part))
    if not dims:
        raise UserError("search space is empty", "e.g. --search 'lr=1e-4..1e-1:log, batch=32|64'")
    if len({d.key for d in dims}) != len(dims):
        raise UserError("search space names a key twice")
    return dims


def _dimension(key: str, spec: str, part: str) -> Dimension:
    if "|" in spec:
        return Dimension(key, tuple(_number(c, part) for c in spec.split("|")))
    match = _RANGE.match(spec)
    if not match:
        raise UserError(f"search space: cannot read '{part}'", "ranges are a..b or a..b:log, choices a|b|c")
    low, high = _number(match["low"], part), _number(match["high"], part)
    if not low < high:
        raise UserError(f"search space: in '{part}' the range is empty ({low} is not below {high})")
    if match["log"] and low <= 0:
        raise UserError(f"search space: a log range needs positive bounds, got '{part}'")
    if SETTINGS.get(key) is int:
        raise UserError(f"search space: '{key}' takes choices (a|b|c), not a range")
    return Dimension(key, low=float(low), high=float(high), log=bool(match["log"]))


def configurations(dims: list[Dimension], trials: int, strategy: str, seed: int) -> list[dict[str, Any]]:
    if strategy == "random":
        rng = np.random.default_rng([seed, 17])
        return [{d.key: d.sample(rng) for d in dims} for _ in range(trials)]
    points = max(2, round(trials ** (1 / max(1, sum(not d.choices for d in dims))))) if trials else 3
    grid = [dict(zip([d.key for d in dims], values)) for values in itertools.product(*(d.grid(points) for d in dims))]
    return grid[:trials] if trials else grid


@dataclass
class Trial:
    index: int
    config: dict[str, Any]
    score: float = -math.inf
    epochs: int = 0
    stopped_at: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def rungs(epochs: int, count: int) -> list[int]:
    """Epoch budgets of the rounds: ..., E/4, E/2, E; as many as halving needs."""
    rounds = max(1, math.ceil(math.log2(max(count, 1))) + 1)
    budgets = sorted({max(1, epochs >> (rounds - 1 - r)) for r in range(rounds)})
    return budgets


def successive_halving(trials: list[Trial], epochs: int,
                       train: Callable[[Trial, int, bool], tuple[float, list[dict[str, Any]]]]) -> list[Trial]:
    """`train(trial, until_epoch, resume)` trains a trial up to an epoch and
    returns its score (higher is better); the worse half stops each round."""
    alive = list(trials)
    for number, budget in enumerate(rungs(epochs, len(trials))):
        for trial in alive:
            trial.score, trial.history = train(trial, budget, number > 0)
            trial.epochs = budget
        if budget == epochs:
            break
        alive.sort(key=lambda t: t.score, reverse=True)
        keep = max(1, math.ceil(len(alive) / 2))
        for trial in alive[keep:]:
            trial.stopped_at = budget
        alive = alive[:keep]
    return sorted(trials, key=lambda t: (t.stopped_at is None, t.epochs, t.score), reverse=True)


def table(trials: list[Trial], metric: str) -> str:
    keys = list(trials[0].config) if trials else []
    header = ["#", *keys, "epochs", metric, "status"]
    rows = []
    for t in trials:
        values = [f"{t.config[k]:.4g}" if isinstance(t.config[k], float) else str(t.config[k]) for k in keys]
        status = "best" if t is trials[0] else ("stopped early" if t.stopped_at is not None else "finished")
        rows.append([str(t.index), *values, str(t.epochs), f"{t.score:.4f}", status])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def write_best(model: Path, config: dict[str, Any], section: dict[str, Any], out: Path) -> Path:
    """A copy of the model file whose `train { }` section holds the best
    configuration (and whose network parameters take the best values)."""
    text = model.read_text(encoding="utf-8")
    merged = {**section}
    for key, value in config.items():
        if key == "lr":
            optimizer = dict(section.get("optimizer", {"name": "adam"}))
            optimizer["lr"] = value
            merged["optimizer"] = optimizer
        elif key in SETTINGS:
            merged[key] = value
    body = _render_section(merged)
    for key, value in config.items():
        if key not in SETTINGS:
            text = re.sub(rf"(network\s+\w+\s*\([^)]*\b{key}\s*=\s*)[^,)]+", rf"\g<1>{value:g}", text)
    text = re.sub(r"\n?train\s*\{[^}]*\}\s*", "\n", text).rstrip() + "\n\n" + body
    target = out / "best.net"
    target.write_text(text, encoding="utf-8")
    return target


def _render_section(section: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, dict):
            name = v.get("name", "")
            args = ", ".join(f"{k}={_scalar(x)}" for k, x in v.items() if k != "name")
            return f"{name}({args})" if name else f"({args})"
        if isinstance(v, list):
            return ", ".join(value(x) for x in v)
        return _scalar(v)

    lines = ["train {"]
    for key, v in section.items():
        if key in ("early_stopping", "split") and isinstance(v, dict):
            lines.append(f"    {key}({', '.join(f'{k}={_scalar(x)}' for k, x in v.items())})")
        elif key == "lr_scale":
            lines.append(f"    lr_scale {', '.join(f'{k}={_scalar(x)}' for k, x in v.items())}")
        elif key == "data" and v != "digits":
            lines.append(f'    data "{v}"')
        else:
            lines.append(f"    {key} {value(v)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def run_search(model: Path, settings, space: str, trials: int, strategy: str, out: Path, device: str = "auto",
               params: dict[str, Any] | None = None) -> tuple[list[Trial], str, Path]:
    """Search, halving as it goes; returns the trials best first, the results
    table and the file holding the best configuration."""
    from ..compiler import check
    from .experiments import fit, prepare
    from .run import Settings

    base = check(model, params=params)
    dims = parse_space(space, set(base.graph.graph.get("params", {})))
    if trials < 1:
        raise UserError("--trials must be at least 1")
    configs = configurations(dims, trials, strategy, settings["seed"])
    prepared = prepare(base, settings)
    split = settings["split"]
    from . import data as datamod

    train_set, val_set, _ = datamod.split(prepared.data, split["val"], split["test"], settings["seed"])
    if not len(val_set):
        raise UserError("a search ranks trials on the validation split; it is empty", "use split(val=0.1, ...)")
    epochs = settings["epochs"]

    def train(trial: Trial, until: int, resume: bool):
        net_params = {k: v for k, v in trial.config.items() if k not in SETTINGS}
        net = check(model, params={**(params or {}), **net_params}) if net_params else base
        values = {**settings.values, **{k: v for k, v in trial.config.items() if k in SETTINGS and k != "lr"}}
        if "lr" in trial.config:
            values["optimizer"] = {**settings["optimizer"], "lr": trial.config["lr"]}
        trainer = fit(net, Settings(values), train_set, val_set, out / f"trial{trial.index}", device,
                      epochs=until, resume=resume, schedule_epochs=epochs)
        loss, acc = trainer.evaluate(val_set)
        return (acc if acc is not None else -loss), trainer.history

    ranked = successive_halving([Trial(i + 1, c) for i, c in enumerate(configs)], epochs, train)
    metric = "val_acc" if prepared.integer_labels or settings["loss"] == "bce" else "-val_loss"
    best = write_best(model, ranked[0].config, base.train, out)
    return ranked, table(ranked, metric), best

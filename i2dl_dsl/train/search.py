"""Hyperparameter search with successive halving.

    i2dl-train MODEL.net --search 'lr=1e-4..1e-1:log, batch=32|64|128, dropout=0..0.5' --trials 9

A space is a comma-separated list of `key=range`: `a..b` (uniform),
`a..b:log` (log-uniform) or `a|b|c` (choices). Keys are train settings
(lr, batch, weight_decay, l1, l2) or parameters of the network
(`network Name(dropout=0.3) { ... }`). `epochs` is the budget that halving
shares out, not a dimension.

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

from ..checker import check
from ..diagnostics import Span, UserError, value_text
from ..layers.base import Int
from ..syntax.parser import parse_text
from ..trainspec import SCALARS, section_text
from . import data as datamod
from .experiments import make_trainer, minibatch_only, prepare
from .loop import Diverged
from .settings import DEFAULTS, Settings

STRATEGIES = ("random", "grid")  # how configurations are picked; the first is the default
# The train settings a space may name, with their types.
SETTINGS = {key: SCALARS[key] for key in ("lr", "batch", "weight_decay", "l1", "l2")}


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
        if key == "epochs":
            raise UserError("search space: 'epochs' is the budget that successive halving shares out, "
                            "not a dimension", "set it with --epochs or in the train section")
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
        return Dimension(key, tuple(_setting(key, _number(c, part), part) for c in spec.split("|")))
    match = _RANGE.match(spec)
    if not match:
        raise UserError(f"search space: cannot read '{part}'", "ranges are a..b or a..b:log, choices a|b|c")
    low, high = _number(match["low"], part), _number(match["high"], part)
    if not low < high:
        raise UserError(f"search space: in '{part}' the range is empty ({low} is not below {high})")
    if match["log"] and low <= 0:
        raise UserError(f"search space: a log range needs positive bounds, got '{part}'")
    if isinstance(SETTINGS.get(key), Int):
        raise UserError(f"search space: '{key}' takes choices (a|b|c), not a range")
    return Dimension(key, low=float(_setting(key, low, part)), high=float(high), log=bool(match["log"]))


def _setting(key: str, value: float | int, part: str) -> float | int:
    """A train setting's value, checked as the train section checks it."""
    if key not in SETTINGS:
        return value  # a network parameter: checked with the network
    try:
        return SETTINGS[key].convert(value)
    except UserError as exc:
        raise UserError(f"search space: '{key}' in '{part}': {exc.message}") from None


def configurations(dims: list[Dimension], trials: int, strategy: str, seed: int) -> list[dict[str, Any]]:
    """`random`: `trials` draws, distinct where the space allows. `grid`: the
    whole grid, each range split into as many points as keep it near
    `trials` configurations (at least 2)."""
    if strategy == "random":
        rng = np.random.default_rng([seed, 17])
        drawn: list[dict[str, Any]] = []
        for _ in range(trials * 20):
            config = {d.key: d.sample(rng) for d in dims}
            if config not in drawn:
                drawn.append(config)
            if len(drawn) == trials:
                break
        return drawn
    ranges = sum(not d.choices for d in dims)
    combinations = math.prod(len(d.choices) for d in dims if d.choices)
    points = max(2, math.floor((trials / combinations) ** (1 / ranges) + 1e-9)) if ranges else 0
    values = [d.grid(points) for d in dims]
    return [dict(zip([d.key for d in dims], chosen)) for chosen in itertools.product(*values)]


@dataclass
class Trial:
    index: int
    config: dict[str, Any]
    score: float = -math.inf
    epochs: int = 0
    stopped_at: int | None = None
    diverged: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def rungs(epochs: int, count: int) -> list[int]:
    """Epoch budgets of the rounds: ..., E/4, E/2, E; as many as halving needs."""
    rounds = max(1, math.ceil(math.log2(max(count, 1))) + 1)
    budgets = sorted({max(1, epochs >> (rounds - 1 - r)) for r in range(rounds)})
    return budgets


def successive_halving(trials: list[Trial], epochs: int,
                       train: Callable[[Trial, int, bool], tuple[float, list[dict[str, Any]]]]) -> list[Trial]:
    """`train(trial, until_epoch, resume)` trains a trial up to an epoch and
    returns its score (higher is better; -inf for a run that diverged) and
    its history; the worse half stops each round, a diverged run at once.
    Returns the trials, those that went furthest first, each rung by score."""
    alive = list(trials)
    for number, budget in enumerate(rungs(epochs, len(trials))):
        for trial in alive:
            trial.score, trial.history = train(trial, budget, number > 0)
            trial.epochs = len(trial.history)
            trial.diverged = not math.isfinite(trial.score)
            if trial.diverged:
                trial.stopped_at = trial.epochs
        alive = sorted((t for t in alive if not t.diverged), key=lambda t: t.score, reverse=True)
        if budget == epochs:
            break
        keep = max(1, math.ceil(len(alive) / 2))
        for trial in alive[keep:]:
            trial.stopped_at = budget
        alive = alive[:keep]
    return rank(trials)


def table(trials: list[Trial], metric: str) -> str:
    """The results, one row per trial in the order given; `metric` is
    `val_acc` (the score) or `val_loss` (the score's negative)."""
    keys = list(trials[0].config) if trials else []
    header = ["#", *keys, "epochs", metric, "status"]
    rows = []
    for t in trials:
        values = [f"{t.config[k]:.4g}" if isinstance(t.config[k], float) else str(t.config[k]) for k in keys]
        shown = t.score if metric == "val_acc" else -t.score
        status = ("diverged" if t.diverged else "best" if t is trials[0] else
                  "stopped early" if t.stopped_at is not None else "finished")
        rows.append([str(t.index), *values, str(t.epochs), "-" if t.diverged else f"{shown:.4f}", status])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def best_section(config: dict[str, Any], section: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The train section of the best trial: the file's statements, every
    setting the command line changed, and the configuration's values; the
    learning rate goes into the optimizer."""
    merged = {**section, **{k: v for k, v in settings.items() if k in section or DEFAULTS.get(k) != v}}
    merged.pop("lr", None)
    merged.update({k: v for k, v in config.items() if k in SETTINGS and k != "lr"})
    if "lr" in config:
        merged["optimizer"] = {**merged.get("optimizer", DEFAULTS["optimizer"]), "lr": config["lr"]}
    return merged


def write_best(model: Path, config: dict[str, Any], section: dict[str, Any], out: Path,
               params: dict[str, Any] | None = None) -> Path:
    """A copy of the model file whose `train { }` section is `section` and
    whose network parameters default to the configuration's values (and to
    those set with --param). The file is edited where its syntax tree says
    the defaults and the section are; the section is written by trainspec."""
    text = model.read_text(encoding="utf-8")
    module = parse_text(text, str(model))
    values = {**(params or {}), **{k: v for k, v in config.items() if k not in SETTINGS}}
    edits = [(p.default.span, value_text(values[p.name])) for network in module.networks for p in network.params
             if p.name in values and p.default is not None]
    # A section's lines go as a whole; the new section is written at the end.
    edits += [(Span(t.span.path, t.span.line, 1, t.span.end_line + 1, 1), "") for t in module.trains]
    text = _edit(text, edits).rstrip() + "\n\n"
    target = out / "best.net"
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(text + section_text(section), encoding="utf-8")
    return target


def _edit(text: str, edits: list[tuple[Span, str]]) -> str:
    """`text` with each span replaced (spans do not overlap)."""
    starts = list(itertools.accumulate((len(line) + 1 for line in text.split("\n")), initial=0))

    def offset(line: int, col: int) -> int:
        return min(starts[line - 1] + col - 1, len(text)) if line <= len(starts) - 1 else len(text)

    for span, replacement in sorted(edits, key=lambda e: (e[0].line, e[0].col), reverse=True):
        start, end = offset(span.line, span.col), offset(span.end_line, span.end_col)
        text = text[:start] + replacement + text[end:]
    return text


@dataclass
class Plan:
    """A search checked and ready to train: its configurations and data."""

    base: Any                # the checked network at the file's defaults
    configs: list[dict[str, Any]]
    train_set: datamod.Dataset
    val_set: datamod.Dataset
    integer_labels: bool


def plan_search(model: Path, settings, space: str, trials: int, strategy: str,
                params: dict[str, Any] | None = None) -> Plan:
    """Every mistake in the space reported before training; the configurations and the split."""
    base = check(model, params=params)
    dims = parse_space(space, set(base.graph.graph.get("params", {})))
    if trials < 1:
        raise UserError("--trials must be at least 1")
    minibatch_only(settings, "--search")
    configs = configurations(dims, trials, strategy, settings["seed"])
    prepared = prepare(base, settings)
    split = settings["split"]
    train_set, val_set, _ = datamod.split(prepared.data, split["val"], split["test"], settings["seed"])
    if not len(val_set):
        raise UserError("a search ranks trials on the validation split; it is empty", "use split(val=0.1, ...)")
    for config in configs:  # every network the space names must check
        trial_network(model, base, config, params)
    return Plan(base, configs, train_set, val_set, prepared.integer_labels)


def run_search(model: Path, settings, space: str, trials: int, strategy: str, out: Path, device: str = "auto",
               params: dict[str, Any] | None = None, weights: dict[str, np.ndarray] | None = None
               ) -> tuple[list[Trial], str, Path | None]:
    """Search, halving as it goes; returns the trials best first, the results
    table and the file holding the best configuration (None when every
    trial diverged). Every mistake in the space is reported before training."""
    plan = plan_search(model, settings, space, trials, strategy, params)
    epochs = settings["epochs"]
    train = _trainer(model, plan.base, settings, params, weights, plan.train_set, plan.val_set, out, device, epochs)
    ranked = successive_halving([Trial(i + 1, c) for i, c in enumerate(plan.configs)], epochs, train)
    return conclude(model, plan, ranked, settings, out, params)


def rank(trials: list[Trial]) -> list[Trial]:
    """Those that went furthest first, each rung by score; diverged runs last."""
    return sorted(trials, key=lambda t: (not t.diverged, t.stopped_at is None, t.epochs, t.score), reverse=True)


def conclude(model: Path, plan: Plan, ranked: list[Trial], settings, out: Path, params: dict[str, Any] | None
             ) -> tuple[list[Trial], str, Path | None]:
    """The table of the ranked trials, and best.net from the first (none when every trial diverged)."""
    scored = [t for t in ranked if not t.diverged]
    classifies = scored[0].history[-1].get("val_acc") is not None if scored else plan.integer_labels
    metric = "val_acc" if classifies else "val_loss"
    best = None
    if not ranked[0].diverged:
        section = best_section(ranked[0].config, plan.base.train, settings.values)
        best = write_best(model, ranked[0].config, section, out, params)
    return ranked, table(ranked, metric), best


def trial_settings(settings, config: dict[str, Any]) -> Settings:
    """A trial's settings: the run's, with the configuration's train settings (lr into the optimizer)."""
    values = {**settings.values, **{k: v for k, v in config.items() if k in SETTINGS and k != "lr"}}
    if "lr" in config:
        values["optimizer"] = {**settings["optimizer"], "lr": config["lr"]}
    return Settings(values)


def trial_network(model: Path, base, config: dict[str, Any], params: dict[str, Any] | None):
    net_params = {k: v for k, v in config.items() if k not in SETTINGS}
    return check(model, params={**(params or {}), **net_params}) if net_params else base


def _trainer(model, base, settings, params, weights, train_set, val_set, out: Path, device: str, epochs: int
             ) -> Callable[[Trial, int, bool], tuple[float, list[dict[str, Any]]]]:
    """train(trial, until, resume) for successive_halving: the validation
    accuracy (or the negative loss) after training up to `until` epochs."""

    def train(trial: Trial, until: int, resume: bool) -> tuple[float, list[dict[str, Any]]]:
        net = trial_network(model, base, trial.config, params)
        run = make_trainer(net, trial_settings(settings, trial.config), train_set, val_set, out / f"trial{trial.index}", device,
                      epochs=until, resume=resume, weights=weights, schedule_epochs=epochs)
        try:
            run.run()
        except Diverged:
            return -math.inf, [*run.history, {"epoch": len(run.history) + 1, "diverged": True}]
        loss, acc = run.evaluate(val_set)
        return (acc if acc is not None else -loss), run.history

    return train

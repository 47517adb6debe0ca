"""Full-batch L-BFGS (Liu & Nocedal 1989): `optimizer lbfgs(history, max_iter)`.

For small data sets with little redundancy a mini-batch gradient is hardly
cheaper than the full one, and the full one is exact: a quasi-Newton method
with a line search then converges in far fewer passes than SGD or Adam.
SciPy's L-BFGS-B does the optimisation; each evaluation of the objective is
one onnxruntime run of the training-step graph over the whole training split,
with its gradients exposed (`grad/<param>`) and a learning rate of 0, so the
graph's own update leaves the parameters as they are.

    f(θ) = loss(θ) + l1/l2 penalties (in the graph) + ½·weight_decay·|θ|²

`history` is the number of correction pairs kept (SciPy's `maxcor`),
`max_iter` the number of iterations; `lr` is not used, since the line search
chooses every step. Frozen layers stay as they are. Dropout and batch norm
make the loss of one set of parameters change from one evaluation to the
next (fresh masks, moving running statistics), which breaks the line search:
networks with them are refused, with a hint.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..checker import CheckedNetwork
from ..diagnostics import Diagnostic, UserError, render
from ..elaborate import layer_node
from ..target import Target
from . import data as datamod
from .loop import Diverged, Interrupted
from .losses import Loss, resolve
from .progress import write_csv
from .results import evaluate, finish
from .rundir import METRICS
from .schedules import SCHEDULES
from .session import TrainingSession
from .settings import Settings, config_for, prepare_data
from .step import StepModel, build_step


@dataclass
class Objective:
    """f(θ) and ∇f(θ) over one data set, θ the trainable parameters flattened."""

    session: TrainingSession
    data: datamod.Dataset
    weight_decay: float = 0.0
    evaluations: int = 0
    last: tuple[np.ndarray, float, np.ndarray, np.ndarray] | None = None  # θ, f, ∇f, output: the latest run

    def __post_init__(self) -> None:
        values = self.session.parameters()
        self.names = list(self.session.spec.trainable)
        self.shapes = [values[n].shape for n in self.names]
        self.bounds = np.cumsum([0] + [int(np.prod(s)) for s in self.shapes])

    def flat(self) -> np.ndarray:
        values = self.session.parameters()
        return np.concatenate([values[n].ravel() for n in self.names]).astype(np.float64)

    def unflat(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        return {name: theta[lo:hi].reshape(shape).astype(np.float32)
                for name, shape, lo, hi in zip(self.names, self.shapes, self.bounds[:-1], self.bounds[1:])}

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        if self.last is not None and np.array_equal(self.last[0], theta):
            return self.last[1], self.last[2].copy()
        self.session.load(self.unflat(theta))
        loss, output = self.session.train_step(self.data.x, self.data.y, {}, 0.0, 1)
        grads = self.session.last_gradients
        gradient = np.concatenate([grads[n].numpy().ravel() for n in self.names]).astype(np.float64)
        if self.weight_decay:
            loss += 0.5 * self.weight_decay * float(theta @ theta)
            gradient += self.weight_decay * theta
        loss = loss if np.isfinite(loss) else np.inf
        self.evaluations += 1
        self.last = (theta.copy(), loss, gradient, output)
        return loss, gradient.copy()

    def output_at(self, theta: np.ndarray) -> np.ndarray:
        """The network's training-mode output at θ (the latest evaluation's when it was there)."""
        self(theta)
        return self.last[3]


@dataclass
class Result:
    theta: np.ndarray
    iterations: int
    evaluations: int
    message: str
    history: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C stopped it; the last finished iteration is kept


def minimize(objective: Objective, history: int = 10, max_iter: int = 100,
             on_iteration: Callable[[int, np.ndarray, float], dict[str, Any] | None] | None = None) -> Result:
    """Run L-BFGS from the session's current parameters; `on_iteration(k, θ,
    f)` may return a metrics row for iteration k. Ctrl-C stops after the last
    finished iteration, which is kept."""
    from scipy.optimize import minimize as scipy_minimize

    theta0 = objective.flat()
    first, _ = objective(theta0)
    if not np.isfinite(first):
        raise Diverged(f"the loss at the initial parameters is {first}; L-BFGS cannot start",
                       "check the data for NaN/Inf values and the initialisation")
    result = Result(theta0, 0, objective.evaluations, "")

    def callback(intermediate_result) -> None:
        result.iterations += 1
        result.theta = intermediate_result.x.copy()
        row = on_iteration(result.iterations, result.theta, float(intermediate_result.fun)) if on_iteration else None
        if row is not None:
            result.history.append(row)

    try:
        found = scipy_minimize(objective, theta0, jac=True, method="L-BFGS-B", callback=callback,
                               options={"maxcor": history, "maxiter": max_iter})
        result.theta, result.message = found.x, str(found.message)
    except KeyboardInterrupt:
        result.message = f"interrupted after {result.iterations} iterations"
        result.interrupted = True
    result.evaluations = objective.evaluations
    return result


def _refuse_network(net: CheckedNetwork, step: StepModel) -> None:
    if step.masks:
        names = sorted(name.rsplit(".", 1)[0] for name in step.masks)  # masks are <layer>.<suffix>
        kinds = " and ".join(sorted({layer_node(net.graph, name).layer.kind for name in names}))
        raise UserError(f"optimizer lbfgs needs the same loss for the same parameters, but {kinds} "
                        f"({', '.join(names)}) {'draws' if len(names) == 1 else 'draw'} new masks at every evaluation",
                        f"remove the {kinds} layers, or train with adam or sgd")
    if step.buffers:
        layers = [layer_node(net.graph, name).layer for name in sorted({b.rsplit(".", 1)[0] for b in step.buffers})]
        moving = "; ".join(sorted({f"{layer.label} updates its {layer.holds or 'buffers'}" for layer in layers}))
        raise UserError(f"optimizer lbfgs needs the same loss for the same parameters, but {moving} at every "
                        "evaluation", "train this network with adam or sgd")


def _refuse_settings(settings: Settings, resume: bool) -> None:
    scheduled = settings["schedule"].get("name", SCHEDULES.default) != SCHEDULES.default
    stochastic = [key for key, unused in (("schedule", scheduled),
                                          ("augment", bool(settings.get("augment"))),
                                          ("early_stopping", bool(settings.get("early_stopping"))),
                                          ("lr_scale", bool(settings.get("lr_scale"))))
                  if unused]
    if stochastic:
        raise UserError(f"optimizer lbfgs minimises the full-batch loss with a line search; "
                        f"{', '.join(stochastic)} do not apply to it", "remove them, or train with adam or sgd")
    if resume:
        raise UserError("an lbfgs run has no checkpoint to resume", "start from its weights: --weights RUN/weights.npz")


def train_lbfgs(net: CheckedNetwork, settings: Settings, out: Path, device: str = "auto", resume: bool = False,
                quiet: bool = False, weights: dict[str, np.ndarray] | None = None,
                threads: int | None = None) -> dict[str, Any]:
    """`i2dl-train` with `optimizer lbfgs`: train, evaluate on the test split,
    write model.onnx, weights.npz, metrics.csv (a row per iteration),
    curves.png and result.json; returns the result."""
    options = settings.optimizer()
    _refuse_settings(settings, resume)
    config = replace(config_for(Settings({**settings.values, "optimizer": {"name": "sgd"}})), weight_decay=0.0,
                     expose_gradients=True)
    train, val, test = prepare_data(net, settings, resolve(config.loss).integer_labels)  # data errors come first
    step = build_step(net, config, weights, target=Target.resolve(device))
    _refuse_network(net, step)
    session = TrainingSession(step, device, threads)
    if not quiet:
        print(f"training {net.name} on {settings['data']} ({len(train)} train, {len(val)} validation, {len(test)} "
              f"test) with full-batch lbfgs(history={options['history']}, max_iter={options['max_iter']}), "
              f"{session.step_session.device_note}", file=sys.stderr)
        if options["lr"] != 1.0:
            print(render(Diagnostic("note", f"lbfgs does not use lr={options['lr']:g}: the line search picks every "
                                    "step")), file=sys.stderr)
    objective = Objective(session, train, settings["weight_decay"])
    report = _Report(objective, val, step.loss, options["max_iter"], quiet)
    out.mkdir(parents=True, exist_ok=True)
    result = minimize(objective, options["history"], options["max_iter"], report)
    if not quiet:
        print(f"lbfgs stopped after {result.iterations} iterations, {result.evaluations} evaluations: "
              f"{_plain(result.message)}", file=sys.stderr)
    session.load(objective.unflat(result.theta))
    write_csv(out / METRICS, result.history)
    done = finish(net, session, step.loss, result.history, test, out,
                  f"{net.name} (L-BFGS: one point per iteration)", optimizer="lbfgs", iterations=result.iterations,
                  evaluations=result.evaluations, message=result.message, best_epoch=None)
    if result.interrupted:  # saved like a finished run, but the command still says it was stopped (exit 130)
        raise Interrupted(f"interrupted: the last iterate's model and weights are saved in {out}\n"
                          f"hint: continue from them with --weights {out / 'weights.npz'}")
    return done


_REASONS = {  # SciPy's stopping messages, in words
    "RELATIVE REDUCTION OF F": "the loss stopped decreasing",
    "PROJECTED GRADIENT": "the gradient vanished",
    "ITERATIONS REACHED LIMIT": "max_iter reached",
    "EVALUATIONS EXCEEDS LIMIT": "too many evaluations",
    "ABNORMAL": "the line search found no lower loss (float32 precision reached, or a non-smooth loss)",
}


def _plain(message: str) -> str:
    return next((reason for key, reason in _REASONS.items() if key in message.upper()), message)


class _Report:
    """A metrics row per iteration: the full-batch training loss, validation
    loss and accuracy, and the progress line."""

    def __init__(self, objective: Objective, val: datamod.Dataset, loss: Loss, max_iter: int, quiet: bool):
        self.objective, self.val, self.loss, self.max_iter, self.quiet = objective, val, loss, max_iter, quiet
        self.clock, self.evaluations = time.perf_counter(), 0
        self.every = max(1, max_iter // 20)

    def __call__(self, iteration: int, theta: np.ndarray, value: float) -> dict[str, Any]:
        o = self.objective
        train_acc = self.loss.accuracy(o.output_at(theta), o.data.y)
        seconds, self.clock = time.perf_counter() - self.clock, time.perf_counter()
        passes, self.evaluations = o.evaluations - self.evaluations, o.evaluations
        row: dict[str, Any] = {"epoch": iteration, "lr": None, "train_loss": value, "train_acc": train_acc,
                               "samples_per_s": passes * len(o.data) / max(seconds, 1e-9), "seconds": seconds,
                               "evaluations": o.evaluations}
        if len(self.val):
            o.session.load(o.unflat(theta))
            row["val_loss"], row["val_acc"] = evaluate(o.session, self.loss, self.val)
        if not self.quiet and (iteration % self.every == 0 or iteration == self.max_iter):
            shown = [f"loss {value:.6g}"] + [f"{k} {row[k]:.4f}" for k in ("train_acc", "val_loss", "val_acc")
                                            if row.get(k) is not None]
            print(f"iteration {iteration}/{self.max_iter} " + " ".join(shown) + f" ({o.evaluations} evaluations)",
                  file=sys.stderr)
        return row

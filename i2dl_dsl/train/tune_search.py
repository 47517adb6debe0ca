"""The search on Ray Tune: each configuration a Tune trial, successive
halving as Tune's ASHA scheduler.

The space, the configurations (`--trials`, `--strategy`), the split, the
table and best.net are search.py's; only the halving differs. ASHA is
asynchronous: a trial is stopped as soon as it falls in the lower half of
the trials that reached the same rung (epochs 1, 2, 4, ... as search.rungs),
so a freed worker starts the next trial at once instead of waiting for a
whole round. Each trial trains in the same loop as locally, reports after
every epoch and hands its checkpoint to Tune: a trial whose worker dies is
restarted from its last epoch (FailureConfig), and an interrupted search
continues where it stopped (`--resume`, Tuner.restore).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import Backend
from .cluster import connect, threads
from .experiments import make_trainer
from .loop import Diverged, Interrupted
from .rundir import CHECKPOINT
from .search import Plan, Trial, conclude, plan_search, rank, rungs, trial_network, trial_settings

TUNE_DIR = "tune"      # Tune's own records of the search, under the run directory
MAX_FAILURES = 2       # restarts of a trial whose worker died
KILLED = ".fault-injected"


@dataclass
class Context:
    """What every trial needs, shipped once to the cluster (tune.with_parameters)."""

    model: Path
    plan: Plan
    settings: Any
    params: dict[str, Any] | None
    weights: dict[str, np.ndarray] | None
    out: Path
    device: str
    threads: int | None
    fault: tuple[int, int] | None = None  # (trial, epoch): that trial's worker dies once after that epoch (tests)


def run_tune(model: Path, settings, space: str, trials: int, strategy: str, out: Path, backend: Backend,
             device: str = "auto", params: dict[str, Any] | None = None,
             weights: dict[str, np.ndarray] | None = None, resume: bool = False,
             fault: tuple[int, int] | None = None) -> tuple[list[Trial], str, Path | None]:
    """search.run_search on Ray Tune with ASHA; the same results: the trials
    best first, the table, best.net."""
    plan = plan_search(model, settings, space, trials, strategy, params)
    # Tune warns each time it saves the experiment's state faster than every 5 s: with per-epoch
    # checkpoints of small models it always does, and the warning says nothing a user can act on.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the table below is the report; no progress boxes
    connect(backend)
    out = out.resolve()
    context = Context(model.resolve(), plan, settings, params, weights, out, device, threads(backend), fault)
    results = _tuner(context, backend, resume).fit()
    _check_complete(out / TUNE_DIR)
    ranked = rank([_trial(index, config, results, settings["epochs"]) for index, config in enumerate(plan.configs)])
    return conclude(model, plan, ranked, settings, out, params)


def _tuner(context: Context, backend: Backend, resume: bool):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    trainable = tune.with_resources(tune.with_parameters(_trainable, context=context),
                                    {"cpu": backend.cpus_per_worker, "gpu": backend.gpus_per_worker})
    path = context.out / TUNE_DIR
    if resume and tune.Tuner.can_restore(str(path)):
        return tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True)
    epochs = context.settings["epochs"]
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=epochs, reduction_factor=2,
                              grace_period=rungs(epochs, len(context.plan.configs))[0])
    return tune.Tuner(
        trainable, param_space={"trial": tune.grid_search(list(range(len(context.plan.configs))))},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(name=TUNE_DIR, storage_path=str(context.out), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))


class TrialFailed(RuntimeError):
    """A trial failed more often than Tune retries it."""


def _check_complete(path: Path) -> None:
    """Every trial finished or was stopped by ASHA; after Ctrl-C (Tune ends
    the run and saves its state) the search is interrupted, not over."""
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(str(path)).trials
    failed = [t for t in trials if t.status == "ERROR"]
    if failed:
        raise TrialFailed(f"trial {failed[0].config['trial'] + 1} failed {MAX_FAILURES + 1} times; "
                          f"Tune's record of it is in {failed[0].path}")
    if any(t.status != "TERMINATED" for t in trials):
        raise Interrupted(f"interrupted: the search's state is saved in {path}\n"
                          f"hint: continue with --resume --out {path.parent}")


def _trainable(config: dict[str, Any], context: Context) -> None:
    """One trial: the local search's training of a configuration, reporting
    and checkpointing after every epoch; ASHA stops it when it falls behind."""
    from ray import tune

    index = config["trial"]
    chosen = context.plan.configs[index]
    out = context.out / f"trial{index + 1}"
    out.mkdir(parents=True, exist_ok=True)
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            shutil.copyfile(Path(folder) / CHECKPOINT, out / CHECKPOINT)
    epochs = context.settings["epochs"]
    net = trial_network(context.model, context.plan.base, chosen, context.params)
    run = make_trainer(net, trial_settings(context.settings, chosen), context.plan.train_set, context.plan.val_set,
                       out, context.device, epochs=epochs, resume=restored is not None, weights=context.weights,
                       schedule_epochs=epochs, threads=context.threads)
    run.o.after_epoch = lambda trainer, row: _report(trainer, row, index, context)
    try:
        run.run()
    except Diverged:
        tune.report({"score": -math.inf, "diverged": 1, "epoch": len(run.history) + 1})


def _report(trainer, row: dict[str, Any], index: int, context: Context) -> bool:
    """Hand the epoch's score and checkpoint to Tune (the loop has just written it)."""
    from ray import tune

    score = row["val_acc"] if row.get("val_acc") is not None else -row["val_loss"]
    metrics = {"score": score, "diverged": 0, **{k: v for k, v in row.items() if isinstance(v, (int, float))}}
    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(trainer.o.out / CHECKPOINT, Path(folder) / CHECKPOINT)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
    _inject_fault(index, row["epoch"], trainer.o.out, context)
    return False


def _inject_fault(index: int, epoch: int, out: Path, context: Context) -> None:
    """Tests: the worker of trial `fault[0]` dies after epoch `fault[1]`, once."""
    if context.fault == (index + 1, epoch) and not (out / KILLED).exists():
        (out / KILLED).touch()
        os.kill(os.getpid(), signal.SIGKILL)


def _trial(index: int, config: dict[str, Any], results, epochs: int) -> Trial:
    """A Tune result as search.Trial: epochs trained, last score, where it stopped."""
    found = [r for r in results if r.config and r.config.get("trial") == index]
    metrics = found[0].metrics if found and found[0].metrics else {}
    trial = Trial(index + 1, config)
    trial.diverged = bool(metrics.get("diverged", 1))
    trial.epochs = int(metrics.get("training_iteration", 0))  # a diverged epoch counts, as in search.py
    trial.score = float(metrics.get("score", -math.inf))
    trial.history = [{k: metrics[k] for k in ("val_loss", "val_acc") if k in metrics}]
    if trial.diverged or trial.epochs < epochs:
        trial.stopped_at = trial.epochs
    return trial

"""Data-parallel training on Ray Train: `--backend ray --workers N`.

Every worker runs the compiler's training step, split into its gradient and
update parts (split.py), on its share of every global batch (shard.py):

- the batches, dropout masks and augmentations are drawn for the whole
  global batch from the seeded generators the local loop uses, and each
  worker takes its contiguous rows, so N workers see exactly what one
  process sees;
- the gradients, weighted by each worker's share, are summed with
  `torch.distributed.all_reduce` in the gloo process group Ray Train sets
  up, over host arrays (onnxruntime's outputs come to the host between the
  two parts; NCCL on device buffers handed over by DLPack is not done
  yet), then every worker applies the same update:
  the weights stay identical on all workers and equal one process's up to
  the order of floating-point sums;
- batch norm normalises with each worker's own batch statistics, as
  PyTorch's DistributedDataParallel does (no SyncBatchNorm); the running
  statistics are rank 0's, broadcast to every worker after each step, as
  DDP's `broadcast_buffers` does before each forward pass;
- rank 0 alone evaluates and writes the checkpoint after every epoch
  (atomically, checkpoint.py) and hands it to Ray Train; a worker that dies
  makes Ray Train restart the group (FailureConfig), which resumes from the
  last checkpoint: at most one epoch is lost.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checker import CheckedNetwork
from ..diagnostics import UserError
from ..target import Target
from . import checkpoint, data as datamod
from .augment import make_augmenter
from .backends import Backend
from .cluster import connect, threads
from .experiments import minibatch_only
from .loop import Interrupted, check_batch_statistics, random_inputs
from .losses import resolve
from .progress import write_csv
from .results import finish
from .rundir import BEST, CHECKPOINT, METRICS
from .schedules import learning_rate
from .session import TrainingSession
from .settings import Settings, config_for, prepare_data
from .shard import ShardStep, shard
from .split import build_split
from .step import build_step
from .stopping import early_stopping

TRAIN_DIR = "ray-train"  # Ray Train's own records, under the run directory
MAX_FAILURES = 2
KILLED = ".fault-injected"
# The local loop's position fields (loop.py), so that either backend can resume the other's checkpoint.
FRESH = {"epoch": 0, "batch": 0, "step": 0, "sum_loss": 0.0, "correct": 0.0, "seen": 0, "seconds": 0.0}
STARTED = ".ray-train-started"  # rank 0 marks the run's first attempt: a later one is a restart


@dataclass
class Job:
    """What every worker needs, shipped once."""

    net: CheckedNetwork
    settings: Settings
    weights: dict[str, np.ndarray] | None
    out: Path
    device: str
    threads: int | None
    resume: bool
    token: str = ""                              # names this run's attempt marker (see _restore)
    fault: tuple[int, int, int] | None = None  # (rank, epoch, batch) at which that worker dies once (tests)


def train_parallel(net: CheckedNetwork, settings: Settings, out: Path, backend: Backend, device: str = "auto",
                   resume: bool = False, quiet: bool = False, weights: dict[str, np.ndarray] | None = None,
                   fault: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """Train over `backend.workers` Ray workers; writes the run's files as
    train_network does and returns the result."""
    minibatch_only(settings, "--workers")
    config = config_for(settings)
    train, _, test = prepare_data(net, settings, resolve(config.loss).integer_labels)  # data errors come first
    if settings["batch"] < backend.workers:
        raise UserError(f"a global batch of {settings['batch']} cannot be shared by {backend.workers} workers",
                        f"use --batch {backend.workers} or more, or fewer --workers")
    check_batch_statistics(net, min(settings["batch"], len(train)) // backend.workers)
    connect(backend)
    out = out.resolve()
    if not resume:  # nothing of an earlier run here (--overwrite) may be taken for this one's progress
        (out / CHECKPOINT).unlink(missing_ok=True)
        shutil.rmtree(out / TRAIN_DIR, ignore_errors=True)
    job = Job(net, settings, weights, out, device, threads(backend), resume, secrets.token_hex(4), fault)
    try:
        _trainer(job, backend).fit()
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: the last finished epoch's checkpoint is {out / CHECKPOINT}\n"
                          f"hint: continue with --resume --out {out}") from None
    finally:
        (out / f"{STARTED}-{job.token}").unlink(missing_ok=True)
    tensors, meta = checkpoint.load(out / CHECKPOINT)
    step = build_step(net, config, weights, target=Target.resolve(device))
    session = TrainingSession(step, device)
    session.load(tensors)
    stopping = early_stopping(settings.get("early_stopping"))
    if stopping and stopping.restore_best and meta["best"]["epoch"] >= 0:
        session.load(checkpoint.load(out / BEST)[0])
    if not quiet:
        print(f"trained {net.name} on {backend.workers} Ray worker(s)", file=sys.stderr)
    return finish(net, session, step.loss, meta["history"], test, out, net.name, workers=backend.workers,
                  restarts=meta.get("restarts", []), best_epoch=meta["best"]["epoch"] if stopping else None)


def _trainer(job: Job, backend: Backend):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    gpu = backend.gpus_per_worker > 0
    # gloo also on GPU workers: the step's tensors come to the host between the two parts (see the module doc).
    return TorchTrainer(
        _worker, train_loop_config={"job": job}, torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(num_workers=backend.workers, use_gpu=gpu,
                                     resources_per_worker={"CPU": backend.cpus_per_worker,
                                                           **({"GPU": backend.gpus_per_worker} if gpu else {})}),
        run_config=RunConfig(name=TRAIN_DIR, storage_path=str(job.out),
                             failure_config=FailureConfig(max_failures=MAX_FAILURES),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)))


def _worker(config: dict[str, Any]) -> None:
    """One worker's training loop (Ray Train's train_loop_per_worker)."""
    import ray.train
    import torch.distributed as dist

    job: Job = config["job"]
    rank, size = ray.train.get_context().get_world_rank(), ray.train.get_context().get_world_size()
    s = job.settings
    split = build_split(job.net, config_for(s), job.weights, target=Target.resolve(job.device))
    worker = ShardStep(split, split.step.target.device, job.threads)
    train, val, _ = prepare_data(job.net, s, split.step.loss.integer_labels)
    augment = make_augmenter(s.get("augment", []), job.net.analysis.shapes[job.net.input],
                             job.net.analysis.shapes[job.net.output])
    position, history, restarts, best = _restore(worker, job, rank)
    stopping = early_stopping(s.get("early_stopping"))

    def reduce(vector: np.ndarray) -> np.ndarray:
        import torch

        start = time.perf_counter()
        tensor = torch.from_numpy(vector)  # shares the array's memory: no copy on the way in or out
        dist.all_reduce(tensor)
        waited[0] += time.perf_counter() - start
        return vector

    waited = [0.0]  # seconds in the collective (waiting for the slowest worker included), per epoch

    for epoch in range(position["epoch"], s["epochs"]):
        waited[0] = 0.0
        row = _epoch(worker, job, train, augment, epoch, position, rank, size, reduce)
        row["allreduce_seconds"] = waited[0]
        if len(val):
            row["val_loss"], row["val_acc"] = _evaluate(worker, val)
        history.append(row)
        position = {**FRESH, "epoch": epoch + 1, "step": position["step"]}
        stop = _track_best(worker, job, rank, row, best, stopping)
        _report(worker, job, rank, {"position": position, "history": history, "restarts": restarts, "best": best})
        if stop:
            break


def _track_best(worker: ShardStep, job: Job, rank: int, row: dict[str, Any], best: dict[str, Any],
                stopping) -> bool:
    """Early stopping as the local loop does it (rank 0 keeps best.npz);
    whether to stop is rank 0's decision, broadcast so that all stop together."""
    import torch
    import torch.distributed as dist

    if stopping is None:
        return False
    monitored = row.get("val_loss", row["train_loss"])
    if stopping.improves(monitored, best["loss"]):
        best.update({"loss": monitored, "epoch": row["epoch"], "wait": 0})
        if rank == 0:
            checkpoint.save(job.out / BEST, worker.parameters(), {"epoch": row["epoch"]})
    else:
        best["wait"] += 1
    decision = torch.tensor([float(best["wait"] >= stopping.patience)])
    dist.broadcast(decision, src=0)
    return bool(decision.item())


def _epoch(worker: ShardStep, job: Job, train: datamod.Dataset, augment, epoch: int, position: dict[str, int],
           rank: int, size: int, reduce) -> dict[str, Any]:
    """One epoch over every global batch; this worker computes its rows of each."""
    s, spec = job.settings, worker.split.step
    lr = learning_rate(s.optimizer()["lr"], s["schedule"], epoch, s["epochs"])
    total, seen, correct, start = 0.0, 0, 0.0, time.perf_counter()
    for number, index in enumerate(datamod.batches(len(train), s["batch"], s["seed"], epoch)):
        x, y = train.x[index], train.y[index]
        if augment is not None:
            x = augment(x, np.random.default_rng([s["seed"], epoch, number, 3]))
        masks = random_inputs(spec.masks, len(index), np.random.default_rng([s["seed"], epoch, number, 2]))
        rows = shard(len(index), rank, size)
        position["step"] += 1
        loss, out = worker.step(x[rows], y[rows], {k: m[rows] for k, m in masks.items()}, lr, position["step"],
                                (rows.stop - rows.start) / len(index), reduce)
        _broadcast_buffers(worker)
        _inject_fault(job, rank, epoch, number)
        total, seen = total + loss * len(index), seen + len(index)
        if len(out):
            correct += (spec.loss.accuracy(out, y[rows]) or 0.0) * (rows.stop - rows.start)
    seconds = time.perf_counter() - start  # the steps with their collectives, as the local loop's column
    correct = float(reduce(np.array([correct], np.float32))[0])
    classifies = spec.loss.classifies_on(train.y)
    return {"epoch": epoch + 1, "lr": lr, "train_loss": total / max(seen, 1),
            "train_acc": correct / seen if classifies and seen else None,
            "samples_per_s": seen / max(seconds, 1e-9), "seconds": seconds}


def _broadcast_buffers(worker: ShardStep) -> None:
    """Rank 0's running statistics on every worker (DDP's broadcast_buffers)."""
    import torch
    import torch.distributed as dist

    for name in worker.split.step.buffers:
        tensor = torch.from_numpy(np.ascontiguousarray(worker.tensors[name]))
        dist.broadcast(tensor, src=0)
        worker.tensors[name] = tensor.numpy()


def _evaluate(worker: ShardStep, data: datamod.Dataset) -> tuple[float, float | None]:
    loss = worker.split.step.loss
    z = worker.predict(data.x)
    return loss.value(z, data.y), loss.accuracy(z, data.y)


def _restore(worker: ShardStep, job: Job, rank: int
             ) -> tuple[dict[str, Any], list[dict[str, Any]], list[int], dict[str, Any]]:
    """Where this attempt starts: after a restart (a worker died), rank 0's
    last checkpoint in the run directory, else the one Ray Train holds;
    with --resume, the run directory's; else the start. Returns the
    position, the history, the epochs that restarts resumed from, and the
    early-stopping record."""
    import ray.train
    import torch.distributed as dist

    started = job.out / f"{STARTED}-{job.token}"
    restarted = started.exists()
    dist.barrier()  # every worker has looked before rank 0 marks the attempt
    if rank == 0:
        started.touch()
    saved = ray.train.get_checkpoint()
    if (restarted or job.resume) and (job.out / CHECKPOINT).exists():
        tensors, meta = checkpoint.load(job.out / CHECKPOINT)
    elif saved is not None:
        with saved.as_directory() as folder:
            tensors, meta = checkpoint.load(Path(folder) / CHECKPOINT)
    else:
        return dict(FRESH), [], [], {"loss": math.inf, "epoch": -1, "wait": 0}
    if meta.get("trainable") != worker.split.step.trainable:
        raise UserError(f"checkpoint '{job.out / CHECKPOINT}' belongs to another network or optimizer",
                        "resume with the same model and settings, or start a new --out directory")
    worker.load(tensors)
    restarts = [*meta.get("restarts", []), *([meta["position"]["epoch"]] if restarted else [])]
    best = meta.get("best", {"loss": math.inf, "epoch": -1, "wait": 0})
    return {**FRESH, **meta["position"]}, list(meta["history"]), restarts, best


def _report(worker: ShardStep, job: Job, rank: int, progress: dict[str, Any]) -> None:
    """Rank 0 writes the checkpoint (atomically) and the metrics, and hands
    the checkpoint to Ray Train; every worker reports the epoch. `progress`:
    position, history and restarts."""
    import ray.train

    metrics = {k: v for k, v in progress["history"][-1].items() if v is not None}
    if rank != 0:
        ray.train.report(metrics)
        return
    meta = {**progress, "network": job.net.name, "trainable": worker.split.step.trainable}
    checkpoint.save(job.out / CHECKPOINT, worker.snapshot(), meta)
    write_csv(job.out / METRICS, progress["history"])
    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(job.out / CHECKPOINT, Path(folder) / CHECKPOINT)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _inject_fault(job: Job, rank: int, epoch: int, batch: int) -> None:
    """Tests: worker `fault[0]` dies at (epoch, batch) `fault[1:]`, once."""
    if job.fault == (rank, epoch, batch) and not (job.out / KILLED).exists():
        (job.out / KILLED).touch()
        os.kill(os.getpid(), signal.SIGKILL)

"""The connection to Ray and the one way independent runs (folds, ensemble
members) are spread over it: `run_all(jobs, backend)`.

Locally each job runs in turn; on Ray each is a task asking for
`cpus_per_worker` CPUs and `gpus_per_worker` GPUs, and the results come
back in the jobs' order, so what a caller computes from them is the same
on both backends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from .backends import Backend, require_ray

T = TypeVar("T")

# A local cluster on a small machine: little shared memory, no dashboard.
OBJECT_STORE_BYTES = 200 * 1024 * 1024


def connect(backend: Backend) -> None:
    """Join the cluster at `backend.address` ("auto": the one this machine
    runs; "local": always start a new one here); without an address, join a
    running cluster if there is one, else start a local one with this
    machine's CPUs. Idempotent."""
    require_ray()
    import ray

    if ray.is_initialized():
        return
    if backend.address not in (None, "local"):
        ray.init(address=backend.address, runtime_env=_environment(), log_to_driver=False)
        return
    try:
        if backend.address is None:
            ray.init(address="auto", runtime_env=_environment(), log_to_driver=False)
            return
    except ConnectionError:
        pass
    start_local()


def start_local(cpus: int | None = None) -> None:
    """A new Ray cluster on this machine: `cpus` CPUs (default all), a small
    object store, no dashboard."""
    import ray

    ray.init(address="local", num_cpus=cpus or os.cpu_count(), object_store_memory=OBJECT_STORE_BYTES,
             include_dashboard=False, runtime_env=_environment(), log_to_driver=False)


def _environment() -> dict[str, Any]:
    """Workers import this package from where the driver does (a checkout, not only an installed copy)."""
    path = os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))
    return {"env_vars": {"PYTHONPATH": path}}


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def run_all(jobs: list[Callable[[], T]], backend: Backend) -> list[T]:
    """Every job's result, in order: in this process, or as Ray tasks."""
    if not backend.ray:
        return [job() for job in jobs]
    connect(backend)
    import ray

    task = ray.remote(_call).options(num_cpus=backend.cpus_per_worker, num_gpus=backend.gpus_per_worker,
                                     max_retries=2)
    return ray.get([task.remote(job) for job in jobs])


def _call(job: Callable[[], Any]) -> Any:
    return job()


def threads(backend: Backend) -> int | None:
    """onnxruntime threads for one run: a Ray task's CPUs (so that tasks
    sharing a machine do not oversubscribe it); all cores locally."""
    return max(1, int(backend.cpus_per_worker)) if backend.ray else None

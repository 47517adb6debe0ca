"""Where the runs of a training go: `local` (this process, the default) or
`ray` (a Ray cluster: search trials, cross-validation folds and ensemble
members as Ray tasks, and data-parallel training over `workers`).

    train { backend ray(workers=4, gpus_per_worker=1) }
    i2dl-train MODEL.net --backend ray --ray-address auto --workers 2

A backend never changes what is computed: the same training step and loop
run everywhere (cluster.py, tune_search.py, parallel.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..diagnostics import UserError
from ..layers.base import Float, Int, P
from .registry import Entry, Registry

BACKENDS: Registry[Entry] = Registry("backend", default="local")
BACKENDS.register(Entry(name="local", doc="every run in this process, one after the other"))
BACKENDS.register(Entry(name="ray", doc="trials, folds and members as Ray tasks; data-parallel over workers",
                        signature=(P("workers", Int(), 1), P("gpus_per_worker", Float(0.0), 0.0),
                                   P("cpus_per_worker", Float(0.0), 1.0))))

EXTRA = "pip install 'i2dl-dsl[ray]'"


@dataclass(frozen=True)
class Backend:
    """The chosen backend with every argument set; `address` is Ray's (None:
    join the cluster this machine runs, else start a local one)."""

    name: str = "local"
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    address: str | None = None

    @property
    def ray(self) -> bool:
        return self.name == "ray"


def choose(section: Mapping[str, Any] | str | None, name: str | None = None, address: str | None = None,
           workers: int | None = None) -> Backend:
    """The backend of a run: the train section's `backend` statement, then
    the command line's --backend, --ray-address and --workers over it."""
    spec: Mapping[str, Any] = {"name": section} if isinstance(section, str) else section or {}
    chosen = name or spec.get("name", BACKENDS.default)
    entry, arguments = BACKENDS.split(spec if spec.get("name") == chosen else chosen)  # another: its defaults
    if workers is not None:
        arguments["workers"] = workers
    if entry.name != "ray":
        if workers not in (None, 1) or address:
            flag = "--ray-address" if address else "--workers"
            raise UserError(f"{flag} needs the ray backend", "add --backend ray")
        return Backend()
    require_ray()
    return Backend("ray", address=address, **arguments)


def require_ray() -> None:
    """Ray Tune and Ray Train importable, or a clear error naming the extra."""
    try:
        import ray  # noqa: F401
        from ray import train, tune  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the ray backend needs Ray, which is not installed ({exc})",
                        f"install the optional extra: {EXTRA}") from None

"""One data-parallel worker's training step: the gradient part on its share
of the global batch, a sum over workers (the collective, handed in), then
the update part, identical on every worker.

A worker weights its gradients by its share of the batch (n_w / n) before
the sum, so that the sum is the gradient of the mean loss over the whole
batch, as one process computes it, also when the last batch does not split
evenly. The loss travels in the same vector (one collective per step).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..runtime import create_session
from .split import GRAD, SplitStep
from .step import LOSS, LR, STEP, state_name

Reduce = Callable[[np.ndarray], np.ndarray]  # a float32 vector -> its elementwise sum over all workers


def shard(count: int, rank: int, workers: int) -> slice:
    """The rows of a batch of `count` samples that worker `rank` computes:
    contiguous, sizes differing by at most one (numpy.array_split's)."""
    base, extra = divmod(count, workers)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


class ShardStep:
    """The two parts' sessions and the worker's copy of every tensor (host
    arrays: parameters, buffers, flat optimizer slots)."""

    def __init__(self, split: SplitStep, device: str = "cpu", threads: int | None = None):
        self.split = split
        spec = split.step
        self.gradients = create_session(split.gradients.SerializeToString(), device, threads)
        self.update = create_session(split.update.SerializeToString(), device, threads)
        self._grad_outputs = [o.name for o in self.gradients.session.get_outputs()]
        self._grad_inputs = {i.name for i in self.gradients.session.get_inputs()}
        self._update_outputs = [o.name for o in self.update.session.get_outputs()]
        self.tensors: dict[str, np.ndarray] = {}
        self._eval = None  # the evaluation graph's session, made when first needed
        self.load({**spec.values, **spec.state})

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Parameters, buffers or per-parameter optimizer state (`state/<param>/<slot>`), by name."""
        spec = self.split.step
        slots: dict[str, dict[str, np.ndarray]] = {}
        for name, array in arrays.items():
            flat = spec.flat_slot(name)
            if flat:
                slots.setdefault(flat[0], {})[flat[1]] = array
            else:
                self.tensors[name] = np.array(array, dtype=np.float32, copy=True)
        for flat, parts in slots.items():
            self.tensors[flat] = spec.packing.pack(parts, self.tensors.get(flat)).astype(np.float32)

    def snapshot(self) -> dict[str, np.ndarray]:
        """Every tensor, optimizer slots per parameter, as TrainingSession.snapshot gives them."""
        spec = self.split.step
        arrays = {}
        for name, value in self.tensors.items():
            slot = name[len("state/"):] if name.startswith("state/") else None
            if slot in spec.slots:
                arrays.update({state_name(p, slot): a.copy() for p, a in spec.packing.unpack(value).items()})
            else:
                arrays[name] = value.copy()
        return arrays

    def predict(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        """The network's output in inference mode, as TrainingSession.predict gives it."""
        if self._eval is None:
            self._eval = create_session(self.split.step.eval_model.SerializeToString(), self.gradients.device)
        names = [i.name for i in self._eval.session.get_inputs()]
        spec = self.split.step
        parts = [self._eval.run({spec.input: x[i:i + batch], **{n: self.tensors[n] for n in names if n != spec.input}})[0]
                 for i in range(0, len(x), batch)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def parameters(self) -> dict[str, np.ndarray]:
        return {name: self.tensors[name].copy() for name in self.split.step.values}

    def step(self, x: np.ndarray, y: np.ndarray, masks: dict[str, np.ndarray], lr: float, t: int,
             share: float, reduce: Reduce) -> tuple[float, np.ndarray]:
        """One step on this worker's rows; `share` is n_w / n. Returns the
        loss of the whole batch and this worker's network output."""
        spec = self.split.step
        if len(x):
            feeds = {spec.input: x, "y": y, **masks}
            feeds.update({name: self.tensors[name] for name in self._grad_inputs if name not in feeds})
            outputs = dict(zip(self._grad_outputs, self.gradients.run(feeds)))
            local = np.append(spec.packing.pack({p: outputs[GRAD + p] for p in spec.trainable}), outputs[LOSS])
            for name in spec.buffers:
                self.tensors[name] = outputs[f"new/{name}"]
        else:  # a last batch smaller than the number of workers: this one has no rows, and adds nothing
            outputs = {spec.output: np.zeros((0,), np.float32)}
            local = np.zeros(spec.packing.size + 1, np.float32)
        summed = reduce(local.astype(np.float32) * np.float32(share))
        gradient, loss = summed[:-1], float(summed[-1])
        feeds = {name: self.tensors[name] for name in spec.trainable}
        feeds.update({GRAD + p: g for p, g in spec.packing.unpack(gradient).items()})
        feeds.update({state_name(None, s): self.tensors[state_name(None, s)] for s in spec.slots})
        feeds.update({LR: np.array(lr, np.float32), STEP: np.array(t, np.float32)})
        for name, value in zip(self._update_outputs, self.update.run(feeds)):
            self.tensors[name[len("new/"):]] = value
        return loss, outputs[spec.output]

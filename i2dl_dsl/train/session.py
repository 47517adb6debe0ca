"""Runs the training step and the evaluation graph, keeping parameters,
buffers and optimizer state on the device between steps.

The tensors (OrtValues) live in two sets of buffers. Two I/O bindings,
made once, alternate: one reads set A and writes the `new/...` outputs into
set B, the other the reverse, so a step binds only its batch, its masks,
lr and t (binding ~30 tensors anew each step cost 0.3-0.5 ms of Python,
6-7% of a small network's step). Only the batch goes in and only the loss
and the network output come back to the host. Host arrays handed in are
copied, and host arrays handed out are copies: the buffers are rewritten.

Both graphs come finished for their target (StepModel.target); the
sessions run on its device, and every run goes through runtime.Session, so
a failing node is reported at its .net line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..diagnostics import UserError
from ..runtime import Placement, Session, create_session
from .step import LOSS, LR, STEP, StepModel, state_name


def session_device(step: StepModel, device: str) -> str:
    """The device to ask runtime for: the step's target's. Asked for another
    (not "auto"), it refuses: the graphs hold forms and rewrites chosen for
    their target (NCHWc kernels are CPU-only), so running them elsewhere would
    be slow or fail far from the cause; build the step for that device instead.
    A CUDA step asked for "auto" stays "auto", so that a CUDA provider which
    does not start falls back to the CPU, as any auto session does (the graph
    then runs correctly, without the CPU's blocked kernels)."""
    target = step.target.device
    if device not in ("auto", target):
        raise UserError(f"this training step was built for {target}, not {device}",
                        f"build it for {device}: build_step(..., target=Target.resolve('{device}'))")
    return "auto" if device == "auto" and target == "cuda" else target


class TrainingSession:
    """The step's and evaluation graph's sessions, on the step's target
    device (`device`: "auto" or that device; see `session_device`)."""

    def __init__(self, step: StepModel, device: str = "auto", threads: int | None = None,
                 profile: str | None = None, placement: Placement = Placement()):
        self.spec = step
        requested = session_device(step, device)
        self.step_session: Session = create_session(step.model.SerializeToString(), requested, threads, profile,
                                                    placement)
        self.device = self.step_session.device
        self.eval_session: Session = create_session(step.eval_model.SerializeToString(), self.device, threads,
                                                    placement=placement)
        self.tensors: dict[str, Any] = {}
        self.last_gradients: dict[str, Any] = {}  # with TrainConfig.expose_gradients
        self._bindings: list[tuple[Any, dict[str, Any]]] = []  # made on the first step after a load
        self.load({**step.values, **step.state})
        self._output_names = [o.name for o in self.step_session.session.get_outputs()]
        self._eval_inputs = [i.name for i in self.eval_session.session.get_inputs()]

    # ------------------------------------------------------------- tensors
    def _ortvalue(self, array: np.ndarray):
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, 0)

    def _own(self, array: np.ndarray):
        """A device tensor holding a copy: on the CPU an OrtValue shares the
        array's memory, and steps write into these buffers."""
        return self._ortvalue(np.array(array, dtype=np.float32, copy=True))

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Put parameters, buffers or optimizer state (by name, as `snapshot`
        gives them: `state/<param>/<slot>`) on the device."""
        slots: dict[str, dict[str, np.ndarray]] = {}
        for name, array in arrays.items():
            flat = self.spec.flat_slot(name)
            if flat:
                slots.setdefault(flat[0], {})[flat[1]] = array
            else:
                self.tensors[name] = self._own(array)
        for flat, parts in slots.items():
            base = self.tensors[flat].numpy() if flat in self.tensors else None
            self.tensors[flat] = self._own(self.spec.packing.pack(parts, base))
        self._bindings = []

    def snapshot(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter, buffer and optimizer slot (per
        parameter: `state/<param>/<slot>`)."""
        arrays = {}
        for name, value in self.tensors.items():
            slot = name[len("state/"):] if name.startswith("state/") else None
            if slot in self.spec.slots:
                arrays.update({state_name(param, slot): array.copy()
                               for param, array in self.spec.packing.unpack(value.numpy()).items()})
            else:
                arrays[name] = value.numpy().copy()
        return arrays

    def parameters(self) -> dict[str, np.ndarray]:
        return {name: self.tensors[name].numpy().copy() for name in self.spec.values}

    # ------------------------------------------------------------- running
    def train_step(self, x: np.ndarray, y: np.ndarray, masks: dict[str, np.ndarray], lr: float, step: int
                   ) -> tuple[float, np.ndarray]:
        """One optimizer step on a batch; returns the loss and the network output."""
        binding, written = self._next_binding()
        feeds = {self.spec.input: x, "y": y, LR: np.float32(lr), STEP: np.float32(step), **masks}
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, self._ortvalue(np.asarray(array)))
        for name in self._output_names:  # loss, output, gradients: allocated anew (the batch may change)
            if not name.startswith("new/"):
                binding.bind_output(name, self.device)
        self.step_session.run_bound(binding)
        self.tensors.update(written)
        outputs = dict(zip(self._output_names, binding.get_outputs()))
        self.last_gradients = {name[5:]: value for name, value in outputs.items() if name.startswith("grad/")}
        return float(outputs[LOSS].numpy()), outputs[self.spec.output].numpy().copy()

    def _next_binding(self) -> tuple[Any, dict[str, Any]]:
        """The binding whose inputs are the current tensors, and the tensors
        its step writes (the other set); the two alternate."""
        if not self._bindings:
            import onnxruntime as ort

            updated = [n[len("new/"):] for n in self._output_names if n.startswith("new/")]
            current = dict(self.tensors)
            spare = {**current, **{n: ort.OrtValue.ortvalue_from_shape_and_type(current[n].shape(), np.float32,
                                                                                 self.device, 0) for n in updated}}
            for reads, writes in ((current, spare), (spare, current)):
                binding = self.step_session.binding()
                for name, value in reads.items():
                    binding.bind_ortvalue_input(name, value)
                for name in self._output_names:  # in this order: get_outputs keeps it
                    if name.startswith("new/"):
                        binding.bind_ortvalue_output(name, writes[name[len("new/"):]])
                    else:
                        binding.bind_output(name, self.device)
                self._bindings.append((binding, {n: writes[n] for n in updated}))
        self._bindings.reverse()  # the other one next time
        return self._bindings[-1]

    def predict(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        """The network's output in inference mode (running statistics, no dropout)."""
        output = self.eval_session.session.get_outputs()[0].name
        outputs = []
        for start in range(0, len(x), batch):
            binding = self.eval_session.binding()
            binding.bind_ortvalue_input(self.spec.input, self._ortvalue(x[start:start + batch]))
            for name in self._eval_inputs:
                if name != self.spec.input:
                    binding.bind_ortvalue_input(name, self.tensors[name])
            binding.bind_output(output, "cpu")
            self.eval_session.run_bound(binding)
            outputs.append(binding.get_outputs()[0].numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)

"""Runs the training step and the evaluation graph, keeping parameters,
buffers and optimizer state on the device between steps.

Each step binds the current tensors (OrtValues) as inputs and lets
onnxruntime allocate the outputs on the same device; the `new/...` outputs
then become the next step's inputs. Only the batch goes in and only the loss
and the network output come back to the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..runtime import Session, create_session
from .step import LOSS, LR, STEP, StepModel, state_name


class TrainingSession:
    def __init__(self, step: StepModel, device: str = "auto", threads: int | None = None,
                 profile: str | None = None, blocked_convs: bool = True):
        self.spec = step
        self.step_session: Session = create_session(step.model.SerializeToString(), device, threads, profile,
                                                    blocked_convs=blocked_convs)
        self.device = self.step_session.device
        self.eval_session: Session = create_session(step.eval_model.SerializeToString(), self.device, threads,
                                                    blocked_convs=blocked_convs)
        self.tensors: dict[str, Any] = {}
        self.last_gradients: dict[str, Any] = {}  # with TrainConfig.expose_gradients
        self.load({**step.values, **step.state})
        self._output_names = [o.name for o in self.step_session.session.get_outputs()]
        self._eval_inputs = [i.name for i in self.eval_session.session.get_inputs()]

    # ------------------------------------------------------------- tensors
    def _ortvalue(self, array: np.ndarray):
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, 0)

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Put parameters, buffers or optimizer state (by name, as `snapshot`
        gives them: `state/<param>/<slot>`) on the device."""
        slots: dict[str, dict[str, np.ndarray]] = {}
        for name, array in arrays.items():
            flat = self.spec.flat_slot(name)
            if flat:
                slots.setdefault(flat[0], {})[flat[1]] = array
            else:
                self.tensors[name] = self._ortvalue(np.asarray(array, dtype=np.float32))
        for flat, parts in slots.items():
            base = self.tensors[flat].numpy() if flat in self.tensors else None
            self.tensors[flat] = self._ortvalue(self.spec.packing.pack(parts, base))

    def snapshot(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter, buffer and optimizer slot (per
        parameter: `state/<param>/<slot>`)."""
        arrays = {}
        for name, value in self.tensors.items():
            slot = name[len("state/"):] if name.startswith("state/") else None
            if slot in self.spec.slots:
                arrays.update({state_name(param, slot): array
                               for param, array in self.spec.packing.unpack(value.numpy()).items()})
            else:
                arrays[name] = value.numpy()
        return arrays

    def parameters(self) -> dict[str, np.ndarray]:
        return {name: self.tensors[name].numpy() for name in self.spec.values}

    # ------------------------------------------------------------- running
    def train_step(self, x: np.ndarray, y: np.ndarray, masks: dict[str, np.ndarray], lr: float, step: int
                   ) -> tuple[float, np.ndarray]:
        """One optimizer step on a batch; returns the loss and the network output."""
        session = self.step_session.session
        binding = session.io_binding()
        feeds = {self.spec.input: x, "y": y, LR: np.float32(lr), STEP: np.float32(step), **masks}
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, self._ortvalue(np.asarray(array)))
        for name, value in self.tensors.items():
            binding.bind_ortvalue_input(name, value)
        for name in self._output_names:
            binding.bind_output(name, self.device)
        session.run_with_iobinding(binding)
        outputs = dict(zip(self._output_names, binding.get_outputs()))
        for name, value in outputs.items():
            if name.startswith("new/"):
                self.tensors[name[4:]] = value
        self.last_gradients = {name[5:]: value for name, value in outputs.items() if name.startswith("grad/")}
        return float(outputs[LOSS].numpy()), outputs[self.spec.output].numpy()

    def predict(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        """The network's output in inference mode (running statistics, no dropout)."""
        session = self.eval_session.session
        outputs = []
        for start in range(0, len(x), batch):
            binding = session.io_binding()
            binding.bind_ortvalue_input(self.spec.input, self._ortvalue(x[start:start + batch]))
            for name in self._eval_inputs:
                if name != self.spec.input:
                    binding.bind_ortvalue_input(name, self.tensors[name])
            binding.bind_output(session.get_outputs()[0].name, "cpu")
            session.run_with_iobinding(binding)
            outputs.append(binding.get_outputs()[0].numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)

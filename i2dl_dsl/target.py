"""Where a graph will run, fixed before the graph is built.

A training step's graph is written for its device: on a CPU with
onnxruntime's blocked-channel (NCHWc) kernels, its convolutions are
rewritten to them (lowering/nchwc.py) and its convolution gradients take the
forms those kernels are fastest at; on CUDA neither happens. The caller
resolves the target once (`Target.resolve`: runtime says what `auto` means
on this machine), the step builder applies the target's rewrites to the
ModelProto, and the session runs the finished graph on the target's device
(train/session.py refuses another device rather than run forms chosen for
a different one).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from .lowering.nchwc import block_size, blocked_convolutions
from .runtime import resolve_device


@dataclass(frozen=True)
class Target:
    """A device ("cpu" or "cuda") and, on the CPU, the channel block of the
    NCHWc kernels the graph is written for (0: the plain Conv)."""

    device: str
    nchwc_block: int = 0

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"a target's device is cpu or cuda, not {self.device!r}")
        if self.device == "cuda" and self.nchwc_block:
            raise ValueError("NCHWc blocks are CPU kernels; a CUDA target has none")

    @property
    def blocked_convs(self) -> bool:
        """Whether the graph's convolutions run on the NCHWc CPU kernels."""
        return self.nchwc_block > 0

    @staticmethod
    def resolve(device: str = "auto") -> "Target":
        """The target for a device as users name it (auto, cpu, cuda): on the
        CPU, with the blocked kernels onnxruntime has on this machine (none
        where `I2DL_BLOCKED_CONVS=0`)."""
        concrete = resolve_device(device)
        return Target(concrete, block_size() if concrete == "cpu" else 0)

    def rewrite(self, model: onnx.ModelProto) -> onnx.ModelProto:
        """The model with the target's rewrites: the NCHWc convolutions on a
        blocked CPU target, nothing otherwise."""
        return blocked_convolutions(model, self.nchwc_block) if self.blocked_convs else model

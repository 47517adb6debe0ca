"""The optimizer's flat vectors: every trainable parameter laid end to end.

The update rule is elementwise, so it runs once over one vector of all the
trainable parameters instead of once per parameter: about a dozen kernels
per step instead of a dozen per parameter (small networks spent more time
dispatching those kernels than computing). The parameters stay separate
tensors for the forward pass; the step graph packs them and their
gradients (Reshape + Concat), updates, and unpacks (Split + Reshape).

Optimizer state lives only in flat form (`state/<slot>`), but everything
outside the step graph (checkpoints, tests, users) sees it per parameter
as `state/<param>/<slot>`: `Packing.pack` and `unpack` translate.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..lowering.graph import Builder


@dataclass(frozen=True)
class Segment:
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True)
class Packing:
    segments: tuple[Segment, ...]

    @classmethod
    def of(cls, shapes: dict[str, tuple[int, ...]]) -> "Packing":
        segments, offset = [], 0
        for name, shape in shapes.items():
            segments.append(Segment(name, tuple(shape), offset))
            offset += prod(shape)
        return cls(tuple(segments))

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    # ------------------------------------------------------------- arrays
    def pack(self, arrays: dict[str, np.ndarray], base: np.ndarray | None = None) -> np.ndarray:
        """One flat vector; segments missing from `arrays` keep `base` (or 0)."""
        flat = np.zeros(self.size, np.float32) if base is None else np.array(base, np.float32).reshape(self.size)
        for s in self.segments:
            if s.name in arrays:
                value = np.asarray(arrays[s.name], np.float32)
                if value.shape != s.shape:
                    raise ValueError(f"'{s.name}' has shape {list(value.shape)}, expected {list(s.shape)}")
                flat[s.offset:s.offset + s.size] = value.reshape(-1)
        return flat

    def unpack(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        flat = np.asarray(flat).reshape(-1)
        return {s.name: flat[s.offset:s.offset + s.size].reshape(s.shape).copy() for s in self.segments}

    # ------------------------------------------------------------- graph
    def emit_pack(self, g: Builder, tensors: list[str]) -> str:
        """Concat of the flattened `tensors` (one per segment, in order)."""
        flat = g.const([-1], hint="flat")
        parts = [g.op("Reshape", [t, flat]) for t in tensors]
        return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0)

    def emit_unpack(self, g: Builder, flat: str, output_names: list[str]) -> None:
        """Split `flat` back into the segments' shapes, written to `output_names`."""
        pieces = [flat] if len(self.segments) == 1 else g.op(
            "Split", [flat, g.const([s.size for s in self.segments], hint="sizes")],
            outputs=len(self.segments))
        for s, piece, out in zip(self.segments, pieces, output_names):
            g.op("Reshape", [piece, g.const(list(s.shape), hint="shape")], output_names=[out])

    def emit_runs(self, g: Builder, scales: dict[str, float], scalar: str) -> str:
        """`scalar` times each segment's scale, one value per element (the
        learning rate of `lr_scale`); the scalar itself when every scale is 1."""
        values = [scales.get(s.name, 1.0) for s in self.segments]
        if all(v == 1.0 for v in values):
            return scalar
        runs: list[tuple[float, int]] = []  # (scale, length): neighbours that share a scale expand once
        for s, value in zip(self.segments, values):
            if runs and runs[-1][0] == value:
                runs[-1] = (value, runs[-1][1] + s.size)
            else:
                runs.append((value, s.size))
        parts = [g.op("Expand", [g.op("Mul", [scalar, g.const(v, dtype="float32", hint="lr_scale")]),
                                 g.const([n], hint="length")]) for v, n in runs]
        return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0)

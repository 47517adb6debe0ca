"""Data augmentation for image batches [N, C, H, W], on the host, seeded.

    crop(pad)                 zero-pad by `pad` pixels, then cut a random H×W window
    flip                      mirror left-right with probability 1/2
    jitter(brightness, contrast)  x·(1 + U(-c, c)) + U(-b, b), per sample

Augmentation applies to training batches only; evaluation sees the data as
it is. Each batch's draws come from the generator the loop passes in, seeded
by (seed, epoch, batch), so runs and resumed runs repeat exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..diagnostics import UserError
from ..layers.base import Float, Int, P
from .registry import Entry, Registry

Augmenter = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _crop(x: np.ndarray, rng: np.random.Generator, pad: int) -> np.ndarray:
    if pad == 0:
        return x
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    top = rng.integers(0, 2 * pad + 1, n)
    left = rng.integers(0, 2 * pad + 1, n)
    rows = top[:, None] + np.arange(h)[None, :]            # [N, H]
    cols = left[:, None] + np.arange(w)[None, :]           # [N, W]
    index = np.arange(n)[:, None, None]
    # Gather each sample's window: padded[i, :, rows[i], cols[i]].
    return padded.transpose(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].transpose(0, 3, 1, 2)


def _flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mirror = rng.random(len(x)) < 0.5
    out = x.copy()
    out[mirror] = out[mirror][..., ::-1]
    return out


def _jitter(x: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float) -> np.ndarray:
    shape = (len(x),) + (1,) * (x.ndim - 1)
    scale = 1.0 + rng.uniform(-contrast, contrast, shape)
    shift = rng.uniform(-brightness, brightness, shape)
    return (x * scale + shift).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class Augmentation(Entry):
    augment: Callable[..., np.ndarray]  # (x, rng, **options) -> the augmented batch
    moves_pixels: bool = False          # geometric: refused where labels are per pixel


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")
AUGMENTATIONS.register(Augmentation(name="crop", signature=(P("pad", Int(0), 2),), augment=_crop, moves_pixels=True,
                                    doc="zero-pad, then cut a random window"))
AUGMENTATIONS.register(Augmentation(name="flip", augment=_flip, moves_pixels=True, doc="mirror left-right, p = 1/2"))
AUGMENTATIONS.register(Augmentation(name="jitter", augment=_jitter, doc="random brightness and contrast",
                                    signature=(P("brightness", Float(0.0, 1.0), 0.1),
                                               P("contrast", Float(0.0, 1.0), 0.0))))


def make_augmenter(specs: list[dict[str, Any]], input_shape: tuple[int, ...],
                   output_shape: tuple[int, ...] | None = None) -> Augmenter | None:
    """The composed augmentation of a `train { augment ... }` list, or None.
    Crops and flips move pixels, so they are refused where the labels are
    per pixel (an output [K, H, W]): the labels would have to move too."""
    if not specs:
        return None
    if len(input_shape) != 3:
        raise UserError(f"augment works on image inputs [C, H, W]; the network's input is {list(input_shape)}")
    steps = [AUGMENTATIONS.split(spec) for spec in specs]
    moving = [entry.name for entry, _ in steps if entry.moves_pixels]
    if moving and output_shape is not None and len(output_shape) == 3:
        raise UserError(f"augment {moving[0]} moves the input's pixels, but the network's output "
                        f"{list(output_shape)} has a label per pixel, which would stay where it was",
                        "use jitter only for dense outputs")

    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for entry, options in steps:
            x = entry.augment(x, rng, **options)
        return np.ascontiguousarray(x, dtype=np.float32)

    return augment

"""PyTorch's `.pt`/`.pth` weights: Python pickles, read only when asked.

Unpickling a file can run any code its author put in it, so these files are
refused unless the user passes `--allow-pickle` (`allow_pickle=True`) for a
file they trust. Even then they are read through `torch.load` with
`weights_only=True`, PyTorch's restricted unpickler, which loads tensors and
plain containers only; it narrows the risk, it does not remove it (its own
documentation says so). safetensors holds the same tensors without any of
this: `safetensors.torch.save_file(model.state_dict(), "weights.safetensors")`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..diagnostics import UserError
from ..reading import regular_file, require_memory

SUFFIXES = (".pt", ".pth")
RISK = ("a .pt/.pth file is a Python pickle, and loading a pickle can run any code its author put in it")
CONVERT = ("convert it once, where you trust it: safetensors.torch.save_file(torch.load(PATH), "
           "'weights.safetensors'); or pass --allow-pickle (allow_pickle=True) for a file you trust")


def refuse(path: Path) -> UserError:
    return UserError(f"weights '{path}' are not read: {RISK}", CONVERT)


def read_pickle(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state_dict file, by name, as NumPy arrays."""
    label = f"weights '{path}'"
    info = regular_file(path, label)
    require_memory(info.st_size, f"reading {label}", "a file larger than the free memory is never read")
    try:
        import torch
    except ImportError:
        raise UserError(f"reading {label} needs PyTorch, which is not installed",
                        "install torch, or convert the file to .safetensors where PyTorch is") from None
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling raises anything
        raise UserError(f"cannot read {label} with torch.load(weights_only=True): "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                        "it must hold a state_dict: a dict of tensors by name") from None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]  # a training checkpoint that wraps its state_dict
    if not isinstance(loaded, Mapping):
        raise UserError(f"{label} hold a {type(loaded).__name__}, not a state_dict (a dict of tensors by name)",
                        "save model.state_dict(), not the model")
    others = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if others:
        raise UserError(f"{label}: entries that are not tensors: {', '.join(others[:5])}",
                        "save model.state_dict(), not a checkpoint with other entries")
    return {str(name): tensor.detach().cpu().float().numpy() if tensor.dtype == torch.bfloat16
            else tensor.detach().cpu().numpy() for name, tensor in loaded.items()}

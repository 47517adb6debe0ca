"""Checkpoints: every tensor of the run plus its progress, in one `.npz`,
written atomically so an interrupted write never leaves a broken file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnostics import UserError
from ..files import save_arrays

META = "__meta__"


def save(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    save_arrays(path, {**{f"t/{k}": v for k, v in tensors.items()}, META: np.array(json.dumps(meta))})


def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"no checkpoint at '{path}' to resume from")
    try:
        with np.load(path, allow_pickle=False) as data:
            tensors = {k[2:]: data[k] for k in data.files if k.startswith("t/")}
            meta = json.loads(str(data[META]))
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"checkpoint '{path}' cannot be read: {exc}") from None
    return tensors, meta

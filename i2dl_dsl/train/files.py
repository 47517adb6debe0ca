"""Writing a run's files atomically: a temporary file beside the target,
then a rename, so an interrupted write never leaves a broken file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def save_json(path: Path, value: Any) -> None:
    save_bytes(path, (json.dumps(value, indent=2) + "\n").encode())

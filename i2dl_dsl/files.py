"""Writing files atomically: a temporary file beside the target, then a
rename, so that an interrupted or failed write leaves any earlier file as it
was and never half a file. Every file the tools write goes through here."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .diagnostics import UserError

PARTIAL = "i2dl-partial"  # in the name of every temporary, so users (and the next run) recognise it


def temporary_beside(target: Path, created: list[Path]) -> Path:
    """A new hidden file next to `target`, `.NAME.i2dl-partial-HEX`, with the
    permissions a plain open() would give (mkstemp's are owner-only); its path
    is appended to `created`. A kill can leave it behind: the next run in that
    directory removes it (train/rundir.py)."""
    for _ in range(100):
        candidate = target.parent / f".{target.name}.{PARTIAL}-{secrets.token_hex(4)}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        created.append(candidate)
        return candidate
    raise FileExistsError(f"no free temporary name beside '{target}'")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write` on a temporary file, then rename it to `path`; OSError passes through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporaries: list[Path] = []
    try:
        tmp = temporary_beside(path, temporaries)
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        for leftover in temporaries:
            if leftover.exists():
                leftover.unlink()


def write_for_user(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """atomic_write for a path the user named: a failure is their clear error."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write '{path}': the directory '{path.parent}' does not exist")
    try:
        atomic_write(path, write)
    except OSError as exc:
        raise UserError(f"cannot write '{path}': {exc.strerror or exc}") from None


def save_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def save_arrays(path: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    atomic_write(path, lambda f: np.savez(f, **arrays))


def save_json(path: Path, value: Any) -> None:
    save_bytes(path, (json.dumps(value, indent=2) + "\n").encode())

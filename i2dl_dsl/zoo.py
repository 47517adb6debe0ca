"""The model zoo: the classic architectures shipped as `.net` files.

An installed package carries them as package data (`i2dl_dsl/models/`); a
source checkout reads the repository's `models/`. Every command that takes a
model accepts a zoo name where it takes a path, as `torchvision.models.resnet18`
names a network: `i2dl-compile resnet18 --summary`. A path that exists wins.
"""

from __future__ import annotations

import difflib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from .diagnostics import UserError

SUFFIX = ".net"


@dataclass(frozen=True)
class ZooModel:
    """One zoo file: its name (the file's stem), path and first comment line."""

    name: str
    path: Path
    description: str


def zoo_dir() -> Path | None:
    """The folder of the zoo's .net files, or None where there is none."""
    installed = Path(str(importlib.resources.files("i2dl_dsl"))) / "models"
    if installed.is_dir():
        return installed
    # A source checkout (or an editable install): models/ beside the package.
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "models").is_dir():
        return checkout / "models"
    return None


def _description(path: Path) -> str:
    """The file's first comment line, without its '#'."""
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.lstrip().startswith("#"):
                    return line.strip().lstrip("#").strip()
    except (OSError, UnicodeDecodeError):
        pass
    return ""


def zoo_models() -> tuple[ZooModel, ...]:
    """Every zoo model, by name."""
    folder = zoo_dir()
    if folder is None:
        return ()
    return tuple(ZooModel(p.stem, p, _description(p)) for p in sorted(folder.glob(f"*{SUFFIX}")))


def zoo_path(name: str) -> Path | None:
    """The zoo file called `name` (a bare name, without '.net'), or None."""
    return next((m.path for m in zoo_models() if m.name == name), None)


def _is_bare(text: str) -> bool:
    path = Path(text)
    return path.name == text and path.suffix == ""


def resolve_model(text: str, command: str) -> str:
    """The model file a command-line argument names: the path when it exists,
    else the zoo file of a bare name. A missing file whose name matches a zoo
    model is an error that names it; other missing paths are left to the
    loader to report."""
    if Path(text).exists():
        return text
    if _is_bare(text):
        found = zoo_path(text)
        if found is not None:
            return str(found)
    if Path(text).suffix in ("", SUFFIX):
        _refuse_near_miss(text, command)
    return text


def _refuse_near_miss(text: str, command: str) -> None:
    names = [m.name for m in zoo_models()]
    stem = Path(text).stem
    if stem in names:
        raise UserError(f"file '{text}' does not exist",
                        f"did you mean the zoo model '{stem}'? run {command} {stem}")
    if _is_bare(text):
        close = difflib.get_close_matches(stem, names, n=1)
        hint = f"did you mean the zoo model '{close[0]}'? " if close else ""
        raise UserError(f"'{text}' is neither a file nor a zoo model",
                        f"{hint}i2dl-compile --list-models lists the zoo")

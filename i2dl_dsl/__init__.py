"""i2dl-dsl: a declarative architecture compiler for neural networks.

Kept light on purpose: importing the package loads nothing else; the
version is looked up when it is asked for.
"""

from __future__ import annotations

import re
from pathlib import Path

DISTRIBUTION = "i2dl-dsl"


def _version() -> str:
    """The installed distribution's version; in a checkout that is not
    installed, the one pyproject.toml declares."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M)
    except OSError:
        found = None
    return found.group(1) if found else "unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""i2dl-dsl: a declarative architecture compiler for neural networks.

The Python API (docs/api.md)::

    import i2dl_dsl
    net = i2dl_dsl.check("models/lenet5.net")    # or check(source="network A { ... }")
    print(net.summary())                          # the table of i2dl-compile --summary
    run = i2dl_dsl.train(net, data="digits", epochs=2)
    model = run.to_onnx()

Kept light on purpose: importing the package loads nothing else; each name
below is imported when it is first used, and the version is looked up when
it is asked for.
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


# name → the module that defines it: the façade over what the commands call
_API = {"check": "api", "Network": "api", "Summary": "api", "Layer": "api", "CompileError": "diagnostics",
        "Run": "api_train", "load_digits": "api_train"}
__all__ = ["__version__", "train", *_API]


def __getattr__(name: str):
    if name == "__version__":
        return _version()
    from importlib import import_module

    if name == "train":  # the subpackage, which is callable: api_train.train (see its docstring)
        return import_module(f"{__name__}.train")
    if name in _API:
        return getattr(import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

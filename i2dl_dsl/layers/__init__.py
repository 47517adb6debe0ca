"""Layer kinds: one class per kind, registered by importing its module.

Every module of this package is imported here, so a new layer kind is one
new file: there is no list of modules to extend.
"""

import importlib
import pkgutil

from .base import REGISTRY, Layer, ReceptiveField, Shape, Symbol


def _import_all() -> None:
    # Sorted, so that the registry's order (listings, help) is the same on every machine.
    for name in sorted(module.name for module in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{name}")


_import_all()

__all__ = ["REGISTRY", "Layer", "ReceptiveField", "Shape", "Symbol"]

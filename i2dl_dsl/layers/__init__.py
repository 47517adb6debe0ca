"""Layer kinds: one class per kind, registered by importing its module."""

from . import activation, conv, dense, merge, norm, pool, recurrent, resize  # noqa: F401
from .base import REGISTRY, Layer, ReceptiveField, Shape, Symbol

__all__ = ["REGISTRY", "Layer", "ReceptiveField", "Shape", "Symbol"]

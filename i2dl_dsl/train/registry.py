"""The shared base of the training-side registries (losses, optimizers,
schedules, augmentations, stopping rules), as `layers/` has one for layers.

Each entry is one frozen dataclass holding its name, its signature (the
`P` entries of layers/base.py, with defaults) and what it does. A family
keeps its entries in one `Registry`; `trainspec`, the command line, the
training configuration and the search's section writer read it, so a new
entry is known everywhere once it is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Iterator, Mapping, TypeVar

from ..diagnostics import UserError, did_you_mean
from ..layers.base import REQUIRED, P
from ..values import signature_text


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One named, configurable piece of training."""

    name: str
    signature: tuple[P, ...] = ()
    doc: str = ""  # one line, for the command line's help

    def defaults(self) -> dict[str, Any]:
        """The arguments that have defaults, with them."""
        return {p.name: p.default for p in self.signature if p.default is not REQUIRED}

    def arguments(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every argument: the defaults, then what `given` sets (its `name` aside)."""
        return {**self.defaults(), **{k: v for k, v in given.items() if k != "name"}}


E = TypeVar("E", bound=Entry)

Spec = str | Mapping[str, Any]  # a name, or {"name": ..., **arguments} as the train section writes it


class Registry(Generic[E]):
    """The entries of one family by name, in the order they were registered."""

    def __init__(self, what: str, default: str = ""):
        self.what = what        # `optimizer`: the word in messages
        self.default = default  # the entry a run uses when nothing chooses one
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        if entry.name in self._entries:
            raise ValueError(f"{self.what} '{entry.name}' registered twice")
        self._entries[entry.name] = entry
        return entry

    def __getitem__(self, name: str) -> E:
        entry = self._entries.get(name)
        if entry is None:
            raise UserError(f"unknown {self.what} '{name}'", did_you_mean(name, self._entries) or
                            f"known: {', '.join(self._entries)}")
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def split(self, spec: Spec) -> tuple[E, dict[str, Any]]:
        """The entry a spec names and its every argument, defaults filled in."""
        name = spec if isinstance(spec, str) else spec["name"]
        given = {} if isinstance(spec, str) else spec
        entry = self[name]
        return entry, entry.arguments(given)

    def help(self) -> str:
        """`adam(lr=0.001, ...): Adam; sgd(lr=0.01): ...`, for --help texts."""
        def shown(entry: E) -> str:
            call = f"{entry.name}({signature_text(entry.signature)})" if entry.signature else entry.name
            return f"{call}: {entry.doc}" if entry.doc else call
        return "; ".join(shown(e) for e in self._entries.values())

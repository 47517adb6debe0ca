"""Scopes and naming: which tensors and parameters a body sees, and the
dotted names (`layer2.0.conv1`) its layers get."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, Diagnostics, Span

BLOCK_INPUT = "in"  # the tensor a block body starts from


@dataclass
class Scope:
    """One namespace: a block instance, a label, a residual or concat body."""

    prefix: str
    env: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, str | None] = field(default_factory=dict)  # None: known, but broken
    tensor_spans: dict[str, Span] = field(default_factory=dict)
    taken: dict[str, Span | None] = field(default_factory=dict)
    counters: Counter = field(default_factory=Counter)
    # Where this body's labels name things: itself, or for a concat branch or
    # a shortcut the body around it, as a residual's body does.
    home: "Scope | None" = None

    def qualify(self, local: str) -> str:
        return f"{self.prefix}.{local}" if self.prefix else local

    def auto(self, stem: str) -> str:
        """The next free automatic name: conv1, conv2, ..."""
        while True:
            self.counters[stem] += 1
            name = f"{stem}{self.counters[stem]}"
            if name not in self.taken:
                self.taken[name] = None
                return name

    def child(self, local: str, env: dict[str, Any] | None = None, tensors: bool = False) -> "Scope":
        """A nested namespace for names. A block body (`env` given) sees only
        its parameters; residual and concat bodies (`tensors`) also see the
        tensors named around them."""
        return Scope(self.qualify(local), dict(self.env if env is None else env),
                     dict(self.tensors) if tensors else {}, dict(self.tensor_spans) if tensors else {})

    def branch(self, local: str | None) -> "Scope":
        """A concat branch's or shortcut's body: its unlabelled layers are
        named under `local`; its labels are names of the body around it
        (`local` None: every statement is labelled, so none needs it)."""
        inner = self.child(local, tensors=True) if local is not None else self.child("", tensors=True)
        if local is None:
            inner.prefix = self.prefix
        inner.home = self.labels()
        return inner

    def labels(self) -> "Scope":
        """The scope a labelled statement of this body names its layers in:
        the home's names, this body's parameters and tensors."""
        home = self.home
        if home is None:
            return self
        return Scope(home.prefix, self.env, self.tensors, self.tensor_spans, home.taken, home.counters)

    def claim(self, label: str, span: Span, diags: Diagnostics) -> bool:
        """Take `label` in this scope; False (and an error) when it is taken."""
        if label in self.taken:
            earlier = self.taken[label]
            notes = [Diagnostic("note", f"'{label}' is first used here", earlier)] if earlier else []
            diags.error(f"duplicate label '{label}'", span, "labels must be unique within a block", notes=notes)
            return False
        self.taken[label] = span
        return True


def word_span(span: Span, word: str) -> Span:
    """The span of the name a statement begins with (`e1` in `e1 = x -> ...`)."""
    return Span(span.path, span.line, span.col, span.line, span.col + len(word))

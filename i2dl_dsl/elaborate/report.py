"""Diagnostics of one elaboration, each mistake reported once.

A block body is expanded once per instance: the same mistake in every
instance is one mistake, shown with a note for the instance that showed it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator, NoReturn

from ..diagnostics import Diagnostic, Diagnostics, Span, UserError
from .node import Trail


def instance_note(trail: Trail) -> tuple[Diagnostic, ...]:
    """The note naming the innermost block instance a mistake showed in."""
    if not trail:
        return ()
    instance, call_span = trail[-1]
    return (Diagnostic("note", f"in '{instance}', instantiated here", call_span),)


class Skip(Exception):
    """An error was recorded; abandon the current element of the chain."""


class Abort(Exception):
    """An error was recorded that makes going on pointless (the network is
    far too large)."""


class Reporter:
    """Records diagnostics in `diags`, knowing which block instances are
    being expanded (`trail`)."""

    def __init__(self, diags: Diagnostics):
        self.diags = diags
        self._trail: list[tuple[str, Span]] = []  # (block instance, call span) of the blocks being expanded
        self._reported: set[tuple[Span | None, str]] = set()
        self._blamed: set[tuple[str, str]] = set()  # (block instance, parameter) with a bad value reported

    @property
    def trail(self) -> Trail:
        return tuple(self._trail)

    @contextmanager
    def inside(self, instance: str, call_span: Span) -> Iterator[None]:
        """While a block instance's body is expanded."""
        self._trail.append((instance, call_span))
        try:
            yield
        finally:
            self._trail.pop()

    def report(self, diagnostic: Diagnostic) -> None:
        """An error in a block body, once, with a note for the instance that
        showed it."""
        key = (diagnostic.span, diagnostic.message)
        if key in self._reported:
            return
        self._reported.add(key)
        self.diags.add(replace(diagnostic, notes=(*diagnostic.notes, *instance_note(self.trail))))

    def fail(self, message: str, span: Span, *hints: str) -> NoReturn:
        """Report an error and abandon the current element of the chain."""
        self.report(Diagnostic("error", message, span, tuple(h for h in hints if h)))
        raise Skip()

    def reject(self, exc: UserError, span: Span) -> NoReturn:
        """Report a bad argument (unless its block parameter was blamed
        already) and abandon the current element."""
        if not self._blamed_already(exc):
            self.report(exc.diagnostic(span))
        raise Skip()

    def abort(self, message: str, span: Span, *hints: str) -> NoReturn:
        """Report an error at the outermost block call and stop elaborating."""
        where = self._trail[0][1] if self._trail else span
        self.diags.error(message, where, *hints)
        raise Abort()

    def _blamed_already(self, exc: UserError) -> bool:
        """Whether the block parameters a bad value came from have been
        reported in this block instance: one bad argument, one error."""
        if not exc.depends_on or not self._trail:
            return False
        instance = self._trail[-1][0]
        blamed = {(instance, name) for name in exc.depends_on}
        if blamed <= self._blamed:
            return True
        self._blamed |= blamed
        return False

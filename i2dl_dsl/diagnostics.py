"""One error type and one renderer for everything the user can get wrong.

A diagnostic reads like a good compiler's::

    models/bad.net:12:5: error: conv 'c3' output width is (14 - 5 + 2·0)/2 + 1 = 5.5, not a whole number
       12 |     conv(64, k=5, s=2)
          |     ^~~~~~~~~~~~~~~~~~
    hint: use p=1 or s=1, or k=4

Passes collect diagnostics in a `Diagnostics` list and raise `CompileError`
once they are done, so independent mistakes are all reported in one run.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Iterator


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns count from 1, end exclusive."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" | "warning" | "note"
    message: str
    span: Span | None = None
    hints: tuple[str, ...] = ()
    notes: tuple["Diagnostic", ...] = ()


class CompileError(Exception):
    """Raised with every diagnostic a pass collected; the CLI renders them."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


class UserError(Exception):
    """A single mistake found deep inside a pass; the pass adds the span."""

    def __init__(self, message: str, *hints: str, span: Span | None = None):
        super().__init__(message)
        self.message = message
        self.hints = tuple(h for h in hints if h)
        self.span = span

    def diagnostic(self, span: Span | None = None) -> Diagnostic:
        return Diagnostic("error", self.message, self.span or span, self.hints)


@dataclass
class Diagnostics:
    """An ordered collection that a pass appends to while it keeps going."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, message: str, span: Span | None, *hints: str, notes=()) -> None:
        self.items.append(Diagnostic("error", message, span, tuple(h for h in hints if h), tuple(notes)))

    def warning(self, message: str, span: Span | None, *hints: str) -> None:
        self.items.append(Diagnostic("warning", message, span, tuple(h for h in hints if h)))

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise CompileError(self.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A `hint:` text naming the closest candidate, or '' when none is close."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else ""


class SourceCache:
    """The text of every file read, so a diagnostic can quote its line."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, path: str, text: str) -> None:
        self._lines[path] = text.splitlines()

    def line(self, path: str, number: int) -> str | None:
        lines = self._lines.get(path)
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


SOURCES = SourceCache()


def render(diagnostic: Diagnostic, sources: SourceCache = SOURCES) -> str:
    """Render one diagnostic (and its notes) as text, without a trailing newline."""
    span = diagnostic.span
    head = f"{span}: " if span else ""
    out = [f"{head}{diagnostic.severity}: {diagnostic.message}"]
    if span is not None:
        out.extend(_quote(span, sources))
    out.extend(f"hint: {h}" for h in diagnostic.hints)
    out.extend(render(note, sources) for note in diagnostic.notes)
    return "\n".join(out)


def _quote(span: Span, sources: SourceCache) -> list[str]:
    text = sources.line(span.path, span.line)
    if text is None:
        return []
    text = text.expandtabs(4).rstrip()
    number = str(span.line)
    gutter = " " * len(number)
    end = span.end_col if span.end_line == span.line else len(text) + 1
    width = max(1, min(end, len(text) + 1) - span.col)
    caret = " " * (span.col - 1) + "^" + "~" * (width - 1)
    return [f" {number} | {text}", f" {gutter} | {caret}"]


def render_all(diagnostics: Iterable[Diagnostic], sources: SourceCache = SOURCES) -> str:
    items = list(diagnostics)
    text = "\n".join(render(d, sources) for d in items)
    errors = sum(d.severity == "error" for d in items)
    if errors > 1:
        text += f"\n{errors} errors"
    return text

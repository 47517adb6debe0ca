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
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns count from 1, end exclusive."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def file(path: str) -> "Span":
        """The file as a whole: shown as `path:1:1`, with no line quoted."""
        return Span(path, 1, 1, 1, 1)

    @staticmethod
    def unreadable(path: str) -> "Span":
        """A file with no lines to point at (missing, unreadable): shown as `path`."""
        return Span(path, 0, 0, 0, 0)

    @property
    def empty(self) -> bool:
        return self.end_line == self.line and self.end_col <= self.col

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}" if self.line > 0 else self.path


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

    def __init__(self, message: str, *hints: str, span: Span | None = None, depends_on: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.hints = tuple(h for h in hints if h)
        self.span = span
        # The block parameters the wrong value was computed from: one bad
        # argument is one mistake, however many layers of the block use it.
        self.depends_on = depends_on

    def diagnostic(self, span: Span | None = None) -> Diagnostic:
        return Diagnostic("error", self.message, self.span or span, self.hints)


@dataclass
class Diagnostics:
    """An ordered collection that a pass appends to while it keeps going.

    A diagnostic equal to one already held is dropped: a mistake inside a
    block used ten times is reported once.
    """

    items: list[Diagnostic] = field(default_factory=list)
    _seen: set[Diagnostic] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._seen.update(self.items)

    def error(self, message: str, span: Span | None, *hints: str, notes=()) -> None:
        self.add(Diagnostic("error", message, span, tuple(h for h in hints if h), tuple(notes)))

    def warning(self, message: str, span: Span | None, *hints: str) -> None:
        self.add(Diagnostic("warning", message, span, tuple(h for h in hints if h)))

    def add(self, diagnostic: Diagnostic) -> None:
        if diagnostic not in self._seen:
            self._seen.add(diagnostic)
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


def value_text(value: Any, quote_words: bool = False) -> str:
    """A value as a .net file writes it: true, "text", [1, 2], 0.001, and a
    bare word (a str subclass: a symbol such as `same`) as it is. Messages
    set `quote_words`, so that a bare word stands out: 'same'. A float is
    written short where that reads back as the same number, else in full."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if type(value) is str:
            return f'"{value}"'
        return f"'{value}'" if quote_words else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v, quote_words) for v in value) + "]"
    if isinstance(value, float):
        short = f"{value:g}"
        return short if not math.isfinite(value) or float(short) == value else repr(value)
    return str(value)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A `hint:` text naming the closest candidate, or '' when none is close."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else ""


class SourceCache:
    """The text of every file read, so a diagnostic can quote its line."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, path: str, text: str) -> None:
        # Lines end at "\n" only, as the lexer counts them (splitlines would
        # also break at form feeds and other separators).
        self._lines[path] = [line.rstrip("\r") for line in text.split("\n")]

    def line(self, path: str, number: int) -> str | None:
        lines = self._lines.get(path)
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


SOURCES = SourceCache()
TAB = 4


def render(diagnostic: Diagnostic, sources: SourceCache = SOURCES) -> str:
    """Render one diagnostic (and its notes) as text, without a trailing newline."""
    span = diagnostic.span
    head = f"{span}: " if span else ""
    out = [f"{head}{diagnostic.severity}: {diagnostic.message}"]
    if span is not None and not span.empty:
        out.extend(_quote(span, sources))
    out.extend(f"hint: {h}" for h in diagnostic.hints)
    out.extend(render(note, sources) for note in diagnostic.notes)
    return "\n".join(out)


def _printable(text: str) -> str:
    """Control characters would garble the terminal; each shows as one mark."""
    return "".join(c if c == "\t" or c.isprintable() else "\ufffd" for c in text)


def _quote(span: Span, sources: SourceCache) -> list[str]:
    raw = sources.line(span.path, span.line)
    if raw is None:
        return []
    raw = _printable(raw)
    start = min(max(span.col, 1) - 1, len(raw))
    end = span.end_col - 1 if span.end_line == span.line else len(raw.rstrip())
    end = min(max(end, start + 1), len(raw) + 1)
    # Columns count characters; a tab is shown as spaces, so measure the
    # shown text before and up to the end of the span.
    indent = len(raw[:start].expandtabs(TAB))
    width = max(1, len(raw[:end].expandtabs(TAB)) - indent)
    number = str(span.line)
    gutter = " " * len(number)
    return [f" {number} | {raw.expandtabs(TAB).rstrip()}", f" {gutter} | {' ' * indent}^{'~' * (width - 1)}"]


def sort_key(order: dict[str, int]):
    """Diagnostics in source order, files in the order they first appear."""
    def key(d: Diagnostic) -> tuple:
        if d.span is None:
            return (-1, 0, 0)
        return (order.setdefault(d.span.path, len(order)), d.span.line, d.span.col)
    return key


REPEATS = 3  # identical messages shown in full; the rest are listed by line


def render_all(diagnostics: Iterable[Diagnostic], sources: SourceCache = SOURCES) -> str:
    """Every diagnostic in source order, then how many errors there were.

    A message repeated at many places (a misspelt block used ten times) is
    quoted three times; a note lists where the others are.
    """
    items = sorted(diagnostics, key=sort_key({}))
    groups: dict[tuple, list[Diagnostic]] = {}
    for d in items:
        groups.setdefault((d.severity, d.message, d.hints), []).append(d)
    out = []
    for d in items:
        group = groups[(d.severity, d.message, d.hints)]
        index = next(i for i, g in enumerate(group) if g is d)
        if index < REPEATS:
            out.append(render(d, sources))
        if index == REPEATS - 1 and len(group) > REPEATS:
            out.append(_more_like_this(group[REPEATS:]))
    errors = sum(d.severity == "error" for d in items)
    if errors > 1:
        out.append(f"{errors} errors")
    return "\n".join(out)


def _more_like_this(rest: list[Diagnostic]) -> str:
    """`path:31:65: note: 9 more errors like this one, also at 32:53, 33:24, ...`"""
    first = rest[0].span
    places = [f"{d.span.line}:{d.span.col}" if first and d.span and d.span.path == first.path else
              str(d.span or "?") for d in rest[1:]]
    also = ", ".join(places[:10]) + (f" and {len(places) - 10} more" if len(places) > 10 else "")
    count = f"{len(rest)} more {rest[0].severity}{'s' if len(rest) > 1 else ''} like this one"
    return f"{first}: note: {count}" + (f", also at {also}" if also else "") if first else f"note: {count}"

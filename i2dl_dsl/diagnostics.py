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
from array import array
from dataclasses import dataclass, field
from itertools import accumulate
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

    @property
    def path(self) -> str | None:
        """The file the diagnostic points into, or None."""
        return self.span.path if self.span else None

    @property
    def line(self) -> int | None:
        """Its line, counted from 1; None where it points at no line."""
        return self.span.line if self.span and self.span.line > 0 else None

    @property
    def column(self) -> int | None:
        """Its column, counted from 1; None where it points at no line."""
        return self.span.col if self.span and self.span.line > 0 else None


class CompileError(Exception):
    """Raised with every diagnostic a pass collected; the CLI renders them."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))

    def __str__(self) -> str:
        """Every diagnostic as the commands print it: location, message, the
        quoted line with a caret, hints."""
        return render_all(self.diagnostics)


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


# Messages quote what the user wrote; a quote is cut to about this many
# characters (the middle elided), so a megabyte-long list argument gives a
# message of a line or two, not of a megabyte.
MAX_QUOTE = 200
LIST_SHOWN = 8  # a long list in a message shows its first items, then its last


def shorten(text: str, limit: int = MAX_QUOTE) -> str:
    """`text`, or, when longer than `limit`, its start and end around an
    `…` that says how much was left out."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
    return f"{head} … ({len(text) - len(head) - len(tail):,} characters) … {tail}"


def value_text(value: Any, quote_words: bool = False, short: bool = False) -> str:
    """A value as a .net file writes it: true, "text", [1, 2], 0.001, and a
    bare word (a str subclass: a symbol such as `same`) as it is. Messages
    set `quote_words`, so that a bare word stands out: 'same', and `short`,
    so that a long list shows its first and last items and a long text is
    cut (the result is then for reading, not for writing back). A float is
    written short where that reads back as the same number, else in full."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if not short else shorten(value)
        if type(value) is str:
            return f'"{text}"'
        return f"'{text}'" if quote_words else text
    if isinstance(value, (list, tuple)):
        return _list_text(value, quote_words, short)
    if isinstance(value, float):
        short_form = f"{value:g}"
        return short_form if not math.isfinite(value) or float(short_form) == value else repr(value)
    return str(value)


def _list_text(value: list | tuple, quote_words: bool, short: bool) -> str:
    if not short or len(value) <= LIST_SHOWN + 2:
        return "[" + ", ".join(value_text(v, quote_words, short) for v in value) + "]"
    shown = [value_text(v, quote_words, short) for v in (*value[:LIST_SHOWN], *value[-2:])]
    left_out = len(value) - LIST_SHOWN - 2
    middle = f"… {left_out:,} more …"
    return shorten("[" + ", ".join([*shown[:LIST_SHOWN], middle, *shown[LIST_SHOWN:]]) + "]", 2 * MAX_QUOTE)


# A word longer than this has no near miss worth suggesting (and comparing
# it with every candidate would cost its length times theirs).
MAX_SUGGESTED_WORD = 64


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A `hint:` text naming the closest candidate, or '' when none is close."""
    if len(word) > MAX_SUGGESTED_WORD:
        return ""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else ""


class SourceCache:
    """The text of every file read, so a diagnostic can quote its line.

    A file is kept as one string; where its lines start is worked out the
    first time a diagnostic quotes it (most files never are), so reading a
    file costs no more than its text, and quoting N diagnostics of one file
    finds each line directly rather than splitting the file N times.
    """

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._starts: dict[str, array] = {}

    def add(self, path: str, text: str) -> None:
        self._texts[path] = text
        self._starts.pop(path, None)

    def _line_starts(self, path: str) -> array | None:
        starts = self._starts.get(path)
        text = self._texts.get(path)
        if starts is None and text is not None:
            # Lines end at "\n" only, as the lexer counts them (splitlines
            # would also break at form feeds and other separators).
            starts = array("q", accumulate((len(part) + 1 for part in text.split("\n")), initial=0))
            self._starts[path] = starts
        return starts

    def line_length(self, path: str, number: int) -> int | None:
        """How many characters line `number` has (a final \\r not counted),
        or None when the file or the line is unknown."""
        starts = self._line_starts(path)
        if starts is None or not 1 <= number < len(starts):
            return None
        begin, end = starts[number - 1], starts[number] - 1
        return end - begin - (end > begin and self._texts[path][end - 1] == "\r")

    def line(self, path: str, number: int, lo: int = 0, hi: int | None = None) -> str | None:
        """Line `number` (from 1), or its characters lo..hi, or None."""
        length = self.line_length(path, number)
        if length is None:
            return None
        begin = self._starts[path][number - 1]
        hi = length if hi is None else min(hi, length)
        return self._texts[path][begin + max(lo, 0): begin + max(hi, lo, 0)]


SOURCES = SourceCache()
TAB = 4
MAX_MESSAGE = 4 * MAX_QUOTE  # a message with a few quotes in it
# A quoted line shows at most this many characters around the span, so a
# diagnostic on a megabyte-long line stays a few lines of text.
WINDOW = 120
ELLIPSIS = "…"


def render(diagnostic: Diagnostic, sources: SourceCache = SOURCES) -> str:
    """Render one diagnostic (and its notes) as text, without a trailing newline."""
    span = diagnostic.span
    head = f"{span}: " if span else ""
    # A message or hint that quotes user text is cut here whatever built it;
    # the passes cut the values they quote (value_text's `short`) too.
    out = [f"{head}{diagnostic.severity}: {_text(diagnostic.message)}"]
    if span is not None and not span.empty:
        out.extend(_quote(span, sources))
    out.extend(f"hint: {_text(h)}" for h in diagnostic.hints)
    out.extend(render(note, sources) for note in diagnostic.notes)
    return "\n".join(out)


def _printable(text: str, keep: str = "\t") -> str:
    """Control characters would garble the terminal; each shows as one mark."""
    return "".join(c if c in keep or c.isprintable() else "\ufffd" for c in text)


def _text(message: str) -> str:
    """A message or hint as shown: cut to MAX_MESSAGE, and a control
    character from quoted input (a carriage return) shown as a mark; its
    own line breaks are kept."""
    return _printable(shorten(message, MAX_MESSAGE), keep="\t\n")


def _window(length: int, start: int, end: int) -> tuple[int, int]:
    """The characters lo..hi of a line of `length` to show for the span
    start..end: the whole line when it is short, else WINDOW characters
    with the span's start placed a third of the way in."""
    if length <= WINDOW:
        return 0, length
    lo = max(0, min(start - WINDOW // 3, length - WINDOW))
    return lo, lo + WINDOW


def _quote(span: Span, sources: SourceCache) -> list[str]:
    length = sources.line_length(span.path, span.line)
    if length is None:
        return []
    start = min(max(span.col, 1) - 1, length)
    end = span.end_col - 1 if span.end_line == span.line else length
    end = min(max(end, start + 1), length + 1)
    lo, hi = _window(length, start, end)
    raw = _printable(sources.line(span.path, span.line, lo, hi))
    left = ELLIPSIS if lo > 0 else ""
    right = ELLIPSIS if hi < length else ""
    start, end = start - lo, min(end - lo, len(raw) + 1)
    # Columns count characters; a tab is shown as spaces, so measure the
    # shown text before and up to the end of the span.
    indent = len(left) + len(raw[:start].expandtabs(TAB))
    width = max(1, len(left) + len(raw[:end].expandtabs(TAB)) - indent)
    number = str(span.line)
    gutter = " " * len(number)
    shown = (left + raw.expandtabs(TAB)).rstrip() + right
    return [f" {number} | {shown}", f" {gutter} | {' ' * indent}^{'~' * (width - 1)}"]


def sort_key(order: dict[str, int]):
    """Diagnostics in source order, files in the order they first appear."""
    def key(d: Diagnostic) -> tuple:
        if d.span is None:
            return (-1, 0, 0)
        return (order.setdefault(d.span.path, len(order)), d.span.line, d.span.col)
    return key


REPEATS = 3  # identical messages shown in full; the rest are listed by line
# Past this many diagnostics shown, the rest are counted, not printed (as
# compilers do): the first ones are what the user fixes first, and printing
# every one of 100,000 errors helps no one.
MAX_SHOWN = 50


def render_all(diagnostics: Iterable[Diagnostic], sources: SourceCache = SOURCES,
               limit: int | None = MAX_SHOWN) -> str:
    """Every diagnostic in source order (the first `limit` of them; None:
    all), then how many errors there were.

    A message repeated at many places (a misspelt block used ten times) is
    quoted three times; a note lists where the others are. Linear in the
    number of diagnostics.
    """
    items = sorted(diagnostics, key=sort_key({}))
    groups: dict[tuple, list[Diagnostic]] = {}
    for d in items:
        groups.setdefault((d.severity, d.message, d.hints), []).append(d)
    out: list[str] = []
    seen: dict[tuple, int] = {}
    noted: set[tuple] = set()  # groups whose repeats a note already lists
    shown = 0
    for position, d in enumerate(items):
        key = (d.severity, d.message, d.hints)
        index = seen[key] = seen.get(key, -1) + 1
        if index >= REPEATS:
            continue
        if limit is not None and shown >= limit:
            out.append(_not_shown(items[position:], noted))
            break
        out.append(render(d, sources))
        shown += 1
        group = groups[key]
        if index == REPEATS - 1 and len(group) > REPEATS:
            out.append(_more_like_this(group[REPEATS:]))
            noted.add(key)
    errors = sum(d.severity == "error" for d in items)
    if errors > 1:
        out.append(f"{errors} errors")
    return "\n".join(out)


def _not_shown(rest: list[Diagnostic], noted: set[tuple]) -> str:
    """`... and 39,950 more errors`: those after the cap, less the repeats
    already counted in a `more like this one` note."""
    counts: dict[str, int] = {}
    for d in rest:
        if (d.severity, d.message, d.hints) not in noted:
            counts[d.severity] = counts.get(d.severity, 0) + 1
    parts = [f"{n:,} more {severity}{'s' if n > 1 else ''}" for severity, n in counts.items()]
    return f"... and {' and '.join(parts)} (not shown)"


def _more_like_this(rest: list[Diagnostic]) -> str:
    """`path:31:65: note: 9 more errors like this one, also at 32:53, 33:24, ...`"""
    first = rest[0].span
    places = [f"{d.span.line}:{d.span.col}" if first and d.span and d.span.path == first.path else
              str(d.span or "?") for d in rest[1:]]
    also = ", ".join(places[:10]) + (f" and {len(places) - 10} more" if len(places) > 10 else "")
    count = f"{len(rest)} more {rest[0].severity}{'s' if len(rest) > 1 else ''} like this one"
    return f"{first}: note: {count}" + (f", also at {also}" if also else "") if first else f"note: {count}"

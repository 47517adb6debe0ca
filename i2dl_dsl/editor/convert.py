"""Between the checker's spans and diagnostics and the protocol's ranges.

Spans count lines and columns from 1 with the end exclusive; the protocol
counts both from 0. Columns are characters on both sides: a file with
characters beyond the Basic Multilingual Plane would need UTF-16 columns,
which .net files (ASCII in practice) do not.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from ..diagnostics import Diagnostic, Span
from .workspace import identity

SOURCE = "i2dl"
_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
             "note": lsp.DiagnosticSeverity.Information}


def to_range(span: Span | None) -> lsp.Range:
    if span is None or span.line <= 0:
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    start = lsp.Position(span.line - 1, max(span.col - 1, 0))
    end = lsp.Position(max(span.end_line - 1, start.line), max(span.end_col - 1, 0))
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return lsp.Range(start, end)


def contains(span: Span, line: int, character: int) -> bool:
    """Whether the 0-based position lies in the span (its end included, so
    a cursor just after a word is on it)."""
    position = (line + 1, character + 1)
    return (span.line, span.col) <= position <= (span.end_line, span.end_col)


def uri_of(path: str) -> str:
    return identity(path).as_uri()


def same_file(a: str, b: str) -> bool:
    return identity(a) == identity(b)


def to_lsp(diagnostic: Diagnostic, path: str) -> lsp.Diagnostic:
    """One diagnostic of the document at `path`. A mistake in a file it
    `use`s is shown at the `use` statement that reads it, its place named
    in the message. Hints and notes become related information."""
    span = diagnostic.span
    message = diagnostic.message
    if span is not None and not same_file(span.path, path):
        here = next((n.span for n in diagnostic.notes if n.span is not None and same_file(n.span.path, path)), None)
        message = f"{span}: {message}"
        span = here or Span.file(path)
    related = [lsp.DiagnosticRelatedInformation(lsp.Location(uri_of(path), to_range(span)), f"hint: {hint}")
               for hint in diagnostic.hints]
    related += [lsp.DiagnosticRelatedInformation(lsp.Location(uri_of(n.span.path), to_range(n.span)), n.message)
                for n in diagnostic.notes if n.span is not None and n.span.line > 0]
    if diagnostic.hints:
        # Clients that show no related information still show the message.
        message += "".join(f"\nhint: {hint}" for hint in diagnostic.hints)
    return lsp.Diagnostic(range=to_range(span), message=message, severity=_SEVERITY.get(diagnostic.severity),
                          source=SOURCE, related_information=related or None,
                          data={"hints": list(diagnostic.hints)} if diagnostic.hints else None)

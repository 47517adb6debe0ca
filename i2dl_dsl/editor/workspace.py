"""The files an editor holds, checked by the checker itself.

An open document is checked from the text the editor sends, not from the
disk; the files it `use`s are read from the editor when it has them open,
else from the disk. Each file's syntax tree is kept and reused while its
text is unchanged, so a keystroke re-parses the one file that changed
(and elaborates and analyses the network again, which is cheap next to
parsing: ResNet-50's whole check takes some milliseconds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..checker import Examination, examine
from ..diagnostics import CompileError, Diagnostic, Span
from ..loader import load
from ..syntax import ast
from ..syntax.parser import parse_text, read_source


def identity(path: str | Path) -> Path:
    """One name for a file however it is reached (`a/../b.net`, links)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


@dataclass
class Snapshot:
    """What the checker found in one version of a document."""

    path: str
    text: str
    version: int | None
    diagnostics: tuple[Diagnostic, ...]
    found: Examination | None          # None: the file could not be parsed
    module: ast.Module | None          # this file's tree (None: a syntax error)
    depends_on: frozenset[Path] = frozenset()  # every file it read, itself included


@dataclass
class _Parsed:
    text: str
    module: ast.Module | None
    error: CompileError | None


@dataclass
class Workspace:
    """Open documents, their latest snapshots and a cache of parsed files."""

    texts: dict[Path, str] = field(default_factory=dict)         # open documents, by identity
    snapshots: dict[Path, Snapshot] = field(default_factory=dict)
    good: dict[Path, Snapshot] = field(default_factory=dict)     # the latest that was checked through
    _parsed: dict[Path, _Parsed] = field(default_factory=dict)

    # --------------------------------------------------------- documents
    def open(self, path: str, text: str, version: int | None = None) -> Snapshot:
        """Record (or replace) an open document's text and check it."""
        self.texts[identity(path)] = text
        return self.check(path, version)

    def close(self, path: str) -> None:
        key = identity(path)
        self.texts.pop(key, None)
        self.snapshots.pop(key, None)
        self.good.pop(key, None)

    def dependents(self, path: str) -> list[str]:
        """Open documents (other than `path`) that read `path`: to check again when it changes."""
        key = identity(path)
        return [s.path for k, s in self.snapshots.items() if k != key and key in s.depends_on]

    def forget(self, path: str) -> None:
        """Drop the cached tree of a file changed on disk."""
        self._parsed.pop(identity(path), None)

    # --------------------------------------------------------- checking
    def check(self, path: str, version: int | None = None) -> Snapshot:
        """Check an open document (or any file) and keep the result."""
        key = identity(path)
        read: set[Path] = set()

        def parse(file: Path, from_span: Span | None, written: str | None) -> ast.Module:
            read.add(identity(file))
            return self._parse(file, from_span, written)

        try:
            found: Examination | None = None
            if self._library(path, parse):
                diagnostics = tuple(load(path, parse, require_network=False).warnings)
            else:
                found = examine(path, parse=parse)
                diagnostics = tuple(found.diags)
        except CompileError as exc:
            found, diagnostics = None, exc.diagnostics
        except RecursionError:
            found, diagnostics = None, (Diagnostic("error", "the file nests too deeply to check", Span.file(path)),)
        except Exception as exc:  # noqa: BLE001 - the editor keeps serving; the user sees what broke
            message = f"internal error while checking: {type(exc).__name__}: {exc}"
            found, diagnostics = None, (Diagnostic("error", message, Span.file(path),
                                                   ("please report it, with the file",)),)
        parsed = self._parsed.get(key)
        snapshot = Snapshot(path, self.texts.get(key, parsed.text if parsed else ""), version, diagnostics, found,
                            parsed.module if parsed else None, frozenset(read | {key}))
        self.snapshots[key] = snapshot
        if found is not None:
            self.good[key] = snapshot
        return snapshot

    @staticmethod
    def _library(path: str, parse) -> bool:
        """A file of blocks alone, read by others with `use`: checked
        without a network (one that does not parse is no library)."""
        try:
            return not parse(Path(path), None, None).networks
        except CompileError:
            return False

    def _parse(self, file: Path, from_span: Span | None, written: str | None) -> ast.Module:
        key = identity(file)
        text = self.texts.get(key)
        if text is None:
            # Not open: the disk's text (read each time, so a change made
            # outside the editor is seen; parsing is what the cache saves).
            text = read_source(file, from_span, written)
        cached = self._parsed.get(key)
        if cached is None or cached.text != text:
            cached = self._parse_text(text, str(file))
            self._parsed[key] = cached
        if cached.error is not None:
            raise cached.error
        return cached.module  # type: ignore[return-value]

    @staticmethod
    def _parse_text(text: str, path: str) -> _Parsed:
        try:
            return _Parsed(text, parse_text(text, path), None)
        except CompileError as exc:
            return _Parsed(text, None, exc)

    def snapshot(self, path: str) -> Snapshot | None:
        return self.snapshots.get(identity(path))

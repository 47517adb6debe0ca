"""Load a .net file and everything it `use`s into one `Program`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .diagnostics import CompileError, Diagnostic, Diagnostics, Span
from .layers import REGISTRY
from .syntax import ast
from .syntax.parser import parse_file, parse_given


@dataclass
class Program:
    main: ast.Module
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)


# Reads one file into its syntax tree: (path, the `use` span that asked for
# it, the path as written there) → Module, or CompileError.
Parse = Callable[[Path, "Span | None", "str | None"], ast.Module]


def _reading_source(parse: Parse, main: Path, source: str) -> Parse:
    """`parse`, except that the main file is the text `source`."""
    def read(path: Path, from_span: "Span | None", written: "str | None") -> ast.Module:
        return parse_given(source, str(path)) if path == main else parse(path, from_span, written)
    return read


def load(path: str | Path, parse: Parse = parse_file, require_network: bool = True,
         source: str | None = None) -> Program:
    """Parse `path` and its imports; every error of every file is collected.
    `parse` reads one file (an editor passes one that reads the texts it
    holds open and keeps the trees of files that did not change); an
    editor also checks files of blocks alone (`require_network` False).
    With `source`, that text is the main file, shown in messages as `path`;
    its `use` statements are read relative to the folder of `path`."""
    if source is not None:
        parse = _reading_source(parse, Path(path), source)
    diags = Diagnostics()
    modules: dict[Path, ast.Module] = {}
    main = _load_module(Path(path), None, [], modules, diags, parse=parse)
    if main is None:
        diags.raise_if_errors()
        raise AssertionError("a file that failed to load reported no error")
    program = Program(main)
    for module in modules.values():
        for block in module.blocks:
            _add_block(program, block, diags)
    _check_single(main, diags, require_network)
    diags.raise_if_errors()
    program.warnings = diags.warnings
    return program


def _load_module(path: Path, from_span: Span | None, stack: list[Path], modules: dict[Path, ast.Module],
                 diags: Diagnostics, written: str | None = None, parse: Parse = parse_file) -> ast.Module | None:
    key = _identity(path)
    if key in stack:
        cycle = " -> ".join(p.name for p in stack[stack.index(key):] + [key])
        diags.error(f"`use` cycle: {cycle}", from_span, "move the shared blocks into a file that neither imports")
        return None
    if key in modules:
        return modules[key]
    try:
        module = parse(path, from_span, written)
    except CompileError as exc:
        for d in exc.diagnostics:
            diags.add(_imported_here(d, from_span))
        return None
    modules[key] = module
    for use in module.uses:
        target = (path.parent / use.path)
        _load_module(target, use.span, stack + [key], modules, diags, use.path, parse)
    return module


def _identity(path: Path) -> Path:
    """The file's real path, the same however it is reached; a symbolic-link
    loop has none (its reading reports the loop)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # Python before 3.13 raises RuntimeError on a loop
        return Path(os.path.abspath(path))


def _imported_here(diagnostic: Diagnostic, from_span: Span | None) -> Diagnostic:
    """An error inside an imported file, with a note for the `use` that read it."""
    if from_span is None or diagnostic.span is None or diagnostic.span.path == from_span.path:
        return diagnostic
    note = Diagnostic("note", f"'{diagnostic.span.path}' is imported here", from_span)
    return replace(diagnostic, notes=(*diagnostic.notes, note))


def _check_params(what: str, params: tuple[ast.Param, ...], diags: Diagnostics) -> None:
    names: dict[str, ast.Param] = {}
    for param in params:
        if param.name in names:
            note = Diagnostic("note", f"the first '{param.name}' is here", names[param.name].span)
            diags.error(f"{what} has two parameters named '{param.name}'", param.span, notes=[note])
        names.setdefault(param.name, param)


def _add_block(program: Program, block: ast.BlockDef, diags: Diagnostics) -> None:
    _check_params(f"block '{block.name}'", block.params, diags)
    if block.name in REGISTRY:
        diags.error(f"block '{block.name}' has the name of a layer", block.name_span,
                    f"rename it: {block.name}(...) means the layer")
        return
    earlier = program.blocks.get(block.name)
    if earlier is not None and earlier is not block:
        note = Diagnostic("note", f"block '{block.name}' first defined here", earlier.name_span)
        diags.error(f"block '{block.name}' is defined twice", block.name_span, "rename one of them", notes=[note])
        return
    program.blocks[block.name] = block


def _check_single(main: ast.Module, diags: Diagnostics, require_network: bool = True) -> None:
    for network in main.networks:
        _check_params(f"network '{network.name}'", network.params, diags)
    if not main.networks and require_network:
        diags.error("the file defines no network", Span.file(main.path),
                    "add `network Name { input x[C, H, W] ... }`; files that only hold blocks are imported with `use`")
    for extra in main.networks[1:]:
        note = Diagnostic("note", "the first network is here", main.networks[0].name_span)
        diags.error(f"a file holds one network; '{extra.name}' is a second one", extra.name_span,
                    "move it into a file of its own", notes=[note])
    for extra in main.trains[1:]:
        note = Diagnostic("note", "the first train section is here", _first_line(main.trains[0].span))
        diags.error("a file holds one train section; this is a second one", _first_line(extra.span),
                    "merge the two", notes=[note])


def _first_line(span: Span) -> Span:
    """`train {`: where a section begins, not all of its lines."""
    return Span(span.path, span.line, span.col, span.line, span.col + len("train"))

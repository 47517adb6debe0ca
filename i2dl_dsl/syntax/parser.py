"""Read a .net file into a `Module`: the Lark parser, its line-break rule,
friendly syntax errors, and the transformer that builds the syntax tree."""

from __future__ import annotations

import contextlib
import difflib
import functools
import gc
import math
import os
import sys
from pathlib import Path
from typing import Iterator

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput

from ..diagnostics import SOURCES, CompileError, Diagnostic, Span, UserError
from ..reading import read_source_bytes
from . import ast

GRAMMAR = Path(__file__).resolve().parents[1] / "grammars" / "net.lark"

# A line break is dropped after these tokens (the statement goes on) ...
_CONTINUES_AFTER = {"_ARROW", "COMMA", "LBRACE", "LPAR", "LSQB", "EQUAL", "COLON",
                    "PLUS", "MINUS", "STAR", "SLASH", "SLASHSLASH"}
# ... and before these ones.
_CONTINUES_BEFORE = {"_ARROW", "RBRACE", "SHORTCUT", "BRANCH", "RPAR", "RSQB"}
_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB"}


class _LineBreaks:
    """Post-lexer: keeps a line break only where it ends a statement."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        previous: Token | None = None
        pending: Token | None = None
        for token in stream:
            if token.type == "_NL":
                if depth == 0 and previous is not None and previous.type not in _CONTINUES_AFTER:
                    pending = token
                continue
            if pending is not None and token.type not in _CONTINUES_BEFORE:
                yield pending
            pending = None
            if token.type in _OPENERS:
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            yield token
            previous = token


def _grammar_text() -> str:
    # Installed packages carry a copy of the grammar; a source checkout reads
    # the one in grammars/.
    for candidate in (GRAMMAR, Path(__file__).resolve().parents[2] / "grammars" / "net.lark"):
        if candidate.exists():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError("net.lark grammar not found")


def _cache_file() -> str | bool:
    """Where Lark keeps its analysis of the grammar between runs (it checks
    the file against a hash of the grammar), or False where no folder can be
    made: building the parser afresh costs tens of milliseconds."""
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = Path(base) / "i2dl-dsl"
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError, KeyError):
        return False
    version = f"lark{lark.__version__}-py{sys.version_info[0]}.{sys.version_info[1]}"
    return str(folder / f"net-grammar-{version}.cache")


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    # A cache that cannot be read or written is ignored by Lark.
    return Lark(_grammar_text(), parser="lalr", lexer="basic", postlex=_LineBreaks(),
                propagate_positions=True, maybe_placeholders=True, cache=_cache_file())


# ----------------------------------------------------------------- reading files


def read_source(path: str | Path, from_span: Span | None = None, written: str | None = None) -> str:
    """The text of a .net file, or a CompileError saying why it cannot be read.

    A file that cannot be opened is reported at `from_span`, the `use`
    statement that asked for it (or at the path itself); a file that can be
    read but is not UTF-8 or is empty, inside the file. `written` is the
    path as the `use` statement spells it, for suggestions.
    """
    shown = str(path)
    p = Path(path)
    outside = from_span or Span.unreadable(shown)

    def fail(message: str, span: Span, *hints: str) -> CompileError:
        return CompileError([Diagnostic("error", message, span, tuple(h for h in hints if h))])

    try:
        data = read_source_bytes(p, net_suffix=from_span is not None)
    except UserError as exc:
        raise fail(exc.message, outside, *exc.hints) from None
    except FileNotFoundError:
        raise fail(f"file '{shown}' does not exist", outside, _nearby_hint(p, written or shown)) from None
    except OSError as exc:
        raise fail(f"cannot read '{shown}': {exc.strerror or exc}", outside) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = len(data[: exc.start].rsplit(b"\n", 1)[-1].decode("utf-8", "replace")) + 1
        SOURCES.add(shown, data.decode("utf-8", "replace"))
        raise fail(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                   Span(shown, line, col, line, col + 1), "save the file as UTF-8") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise fail("the file is empty", Span.file(shown), "a model file needs a `network Name { ... }`")
    return text


def _nearby_hint(path: Path, written: str) -> str:
    """Did you mean a .net file next to the one asked for? Spelt as the
    user spelt the path."""
    try:
        names = [f.name for f in path.parent.iterdir() if f.suffix == ".net"] if path.parent.is_dir() else []
    except OSError:
        return ""
    found = difflib.get_close_matches(path.name, sorted(names), n=1, cutoff=0.6)
    if not found:
        return ""
    folder = written.replace("\\", "/").rsplit("/", 1)[0] + "/" if "/" in written.replace("\\", "/") else ""
    return f"did you mean '{folder}{found[0]}'?"


def parse_file(path: str | Path, from_span: Span | None = None, written: str | None = None) -> ast.Module:
    return parse_text(read_source(path, from_span, written), str(path))


MAX_SYNTAX_ERRORS = 20
# Each later syntax error costs a parse of the whole text again; past this
# many characters parsed again, the search stops. A file of some kilobytes
# gets every one of its MAX_SYNTAX_ERRORS; a 90 KB file with 20 mistakes
# took 7.5 s CPU searching for them all (and a megabyte would take minutes).
RECOVERY_BUDGET = 200_000
MAX_DIGITS = 30  # a longer integer is a typo (and Python refuses to read very long ones)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Parsing makes a few objects per token and no reference cycles, so
    Python's cycle collector, which would scan every object made so far
    again and again, has nothing to find: off while parsing, parsing and
    building the tree of 100,000 statements takes 4.5 s CPU, not 7.8 s."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_text(text: str, path: str = "<text>") -> ast.Module:
    """Parse .net source text; syntax errors raise CompileError."""
    SOURCES.add(path, text)
    with _no_cycle_collection():
        try:
            tree = _lark().parse(text)
        except UnexpectedInput as exc:
            raise CompileError(_syntax_errors(exc, text, path)) from None
        return _to_ast(tree, path)


def _to_ast(tree: lark.Tree, path: str) -> ast.Module:
    try:
        return _ToAst(path).transform(tree)
    except RecursionError:
        message = "the file nests too deeply to read (a very long expression, or brackets inside brackets)"
        raise CompileError([Diagnostic("error", message, Span.file(path),
                                       ("split the expression, or use fewer nested brackets and blocks",))]) from None


def _syntax_errors(exc: UnexpectedInput, text: str, path: str) -> list[Diagnostic]:
    """The first syntax error, and those of later statements that do not
    depend on it (found by blanking the failed line and parsing again)."""
    from . import errors  # only a file with a mistake pays for importing it

    found = [errors.syntax_error(exc, text, path, _lark())]
    budget = RECOVERY_BUDGET
    while len(found) < MAX_SYNTAX_ERRORS and budget >= len(text):
        budget -= len(text)
        line = errors.recoverable_line(exc, text)
        if line is None:
            break
        text = errors.blank_line(text, line)
        try:
            _lark().parse(text)
            break
        except UnexpectedInput as again:
            if again.line <= line:
                break
            exc = again
            found.append(errors.syntax_error(exc, text, path, _lark()))
    return found


# ----------------------------------------------------------------- tree to AST


def _span(path: str, meta_or_token) -> Span:
    m = meta_or_token
    return Span(path, m.line, m.column, m.end_line, m.end_column)


@v_args(meta=True)
class _ToAst(Transformer):
    """Thin: every rule becomes the dataclass of the same name."""

    def __init__(self, path: str):
        # Tokens stay tokens: looking each one up as a method (and failing)
        # cost a third of building the tree.
        super().__init__(visit_tokens=False)
        self.path = path
        # Lark rebuilds a v_args method's wrapper (functools.update_wrapper)
        # each time it looks the method up, once per node: bound once here.
        for name, method in vars(_ToAst).items():
            if hasattr(method, "visit_wrapper"):
                setattr(self, name, getattr(self, name))

    def _s(self, meta) -> Span:
        return _span(self.path, meta)

    # expressions
    def int(self, meta, c):
        text = str(c[0])
        if len(text) > MAX_DIGITS:  # Python refuses to read very long integers
            return ast.Literal(ast.TooLarge(text), self._s(meta))
        return ast.Literal(int(text), self._s(meta))

    def float(self, meta, c):
        value = float(c[0])
        if not math.isfinite(value):
            return ast.Literal(ast.TooLarge(str(c[0])), self._s(meta))
        return ast.Literal(value, self._s(meta))

    def true(self, meta, c):
        return ast.Literal(True, self._s(meta))

    def false(self, meta, c):
        return ast.Literal(False, self._s(meta))

    def string(self, meta, c):
        return ast.Literal(str(c[0])[1:-1], self._s(meta))

    def name(self, meta, c):
        return ast.Name(str(c[0]), self._s(meta))

    def list(self, meta, c):
        return ast.ListExpr(tuple(x for x in c if x is not None), self._s(meta))

    def _binop(op):  # noqa: N805 - a factory used in the class body
        def rule(self, meta, c):
            return ast.BinOp(op, c[0], c[1], self._s(meta))
        return rule

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    div = _binop("/")
    floordiv = _binop("//")

    def neg(self, meta, c):
        return ast.Neg(c[0], self._s(meta))

    # chains
    def arg(self, meta, c):
        name, value = c
        return ast.Arg(str(name) if name is not None else None, value, self._s(meta))

    def chain_arg(self, meta, c):
        return ast.Arg(None, ast.Chain(tuple(c), self._s(meta)), self._s(meta))

    def call_args(self, meta, c):
        return tuple(a for a in c if a is not None)

    def call(self, meta, c):
        name, args = c
        return ast.Call(str(name), args or (), args is not None, self._s(meta), _span(self.path, name))

    def repeat(self, meta, c):
        return ast.Repeat(c[0], c[1], self._s(meta))

    def body(self, meta, c):
        return _stmts(tuple(c))

    def residual(self, meta, c):
        return ast.Residual(c[0], c[1], self._s(meta))

    def shortcut(self, meta, c):
        return c[0]

    def branch(self, meta, c):
        return ast.Branch(c[0], self._s(meta))

    def concat_block(self, meta, c):
        return ast.ConcatBlock(tuple(c[1:]), self._s(meta))

    def chain(self, meta, c):
        return ast.Chain(tuple(c), self._s(meta))

    # statements
    def dim(self, meta, c):
        name, value = c
        return ast.Dim(str(name) if name is not None else None, value, self._s(meta))

    def input_stmt(self, meta, c):
        return ast.InputStmt(str(c[0]), tuple(c[1:]), self._s(meta))

    def labeled(self, meta, c):
        return ast.ChainStmt(c[1], str(c[0]), None, self._s(meta))

    def assign(self, meta, c):
        return ast.ChainStmt(c[1], None, str(c[0]), self._s(meta))

    def assign_pieces(self, meta, c):
        *names, chain = c
        return ast.PiecesStmt(chain, tuple(str(n) for n in names), self._s(meta),
                              tuple(_span(self.path, n) for n in names))

    # top level
    def param(self, meta, c):
        return ast.Param(str(c[0]), c[1], self._s(meta))

    def block_def(self, meta, c):
        name, *params, body = c
        params = tuple(p for p in params if p is not None)
        return ast.BlockDef(str(name), params, body, self._s(meta), _span(self.path, name))

    def network_def(self, meta, c):
        name, *params, body = c
        params = tuple(p for p in params if p is not None)
        return ast.NetworkDef(str(name), body, self._s(meta), _span(self.path, name), params)

    def tkeyword(self, meta, c):
        return ast.TrainValue(str(c[0]), c[1], self._s(meta))

    def train_stmt(self, meta, c):
        key, args, *values = c
        values = tuple(v if isinstance(v, ast.TrainValue) else ast.TrainValue(None, v, v.span) for v in values)
        return ast.TrainStmt(str(key), args, values, self._s(meta), _span(self.path, key))

    def train_def(self, meta, c):
        return ast.TrainDef(tuple(c), self._s(meta))

    def use_stmt(self, meta, c):
        return ast.Use(str(c[0])[1:-1], self._s(meta))

    def start(self, meta, c):
        items = [x for x in c if x is not None]
        pick = lambda kind: tuple(x for x in items if isinstance(x, kind))  # noqa: E731
        return ast.Module(self.path, pick(ast.Use), pick(ast.BlockDef), pick(ast.NetworkDef), pick(ast.TrainDef))


def _stmts(body: tuple) -> tuple[ast.Stmt, ...]:
    """Bare chains become unlabelled chain statements."""
    return tuple(ast.ChainStmt(s, None, None, s.span) if isinstance(s, ast.Chain) else s for s in body)

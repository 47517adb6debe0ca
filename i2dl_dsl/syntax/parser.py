"""Read a .net file into a `Module`: the Lark parser, its line-break rule,
friendly syntax errors, and the transformer that builds the syntax tree."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import SOURCES, CompileError, Diagnostic, Span
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


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(_grammar_text(), parser="lalr", lexer="basic", postlex=_LineBreaks(),
                propagate_positions=True, maybe_placeholders=True, cache=False)


# ----------------------------------------------------------------- reading files


def read_source(path: str | Path, from_span: Span | None = None) -> str:
    """The text of a .net file, or a CompileError saying why it cannot be read."""
    shown = str(path)

    def fail(message: str, *hints: str) -> CompileError:
        return CompileError([Diagnostic("error", message, from_span, hints)])

    p = Path(path)
    if not p.exists():
        raise fail(f"file '{shown}' does not exist")
    if p.is_dir():
        raise fail(f"'{shown}' is a directory, not a .net file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read '{shown}': {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise fail(f"'{shown}' is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})",
                   "save the file as UTF-8") from None
    if not text.strip():
        raise fail(f"'{shown}' is empty", "a model file needs a `network Name { ... }`")
    return text.lstrip("\ufeff")


def parse_file(path: str | Path, from_span: Span | None = None) -> ast.Module:
    return parse_text(read_source(path, from_span), str(path))


def parse_text(text: str, path: str = "<text>") -> ast.Module:
    """Parse .net source text; syntax errors raise CompileError."""
    SOURCES.add(path, text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise CompileError([_syntax_error(exc, text, path)]) from None
    return _ToAst(path).transform(tree)


# ----------------------------------------------------------------- syntax errors

_TOKEN_WORDS = {
    "_NL": "a new line", "_ARROW": "'->'", "NAME": "a name", "INT": "an integer",
    "FLOAT": "a number", "STRING": "a string", "$END": "the end of the file",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'",
    "RBRACE": "'}'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "STAR": "'*'",
    "PLUS": "'+'", "MINUS": "'-'", "SLASH": "'/'", "SLASHSLASH": "'//'",
}


def _describe(token_type: str) -> str:
    if token_type in _TOKEN_WORDS:
        return _TOKEN_WORDS[token_type]
    return f"'{token_type.lower()}'"


def _expected(names: set[str]) -> str:
    words = sorted({_describe(n) for n in names if not n.startswith("__")})
    if len(words) > 6:
        words = words[:6] + ["..."]
    return ", ".join(words)


def _syntax_error(exc: UnexpectedInput, text: str, path: str) -> Diagnostic:
    line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        return Diagnostic("error", f"unexpected character {char!r}", Span(path, line, col, line, col + 1),
                          _character_hint(char))
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END"):
        return _eof_error(text, path)
    assert isinstance(exc, UnexpectedToken)
    expected = set(exc.expected)
    shown = "a line break" if token.type == "_NL" else f"{_describe(token.type)}"
    if token.type in ("NAME", "INT", "FLOAT", "STRING"):
        shown = f"{_describe(token.type)} '{token.value}'"
    end = col + max(1, len(str(token.value).split("\n")[0])) if token.type != "_NL" else col + 1
    message = f"unexpected {shown}; expected {_expected(expected)}"
    return Diagnostic("error", message, Span(path, line, col, line, end), _token_hints(token, expected))


def _character_hint(char: str) -> tuple[str, ...]:
    if char == "'":
        return ("strings use double quotes: \"other.net\"",)
    if char == ";":
        return ("statements end at the end of the line; no ';' is needed",)
    return ()


def _token_hints(token: Token, expected: set[str]) -> tuple[str, ...]:
    if "_ARROW" in expected and token.type in ("NAME", "RESIDUAL", "CONCAT"):
        return ("join layers with '->', or put the next layer on its own line",)
    if token.type == "_NL" and "RPAR" in expected:
        return ("an argument list is missing its closing ')'",)
    if token.type == "EQUAL" and "RPAR" in expected:
        return ("keyword arguments are written name=value, e.g. k=3",)
    if token.type == "INPUT":
        return ("'input' declares the network's input: input x[3, 32, 32]",)
    return ()


def _eof_error(text: str, path: str) -> Diagnostic:
    opener = _unclosed_brace(text)
    lines = text.splitlines() or [""]
    last = len(lines)
    span = Span(path, last, len(lines[-1]) + 1, last, len(lines[-1]) + 2)
    if opener is not None:
        line, col = opener
        note = Diagnostic("note", "the '{' opened here", Span(path, line, col, line, col + 1))
        return Diagnostic("error", "unexpected end of file: a '{' is never closed", span,
                          ("add the missing '}'",), (note,))
    return Diagnostic("error", "unexpected end of file", span)


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    stack: list[tuple[int, int]] = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for col, char in enumerate(code, 1):
            if char == "{":
                stack.append((number, col))
            elif char == "}" and stack:
                stack.pop()
    return stack[-1] if stack else None


# ----------------------------------------------------------------- tree to AST


def _span(path: str, meta_or_token) -> Span:
    m = meta_or_token
    return Span(path, m.line, m.column, m.end_line, m.end_column)


@v_args(meta=True)
class _ToAst(Transformer):
    """Thin: every rule becomes the dataclass of the same name."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _s(self, meta) -> Span:
        return _span(self.path, meta)

    # expressions
    def int(self, meta, c):
        return ast.Literal(int(c[0]), self._s(meta))

    def float(self, meta, c):
        return ast.Literal(float(c[0]), self._s(meta))

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

    def stmt(self, meta, c):  # `?stmt: chain` keeps no node; wrap bare chains below
        return c[0]

    # top level
    def param(self, meta, c):
        return ast.Param(str(c[0]), c[1], self._s(meta))

    def block_def(self, meta, c):
        name, *params, body = c
        params = tuple(p for p in params if p is not None)
        return ast.BlockDef(str(name), params, body, self._s(meta), _span(self.path, name))

    def network_def(self, meta, c):
        return ast.NetworkDef(str(c[0]), c[1], self._s(meta), _span(self.path, c[0]))

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

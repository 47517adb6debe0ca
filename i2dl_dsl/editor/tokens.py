"""Every token of a .net text, comments and line breaks included, from the
checker's own lexer (the terminals of grammars/net.lark): the formatter
lays them out, completion reads what precedes the cursor."""

from __future__ import annotations

import functools
from typing import Iterator

from lark import Token
from lark.exceptions import UnexpectedCharacters
from lark.lexer import BasicLexer
from lark.parser_frontends import LexerThread

from ..syntax.parser import _lark

COMMENT = "COMMENT"
NEWLINE = "_NL"
SPACE = "WS_INLINE"


@functools.lru_cache(maxsize=1)
def _lexer() -> BasicLexer:
    # The parser's lexer with nothing ignored, and without the post-lexer
    # that drops line breaks inside statements: the layout needs them all.
    return _lark()._build_lexer(dont_ignore=True)


def lex(text: str) -> Iterator[Token]:
    """All tokens of `text`; UnexpectedCharacters where no terminal matches."""
    return LexerThread.from_text(_lexer(), text).lex(None)


def lex_partial(text: str) -> list[Token]:
    """The tokens up to the first character no terminal matches (for text
    being typed, which need not lex)."""
    out: list[Token] = []
    try:
        out.extend(lex(text))
    except UnexpectedCharacters:
        pass
    return out


def words(text: str) -> list[Token]:
    """Tokens that are neither space, line break nor comment."""
    return [t for t in lex_partial(text) if t.type not in (COMMENT, NEWLINE, SPACE)]


def keywords() -> list[str]:
    """The grammar's reserved words (`network`, `residual`, `true`, ...),
    read from its literal terminals, so new syntax brings its own."""
    return sorted({t.pattern.value for t in _lark().terminals
                   if t.pattern.type == "str" and t.pattern.value.isidentifier()})


def symbols() -> list[str]:
    """The grammar's operators and punctuation (`->`, `//`, `(`, ...),
    longest first."""
    return sorted({t.pattern.value for t in _lark().terminals
                   if t.pattern.type == "str" and not t.pattern.value.isidentifier()},
                  key=lambda s: (-len(s), s))


def pattern(name: str) -> str | None:
    """The regular expression of the grammar's terminal `name` (NAME, INT,
    FLOAT, STRING, COMMENT, ...), or None where the grammar has none."""
    for terminal in _lark().terminals:
        if terminal.name == name and terminal.pattern.type == "re":
            return terminal.pattern.to_regexp()
    return None

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
    read from its anonymous terminals, so new syntax brings its own."""
    found = set()
    for terminal in _lark().terminals:
        pattern = terminal.pattern
        if pattern.type == "str" and pattern.value.isidentifier():
            found.add(pattern.value)
    return sorted(found)

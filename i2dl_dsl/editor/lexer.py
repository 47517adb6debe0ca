"""A Pygments lexer for .net files, registered as the `pygments.lexers`
entry point `net` (pyproject.toml), so documentation tools highlight
```net blocks. Like the TextMate grammar, it reads the language's words
from grammars/net.lark (reserved words, operators, and the patterns of
names, labels, numbers, strings and comments); the rest is generic."""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from .textmate import terminals
from .tokens import keywords, symbols

_T = terminals()
_CONSTANTS = ("true", "false")
_PUNCTUATION = "(){}[],:"


class NetLexer(RegexLexer):
    """The .net architecture language of i2dl-dsl."""

    name = "i2dl net"
    aliases = ["net", "i2dl"]
    filenames = ["*.net"]
    url = "https://pypi.org/project/i2dl-dsl/"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (_T["COMMENT"], Comment.Single),
            (_T["STRING"], String.Double),
            (rf"\b(network|block)(\s+)({_T['NAME']})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (words(tuple(w for w in keywords() if w not in _CONSTANTS), suffix=r"\b"), Keyword),
            (words(_CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (_T["FLOAT"], Number.Float),
            (_T["INT"], Number.Integer),
            (rf"({_T['LABEL']})(\s*)(:)", bygroups(Name.Label, Whitespace, Punctuation)),
            (rf"({_T['NAME']})(\s*)(=)", bygroups(Name.Variable, Whitespace, Operator)),
            (rf"(?:{_T['NAME']})(?=\s*\()", Name.Function),
            (_T["NAME"], Name),
            ("|".join(re.escape(s) for s in symbols() if s not in _PUNCTUATION), Operator),
            ("|".join(re.escape(s) for s in symbols() if s in _PUNCTUATION), Punctuation),
            (r"\.\.\.|…", Comment.Special),  # where documentation leaves lines out
            (r".", Error),
        ],
    }

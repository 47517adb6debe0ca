"""A Pygments lexer for .net files, registered as the `pygments.lexers`
entry point `net` (pyproject.toml), so documentation tools highlight
```net blocks. Its reserved words come from grammars/net.lark, like the
TextMate grammar's; the rest is generic (names, calls, labels, numbers,
strings, operators)."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from .tokens import keywords

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_WORDS = tuple(w for w in keywords() if w not in ("true", "false"))


class NetLexer(RegexLexer):
    """The .net architecture language of i2dl-dsl."""

    name = "i2dl net"
    aliases = ["net", "i2dl"]
    filenames = ["*.net"]
    url = "https://pypi.org/project/i2dl-dsl/"

    tokens = {
        "root": [
            (r"[ \t\f\r]+", Whitespace),
            (r"\n", Whitespace),
            (r"#.*$", Comment.Single),
            (r'"[^"\n]*"?', String.Double),
            (rf"\b(network|block)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (words(_WORDS, suffix=r"\b"), Keyword),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (r"\d+\.\d*([eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+([eE][+-]?\d+)?", Number.Float),
            (r"\d+", Number.Integer),
            (rf"^(\s*)({_NAME})(\s*)(:)", bygroups(Whitespace, Name.Label, Whitespace, Punctuation)),
            (rf"({_NAME})(\s*)(=)", bygroups(Name.Variable, Whitespace, Operator)),
            (rf"{_NAME}(?=\s*\()", Name.Function),
            (_NAME, Name),
            (r"->", Operator),
            (r"//|[*/+\-=]", Operator),
            (r"[{}()\[\],:]", Punctuation),
            (r"\.\.\.|…", Comment.Special),  # where documentation leaves lines out
            (r".", Error),
        ],
    }


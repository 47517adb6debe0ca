"""Friendly syntax errors: from Lark's exception to one diagnostic.

Lark reports the token it could not use and the terminals it would have
accepted. That is turned into what a person would say, using the tokens
before the error (the one just before, the brackets still open):

    missing ')' before '->'            (with a note at the '(' it should close)
    expected '->' or a new line before 'relu'
    'block' is a keyword, not a name
    unexpected end of file: the '{' opened at line 3 is never closed

`recoverable_line` and `blank_line` let the parser find the syntax errors of
later, independent statements: the line that failed is blanked and the text
parsed again, where that cannot change what the rest of the file means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput

from ..diagnostics import Diagnostic, Span, did_you_mean

KEYWORDS = {"USE": "use", "BLOCK": "block", "NETWORK": "network", "TRAIN": "train", "INPUT": "input",
            "RESIDUAL": "residual", "SHORTCUT": "shortcut", "BRANCH": "branch", "CONCAT": "concat",
            "TRUE": "true", "FALSE": "false"}
TOP_LEVEL = ("NETWORK", "BLOCK", "TRAIN", "USE")
VALUE_START = {"INT", "FLOAT", "STRING", "NAME", "LSQB", "LPAR", "MINUS", "TRUE", "FALSE"}
LAYER_START = {"NAME", "CONCAT", "RESIDUAL"}
OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "SLASHSLASH"}
PAIRS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
CHARS = {"LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}", "COMMA": ",",
         "COLON": ":", "EQUAL": "=", "STAR": "*", "PLUS": "+", "MINUS": "-", "SLASH": "/",
         "SLASHSLASH": "//", "_ARROW": "->"}
# The order in which accepted tokens are listed.
_ORDER = ["RPAR", "RSQB", "COMMA", "_ARROW", "EQUAL", "COLON", "LPAR", "LSQB", "LBRACE", "RBRACE", "STAR",
          "INT", "FLOAT", "STRING", "_NL", "$END"]
# Characters people type for the ASCII ones the language uses.
_LOOKALIKES = {"→": "->", "−": "-", "–": "-", "—": "-", "×": "*", "·": "*", "÷": "/", "“": '"', "”": '"',
               "„": '"', "‘": '"', "’": '"', "，": ",", "（": "(", "）": ")", "：": ":", "＝": "="}
# Tokens after which a line break does not end the statement (as the post-lexer rules).
_CONTINUES = {"_ARROW", "COMMA", "LPAR", "LSQB", "EQUAL", "COLON", "PLUS", "MINUS", "STAR", "SLASH", "SLASHSLASH"}
_CONTINUATION = re.compile(r"(->|[,(\[=:+\-*/{])\s*$")


@dataclass
class Context:
    """What the tokens before the error say."""

    previous: Token | None = None
    open: list[Token] = field(default_factory=list)  # unclosed brackets, innermost last
    last_close: tuple[Token, Token] | None = None    # the latest '}' and the '{' it closed
    following: Token | None = None                   # the token after the one that failed


def context(lark: Lark, text: str, pos: int) -> Context:
    """The tokens before `pos` (the failed token's offset), and the one after it."""
    ctx = Context()
    closers = {v: k for k, v in PAIRS.items()}
    try:
        for token in lark.lex(text):
            if token.start_pos is None or token.start_pos > pos:
                ctx.following = token
                break
            if token.start_pos == pos:
                continue
            if token.type in PAIRS:
                ctx.open.append(token)
            elif token.type in closers and ctx.open and ctx.open[-1].type == closers[token.type]:
                opener = ctx.open.pop()
                if token.type == "RBRACE":
                    ctx.last_close = (token, opener)
            ctx.previous = token
    except UnexpectedInput:
        pass
    return ctx


# ----------------------------------------------------------------- the diagnostic


def syntax_error(exc: UnexpectedInput, text: str, path: str, lark: Lark) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, path)
    token: Token | None = getattr(exc, "token", None)
    expected = {e for e in getattr(exc, "expected", ()) if not e.startswith("__")}
    if token is None or token.type == "$END":
        return _end_of_file(context(lark, text, len(text)), expected, text, path)
    ctx = context(lark, text, token.start_pos)
    for rule in (_keyword, _bracket, _missing_separator, _top_level, _misplaced):
        found = rule(token, expected, ctx, text, path)
        if found is not None:
            return found
    return _generic(token, expected, ctx, path)


def _span(path: str, token: Token) -> Span:
    if token.type == "_NL":
        return Span(path, token.line, token.column, token.line, token.column + 1)
    return Span(path, token.line, token.column, token.line,
                token.column + max(1, len(str(token.value).split("\n")[0])))


def _after(path: str, token: Token) -> Span:
    """The position just after a token: where a missing character belongs."""
    return Span(path, token.end_line, token.end_column, token.end_line, token.end_column + 1)


def describe(token: Token) -> str:
    if token.type == "_NL":
        return "the end of the line"
    if token.type == "$END":
        return "the end of the file"
    value = str(token.value)
    value = value if len(value) <= 24 else value[:21] + "..."
    return value if token.type == "STRING" else f"'{value}'"


def phrase(expected: set[str]) -> str:
    """The accepted tokens in words: "a value", "')' or ','", ..."""
    left = set(expected) - {"LABEL"}  # a label goes wherever a statement may start: not worth a word
    words: list[str] = []
    if {"NETWORK", "BLOCK"} <= left:
        words += ["'network'", "'block'", "'train'", "'use'"]
        left -= {*TOP_LEVEL, "$END", "_NL"}
    if LAYER_START <= left:
        words.append("a statement" if "INPUT" in left else "a layer")
        left -= LAYER_START | {"INPUT"}
    if {"INT", "NAME"} <= left:
        words.append("a value")
        left -= VALUE_START | {"CONCAT"}
    if "NAME" in left:
        words.append("a name")
        left.discard("NAME")
    if left - OPERATORS or words:
        left -= OPERATORS
    rank = {name: i for i, name in enumerate(_ORDER)}
    for name in sorted(left, key=lambda n: (rank.get(n, len(rank)), n)):
        words.append(_word(name))
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _word(name: str) -> str:
    if name == "_NL":
        return "a new line"
    if name == "$END":
        return "the end of the file"
    if name in CHARS:
        return f"'{CHARS[name]}'"
    if name in KEYWORDS:
        return f"'{KEYWORDS[name]}'"
    return {"INT": "an integer", "FLOAT": "a number", "STRING": "a string"}.get(name, name.lower())


def _error(message: str, span: Span, *hints: str, notes: tuple[Diagnostic, ...] = ()) -> Diagnostic:
    return Diagnostic("error", message, span, tuple(h for h in hints if h), notes)


def _opened_here(path: str, opener: Token, what: str = "opened here") -> Diagnostic:
    return Diagnostic("note", f"the '{CHARS[opener.type]}' {what}", _span(path, opener))


# ----------------------------------------------------------------- the rules, in order


def _keyword(token: Token, expected: set[str], ctx: Context, text: str, path: str) -> Diagnostic | None:
    """A keyword where a name belongs, or a top-level keyword inside an unclosed block."""
    braces = [o for o in ctx.open if o.type == "LBRACE"]
    if token.type in TOP_LEVEL and braces and token.column == 1:
        opener = braces[-1]
        return _error(f"missing '}}' before '{token.value}': the '{{' at line {opener.line} is never closed",
                      _span(path, token), "add the '}' where the block above ends",
                      notes=(_opened_here(path, opener),))
    if token.type in KEYWORDS and "NAME" in expected:
        following = ctx.following.type if ctx.following is not None else None
        naming = following in ("EQUAL", "COLON") or (ctx.previous is not None and
                                                     ctx.previous.type in ("NETWORK", "BLOCK", "INPUT"))
        if naming:
            return _error(f"'{token.value}' is a keyword, not a name", _span(path, token),
                          f"choose another name, such as '{token.value}1'")
        return _error(f"unexpected keyword '{token.value}'; expected {phrase(expected)}", _span(path, token))
    prev = ctx.previous
    if prev is not None and prev.type in KEYWORDS and token.type in ("EQUAL", "COLON"):
        return _error(f"'{prev.value}' is a keyword, not a name", _span(path, prev),
                      f"choose another name, such as '{prev.value}1'")
    return None


def _bracket(token: Token, expected: set[str], ctx: Context, text: str, path: str) -> Diagnostic | None:
    """A '(' or '[' that is still open where the statement plainly ends."""
    if not ctx.open or ctx.open[-1].type not in ("LPAR", "LSQB"):
        return None
    opener, prev = ctx.open[-1], ctx.previous
    closer = CHARS[PAIRS[opener.type]]
    if PAIRS[opener.type] not in expected or prev is None:
        return None
    note = (_opened_here(path, opener),)
    if token.line > prev.end_line:
        if "COMMA" in expected and _line_closes(text, token, closer):
            return _error("missing ',' at the end of the line", _after(path, prev))
        return _error(f"missing '{closer}' at the end of the line", _after(path, prev), notes=note)
    if token.type in ("_ARROW", "LBRACE", "RBRACE", "_NL", "COLON") or token.type in KEYWORDS:
        return _error(f"missing '{closer}' before {describe(token)}", _span(path, token), notes=note)
    if "COMMA" in expected and token.type in VALUE_START:
        what = "arguments" if opener.type == "LPAR" else "list items"
        return _error(f"missing ',' before {describe(token)}", _span(path, token),
                      f"separate {what} with ','")
    return None


def _line_closes(text: str, token: Token, closer: str) -> bool:
    rest = text[token.start_pos:].split("\n", 1)[0].split("#", 1)[0]
    opener = {")": "(", "]": "["}[closer]
    return rest.count(closer) > rest.count(opener)


def _missing_separator(token: Token, expected: set[str], ctx: Context, text: str, path: str
                       ) -> Diagnostic | None:
    """Two layers, or two statements, on one line without '->' between them."""
    starts = token.type in LAYER_START or token.type in VALUE_START or token.type == "INPUT"
    if not starts:
        return None
    prev = ctx.previous
    if prev is not None and prev.type == "NAME" and token.type == "NAME":
        keyword = did_you_mean(str(prev.value), ["input", "residual", "concat"])
        if keyword:
            return _error(f"expected '->' or a new line before {describe(token)}", _span(path, token),
                          f"{describe(prev)}: {keyword}")
    if "_ARROW" in expected:
        return _error(f"expected '->' or a new line before {describe(token)}", _span(path, token),
                      "did you mean '->'?" if token.type == "MINUS" else
                      "join layers with '->', or put the next layer on its own line")
    if "_NL" in expected and "RBRACE" in expected:
        return _error(f"expected a new line before {describe(token)}", _span(path, token),
                      "write one statement per line")
    return None


def _top_level(token: Token, expected: set[str], ctx: Context, text: str, path: str) -> Diagnostic | None:
    if not {"NETWORK", "BLOCK"} <= expected:
        return None
    words = [KEYWORDS[k] for k in TOP_LEVEL]
    hints = []
    notes: tuple[Diagnostic, ...] = ()
    if token.type == "NAME":
        hints.append(did_you_mean(str(token.value), words))
    if ctx.last_close is not None and (token.column > 1 or token.type == "RBRACE"):
        close, opener = ctx.last_close
        hints.append("this is outside every block; is a '}' above it one too many?")
        notes = (Diagnostic("note", f"the '{{' of line {opener.line} is closed here", _span(path, close)),)
    if token.type == "RBRACE":
        return _error("unmatched '}'", _span(path, token), *hints, notes=notes)
    return _error(f"expected 'network', 'block', 'train' or 'use', got {describe(token)}",
                  _span(path, token), *hints, notes=notes)


def _misplaced(token: Token, expected: set[str], ctx: Context, text: str, path: str) -> Diagnostic | None:
    if token.type == "SHORTCUT" and token.type not in expected:
        return _error("'shortcut' must follow the '}' of a residual", _span(path, token),
                      "residual { ... } shortcut { ... }")
    if token.type == "BRANCH" and token.type not in expected:
        return _error("'branch' belongs inside a concat block", _span(path, token),
                      "concat { branch { ... } branch { ... } }")
    if token.type == "INPUT" and "INPUT" not in expected:
        return _error("'input' is a statement of its own", _span(path, token),
                      "declare the network's input on its own line: input x[3, 32, 32]")
    return None


def _generic(token: Token, expected: set[str], ctx: Context, path: str) -> Diagnostic:
    prev = ctx.previous
    after = f" after {describe(prev)}" if prev is not None and prev.type != "_NL" else ""
    hints = []
    if prev is not None:
        if prev.type == "STAR" and token.type == "STAR":
            hints.append("'**' is not an operator; arithmetic has + - * / and //")
        elif prev.type == "COLON" and token.type == "EQUAL":
            hints.append("name a tensor with 't = ...', or label layers with 'label: ...'")
        elif prev.type == "_ARROW" and token.type in ("RBRACE", "_NL"):
            hints.append("a chain cannot end with '->'")
        if not hints and token.line > prev.end_line and prev.type in _CONTINUES:
            hints.append(f"the line before ends with {describe(prev)}, so this line continues it")
        elif prev.type == "NAME" and expected == {"LPAR"}:
            hints.append("a block lists its parameters in parentheses, even none: block name() { ... }")
    if token.type == "_NL" and "LBRACE" in expected:
        hints.append("the '{' goes on the same line")
    if token.type == "EQUAL" and "RPAR" in expected:
        hints.append("keyword arguments are written name=value, e.g. k=3")
    return _error(f"expected {phrase(expected)}{after}, got {describe(token)}", _span(path, token), *hints)


def _end_of_file(ctx: Context, expected: set[str], text: str, path: str) -> Diagnostic:
    lines = text.rstrip().split("\n")
    span = Span(path, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
    if ctx.open:
        opener = ctx.open[-1]
        char, closer = CHARS[opener.type], CHARS[PAIRS[opener.type]]
        return _error(f"unexpected end of file: the '{char}' opened at line {opener.line} is never closed",
                      span, f"add the missing '{closer}'", notes=(_opened_here(path, opener),))
    prev = ctx.previous
    after = f" after {describe(prev)}" if prev is not None else ""
    return _error(f"unexpected end of file; expected {phrase(expected)}{after}", span)


def _bad_character(exc: UnexpectedCharacters, text: str, path: str) -> Diagnostic:
    pos = exc.pos_in_stream
    char = text[pos] if pos < len(text) else "?"
    line, col = exc.line, exc.column
    rest = text[pos:].split("\n", 1)[0]
    span = Span(path, line, col, line, col + 1)
    if char == '"':
        return _error("unterminated string", Span(path, line, col, line, col + len(rest.rstrip())),
                      "a string ends with '\"' on the same line")
    if char == "'":
        quoted = re.match(r"'([^'\n]*)'", rest)
        return _error("unexpected character \"'\"", span,
                      f"strings use double quotes: \"{quoted.group(1) if quoted else '...'}\"")
    shown = f"'{char}'" if char.isprintable() else f"U+{ord(char):04X}"
    hints = []
    if char in _LOOKALIKES:
        hints.append(f"write '{_LOOKALIKES[char]}' instead")
    elif char == ";":
        hints.append("statements end at the end of the line; no ';' is needed")
    return _error(f"unexpected character {shown}", span, *hints)


# ----------------------------------------------------------------- more than one error


def recoverable_line(exc: UnexpectedInput, text: str) -> int | None:
    """The line of the error, when blanking it leaves the rest of the file
    meaning what it did: a whole statement on one line, brackets balanced."""
    token = getattr(exc, "token", None)
    if token is not None and token.type == "$END":
        return None
    if {"NETWORK", "BLOCK"} <= set(getattr(exc, "expected", ())):
        return None
    number = exc.line
    lines = text.split("\n")
    if not 1 <= number <= len(lines) or not _balanced(text, "{", "}"):
        return None
    code = [_code(line) for line in lines]
    if _depth(code[:number - 1]) != 0 or not _self_contained(code[number - 1]):
        return None
    before = next((c for c in reversed(code[:number - 1]) if c.strip()), "")
    after = next((c for c in code[number:] if c.strip()), "")
    here = code[number - 1]
    if _CONTINUATION.search(before) or _CONTINUATION.search(here) or here.lstrip().startswith("->") \
            or after.lstrip().startswith(("->", "shortcut", "branch")):
        return None
    return number


def blank_line(text: str, number: int) -> str:
    lines = text.split("\n")
    lines[number - 1] = ""
    return "\n".join(lines)


def _code(line: str) -> str:
    """A line without its comment and without the insides of its strings."""
    line = re.sub(r'"[^"\n]*"', '""', line)
    return line.split("#", 1)[0]


def _balanced(text: str, opener: str, closer: str) -> bool:
    """As many openers as closers in the whole text (strings and comments aside)."""
    text = "\n".join(_code(line) for line in text.split("\n"))
    return text.count(opener) == text.count(closer)


def _self_contained(line: str) -> bool:
    """Every bracket the line opens it closes, and it closes no other."""
    for opener, closer in (("(", ")"), ("[", "]"), ("{", "}")):
        depth = 0
        for char in line:
            depth += (char == opener) - (char == closer)
            if depth < 0:
                return False
        if depth:
            return False
    return True


def _depth(lines: list[str]) -> int:
    joined = "\n".join(lines)
    return joined.count("(") + joined.count("[") - joined.count(")") - joined.count("]")

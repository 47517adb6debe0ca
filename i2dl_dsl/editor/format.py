"""The canonical layout of a .net file (`i2dl-fmt`, and the editor's
formatting).

It works on the checker's token stream, comments included, and never on
the words themselves: a token's text is written as it was, so the file
means what it meant (the test suite checks the elaborated graph). What it
decides is the space between tokens, each line's indentation, where long
chains break, and the alignment of trailing comments. The line breaks a
person chose are kept (a chain continued on the next line stays there);
blank lines are kept, runs of them become one.

The rules go by token kind, so that new syntax is laid out without changes
here: one space around `->`; none inside brackets around `=` and
arithmetic (`conv(c*4, k=1)`), one outside (`e1 = x`, `basic(64) * 2`);
`+` and `-` spaced everywhere; no space before `,` `:` `)` `]`, one after
`,` and `:`; a call's bracket
sits on its name. Bodies indent by four spaces per `{`. A continued chain
lines its next element up with the chain's first (the `->` hangs to its
left); a line inside brackets lines up after the open bracket.
"""

from __future__ import annotations

from lark import Token

from ..syntax.parser import parse_text
from .layout import MAX_WIDTH, Line, align_comments, chain_start
from .tokens import COMMENT, NEWLINE, SPACE, lex

INDENT = 4
_OPEN = {"LPAR", "LSQB"}
_CLOSE = {"RPAR", "RSQB"}
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "SLASHSLASH"}
_LOOSE = {"PLUS", "MINUS"}  # binary + and -: spaced even inside brackets
# A statement goes on past a line ending in one of these (the parser's rule) ...
_CONTINUES_AFTER = {"_ARROW", "COMMA", "LPAR", "LSQB", "EQUAL", "COLON", *_OPERATORS}
# ... or into a line starting with one of these.
_CONTINUES_BEFORE = {"_ARROW", "RPAR", "RSQB"}
_VALUE_END = {"NAME", "INT", "FLOAT", "STRING", "TRUE", "FALSE", "RPAR", "RSQB", "CONCAT"}
_HEAD_WORDS = {"NAME", "LABEL"}  # what a statement's head names
UNARY = "UMINUS"  # a minus sign that negates, retyped so spacing can tell it apart


def format_text(text: str, path: str = "<text>") -> str:
    """`text` in the canonical layout. A text that does not parse raises
    CompileError (a file with a syntax error is left alone, as black does)."""
    parse_text(text, path)
    lines = _physical_lines(text)
    _structure(lines)
    for line in lines:
        line.head = _head(line.tokens) if line.first_of_statement else 0
        line.code, line.offsets = _join(line.tokens, line.head)
    _indent(lines)
    lines = [piece for line in lines for piece in _break(line)]
    align_comments(lines)
    return _render(lines)


def is_formatted(text: str, path: str = "<text>") -> bool:
    return format_text(text, path) == text


# ----------------------------------------------------------------- lines


def _physical_lines(text: str) -> list[Line]:
    """The text's lines: their tokens (space dropped), trailing comment and
    the blank lines before each."""
    lines: list[Line] = []
    current, blank = Line(), 0
    previous: Token | None = None
    for token in lex(text.replace("\r\n", "\n")):
        if token.type == NEWLINE:
            if current.tokens or current.comment is not None:
                current.blank_before = blank
                lines.append(current)
                blank = 0
            current = Line()
            blank += str(token).count("\n") - 1 if lines else 0
        elif token.type == COMMENT:
            current.comment, current.comment_column = str(token).rstrip(), token.column - 1
        elif token.type != SPACE:
            if token.type == "MINUS" and (previous is None or previous.type not in _VALUE_END or (
                    previous is current.tokens[0] and previous.type == "NAME")):  # `seed -1`: a setting's value
                token.type = UNARY
            current.tokens.append(token)
            previous = token
    if current.tokens or current.comment is not None:
        current.blank_before = blank
        lines.append(current)
    return lines


def _structure(lines: list[Line]) -> None:
    """Which lines start a statement, and the indentation of those (and of
    comment lines): four spaces per open brace."""
    braces, brackets = 0, 0
    previous: Line | None = None  # the last line with code
    for line in lines:
        tokens = line.tokens
        line.indent = INDENT * max(0, braces - bool(tokens and tokens[0].type == "RBRACE"))
        if not tokens:
            continue
        line.first_of_statement = not (brackets > 0 or tokens[0].type in _CONTINUES_BEFORE or (
            previous is not None and previous.tokens[-1].type in _CONTINUES_AFTER))
        for token in tokens:
            braces += (token.type == "LBRACE") - (token.type == "RBRACE")
            brackets += (token.type in _OPEN) - (token.type in _CLOSE)
        braces, brackets = max(braces, 0), max(brackets, 0)
        previous = line


def _indent(lines: list[Line]) -> None:
    """Continued lines: after an open bracket, under the chain's first
    element, or four spaces in."""
    brackets: list[tuple[int, int]] = []  # (column after the bracket, indent of its line)
    start, base = 0, 0
    for line in lines:
        if not line.tokens:
            continue
        first = line.tokens[0].type
        if line.first_of_statement:
            start, base = chain_start(line), line.indent
        elif brackets:
            line.indent = brackets[-1][1] if first in _CLOSE else brackets[-1][0]
        elif first == "_ARROW":
            line.indent = start - 3 if start - 3 >= base else base + INDENT
        else:
            line.indent = start if start > base else base + INDENT
        for token, offset in zip(line.tokens, line.offsets):
            if token.type in _OPEN:
                brackets.append((line.indent + offset + 1, line.indent))
            elif token.type in _CLOSE and brackets:
                brackets.pop()


def _break(line: Line) -> list[Line]:
    """A line wider than MAX_WIDTH, broken before the `->`s outside
    brackets: as many elements on each line as fit."""
    if line.width <= MAX_WIDTH or not line.tokens:
        return [line]
    segments, depth = [[]], 0
    for token in line.tokens:
        if token.type == "_ARROW" and depth == 0 and segments[-1]:
            segments.append([])
        segments[-1].append(token)
        depth += (token.type in _OPEN) - (token.type in _CLOSE)
    if len(segments) < 2:
        return [line]
    texts = [_join(s, 0)[0] for s in segments[1:]]  # each `-> element ...`
    head = line.code[: len(line.code) - len(" ".join(texts)) - 1]
    if not line.code.endswith(" " + " ".join(texts)):
        return [line]  # not as joined here: leave it
    start = chain_start(line) if line.first_of_statement else line.indent + 3
    hang = start - 3 if start - 3 >= line.indent else line.indent + INDENT
    pieces = [Line(tokens=segments[0], indent=line.indent, code=head, first_of_statement=line.first_of_statement,
                   blank_before=line.blank_before)]
    for tokens, text in zip(segments[1:], texts):
        last = pieces[-1]
        if last.width + 1 + len(text) <= MAX_WIDTH:
            last.code, last.tokens = f"{last.code} {text}", last.tokens + tokens
        else:
            pieces.append(Line(tokens=tokens, indent=hang, code=text, first_of_statement=False))
    # The comment's column belonged to the long line: it follows the last piece.
    pieces[-1].comment, pieces[-1].comment_column = line.comment, 0
    return pieces


# ----------------------------------------------------------------- spacing


def _head(tokens: list[Token]) -> int:
    """How many tokens precede a statement's chain: names and labels, each
    run ended by `=` or `:` (`stem:`, `e1 =`, `a, b =`, `e1 = stem:`); 0
    when the statement has none."""
    end, index = 0, 0
    while index < len(tokens) and tokens[index].type in _HEAD_WORDS:
        index += 1
        while index + 1 < len(tokens) and tokens[index].type == "COMMA" and tokens[index + 1].type in _HEAD_WORDS:
            index += 2
        if index < len(tokens) - 1 and tokens[index].type in ("EQUAL", "COLON"):
            index += 1
            end = index
        else:
            break
    return end


def _join(tokens: list[Token], head: int = 0) -> tuple[str, list[int]]:
    """A line's code, and where each token starts in it; a statement's own
    `=` (in its first `head` tokens) is spaced."""
    out: list[str] = []
    offsets: list[int] = []
    depth, length = 0, 0
    previous: Token | None = None
    for index, token in enumerate(tokens):
        own = index < head and token.type == "EQUAL" or 0 < index <= head and tokens[index - 1].type == "EQUAL"
        gap = 1 if own and index else _space(previous, token, depth > 0)
        out.append(" " * gap + str(token))
        offsets.append(length + gap)
        length += gap + len(str(token))
        depth = max(0, depth + (token.type in _OPEN) - (token.type in _CLOSE))
        previous = token
    return "".join(out), offsets


def _space(before: Token | None, token: Token, inside: bool) -> int:
    """Spaces between two tokens of a line; `inside` brackets."""
    if before is None:
        return 0
    a, b = before.type, token.type
    if b in ("COMMA", "COLON") or b in _CLOSE or a in _OPEN or a == UNARY:
        return 0
    if a in ("COMMA", "COLON") or "_ARROW" in (a, b) or "LBRACE" in (a, b) or "RBRACE" in (a, b):
        return 1
    if b in _OPEN:  # a call's or an input's bracket sits on its name
        return 0 if a in _VALUE_END else (0 if inside else 1)
    if "EQUAL" in (a, b):  # `k=3`; a statement's own `=` is spaced by `_join`
        return 0
    if a in _LOOSE or b in _LOOSE:  # `c - 1`, as a sum reads
        return 1
    if a in _OPERATORS or b in _OPERATORS or b == UNARY:  # `c*4` inside brackets, `basic(64) * 2` outside
        return 0 if inside else 1
    return 1


# ----------------------------------------------------------------- output


def _render(lines: list[Line]) -> str:
    out: list[str] = []
    for line in lines:
        out.extend([""] * min(line.blank_before, 1))
        out.append(line.text())
    return "\n".join(out) + "\n" if out else ""

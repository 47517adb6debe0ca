"""The formatter's lines and what it aligns across them: labels and named
tensors of consecutive statements, and trailing comments."""

from __future__ import annotations

from dataclasses import dataclass, field

from lark import Token

MAX_WIDTH = 120     # a longer chain breaks before its `->`s
COMMENT_GAP = 2     # spaces at least between code and its trailing comment


@dataclass
class Line:
    """One line of output: its tokens (no space), trailing comment, how
    many blank lines precede it, and what the formatter decided."""

    tokens: list[Token] = field(default_factory=list)
    comment: str | None = None
    comment_column: int = 0       # in the input; then in the output
    blank_before: int = 0
    indent: int = 0
    first_of_statement: bool = True
    code: str = ""
    offsets: list[int] = field(default_factory=list)  # where each token starts in `code`
    head: int = 0                 # tokens before the chain: `stem:`, `e1 =`, `a, b =` (0: none)

    def text(self) -> str:
        if not self.tokens:
            return " " * self.indent + (self.comment or "")
        code = " " * self.indent + self.code
        if self.comment is None:
            return code
        return code + " " * max(self.comment_column - len(code), COMMENT_GAP) + self.comment

    @property
    def width(self) -> int:
        return self.indent + len(self.code)


def statement_kind(line: Line) -> str | None:
    """`COLON` for `label: chain`, `EQUAL` for `name = chain` (the heads
    that are aligned), else None."""
    if line.first_of_statement and line.head == 2:
        return line.tokens[1].type
    return None


def align_names(lines: list[Line]) -> None:
    """Consecutive statements that each start with a label (or each name a
    tensor) start their chains in one column: `stem:   conv ...`,
    `layer1: basic ...`. A blank line, a comment line or another statement
    at the same depth ends the run; continued lines do not."""
    run: list[Line] = []
    for line in lines:
        if line.tokens and not line.first_of_statement and line.blank_before == 0:
            continue
        kind = statement_kind(line)
        if run and (kind != statement_kind(run[0]) or line.indent != run[0].indent or line.blank_before
                    or not line.tokens):
            _pad(run)
            run = []
        if kind is not None:
            run.append(line)
    _pad(run)


def _pad(run: list[Line]) -> None:
    if len(run) < 2:
        return
    width = max(len(str(line.tokens[0])) for line in run)
    for line in run:
        extra = width - len(str(line.tokens[0]))
        name, rest = line.code[: len(str(line.tokens[0]))], line.code[len(str(line.tokens[0])):]
        if line.tokens[1].type == "COLON":  # `stem:   conv`: the colon stays on the label
            line.code = name + rest[:1] + " " * extra + rest[1:]
            shift_from = 2
        else:  # `up2   = score`
            line.code = name + " " * extra + rest
            shift_from = 1
        line.offsets = line.offsets[:shift_from] + [o + extra for o in line.offsets[shift_from:]]


def chain_start(line: Line) -> int:
    """The column where a statement's chain starts: after its label or
    tensor name (padded), else where the line starts."""
    if not line.first_of_statement or not line.head:
        return line.indent
    return line.indent + line.offsets[line.head]


def align_comments(lines: list[Line]) -> None:
    """A trailing comment keeps its column where the code leaves room (at
    least two spaces), else moves right of the code; the trailing comments
    of consecutive lines then share the rightmost of their columns."""
    run: list[Line] = []
    for line in lines:
        trailing = bool(line.tokens) and line.comment is not None
        if trailing:
            line.comment_column = max(line.comment_column, line.width + COMMENT_GAP)
        if run and (not trailing or line.blank_before):
            _share(run)
            run = []
        if trailing:
            run.append(line)
    _share(run)


def _share(run: list[Line]) -> None:
    column = max((line.comment_column for line in run), default=0)
    for line in run:
        line.comment_column = column

"""The formatter's lines, and what it aligns across them: trailing comments."""

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


def chain_start(line: Line) -> int:
    """The column where a statement's chain starts: after its label or
    tensor name, else where the line starts."""
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

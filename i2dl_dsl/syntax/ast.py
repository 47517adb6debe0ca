"""The syntax tree of a .net file: frozen dataclasses, each with its span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..diagnostics import Span

# ----------------------------------------------------------------- expressions


class TooLarge(str):
    """A number written with more digits than any size needs (the text as
    written); using it is an error."""


@dataclass(frozen=True)
class Literal:
    """An int, float, bool or string written in the source."""

    value: object
    span: Span


@dataclass(frozen=True)
class Name:
    """A bare word: a block parameter, a tensor, or a symbol such as `same`."""

    id: str
    span: Span


@dataclass(frozen=True)
class ListExpr:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / //
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


Expr = Union[Literal, Name, ListExpr, BinOp, Neg]


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for a positional argument
    value: Union[Expr, "Chain"]  # a chain only as a tensor a merge joins: concat(in -> upconv(c, k=2, s=2), skip)
    span: Span


# ----------------------------------------------------------------- chains


@dataclass(frozen=True)
class Call:
    """`conv(64, k=3)`, `relu`, `basic(c)`, or a tensor name such as `x`."""

    name: str
    args: tuple[Arg, ...]
    has_parens: bool
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Repeat:
    """`basic(64) * 2`: the block applied `count` times in sequence."""

    call: Call
    count: Expr
    span: Span


@dataclass(frozen=True)
class Residual:
    body: tuple["Stmt", ...]
    shortcut: tuple["Stmt", ...] | None  # None: identity
    span: Span


@dataclass(frozen=True)
class Branch:
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True)
class ConcatBlock:
    branches: tuple[Branch, ...]
    span: Span


Element = Union[Call, Repeat, Residual, ConcatBlock]


@dataclass(frozen=True)
class Chain:
    elements: tuple[Element, ...]
    span: Span


# ----------------------------------------------------------------- statements


@dataclass(frozen=True)
class Dim:
    name: str | None  # `T` in `input tokens[T=50, 32]`
    value: Expr
    span: Span


@dataclass(frozen=True)
class InputStmt:
    name: str
    dims: tuple[Dim, ...]
    span: Span


@dataclass(frozen=True)
class ChainStmt:
    """A chain; with a label its layers are named after it (`stem: ...`),
    with a target its output is a named tensor (`e1 = x -> ...`)."""

    chain: Chain
    label: str | None
    target: str | None
    span: Span


@dataclass(frozen=True)
class PiecesStmt:
    """`a, b = x -> chunk(2)`: a chain ending in a layer that gives several
    tensors (`chunk`, `split`), each named in order."""

    chain: Chain
    targets: tuple[str, ...]
    span: Span
    target_spans: tuple[Span, ...]


Stmt = Union[InputStmt, ChainStmt, PiecesStmt]


# ----------------------------------------------------------------- top level


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class NetworkDef:
    name: str
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span
    params: tuple[Param, ...] = ()  # `network Net(dropout=0.3)`: settable from outside


@dataclass(frozen=True)
class TrainValue:
    """One value of a train statement: `adam(lr=1e-3)`, `64`, `layer4=0.1`."""

    name: str | None  # set for `key=value`
    value: Expr | Call
    span: Span


@dataclass(frozen=True)
class TrainStmt:
    key: str
    args: tuple[Arg, ...] | None  # `early_stopping(patience=5)`
    values: tuple[TrainValue, ...]
    span: Span
    key_span: Span


@dataclass(frozen=True)
class TrainDef:
    stmts: tuple[TrainStmt, ...]
    span: Span


@dataclass(frozen=True)
class Use:
    path: str
    span: Span


@dataclass(frozen=True)
class Module:
    """One parsed file."""

    path: str
    uses: tuple[Use, ...]
    blocks: tuple[BlockDef, ...]
    networks: tuple[NetworkDef, ...]
    trains: tuple[TrainDef, ...]

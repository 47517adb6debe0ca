"""Which parameters of a block are tensors.

`block up(c, skip) { concat(in -> upconv(c, k=2, s=2), skip) }` takes a
number `c` and a tensor `skip`. A parameter is a tensor where the body uses
it as one: a chain starts from it (`skip -> relu`), a merge reads it
(`concat(..., skip)`, `crop(like=skip)`), or it is passed on to a tensor
parameter of another block. Every other parameter is a number (or a word,
such as `same`). Knowing this from the body alone lets a call be checked
where it is written: `up(64, 3)` and `up(e1, e1)` are errors at the call.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from ..diagnostics import Span
from ..layers import REGISTRY
from ..syntax import ast


def tensor_params(block: ast.BlockDef, blocks: Mapping[str, ast.BlockDef],
                  _seen: frozenset[str] = frozenset()) -> dict[str, Span]:
    """The block's tensor parameters, each with where the body first uses it as a tensor."""
    if block.name in _seen:  # a cycle: reported elsewhere
        return {}
    walk = _Walk({p.name for p in block.params}, blocks, _seen | {block.name})
    walk.stmts(block.body)
    return walk.found


class _Walk:
    def __init__(self, params: set[str], blocks: Mapping[str, ast.BlockDef], seen: frozenset[str]):
        self.params = params
        self.blocks = blocks
        self.seen = seen
        self.found: dict[str, Span] = {}

    def use(self, name: str, span: Span) -> None:
        if name in self.params:
            self.found.setdefault(name, span)

    def stmts(self, stmts: Iterable[object]) -> None:
        for stmt in stmts:
            if isinstance(stmt, (ast.ChainStmt, ast.PiecesStmt)):
                self.chain(stmt.chain)

    def chain(self, chain: ast.Chain) -> None:
        first = chain.elements[0]
        if isinstance(first, ast.Call) and not first.has_parens:
            self.use(first.name, first.span)
        for element in chain.elements:
            self.element(element)

    def element(self, element: object) -> None:
        if isinstance(element, ast.Residual):
            self.stmts(element.body)
            self.stmts(element.shortcut or ())
        elif isinstance(element, ast.ConcatBlock):
            for branch in element.branches:
                self.stmts(branch.body)
        elif isinstance(element, ast.Repeat):
            self.call(element.call)
        elif isinstance(element, ast.Call):
            self.call(element)

    def call(self, call: ast.Call) -> None:
        for arg in call.args:
            if isinstance(arg.value, ast.Chain):
                self.chain(arg.value)
        cls = REGISTRY.get(call.name)
        if cls is not None and cls.inputs is None:  # a merge: its tensors
            keys = getattr(cls, "tensor_keywords", ())
            for arg in call.args:
                if isinstance(arg.value, ast.Name) and (arg.name is None or arg.name in keys):
                    self.use(arg.value.id, arg.value.span)
        elif call.name in self.blocks:
            self.passed_on(call, self.blocks[call.name])

    def passed_on(self, call: ast.Call, block: ast.BlockDef) -> None:
        """Parameters handed to another block's tensor parameters."""
        inner = tensor_params(block, self.blocks, self.seen)
        names = [p.name for p in block.params]
        for index, arg in enumerate(call.args):
            target = arg.name if arg.name is not None else (names[index] if index < len(names) else None)
            if target in inner and isinstance(arg.value, ast.Name):
                self.use(arg.value.id, arg.value.span)

"""A block call's arguments bound to its parameters: numbers (and words)
to the body's environment, tensors to the body's named tensors.

Which parameters are tensors comes from the body (`tensor_params`); an
argument of the wrong kind is an error at that argument. A tensor argument
is a named tensor, or a chain from one (`up(64, e1 -> relu)`), expanded by
the caller and given here by the argument's id.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from ..diagnostics import Span, UserError, did_you_mean
from ..layers.base import REQUIRED, P
from ..syntax import ast
from ..values import evaluate, expr_text, match, signature_text
from .scope import Scope

Tensors = dict[str, tuple[str | None, Span]]  # parameter → (node, argument span)


def bind_arguments(block: ast.BlockDef, call: ast.Call, scope: Scope, uses: Mapping[str, Span],
                   chains: Mapping[int, str | None]) -> tuple[dict[str, Any], Tensors]:
    """(numbers and words, tensors) for the block's body; UserError for a
    wrong call. `uses`: the tensor parameters and where the body reads
    each; `chains`: the output of each chain argument, by id."""
    what = f"block '{block.name}'"
    signature = [P(p.name, None, REQUIRED if p.default is None else expr_text(p.default))  # type: ignore[arg-type]
                 for p in block.params]
    # A chain argument stands in `match` as a name no source can spell.
    given = {f"<chain {id(a)}>": chains[id(a)] for a in call.args if id(a) in chains}
    args = [replace(a, value=ast.Name(f"<chain {id(a)}>", a.value.span)) if id(a) in chains else a for a in call.args]
    values, spans, exprs = match(what, signature, args, scope.env)
    env: dict[str, Any] = {}
    tensors: Tensors = {}
    for param in block.params:
        name = param.name
        if name in uses:
            if name not in values:
                raise UserError(f"{what} needs the tensor argument '{name}'",
                                f"the signature is {block.name}({signature_text(signature)})")
            tensors[name] = (_tensor(block, name, uses[name], exprs[name], scope, given), spans[name])
        elif name in values:
            _number(block, name, exprs[name], scope, given)
            env[name] = values[name]
        elif param.default is not None:
            env[name] = evaluate(param.default, env)
        else:
            raise UserError(f"{what} needs the argument '{name}'",
                            f"the signature is {block.name}({signature_text(signature)})")
    return env, tensors


def _is_tensor(expr: ast.Expr, scope: Scope) -> bool:
    return isinstance(expr, ast.Name) and expr.id in scope.tensors and expr.id not in scope.env


def _tensor(block: ast.BlockDef, param: str, used: Span, expr: ast.Expr, scope: Scope,
            given: Mapping[str, str | None]) -> str | None:
    """The node passed to a tensor parameter, or a UserError at the argument."""
    if isinstance(expr, ast.Name) and expr.id in given:
        return given[expr.id]
    if _is_tensor(expr, scope):
        return scope.tensors[expr.id]  # type: ignore[union-attr]
    name = expr.id if isinstance(expr, ast.Name) else None
    shown = f"'{name}'" if name is not None else expr_text(expr, scope.env)
    what = "no tensor here" if name is not None and name not in scope.env else "not a tensor"
    hint = did_you_mean(name, scope.tensors) if name is not None else ""
    raise UserError(f"block '{block.name}' takes a tensor for '{param}' (its body reads it as one at line "
                    f"{used.line}), but {shown} is {what}",
                    hint or f"pass a named tensor: t = ... -> ..., then {block.name}(..., t)",
                    span=getattr(expr, "span", None))


def _number(block: ast.BlockDef, param: str, expr: ast.Expr, scope: Scope, given: Mapping[str, str | None]) -> None:
    """A UserError at the argument when a tensor is passed for a number."""
    if isinstance(expr, ast.Name) and expr.id in given:
        raise UserError(f"block '{block.name}' takes a number for '{param}', but a chain gives a tensor",
                        span=expr.span)
    if _is_tensor(expr, scope):
        raise UserError(f"block '{block.name}' takes a number for '{param}', but '{expr.id}' is a tensor",  # type: ignore[union-attr]
                        f"a parameter takes tensors when the body joins it (add, mul, concat, crop) "
                        f"or starts a chain from it: {param} -> ...", span=expr.span)

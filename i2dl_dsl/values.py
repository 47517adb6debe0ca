"""Evaluating argument expressions and binding them to signatures."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .diagnostics import Span, UserError, did_you_mean
from .layers.base import REQUIRED, Args, P, Symbol
from .syntax import ast

Env = Mapping[str, Any]


def evaluate(expr: ast.Expr, env: Env) -> Any:
    """The value of an argument expression; names not in `env` are symbols."""
    if isinstance(expr, ast.Literal):
        return expr.value
    if isinstance(expr, ast.Name):
        return env[expr.id] if expr.id in env else Symbol(expr.id)
    if isinstance(expr, ast.ListExpr):
        return [evaluate(item, env) for item in expr.items]
    if isinstance(expr, ast.Neg):
        value = _number(evaluate(expr.operand, env), expr.operand, env)
        return -value
    if isinstance(expr, ast.BinOp):
        left = _number(evaluate(expr.left, env), expr.left, env)
        right = _number(evaluate(expr.right, env), expr.right, env)
        return _arithmetic(expr, left, right)
    raise TypeError(f"not an expression: {expr!r}")


def _number(value: Any, expr: ast.Expr, env: Env) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = did_you_mean(value, env) if isinstance(value, Symbol) else ""
        what = f"unknown name '{value}'" if isinstance(value, Symbol) else f"{value!r} is not a number"
        raise UserError(f"{what} in arithmetic", hint, span=expr.span)
    return value


def _arithmetic(expr: ast.BinOp, left: int | float, right: int | float) -> int | float:
    if expr.op in ("/", "//") and right == 0:
        raise UserError("division by zero", span=expr.span)
    if expr.op == "+":
        result = left + right
    elif expr.op == "-":
        result = left - right
    elif expr.op == "*":
        result = left * right
    elif expr.op == "//":
        result = left // right
    elif isinstance(left, int) and isinstance(right, int):
        if left % right:
            raise UserError(f"{left}/{right} is not a whole number", "use // to round down", span=expr.span)
        result = left // right
    else:
        result = left / right
    if isinstance(result, int) and abs(result) > 2**62:
        raise UserError(f"the value {result} is too large", span=expr.span)
    return result


def bind(what: str, signature: Sequence[P], args: Sequence[ast.Arg], env: Env, call_span: Span) -> Args:
    """Match positional and keyword arguments to `signature` and convert them.

    `what` names the callee in messages (`conv`, `block 'basic'`).
    """
    values, spans = match(what, signature, args, env)
    return Args(_convert(what, signature, values, spans, call_span))


def match(what: str, signature: Sequence[P], args: Sequence[ast.Arg], env: Env
          ) -> tuple[dict[str, Any], dict[str, Span]]:
    """Evaluate the arguments and name each one after its parameter."""
    names = [p.name for p in signature]
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    positional = [a for a in args if a.name is None]
    if len(positional) > len(signature):
        extra = positional[len(signature)]
        raise UserError(f"{what} takes {_count(len(signature), 'argument')}, got {len(positional)}",
                        _signature_hint(what, signature), span=extra.span)
    seen_keyword = False
    for index, arg in enumerate(args):
        if arg.name is None:
            if seen_keyword:
                raise UserError("a positional argument follows a keyword argument", span=arg.span)
            name = names[index]
        else:
            seen_keyword = True
            name = arg.name
            if name not in names:
                hint = did_you_mean(name, names) or _signature_hint(what, signature)
                raise UserError(f"{what} has no argument '{name}'", hint, span=arg.span)
            if name in values:
                raise UserError(f"argument '{name}' is given twice", span=arg.span)
        values[name] = evaluate(arg.value, env)
        spans[name] = arg.span
    return values, spans


def _convert(what: str, signature: Sequence[P], values: dict[str, Any], spans: dict[str, Span],
             call_span: Span) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for p in signature:
        if p.name not in values:
            if p.default is REQUIRED:
                raise UserError(f"{what} needs the argument '{p.name}'" + (f" ({p.doc})" if p.doc else ""),
                                _signature_hint(what, signature), span=call_span)
            value = Symbol(p.default) if isinstance(p.default, str) else p.default
            converted[p.name] = None if value is None else p.type.convert(value)
            continue
        try:
            converted[p.name] = p.type.convert(values[p.name])
        except UserError as exc:
            raise UserError(f"{what} argument '{p.name}': {exc.message}", *exc.hints, span=spans[p.name]) from None
    return converted


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def signature_text(signature: Sequence[P]) -> str:
    parts = []
    for p in signature:
        if p.default is REQUIRED:
            parts.append(p.name)
        else:
            default = p.default
            shown = ("true" if default else "false") if isinstance(default, bool) else default
            parts.append(f"{p.name}={shown}")
    return ", ".join(parts)


def _signature_hint(what: str, signature: Sequence[P]) -> str:
    name = what.split("'")[1] if "'" in what else what
    return f"the signature is {name}({signature_text(signature)})"

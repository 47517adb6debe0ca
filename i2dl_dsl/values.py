"""Evaluating argument expressions and binding them to signatures."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .diagnostics import MAX_MESSAGE, Span, UserError, did_you_mean, shorten, value_text
from .layers.base import REQUIRED, Args, Choice, P, Symbol
from .syntax import ast

Env = Mapping[str, Any]


def evaluate(expr: ast.Expr, env: Env) -> Any:
    """The value of an argument expression; names not in `env` are symbols."""
    if isinstance(expr, ast.Literal):
        if isinstance(expr.value, ast.TooLarge):
            shown = expr.value if len(expr.value) <= 24 else f"{expr.value[:12]}... ({len(expr.value)} digits)"
            raise UserError(f"the number {shown} is too large", span=expr.span)
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
    if isinstance(expr, ast.Chain):
        raise UserError("a chain is an argument only of the layers that read tensors (add, mul, concat, crop) "
                        "and of a block's tensor parameters", "name its output first: t = ... -> ..., and pass t",
                        span=expr.span)
    raise TypeError(f"not an expression: {expr!r}")


MAX_VALUE = 2**62  # larger numbers in arguments are surely typos


def _number(value: Any, expr: ast.Expr, env: Env) -> int | float:
    if isinstance(value, Symbol):
        known = [name for name in env]
        hint = did_you_mean(value, known) or (shorten(f"the names known here are {', '.join(known)}") if known else
                                              "only block parameters can be used in arithmetic")
        raise UserError(f"unknown name '{value}' in arithmetic", hint, span=expr.span)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{value_text(value, short=True)} is not a number, so it cannot be used in arithmetic",
                        span=expr.span)
    return value


def _arithmetic(expr: ast.BinOp, left: int | float, right: int | float) -> int | float:
    if expr.op in ("/", "//") and right == 0:
        raise UserError(f"division by zero in {expr_text(expr)}", span=expr.span)
    try:
        result = _apply(expr, left, right)
    except OverflowError:
        raise UserError(f"{expr_text(expr)} is far too large", span=expr.span) from None
    if isinstance(result, int) and abs(result) > MAX_VALUE:
        raise UserError(f"{expr_text(expr)} is {result:.3g}, far too large", span=expr.span)
    if isinstance(result, float) and not math.isfinite(result):
        raise UserError(f"{expr_text(expr)} is not a finite number", span=expr.span)
    return result


def _apply(expr: ast.BinOp, left: int | float, right: int | float) -> int | float:
    if expr.op == "+":
        return left + right
    if expr.op == "-":
        return left - right
    if expr.op == "*":
        return left * right
    if expr.op == "//":
        return left // right
    if isinstance(left, int) and isinstance(right, int):
        if left % right:
            shown = f"{left}/{right}"
            formula = expr_text(expr)
            if formula.replace(" ", "") != shown:
                shown = f"{formula} = {shown}"
            raise UserError(f"{shown} is not a whole number", f"use // to round down ({left}//{right} = "
                            f"{left // right})", span=expr.span)
        return left // right
    return left / right


def as_written(message: str, value: Any) -> str:
    """A message ending in `got <Python repr>`, with the value as the .net
    file writes it (`true`, `"a"`, `[3, "a"]`), a long one cut short."""
    python = repr(value)
    if isinstance(value, (bool, list)) or type(value) is str:
        if message.endswith(f"got {python}"):
            return message[: -len(python)] + value_text(value, short=True)
    return shorten(message, MAX_MESSAGE)


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2}


def expr_text(expr: ast.Expr, env: Env | None = None) -> str:
    """An expression as written (up to spacing); with `env`, its names are
    replaced by their values: `c/3` → `64/3`."""
    if isinstance(expr, ast.Literal):
        return value_text(expr.value)
    if isinstance(expr, ast.Name):
        return value_text(env[expr.id]) if env is not None and expr.id in env else expr.id
    if isinstance(expr, ast.ListExpr):
        return "[" + ", ".join(expr_text(item, env) for item in expr.items) + "]"
    if isinstance(expr, ast.Neg):
        inner = expr_text(expr.operand, env)
        return f"-({inner})" if isinstance(expr.operand, ast.BinOp) else f"-{inner}"
    if isinstance(expr, ast.BinOp):
        rank = _PRECEDENCE[expr.op]
        left, right = expr_text(expr.left, env), expr_text(expr.right, env)
        if isinstance(expr.left, ast.BinOp) and _PRECEDENCE[expr.left.op] < rank:
            left = f"({left})"
        if isinstance(expr.right, ast.BinOp) and (_PRECEDENCE[expr.right.op] < rank or
                                                  _PRECEDENCE[expr.right.op] == rank and expr.op != "+"
                                                  and expr.op != "*"):
            right = f"({right})"
        spaced = expr.op in ("+", "-")
        return f"{left} {expr.op} {right}" if spaced else f"{left}{expr.op}{right}"
    return "?"


def _names(expr: ast.Expr) -> list[str]:
    """The names an expression uses, each once, in the order they appear."""
    found: dict[str, None] = {}
    _collect_names(expr, found)
    return list(found)


def _collect_names(expr: ast.Expr, found: dict[str, None]) -> None:
    if isinstance(expr, ast.Name):
        found.setdefault(expr.id)
    elif isinstance(expr, ast.ListExpr):
        for item in expr.items:
            _collect_names(item, found)
    elif isinstance(expr, ast.Neg):
        _collect_names(expr.operand, found)
    elif isinstance(expr, ast.BinOp):
        _collect_names(expr.left, found)
        _collect_names(expr.right, found)


def _origin(expr: ast.Expr, env: Env) -> str:
    """Where a computed argument came from: `c - 64 with c=64`, '' for a literal."""
    names = [n for n in _names(expr) if n in env]
    if isinstance(expr, ast.Literal) or not names and not isinstance(expr, ast.BinOp):
        return ""
    if isinstance(expr, ast.Name):
        return f"the value of '{expr.id}'"
    text = shorten(expr_text(expr))
    values = shorten(', '.join(f'{n}={value_text(env[n], short=True)}' for n in names))
    return f"{text} with {values}" if names else text


def bind(what: str, signature: Sequence[P], args: Sequence[ast.Arg], env: Env, call_span: Span) -> Args:
    """Match positional and keyword arguments to `signature` and convert them.

    `what` names the callee in messages (`conv`, `block 'basic'`).
    """
    values, spans, exprs = match(what, signature, args, env)
    return Args(_convert(what, signature, values, spans, call_span, exprs, env))


def match(what: str, signature: Sequence[P], args: Sequence[ast.Arg], env: Env
          ) -> tuple[dict[str, Any], dict[str, Span], dict[str, ast.Expr]]:
    """Evaluate the arguments and name each one after its parameter."""
    names = [p.name for p in signature]
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    exprs: dict[str, ast.Expr] = {}
    positional = [a for a in args if a.name is None]
    if len(positional) > len(signature):
        extra = positional[len(signature)]
        takes = "no arguments" if not signature else f"at most {_count(len(signature), 'argument')}"
        raise UserError(f"{what} takes {takes}, got {len(positional)}", _signature_hint(what, signature),
                        span=extra.span)
    seen_keyword = False
    by_position: set[str] = set()
    for index, arg in enumerate(args):
        if arg.name is None:
            if seen_keyword:
                raise UserError(f"{what}: a positional argument follows a keyword argument",
                                "write the positional arguments first, in the order "
                                f"{_signature_call(what, signature)}", span=arg.span)
            name = names[index]
            by_position.add(name)
        else:
            seen_keyword = True
            name = arg.name
            if name not in names:
                hint = _synonym(name, names) or did_you_mean(name, names) or _signature_hint(what, signature)
                raise UserError(f"{what} has no argument '{name}'", hint, span=arg.span)
            if name in values:
                how = "both by position and by name" if name in by_position else "twice"
                raise UserError(f"{what}: argument '{name}' is given {how}", span=arg.span)
        values[name] = evaluate(arg.value, env)
        spans[name] = arg.span
        exprs[name] = arg.value
    return values, spans, exprs


# What other libraries call the arguments this language abbreviates.
_SYNONYMS = {"kernel": "k", "kernel_size": "k", "size": "k", "stride": "s", "strides": "s", "padding": "p",
             "pad": "p", "dilation": "d", "out_channels": "filters", "channels": "filters", "features": "out",
             "out_features": "out", "units": "out", "hidden_size": "hidden", "negative_slope": "alpha",
             "ceil_mode": "round", "learning_rate": "lr", "scale_factor": "scale", "drop": "p"}


def _synonym(name: str, names: Sequence[str]) -> str:
    target = _SYNONYMS.get(name.lower())
    return f"did you mean '{target}'?" if target in names else ""


def _convert(what: str, signature: Sequence[P], values: dict[str, Any], spans: dict[str, Span],
             call_span: Span, exprs: dict[str, ast.Expr] | None = None, env: Env | None = None
             ) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for p in signature:
        if p.name not in values:
            if p.default is REQUIRED:
                raise UserError(f"{what} needs the argument '{p.name}'" + (f" ({p.doc})" if p.doc else ""),
                                _signature_hint(what, signature), span=call_span)
            value = Symbol(p.default) if isinstance(p.default, str) else p.default
            converted[p.name] = None if value is None else p.type.convert(value)
            continue
        value = values[p.name]
        try:
            converted[p.name] = p.type.convert(value)
        except UserError as exc:
            message, hints = f"{what} argument '{p.name}': {as_written(exc.message, value)}", exc.hints
            expr = exprs.get(p.name) if exprs else None
            origin = _origin(expr, env or {}) if expr is not None else ""
            if origin:
                message += f" ({origin})"
            if isinstance(p.type, Choice) and isinstance(value, str):
                hints = (did_you_mean(value, p.type.options),)  # a misspelt option
            depends_on = tuple(n for n in _names(expr) if n in (env or {})) if expr is not None else ()
            raise UserError(message, *hints, span=spans[p.name], depends_on=depends_on) from None
    return converted


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def signature_text(signature: Sequence[P]) -> str:
    parts = []
    for p in signature:
        if p.default is REQUIRED:
            parts.append(p.name)
        else:
            # A str default is a word as written (`same`, or a block parameter's expression).
            default = Symbol(p.default) if isinstance(p.default, str) else p.default
            parts.append(f"{p.name}={value_text(default)}")
    return ", ".join(parts)


def _signature_call(what: str, signature: Sequence[P]) -> str:
    name = what.split("'")[1] if "'" in what else what
    return f"{name}({signature_text(signature)})"


def _signature_hint(what: str, signature: Sequence[P]) -> str:
    return f"the signature is {_signature_call(what, signature)}"

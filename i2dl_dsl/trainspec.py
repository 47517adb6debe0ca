"""The `train { }` section: what each statement may say, checked up front.

    train {
        loss cross_entropy
        optimizer adam(lr=1e-3)
        weight_decay 1e-4
        batch 64
        epochs 30
        early_stopping(patience=5)
    }

Each key has one checker; the result is a plain dict of converted values
that the training loop reads, with the command line overriding it.
"""

from __future__ import annotations

from typing import Any, Callable

from .diagnostics import Diagnostic, Diagnostics, UserError, did_you_mean
from .layers.base import ArgType, Choice, Float, Int, P, Symbol
from .syntax import ast
from .train.augment import AUGMENTATIONS
from .train.backends import BACKENDS
from .train.losses import LOSSES
from .train.optimizers import OPTIMIZERS
from .train.registry import Registry
from .train.schedules import SCHEDULES
from .train.stopping import EARLY_STOPPING
from .values import as_written, bind, evaluate, value_text

SPLIT = (P("val", Float(0.0, 1.0, high_open=True), 0.1), P("test", Float(0.0, 1.0, high_open=True), 0.1))


_EXAMPLES = {"loss": LOSSES.default, "lr": "0.01", "weight_decay": "1e-4", "l1": "1e-5", "l2": "1e-4",
             "batch": "64", "epochs": "30", "seed": "0", "data": "digits"}


def _one(stmt: ast.TrainStmt) -> Any:
    if len(stmt.values) != 1 or stmt.values[0].name is not None:
        got = "none" if not stmt.values else f"{len(stmt.values)}" if len(stmt.values) > 1 else "name=value"
        raise UserError(f"'{stmt.key}' takes one value, got {got}", f"e.g. {stmt.key} {_EXAMPLES.get(stmt.key, '...')}",
                        span=stmt.span)
    value = stmt.values[0].value
    if isinstance(value, ast.Call):
        if value.has_parens:
            raise UserError(f"'{stmt.key}' takes a plain value, not a call", span=value.span)
        return Symbol(value.name)
    return evaluate(value, {})


def _scalar(kind) -> Callable[[ast.TrainStmt], Any]:
    def check(stmt: ast.TrainStmt) -> Any:
        value = _one(stmt)
        try:
            return kind.convert(value)
        except UserError as exc:
            hints = exc.hints
            if isinstance(value, Symbol):  # a bare word: a misspelt option, or no value at all
                hints = (did_you_mean(value, kind.options) if isinstance(kind, Choice) else "",)
            raise UserError(f"'{stmt.key}': {as_written(exc.message, value)}", *hints,
                            span=exc.span or stmt.values[0].span) from None
    return check


def _call(table: Registry) -> Callable[[ast.TrainStmt], Any]:
    def check(stmt: ast.TrainStmt) -> Any:
        value = stmt.values[0].value if len(stmt.values) == 1 else None
        if not isinstance(value, ast.Call):
            raise UserError(f"'{stmt.key}' takes one {table.what}: {', '.join(table)}", span=stmt.span)
        return _bind_call(value, table)
    return check


def _bind_call(call: ast.Call, table: Registry) -> dict[str, Any]:
    if call.name not in table:
        raise UserError(f"unknown {table.what} '{call.name}'", did_you_mean(call.name, table) or
                        f"known: {', '.join(table)}", span=call.name_span)
    args = bind(call.name, table[call.name].signature, call.args, {}, call.span)
    return {"name": call.name, **args}


def _loss(stmt: ast.TrainStmt) -> str | dict[str, Any]:
    """`loss mse`: the name; `loss smooth_l1(beta=0.5)`: the name and its arguments."""
    value = stmt.values[0].value if len(stmt.values) == 1 else None
    if isinstance(value, ast.Call) and value.has_parens:
        return _bind_call(value, LOSSES)
    return _scalar(Choice(LOSSES.names()))(stmt)


def _with_args(signature: tuple[P, ...]) -> Callable[[ast.TrainStmt], Any]:
    def check(stmt: ast.TrainStmt) -> Any:
        if stmt.values:
            raise UserError(f"'{stmt.key}' takes arguments in parentheses: {stmt.key}(...)", span=stmt.values[0].span)
        return dict(bind(stmt.key, signature, stmt.args or (), {}, stmt.span))
    return check


def _augment(stmt: ast.TrainStmt) -> list[dict[str, Any]]:
    calls = [v.value for v in stmt.values]
    if not calls or not all(isinstance(c, ast.Call) for c in calls):
        raise UserError(f"'augment' takes a list of {', '.join(AUGMENTATIONS)}", span=stmt.span)
    return [_bind_call(c, AUGMENTATIONS) for c in calls]


def _names(stmt: ast.TrainStmt) -> list[str]:
    names = []
    for v in stmt.values:
        if not isinstance(v.value, ast.Call) or v.value.has_parens or v.name is not None:
            raise UserError(f"'{stmt.key}' takes layer names: {stmt.key} stem, layer1", span=v.span)
        names.append(v.value.name)
    if not names:
        raise UserError(f"'{stmt.key}' needs at least one layer name", span=stmt.span)
    return names


def _scales(stmt: ast.TrainStmt) -> dict[str, float]:
    scales = {}
    for v in stmt.values:
        if v.name is None:
            raise UserError("'lr_scale' takes name=factor pairs: lr_scale layer4=0.1", span=v.span)
        value = evaluate(v.value, {})  # type: ignore[arg-type]
        try:
            scales[v.name] = Float(0.0).convert(value)
        except UserError as exc:
            raise UserError(f"'lr_scale' {v.name}: {as_written(exc.message, value)}", span=v.span) from None
    if not scales:
        raise UserError("'lr_scale' needs name=factor pairs: lr_scale layer4=0.1", span=stmt.span)
    return scales


def _split(stmt: ast.TrainStmt) -> dict[str, Any]:
    fractions = _with_args(SPLIT)(stmt)
    if fractions["val"] + fractions["test"] >= 1:
        raise UserError(f"'split' leaves nothing to train on: val={fractions['val']:g} + "
                        f"test={fractions['test']:g} ≥ 1", span=stmt.span)
    return fractions


def _data(stmt: ast.TrainStmt) -> str:
    value = _one(stmt)
    if not isinstance(value, str):
        raise UserError("'data' is digits or a path to an .npz file in quotes", span=stmt.span)
    return str(value)


WITH_ARGS = ("early_stopping", "split")  # statements written key(arguments)

# The statements that take one number, and its type (the search space checks its values with them).
SCALARS: dict[str, ArgType] = {"lr": Float(0.0), "weight_decay": Float(0.0), "l1": Float(0.0), "l2": Float(0.0),
                               "batch": Int(), "epochs": Int(), "seed": Int(0)}

CHECKS: dict[str, Callable[[ast.TrainStmt], Any]] = {
    "loss": _loss,
    "optimizer": _call(OPTIMIZERS),
    **{key: _scalar(kind) for key, kind in SCALARS.items()},
    "schedule": _call(SCHEDULES),
    "early_stopping": _with_args(EARLY_STOPPING.signature),
    "split": _split,
    "augment": _augment,
    "freeze": _names,
    "lr_scale": _scales,
    "data": _data,
    "backend": _call(BACKENDS),
}


def check_train(section: ast.TrainDef | None, diags: Diagnostics) -> dict[str, Any]:
    """The converted train section; each bad statement adds one error."""
    spec: dict[str, Any] = {}
    seen: dict[str, Any] = {}
    if section is None:
        return spec
    for stmt in section.stmts:
        check = CHECKS.get(stmt.key)
        if check is None:
            diags.error(f"unknown train setting '{stmt.key}'", stmt.key_span,
                        did_you_mean(stmt.key, CHECKS) or f"known: {', '.join(CHECKS)}")
            continue
        if stmt.key in seen:
            note = Diagnostic("note", f"'{stmt.key}' is first set here", seen[stmt.key])
            diags.error(f"'{stmt.key}' is set twice", stmt.key_span, notes=[note])
            continue
        seen[stmt.key] = stmt.key_span
        if stmt.args is not None and stmt.key not in WITH_ARGS:
            diags.error(f"'{stmt.key}' takes a value after it, not arguments in parentheses", stmt.key_span)
            continue
        try:
            spec[stmt.key] = check(stmt)
        except UserError as exc:
            diags.add(exc.diagnostic(stmt.span))
    return spec


# ----------------------------------------------------------------- writing a section back

# The registry of each statement that names an entry: its arguments at their defaults are not written.
_ENTRIES: dict[str, Registry] = {"loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
                                 "augment": AUGMENTATIONS, "backend": BACKENDS}
_SIGNATURES: dict[str, tuple[P, ...]] = {"early_stopping": EARLY_STOPPING.signature, "split": SPLIT}


def _arguments(values: dict[str, Any], signature: tuple[P, ...]) -> str:
    defaults = {p.name: p.default for p in signature}
    changed = {k: v for k, v in values.items() if k != "name" and (k not in defaults or defaults[k] != v)}
    return ", ".join(f"{k}={value_text(v)}" for k, v in changed.items())


def _entry_text(spec: str | dict[str, Any], table: Registry) -> str:
    """`adam(lr=0.003)`: the name, and the arguments that differ from the entry's defaults."""
    if isinstance(spec, str):
        return spec
    arguments = _arguments(spec, table[spec["name"]].signature)
    return f"{spec['name']}({arguments})" if arguments else spec["name"]


def statement_text(key: str, value: Any) -> str:
    """One statement of a converted train section, as a .net file writes it."""
    if key in _ENTRIES:
        entries = value if isinstance(value, list) else [value]
        return f"{key} " + ", ".join(_entry_text(spec, _ENTRIES[key]) for spec in entries)
    if key in WITH_ARGS:
        return f"{key}({_arguments(value, _SIGNATURES[key])})"
    if key == "lr_scale":
        return f"{key} " + ", ".join(f"{name}={value_text(v)}" for name, v in value.items())
    if key == "freeze":
        return f"{key} " + ", ".join(value)
    return f"{key} {value_text(value)}"


def section_text(section: dict[str, Any]) -> str:
    """A converted train section (what `check_train` returns) as a `train { }` block that checks back to it."""
    return "train {\n" + "".join(f"    {statement_text(k, v)}\n" for k, v in section.items()) + "}\n"

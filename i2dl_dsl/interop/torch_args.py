"""How a layer's arguments are written in the emitted PyTorch source.

A layer's `torch_code` asks `TorchArgs` for each argument's text. Where the
`.net` source wrote it as an expression of the enclosing block's parameters
(`conv(c*4, k=1)`), the text is that expression in Python (`c * 4`), so one
class serves every instance of the block; elsewhere it is the number. Each
expression is evaluated against the instance's own values before it is
used, and a number is written where the two differ, so the text is right by
construction (instances whose texts differ get classes of their own).
"""

from __future__ import annotations

import keyword
from typing import Any

from ..layers.base import Layer, Shape
from ..syntax import ast

# Names the emitted code uses itself; a parameter so named gets a trailing `_`.
RESERVED = {"self", "x", "nn", "F", "torch", "OrderedDict", "super", "in_channels", "in_features"}


def py_name(name: str) -> str:
    """A `.net` identifier as a Python identifier that shadows nothing the code uses."""
    return f"{name}_" if keyword.iskeyword(name) or name in RESERVED else name


def literal(value: Any) -> str:
    """A value as a Python literal; a pair of equal sizes as one number (k=3)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def python_expr(expr: ast.Expr, env: dict[str, Any]) -> str | None:
    """The expression in Python, or None where it names something other than
    the parameters in `env` (a bare word such as `same`)."""
    if isinstance(expr, ast.Literal):
        return literal(expr.value)
    if isinstance(expr, ast.Name):
        return py_name(expr.id) if expr.id in env else None
    if isinstance(expr, ast.Neg):
        inner = python_expr(expr.operand, env)
        return None if inner is None else f"-({inner})"
    if isinstance(expr, ast.ListExpr):
        items = [python_expr(item, env) for item in expr.items]
        return None if None in items else "(" + ", ".join(items) + ")"  # type: ignore[arg-type]
    if isinstance(expr, ast.BinOp):
        left, right = python_expr(expr.left, env), python_expr(expr.right, env)
        if left is None or right is None:
            return None
        op = "//" if expr.op == "/" else expr.op  # the language's / of integers is exact
        wrap = (lambda s, e: f"({s})" if isinstance(e, ast.BinOp) else s)
        return f"{wrap(left, expr.left)} {op} {wrap(right, expr.right)}"
    return None


def _same(got: Any, want: Any) -> bool:
    """`got` (an expression's value) gives the argument `want`: equal, and of
    the same kind (32.0 is no channel count); a pair of equal sizes is given by one."""
    if isinstance(want, tuple) and len(want) == 2 and want[0] == want[1] and not isinstance(got, (list, tuple)):
        want = want[0]
    if isinstance(got, (list, tuple)) or isinstance(want, (list, tuple)):
        return (isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)) and len(got) == len(want)
                and all(_same(g, w) for g, w in zip(got, want)))
    if isinstance(want, str):
        return isinstance(got, str) and str(got) == str(want)
    return type(got) is type(want) and got == want


def checked(text: str | None, value: Any, env: dict[str, Any]) -> str:
    """`text` where it evaluates to `value` with the instance's `env`, else the literal."""
    if text is not None and env:
        try:
            if _same(eval(text, {"__builtins__": {}}, env), value):  # noqa: S307: our own arithmetic
                return text
        except Exception:  # noqa: BLE001: any failure means "write the number"
            pass
    return literal(value)


class TorchArgs:
    """What a layer's `torch_code` reads: its arguments, shapes and input widths as text."""

    def __init__(self, layer: Layer, call: ast.Call | None, env: dict[str, Any], inputs: list[Shape],
                 output: Shape, widths: list[str]):
        self.layer = layer
        self.source_call = call
        self.env = env          # Python name → this instance's value, for checking texts
        self._inputs = inputs
        self._output = output
        self._widths = widths
        self.inputs = len(inputs)

    def in_shape(self, index: int = 0) -> Shape:
        return self._inputs[index]

    def out_shape(self) -> Shape:
        return self._output

    def width(self, index: int = 0) -> str:
        """The channels (images) or features (vectors, sequences) of input `index`."""
        return self._widths[index]

    def lit(self, value: Any) -> str:
        return literal(value)

    def arg(self, name: str, value: Any = None) -> str:
        """The argument `name` as the source wrote it, where that gives `value`
        (default: the layer's converted argument)."""
        value = self.layer.a[name] if value is None else value
        expr = self._source(name)
        return checked(python_expr(expr, self.env) if expr is not None else None, value, self.env)

    def _source(self, name: str) -> ast.Expr | None:
        if self.source_call is None:
            return None
        names = [p.name for p in self.layer.signature]
        for index, arg in enumerate(self.source_call.args):
            if (arg.name or (names[index] if index < len(names) else None)) == name:
                return arg.value
        return None

    def padding(self, pads: list[int], name: str, fill: str = "") -> tuple[str, str]:
        """(the `padding=` text, the forward template) for ONNX-style pads
        [top, left, bottom, right]: even padding as the module's argument,
        uneven padding (`p=same`, round=ceil) by F.pad before the module."""
        top, left, bottom, right = pads
        if (top, left) == (bottom, right):
            return self.arg(name, (top, left)), "{m}({0})"
        value = f", value={fill}" if fill else ""
        return "0", f"{{m}}(F.pad({{0}}, ({left}, {right}, {top}, {bottom}){value}))"

    def build(self, callee: str, positional: list[str], **keywords: Any) -> str:
        """`callee(a, b, k=v)`, leaving out each keyword given as (text, default) whose text is the default or None."""
        parts = list(positional)
        for key, given in keywords.items():
            text, default = given if isinstance(given, tuple) else (given, None)
            if text is None or text == default:
                continue
            parts.append(f"{key}={text}")
        return f"{callee}({', '.join(parts)})"

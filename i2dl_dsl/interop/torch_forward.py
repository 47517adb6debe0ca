"""The body of an emitted `forward`: one assignment per call, as a person writes it.

A chain reuses its variable (`x = self.conv1(x)`); a tensor read again later
(a residual's input, a skip connection) keeps its own, so the chain goes on
in `out`; tensors the source names (`e1 = ...`) keep their names.
"""

from __future__ import annotations

from typing import Callable

from .torch_args import py_name
from .torch_tree import Unit


def forward_lines(units: list[Unit], inputs: dict[str, str], output: str,
                  expression: Callable[[Unit, list[str]], str], names: dict[str, str]) -> list[str]:
    """`inputs`: tensor → the forward's argument; `names`: tensor → its name in the source."""
    last_use = {}
    for index, unit in enumerate(units):
        for source in unit.inputs:
            last_use[source] = index
    last_use[output] = len(units)
    var = dict(inputs)
    generic = {"x", "out"} | {name for name in inputs.values() if name.startswith("x")}
    lines = []
    for index, unit in enumerate(units):
        expr = expression(unit, [var[s] for s in unit.inputs])
        live = {var[t] for t, last in last_use.items() if t in var and last > index}
        name = _name(unit, index, var, live, generic, last_use, names)
        var[unit.output] = name
        lines.append(f"{name} = {expr}")
    result = var[output]
    if lines and lines[-1].startswith(f"{result} = ") and result in generic:
        lines[-1] = "return " + lines[-1][len(result) + 3:]
    else:
        lines.append(f"return {result}")
    return lines


def _name(unit: Unit, index: int, var: dict[str, str], live: set[str], generic: set[str],
          last_use: dict[str, int], names: dict[str, str]) -> str:
    if unit.output in names:
        return py_name(names[unit.output])
    if unit.inputs:
        first = var[unit.inputs[0]]
        if first in generic and last_use.get(unit.inputs[0], index) <= index and first not in live:
            return first
    for candidate in ("x", "out", *(f"out{n}" for n in range(2, 1000))):
        if candidate not in live and candidate not in var.values() or candidate in generic and candidate not in live:
            generic.add(candidate)
            return candidate
    raise AssertionError("unreachable: a thousand live tensors")

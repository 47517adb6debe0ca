"""The sliding-window arithmetic shared by convolutions and pools.

Output size per axis, the course's formula generalised to dilation and
uneven padding:

    out = (N - F + P_begin + P_end) / S + 1,   F = d·(k - 1) + 1

The division must be exact unless the layer says `round=floor` (drop the
remainder, as PyTorch does) or `round=ceil` (PyTorch's ceil_mode).
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..diagnostics import UserError
from .base import Choice, P, Padding, Pair, fmt_shape

AXES = ("height", "width")

ROUND = P("round", Choice(("exact", "floor", "ceil")), "exact",
          "how a non-whole output size is treated: an error, rounded down, or up")


def window_args(default_stride_is_kernel: bool) -> tuple[P, ...]:
    stride_default = None if default_stride_is_kernel else 1
    return (
        P("k", Pair(), doc="kernel size"),
        P("s", Pair(), stride_default, "stride" + (" (default: k)" if default_stride_is_kernel else "")),
        P("p", Padding(), 0, "padding: an integer, [h, w], same, valid or full"),
    )


def effective_kernel(k: int, d: int) -> int:
    return d * (k - 1) + 1


def resolve_padding(p, n: tuple[int, int], k: tuple[int, int], s: tuple[int, int],
                    d: tuple[int, int] = (1, 1)) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding (begin, end) per axis; `same` puts an odd extra pixel at the end."""
    pads = []
    for axis in range(2):
        keff = effective_kernel(k[axis], d[axis])
        if p == "valid":
            pads.append((0, 0))
        elif p == "full":
            pads.append((keff - 1, keff - 1))
        elif p == "same":
            out = -(-n[axis] // s[axis])
            total = max((out - 1) * s[axis] + keff - n[axis], 0)
            pads.append((total // 2, total - total // 2))
        else:
            pads.append((p[axis], p[axis]))
    return tuple(pads)  # type: ignore[return-value]


def window_output(n: int, k: int, s: int, pad: tuple[int, int], d: int, rounding: str, axis: int) -> int:
    """One axis of the output; a UserError quoting the formula when it is wrong."""
    keff = effective_kernel(k, d)
    numerator = n - keff + pad[0] + pad[1]
    formula = _formula(n, keff, s, pad)
    value = Fraction(numerator, s) + 1
    if value <= 0:
        raise UserError(
            f"output {AXES[axis]} is {formula} = {_num(value)}, not positive: "
            f"the window of {keff} does not fit an input of {n}" + (f" padded by {pad[0] + pad[1]}" if any(pad) else ""),
            f"use a smaller k, or pad with p={math.ceil((keff - n) / 2)}" if keff > n else "")
    if value.denominator == 1:
        return int(value)
    if rounding == "floor":
        if value < 1:  # rounding down would leave no output at all
            raise UserError(f"output {AXES[axis]} is {formula} = {_num(value)}, rounded down to 0: "
                            f"the window of {keff} does not fit an input of {n}", "use a smaller k or s, or pad")
        return math.floor(value)
    if rounding == "ceil":
        out = math.ceil(value)
        # PyTorch's ceil_mode: the last window must start inside the input or the left padding.
        return out - 1 if (out - 1) * s >= n + pad[0] else out
    raise UserError(f"output {AXES[axis]} is {formula} = {_num(value)}, not a whole number",
                    *_integer_hints(n, keff, s, pad))


def window_formulas(shape, k, s, pads, d, output) -> list[str]:
    """`height: (56 - 3 + 2·1)/1 + 1 = 56` for each spatial axis of a layer
    that read `shape` and gave `output`, with the rounding it applied."""
    lines = []
    for axis, n in enumerate(shape[1:3]):
        keff = effective_kernel(k[axis], d[axis])
        value = Fraction(n - keff + pads[axis][0] + pads[axis][1], s[axis]) + 1
        rounded = f", rounded to {output[1 + axis]}" if value.denominator != 1 else ""
        lines.append(f"{AXES[axis]}: {_formula(n, keff, s[axis], pads[axis])} = {_num(value)}{rounded}")
    return lines


def _formula(n: int, keff: int, s: int, pad: tuple[int, int]) -> str:
    padding = f"2·{pad[0]}" if pad[0] == pad[1] else f"{pad[0]} + {pad[1]}"
    return f"({n} - {keff} + {padding})/{s} + 1"


def _num(value: Fraction) -> str:
    return str(int(value)) if value.denominator == 1 else f"{float(value):.4g}"


def _integer_hints(n: int, keff: int, s: int, pad: tuple[int, int]) -> tuple[str, ...]:
    options = [f"p={p}" for p in range(0, keff + s) if (n - keff + 2 * p) % s == 0 and p != pad[0]][:1]
    options.append("s=1")
    dropped = (n - keff + pad[0] + pad[1]) % s
    return (f"use {' or '.join(options)}; or add round=floor to ignore the last {dropped} "
            f"input row{'s' if dropped != 1 else ''} as PyTorch does (round=ceil for ceil_mode)",)


def onnx_pads(pads, n, k, s, d, out) -> list[int]:
    """ONNX `pads` [top, left, bottom, right]. ONNX rounds down like PyTorch;
    a `round=ceil` output gets the extra end padding that makes floor agree."""
    begin, end = [], []
    for axis in range(2):
        keff = effective_kernel(k[axis], d[axis])
        needed = (out[axis] - 1) * s[axis] + keff - n[axis] - pads[axis][0]
        begin.append(pads[axis][0])
        end.append(max(pads[axis][1], needed))
    return begin + end


def check_spatial(kind: str, inputs) -> tuple[int, int, int]:
    """The [C, H, W] of a layer that needs an image-shaped input."""
    shape = inputs[0]
    if len(shape) != 3:
        raise UserError(f"needs an input of shape [C, H, W], got {fmt_shape(shape)}",
                        "flatten and fc work on vectors; conv and pool on images" if len(shape) == 1 else
                        "sequences [T, F] go through lstm, rnn or fc layers")
    return shape  # type: ignore[return-value]

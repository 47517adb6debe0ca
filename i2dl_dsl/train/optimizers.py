"""Optimizers as ONNX update subgraphs (PyTorch's formulations, so that one
step equals torch.optim's on the same gradients).

    sgd        p ← p - η g
    momentum   v ← β v + g;            p ← p - η v
    nesterov   v ← β v + g;            p ← p - η (g + β v)
    rmsprop    s ← β s + (1-β) g²;     p ← p - η g / (√s + ε)
    adam       m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²
               p ← p - η (m / (1-β1^t)) / (√(v / (1-β2^t)) + ε)

Weight decay adds λ·p to g first (PyTorch's `weight_decay`). The update
runs once over the flat vector of all trainable parameters (packing.py);
state tensors are graph inputs and outputs: `state/<slot>` in, `new/...` out.
"""

from __future__ import annotations

from typing import Any, Callable

SLOTS: dict[str, tuple[str, ...]] = {
    "sgd": (), "momentum": ("velocity",), "nesterov": ("velocity",),
    "rmsprop": ("square_avg",), "adam": ("exp_avg", "exp_avg_sq"),
}


def _f(g, value: float, hint: str) -> str:
    return g.const(value, dtype="float32", hint=hint)


def _blend(g, old: str, new: str, beta: float, hint: str) -> str:
    """β·old + (1-β)·new."""
    return g.op("Add", [g.op("Mul", [old, _f(g, beta, hint)]), g.op("Mul", [new, _f(g, 1.0 - beta, hint + "_c")])])


def _sgd(g, p, grad, lr, step, state, opts):
    return g.op("Sub", [p, g.op("Mul", [grad, lr])]), {}


def _momentum(g, p, grad, lr, step, state, opts, nesterov=False):
    v = g.op("Add", [g.op("Mul", [state["velocity"], _f(g, opts["beta"], "beta")]), grad])
    direction = g.op("Add", [grad, g.op("Mul", [v, _f(g, opts["beta"], "beta")])]) if nesterov else v
    return g.op("Sub", [p, g.op("Mul", [direction, lr])]), {"velocity": v}


def _nesterov(g, p, grad, lr, step, state, opts):
    return _momentum(g, p, grad, lr, step, state, opts, nesterov=True)


def _rmsprop(g, p, grad, lr, step, state, opts):
    s = _blend(g, state["square_avg"], g.op("Mul", [grad, grad]), opts["beta"], "beta")
    denominator = g.op("Add", [g.op("Sqrt", [s]), _f(g, opts["eps"], "eps")])
    return g.op("Sub", [p, g.op("Mul", [g.op("Div", [grad, denominator]), lr])]), {"square_avg": s}


def _adam(g, p, grad, lr, step, state, opts):
    m = _blend(g, state["exp_avg"], grad, opts["beta1"], "beta1")
    v = _blend(g, state["exp_avg_sq"], g.op("Mul", [grad, grad]), opts["beta2"], "beta2")
    one = _f(g, 1.0, "one")
    correction1 = g.op("Sub", [one, g.op("Pow", [_f(g, opts["beta1"], "beta1"), step])])  # 1 - β1^t
    correction2 = g.op("Sub", [one, g.op("Pow", [_f(g, opts["beta2"], "beta2"), step])])
    # torch.optim.Adam's arrangement: the corrections are scalars, folded
    # into the step size and the denominator, not applied to m and v.
    step_size = g.op("Div", [lr, correction1])
    denominator = g.op("Add", [g.op("Div", [g.op("Sqrt", [v]), g.op("Sqrt", [correction2])]),
                               _f(g, opts["eps"], "eps")])
    update = g.op("Mul", [g.op("Div", [m, denominator]), step_size])
    return g.op("Sub", [p, update]), {"exp_avg": m, "exp_avg_sq": v}


UPDATES: dict[str, Callable[..., tuple[str, dict[str, str]]]] = {
    "sgd": _sgd, "momentum": _momentum, "nesterov": _nesterov, "rmsprop": _rmsprop, "adam": _adam,
}


def update(g, name: str, p: str, grad: str, lr: str, step: str, state: dict[str, str], opts: dict[str, Any],
           weight_decay: float) -> tuple[str, dict[str, str]]:
    """The new parameters and new state slots (tensor names)."""
    if weight_decay:
        grad = g.op("Add", [grad, g.op("Mul", [p, _f(g, weight_decay, "weight_decay")])])
    return UPDATES[name](g, p, grad, lr, step, state, opts)

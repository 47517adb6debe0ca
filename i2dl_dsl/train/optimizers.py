"""Optimizers: each one entry holding its hyperparameters (with PyTorch's
defaults), its state slots and its ONNX update subgraph (PyTorch's
formulations, so that one step equals torch.optim's on the same gradients).

    sgd        p ← p - η g
    momentum   v ← β v + g;            p ← p - η v
    nesterov   v ← β v + g;            p ← p - η (g + β v)
    rmsprop    s ← β s + (1-β) g²;     p ← p - η g / (√s + ε)
    adagrad    s ← s + g²;             p ← p - η_t g / (√(s + s0) + ε),  η_t = η / (1 + (t-1)·lr_decay)
    adam       m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²
               p ← p - η (m / (1-β1^t)) / (√(v / (1-β2^t)) + ε)
    adamw      p ← p (1 - η λ), then adam's step   (decoupled weight decay, Loshchilov & Hutter)
    lbfgs      full batch, driven by SciPy (lbfgs.py): no update subgraph

The train section's `weight_decay` adds λ·p to g first (PyTorch's coupled
`weight_decay`); adamw decays the weights itself, with its own argument.
The update runs once over the flat vector of all trainable parameters
(packing.py); state tensors are graph inputs and outputs: `state/<slot>` in,
`new/...` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..layers.base import Float, Int, P
from .registry import Entry, Registry

Update = Callable[..., tuple[str, dict[str, str]]]  # (g, p, grad, lr, step, state, opts) -> new p, new slots


@dataclass(frozen=True, kw_only=True)
class Optimizer(Entry):
    update: Update | None = None   # None: not a step of the mini-batch loop (lbfgs)
    slots: tuple[str, ...] = ()    # optimizer state per parameter, zeros at the start
    decays_weights: bool = False   # its own `weight_decay` argument replaces the section's

    @property
    def full_batch(self) -> bool:
        return self.update is None


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer", default="adam")

_BETA = Float(0.0, 1.0, high_open=True)


def _lr(default: float) -> P:
    return P("lr", Float(0.0), default, "learning rate")


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


def _adagrad(g, p, grad, lr, step, state, opts):
    # The slot holds Σg² alone; torch's `sum` starts at initial_accumulator_value, added here.
    s = g.op("Add", [state["sum"], g.op("Mul", [grad, grad])])
    total = g.op("Add", [s, _f(g, opts["initial_accumulator_value"], "initial")]) \
        if opts["initial_accumulator_value"] else s
    denominator = g.op("Add", [g.op("Sqrt", [total]), _f(g, opts["eps"], "eps")])
    if opts["lr_decay"]:  # η / (1 + (t - 1)·lr_decay)
        elapsed = g.op("Sub", [step, _f(g, 1.0, "one")])
        decay = g.op("Add", [_f(g, 1.0, "one"), g.op("Mul", [elapsed, _f(g, opts["lr_decay"], "lr_decay")])])
        lr = g.op("Div", [lr, decay])
    return g.op("Sub", [p, g.op("Mul", [g.op("Div", [grad, denominator]), lr])]), {"sum": s}


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


def _adamw(g, p, grad, lr, step, state, opts):
    # torch.optim.AdamW: p ← p - η·λ·p before Adam's step; the gradient is left as it is.
    if opts["weight_decay"]:
        p = g.op("Sub", [p, g.op("Mul", [p, g.op("Mul", [lr, _f(g, opts["weight_decay"], "weight_decay")])])])
    return _adam(g, p, grad, lr, step, state, opts)


_ADAM = (_lr(1e-3), P("beta1", _BETA, 0.9), P("beta2", _BETA, 0.999), P("eps", Float(0.0), 1e-8))

OPTIMIZERS.register(Optimizer(name="sgd", signature=(_lr(0.01),), update=_sgd, doc="plain gradient descent"))
OPTIMIZERS.register(Optimizer(name="momentum", signature=(_lr(0.01), P("beta", _BETA, 0.9)), update=_momentum,
                              slots=("velocity",), doc="SGD with momentum"))
OPTIMIZERS.register(Optimizer(name="nesterov", signature=(_lr(0.01), P("beta", _BETA, 0.9)), update=_nesterov,
                              slots=("velocity",), doc="SGD with Nesterov momentum"))
OPTIMIZERS.register(Optimizer(name="rmsprop", signature=(_lr(0.01), P("beta", _BETA, 0.99), P("eps", Float(0.0), 1e-8)),
                              update=_rmsprop, slots=("square_avg",), doc="RMSprop"))
OPTIMIZERS.register(Optimizer(name="adagrad", update=_adagrad, slots=("sum",), doc="Adagrad",
                              signature=(_lr(0.01), P("lr_decay", Float(0.0), 0.0),
                                         P("initial_accumulator_value", Float(0.0), 0.0), P("eps", Float(0.0), 1e-10))))
OPTIMIZERS.register(Optimizer(name="adam", signature=_ADAM, update=_adam, slots=("exp_avg", "exp_avg_sq"),
                              doc="Adam"))
OPTIMIZERS.register(Optimizer(name="adamw", signature=(*_ADAM, P("weight_decay", Float(0.0), 1e-2)), update=_adamw,
                              slots=("exp_avg", "exp_avg_sq"), decays_weights=True,
                              doc="Adam with decoupled weight decay"))
OPTIMIZERS.register(Optimizer(name="lbfgs", signature=(_lr(1.0), P("history", Int(), 10), P("max_iter", Int(), 100)),
                              doc="full-batch L-BFGS (SciPy), for small data"))


def update(g, name: str, p: str, grad: str, lr: str, step: str, state: dict[str, str], opts: dict[str, Any],
           weight_decay: float) -> tuple[str, dict[str, str]]:
    """The new parameters and new state slots (tensor names)."""
    if weight_decay:
        grad = g.op("Add", [grad, g.op("Mul", [p, _f(g, weight_decay, "weight_decay")])])
    optimizer = OPTIMIZERS[name]
    if optimizer.update is None:
        raise ValueError(f"optimizer '{name}' has no update step; it drives its own loop")
    return optimizer.update(g, p, grad, lr, step, state, optimizer.arguments(opts))

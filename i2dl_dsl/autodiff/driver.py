"""Reverse-mode differentiation of an ONNX graph, emitted as ONNX nodes.

The driver alone decides the order (reverse topological over the nodes
between the parameters and the loss), sums fan-in, undoes broadcasting and
drops zeros; the rules in `rules.py` only say, per op, how output gradients
become input gradients. A gradient is a tensor name, or None for a symbolic
zero for which no node is ever emitted.
"""

from __future__ import annotations

import re

import onnx
from onnx import helper

from ..diagnostics import Span, UserError
from ..names import fresh
from .context import GradContext, NotDifferentiable
from .rules import RULES


class MissingGradient(UserError):
    """An op on the path from a parameter to the loss has no gradient rule, or
    its rule cannot handle how the node is configured (the reason says how)."""

    def __init__(self, node: onnx.NodeProto, reason: str = ""):
        self.op_type, self.node_name, self.doc_string = node.op_type, node.name, node.doc_string
        where = f" from {node.doc_string}" if node.doc_string else ""
        hint = "" if reason else f"ops with gradient rules: {', '.join(sorted(RULES))}"
        super().__init__(f"cannot differentiate ONNX op '{node.op_type}' (node '{node.name}'{where}): "
                         f"{reason or 'it has no gradient rule'}", hint, span=_span(node.doc_string))


def _span(doc: str) -> Span | None:
    """The .net location a lowering wrote at the start of the doc_string."""
    match = re.match(r"(.+?):(\d+):(\d+): ", doc)
    if match is None:
        return None
    line, col = int(match[2]), int(match[3])
    return Span(match[1], line, col, line, col)


def add_gradients(model: onnx.ModelProto, loss: str, wrt: list[str], blocked_convs: bool = False) -> dict[str, str]:
    """Append to model.graph the nodes (and constant initializers) computing
    d loss / d w for every name w in `wrt` (initializers or graph inputs);
    `loss` is a scalar float tensor produced in the graph. Returns w -> name
    of its gradient tensor `grad/<w>` (same shape as w). A w the loss does not
    depend on gets an explicit zeros tensor. Raises MissingGradient naming the
    op type, the node name and its doc_string (the .net source location) when
    an op on the path from w to the loss has no rule.

    The forward graph is changed only where the backward pass needs it:
    unnamed nodes get names, and a MaxPool without its Indices output gets
    one where its gradient reads them.

    `blocked_convs`: the graph will run with its convolutions on
    onnxruntime's blocked CPU kernels (`lowering/nchwc.py`); the rules then pick
    the gradient forms that are fastest there."""
    _name_nodes(model.graph)
    ctx = GradContext(model, blocked_convs)
    if not ctx.is_float(loss) or loss not in ctx.types:
        raise ValueError(f"the loss '{loss}' is not a float tensor of the graph")
    ctx.graph.float_type = ctx.elem_type(loss)
    grads = _Gradients(ctx)
    ctx.at(loss)
    one = helper.make_tensor("one", ctx.float_type, [1], [1.0])
    grads.add(loss, ctx.op("ConstantOfShape", [ctx.shape_of(loss)], value=one, shape=ctx.shape(loss)))
    active = _between(model.graph, ctx, set(wrt), loss)
    for node in reversed(model.graph.node):
        if not any(o in active for o in node.output):
            continue
        ctx.at(node.name, node.doc_string)
        outputs = [grads.total(o) if o in active else None for o in node.output]
        if all(g is None for g in outputs):
            continue  # a symbolic zero flows on: nothing to emit
        if node.op_type not in RULES:
            raise MissingGradient(node)
        try:
            inputs = RULES[node.op_type](ctx, node, outputs)
        except NotDifferentiable as exc:
            raise MissingGradient(node, str(exc)) from None
        for name, grad in zip(node.input, inputs):
            if grad is not None and name in active:
                grads.add(name, _unbroadcast(ctx, grad, name))
    result = {}
    for w in wrt:
        ctx.at(w)
        result[w] = grads.final(w)
    _append(model, ctx, grads.renamed, result)
    return result


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Gradient nodes are named after their forward node, so each needs a name."""
    taken = {n.name for n in graph.node}
    for index, node in enumerate(graph.node):
        if not node.name:
            node.name = fresh(f"{node.op_type}_{index}", taken)


def _between(graph: onnx.GraphProto, ctx: GradContext, wrt: set[str], loss: str) -> set[str]:
    """Tensors that depend on some w and that the loss depends on: only they
    carry gradients. Integer and boolean tensors (shapes, indices, masks)
    carry none, so ops like Shape, Equal or ArgMax are never reached."""
    depends = set(wrt)
    for node in graph.node:
        if any(i in depends for i in node.input):
            depends.update(o for o in node.output if ctx.is_float(o))
    needed = {loss}
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            needed.update(node.input)
    return depends & needed


def _unbroadcast(ctx: GradContext, grad: str, target: str) -> str:
    """Sum a gradient over the axes along which `target` was broadcast."""
    have, want = ctx.shape(grad), ctx.shape(target)
    if have is None or want is None or have == want:
        return grad
    lead = len(have) - len(want)
    if lead < 0:
        raise ValueError(f"the gradient '{grad}' {have} has fewer axes than '{target}' {want}")
    axes = list(range(lead)) + [lead + i for i, d in enumerate(want) if d == 1 and have[lead + i] != 1]
    if not axes:
        return grad
    summed = ctx.op("ReduceSum", [grad, ctx.ints(axes)], keepdims=1)
    return ctx.reshape_like(summed, target) if lead else summed


class _Gradients:
    """The contributions to each tensor's gradient, and their final names."""

    def __init__(self, ctx: GradContext):
        self.ctx = ctx
        self.parts: dict[str, list[str]] = {}
        self.uses: dict[str, int] = {}
        self.done: dict[str, str | None] = {}
        self.renamed: dict[str, str] = {}  # a backward tensor -> `grad/<tensor>`
        self.named: dict[str, str] = {}  # a tensor -> its gradient's final name

    def add(self, tensor: str, grad: str) -> None:
        self.parts.setdefault(tensor, []).append(grad)
        self.uses[grad] = self.uses.get(grad, 0) + 1

    def total(self, tensor: str) -> str | None:
        """The gradient of `tensor`: its only contribution, or one sum of all
        (two parts: an Add, which onnxruntime's CPU runs 2-3× faster than a
        Sum of two). Called once every consumer of `tensor` has contributed."""
        if tensor not in self.done:
            parts = self.parts.pop(tensor, [])
            fan_in = "Add" if len(parts) == 2 else "Sum"
            result = self.ctx.op(fan_in, [*parts]) if len(parts) > 1 else parts[0] if parts else None
            if result is not None and self._owned(result):
                self._name(result, tensor)
            self.done[tensor] = result
        return self.done[tensor]

    def _owned(self, grad: str) -> bool:
        """Made for this tensor alone (not passed through from another
        gradient), so it may take the name `grad/<tensor>`."""
        return grad in self.ctx.made and grad not in self.renamed and self.uses.get(grad, 0) <= 1

    def final(self, w: str) -> str:
        """The gradient of a requested tensor, by the name `grad/<w>` (zeros if none)."""
        grad = self.total(w)
        if w not in self.named:
            # no gradient: explicit zeros; a pass-through: an Identity of its own
            self._name(self.ctx.zeros_like(w) if grad is None else self.ctx.op("Identity", [grad]), w)
        return self.named[w]

    def _name(self, grad: str, tensor: str) -> None:
        self.renamed[grad] = self.named[tensor] = self.ctx.fresh(f"grad/{tensor}")


def _append(model: onnx.ModelProto, ctx: GradContext, renamed: dict[str, str], result: dict[str, str]) -> None:
    """Keep the backward nodes the results need, with their final names."""
    needed = set(result.values())
    kept = []
    for node in reversed(ctx.graph.nodes):
        for i, name in enumerate(node.output):
            node.output[i] = renamed.get(name, name)
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    model.graph.node.extend(reversed(kept))
    model.graph.initializer.extend(t for name, t in ctx.graph.initializers.items() if name in needed)
    for w, grad in result.items():
        if w in ctx.types:
            model.graph.value_info.append(helper.make_value_info(grad, ctx.types[w]))

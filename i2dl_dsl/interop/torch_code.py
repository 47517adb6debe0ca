"""A checked network as PyTorch source: one `nn.Module` class per block and
one named after the network, whose `state_dict` names are the layer names.

    emit(net) -> str                     the source of a Python module
    to_module(net, weights=None)         that source run, the network's class built

Each layer kind writes its own module and forward expression
(`Layer.torch_code`); this module only arranges them: the classes, their
constructors (the block's parameters, and the input's channels as
`in_channels`), and forwards that follow the chains, with named tensors as
local variables and residual sums and concatenations as `+` and `torch.cat`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..checker import CheckedNetwork
from ..diagnostics import UserError
from ..elaborate import layer_node
from ..layers.declarations import Shape, TorchCode
from .torch_args import TorchArgs, checked, literal, py_name, python_expr
from .torch_forward import forward_lines
from .torch_tree import Scope, Structure, build_tree

INDENT = "    "


def width_of(shape: Shape) -> int:
    """Channels of an image [C, H, W], features of a vector [F] or a sequence [T, F]."""
    return shape[-1] if len(shape) == 2 else shape[0]


def class_name(word: str) -> str:
    """`basic_down` → `BasicDown`; names already in CamelCase stay as they are."""
    parts = [p for p in re.split(r"[_\W]+", word) if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "Block"


class Emitter:
    """Renders the classes of one network; inner classes come first."""

    def __init__(self, net: CheckedNetwork):
        self.net = net
        self.graph = net.graph
        self.shapes = net.analysis.shapes
        self.instances = self.graph.graph.get("instances", {})
        self.calls = self.graph.graph.get("calls", {})
        self.tensor_names = self.graph.graph.get("tensor_names", {})
        self.tree = build_tree(self.graph)
        self.structure = Structure(self.graph, self._plain_layers())
        self.classes: list[tuple[str, str]] = []  # (name, text), in definition order
        self.texts: dict[str, str] = {}            # class text → its name
        self.uses: set[str] = set()                # "F", "OrderedDict"
        self.helpers: dict[str, None] = {}         # classes PyTorch lacks, in order of first use

    def _plain_layers(self) -> set[str]:
        plain = set()
        for name in self.tree.nodes():
            code = self.code(name, {}, [str(width_of(self.shapes[s])) for s in layer_node(self.graph, name).inputs])
            if code.module is not None and code.forward == "{m}({0})":
                plain.add(name)
        return plain

    def code(self, name: str, env: dict[str, Any], widths: list[str]) -> TorchCode:
        node = layer_node(self.graph, name)
        args = TorchArgs(node.layer, self.calls.get(name), env, [self.shapes[s] for s in node.inputs],
                         self.shapes[name], widths)
        try:
            return node.layer.torch_code(args)
        except NotImplementedError as exc:
            raise UserError(f"cannot write layer '{name}' as PyTorch: {exc}", span=node.span) from None

    # ------------------------------------------------------------- classes
    def network_class(self) -> str:
        params = self.graph.graph.get("params", {})
        env = {py_name(k): v for k, v in params.items()}
        signature = [f"{py_name(k)}={literal(v)}" for k, v in params.items()]
        source = self.graph.graph["input"]
        argument = "x" if source == "x" else py_name(source)
        return self.render_class(self.tree, class_name(self.net.name), signature, env, [source],
                                 [argument], {source: str(width_of(self.shapes[source]))})

    def block_class(self, scope: Scope, inputs: tuple[str, ...]) -> str:
        """The class of a block instance: `in_channels` (the input's width),
        `<tensor>_channels` per tensor parameter, then the number parameters;
        forward(x, <tensors>)."""
        instance = self.instances[scope.path]
        names = ["x" if source == instance.input else
                 py_name(next(p for p, n in instance.tensors.items() if n == source)) for source in inputs]
        env, widths, signature = {}, {}, []
        for name, source in zip(names, inputs):
            word = ("in" if name == "x" else name) + ("_channels" if len(self.shapes[source]) == 3 else "_features")
            env[word], widths[source] = width_of(self.shapes[source]), word
            signature.append(f"{word}: int")
        for param in instance.block.params:
            if param.name in instance.tensors:
                continue
            env[py_name(param.name)] = instance.values[param.name]
            default = "" if param.default is None else "=" + self._default(param.default)
            signature.append(py_name(param.name) + default)
        return self.render_class(scope, class_name(instance.block.name), signature, env, list(inputs), names,
                                 widths)

    @staticmethod
    def _default(expr) -> str:
        from ..values import evaluate

        try:
            return literal(evaluate(expr, {}))
        except Exception:  # noqa: BLE001: a default that refers to another parameter
            return python_expr(expr, {}) or "None"

    def _names_in(self, scope: Scope) -> dict[str, str]:
        """The tensors the source names in the body this class is written from."""
        return {node: name for node, (name, prefix) in self.tensor_names.items() if self._owner(prefix) == scope.path}

    def _owner(self, prefix: str) -> str:
        """The block instance (or "" for the network) whose class holds scope `prefix`."""
        parts = prefix.split(".") if prefix else []
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in self.instances:
                return ".".join(parts[:end])
        return ""

    def render_class(self, scope: Scope, stem: str, signature: list[str], env: dict[str, Any],
                     inputs: list[str], names: list[str], widths: dict[str, str]) -> str:
        ctx = ClassContext(self, scope, env, widths)
        init = ctx.init_lines()
        forward = forward_lines(self.structure.units(scope), dict(zip(inputs, names)), ctx.output(inputs),
                                ctx.expression, self._names_in(scope))
        args = ", ".join(["self", *signature])
        hints = ", ".join(f"{n}: torch.Tensor" for n in names)
        lines = ["class {name}(nn.Module):", f"{INDENT}def __init__({args}):", f"{INDENT * 2}super().__init__()",
                 *[INDENT * 2 + line for line in init], "",
                 f"{INDENT}def forward(self, {hints}) -> torch.Tensor:", *[INDENT * 2 + line for line in forward]]
        text = "\n".join(lines)
        if text not in self.texts:
            taken = {name for name, _ in self.classes}
            name, n = stem, 1
            while name in taken or name in ("nn", "F", "torch", "OrderedDict"):
                n += 1
                name = f"{stem}{n}"
            self.texts[text] = name
            self.classes.append((name, text.replace("{name}", name, 1)))
        return self.texts[text]


class ClassContext:
    """One class being written: its parameters' values, the widths of its tensors as text."""

    def __init__(self, emitter: Emitter, scope: Scope, env: dict[str, Any], widths: dict[str, str]):
        self.e = emitter
        self.scope = scope
        self.env = env
        self.widths = dict(widths)
        self.codes: dict[str, TorchCode] = {}
        self.blocks: dict[str, str] = {}  # scope path → its constructor call
        self._walk(scope)

    def _walk(self, scope: Scope) -> None:
        """Each layer's code and each inner block's constructor, in graph order (widths flow forward)."""
        for child in scope.children.values():
            if isinstance(child, str):
                self._layer(child)
            elif child.path in self.e.instances:
                self._block(child)
            else:
                self._walk(child)

    def _width(self, name: str) -> str:
        return self.widths.get(name) or str(width_of(self.e.shapes[name]))

    def _layer(self, name: str) -> None:
        sources = layer_node(self.e.graph, name).inputs
        code = self.e.code(name, self.env, [self._width(s) for s in sources])
        self.codes[name] = code
        value = width_of(self.e.shapes[name])
        guesses = [code.width] if code.width else []
        guesses += [self._width(s) for s in sources]
        self.widths[name] = next((g for g in guesses if checked(g, value, self.env) == g), str(value))
        if "F." in code.forward:
            self.e.uses.add("F")
        self.e.helpers.update(dict.fromkeys(code.helpers))

    def _block(self, scope: Scope) -> None:
        unit = self.e.structure.unit(scope)
        inner = self.e.block_class(scope, unit.inputs)
        instance = self.e.instances[scope.path]
        args = [self._width(s) for s in unit.inputs]
        texts = []
        names = [p.name for p in instance.block.params]
        for index, arg in enumerate(instance.call.args):
            param = arg.name or names[index]
            if param in instance.tensors:
                continue  # passed to forward
            text = checked(python_expr(arg.value, self.env), instance.values[param], self.env)
            texts.append(text)
            args.append(text if arg.name is None else f"{py_name(param)}={text}")
        self.blocks[scope.path] = f"{inner}({', '.join(args)})"
        value = width_of(self.e.shapes[unit.output])
        guesses = [t for t in texts if checked(t, value, self.env) == t]
        self.widths[unit.output] = guesses[0] if guesses else str(value)

    # ------------------------------------------------------------- __init__
    def init_lines(self) -> list[str]:
        lines = []
        for local, child in self.scope.children.items():
            module = self.module(child)
            if module is not None:
                lines += f"self.{local} = {module}".split("\n")
        return lines

    def module(self, child: Scope | str) -> str | None:
        if isinstance(child, str):
            return self.codes[child].module
        if child.path in self.e.instances:
            return self.blocks[child.path]
        items = [(local, self.module(c)) for local, c in child.children.items()]
        items = [(local, m) for local, m in items if m is not None]
        for local, m in items:
            if m.startswith("nn.Parameter("):
                raise UserError(f"cannot write layer '{child.path}.{local}' as PyTorch: a parameter that is a "
                                "layer of its own sits in a container module here", "label the block around it, "
                                "or move the layer out of the labelled residual or branch")
        if not items:
            return None
        if self.e.structure.is_chain(child):
            if [local for local, _ in items] == [str(i) for i in range(len(items))]:
                return _listing("nn.Sequential(", [m for _, m in items], ")")
            self.e.uses.add("OrderedDict")
            return _listing("nn.Sequential(OrderedDict([", [f"({local!r}, {m})" for local, m in items], "]))")
        return _listing("nn.ModuleDict({", [f"{local!r}: {m}" for local, m in items], "})")

    # ------------------------------------------------------------- forward
    def reference(self, path: str) -> str:
        """`self.layer1.conv1`, `self.stem[0]`, `self.branch["0"]`: the module at `path`."""
        relative = path[len(self.scope.path) + 1:] if self.scope.path else path
        text, scope = "self", self.scope
        for part in relative.split("."):
            child = scope.children[part]
            in_container = scope is not self.scope
            if in_container and part.isdigit():
                text += f"[{part}]" if self.e.structure.is_chain(scope) else f'["{part}"]'
            else:
                text += f".{part}"
            scope = child if isinstance(child, Scope) else scope
        return text

    def expression(self, unit, args: list[str]) -> str:
        if unit.kind != "layer":
            return f"{self.reference(unit.path)}({', '.join(args)})"
        code = self.codes[unit.path]
        module = self.reference(unit.path) if code.module is not None else ""
        return code.forward.format(*args, m=module)

    def output(self, inputs: list[str]) -> str:
        if self.scope is self.e.tree:
            return self.e.graph.graph["output"]
        return self.e.structure.unit(self.scope).output


def _listing(opening: str, items: list[str], closing: str) -> str:
    body = [INDENT + line for item in items for line in (item + ",").split("\n")]
    return "\n".join([opening, *body, closing])


def emit(network: Any) -> str:
    """The PyTorch source of `network` (a CheckedNetwork, or an object with
    one as `.checked`): a Python module a person could have written."""
    net = _checked(network)
    emitter = Emitter(net)
    root = emitter.network_class()
    header = [f'"""{net.name} in PyTorch, written by i2dl-compile --emit torch from {_source_name(net)}.',
              "", f"The state_dict names are the .net file's layer names: {root}().load_state_dict(weights).",
              '"""', "", "from __future__ import annotations", ""]
    if "OrderedDict" in emitter.uses:
        header += ["from collections import OrderedDict", ""]
    header += ["import torch"] + (["import torch.nn.functional as F"] if "F" in emitter.uses else [])
    header += ["from torch import nn"]
    body = "\n\n\n".join([*emitter.helpers, *(text for _, text in emitter.classes)])
    return "\n".join(header) + "\n\n\n" + body + "\n"


def _checked(network: Any) -> CheckedNetwork:
    """The CheckedNetwork itself, or the one a wrapper holds as `.checked`."""
    return network if isinstance(network, CheckedNetwork) else network.checked


def _source_name(net: CheckedNetwork) -> str:
    from pathlib import Path

    return Path(net.path).name if net.path else "a .net source"


def root_class(source: str) -> str:
    """The name of the last class in emitted source: the network's."""
    return re.findall(r"^class (\w+)\(", source, re.M)[-1]


def to_module(network: Any, weights: dict[str, np.ndarray] | None = None):
    """The network as an `nn.Module` (the emitted source, run); `weights`
    (name → array, as the compiler's runs write them) loaded strictly, else
    PyTorch's own initialisation."""
    import torch

    source = emit(network)
    namespace: dict[str, Any] = {"__name__": "i2dl_dsl_emitted"}
    exec(compile(source, f"<{_checked(network).name}.py>", "exec"), namespace)  # noqa: S102
    module = namespace[root_class(source)]()
    if weights is not None:
        state = {k: torch.as_tensor(np.array(v)) for k, v in weights.items()}
        module.load_state_dict(state, strict=True)
    return module

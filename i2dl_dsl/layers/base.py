"""The contract every layer kind fulfils, and the argument types it declares.

A layer kind is one class in one file of this package: its signature, its
shape rule (errors quote the formula with the numbers filled in), its
parameters and buffers and how each starts (`inits`), the random inputs it
draws in training (`random_inputs`), whether it needs batch statistics, its
MACs and its receptive-field step. Drivers (checker, summary, drawing,
lowering, the training loop) only ever read these declarations; none of
them recognises a layer by the names of its tensors.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Mapping

from ..diagnostics import UserError, value_text
from .declarations import Init, RandomInput, Shape, TorchCode



class Symbol(str):
    """A bare word used as a value, such as `same` or `nearest`."""


REQUIRED = object()


# ----------------------------------------------------------------- argument types


class ArgType:
    """Converts a source value into what the layer uses, or raises UserError."""

    description = "a value"

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def _fail(self, value: Any, hint: str = "") -> UserError:
        if isinstance(value, Symbol) and not hint:
            hint = "a bare word is only a value when the layer names it; is a block parameter missing?"
        return UserError(f"expected {self.description}, got {value_text(value, quote_words=True)}", hint)


MAX_INT = 2**31 - 1  # larger sizes are mistakes, and overflow ONNX's int32 attributes


@dataclass(frozen=True)
class Int(ArgType):
    minimum: int = 1

    @property
    def description(self) -> str:  # type: ignore[override]
        return "a positive integer" if self.minimum == 1 else f"an integer ≥ {self.minimum}"

    def convert(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(value)
        if value < self.minimum:
            raise UserError(f"expected {self.description}, got {value}")
        if value > MAX_INT:
            raise UserError(f"{value} is too large (at most {MAX_INT})")
        return value


@dataclass(frozen=True)
class Float(ArgType):
    low: float = float("-inf")
    high: float = float("inf")
    high_open: bool = False

    @property
    def description(self) -> str:  # type: ignore[override]
        if self.low == float("-inf"):
            return "a number"
        if self.high == float("inf"):
            return f"a number ≥ {self.low:g}"
        close = ")" if self.high_open else "]"
        return f"a number in [{self.low:g}, {self.high:g}{close}"

    def convert(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(value)
        if not (self.low <= value <= self.high) or (self.high_open and value == self.high):
            raise UserError(f"expected {self.description}, got {value}")
        return float(value)


class Bool(ArgType):
    description = "true or false"

    def convert(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self._fail(value)
        return value


@dataclass(frozen=True)
class Choice(ArgType):
    options: tuple[str, ...]

    @property
    def description(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.options)

    def convert(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            close = difflib.get_close_matches(str(value), self.options, n=1) if isinstance(value, str) else []
            raise self._fail(value, f"did you mean '{close[0]}'?" if close else "")
        return str(value)


@dataclass(frozen=True)
class Pair(ArgType):
    """An int for both spatial axes, or [h, w]."""

    minimum: int = 1

    @property
    def description(self) -> str:  # type: ignore[override]
        word = "positive integer" if self.minimum == 1 else f"integer ≥ {self.minimum}"
        return f"a {word} or a list [h, w] of them"

    def convert(self, value: Any) -> tuple[int, int]:
        items = value if isinstance(value, list) else [value, value]
        if len(items) != 2:
            raise self._fail(value)
        element = Int(self.minimum)
        converted = []
        for index, item in enumerate(items):
            try:
                converted.append(element.convert(item))
            except UserError as exc:
                if not isinstance(value, list):
                    raise
                raise UserError(f"element {index + 1} of {value_text(value, quote_words=True)}: {exc.message}",
                                *exc.hints) from None
        return tuple(converted)  # type: ignore[return-value]


class Padding(ArgType):
    """p=1, p=[1, 2], or p=same|valid|full (resolved once the input is known)."""

    description = "an integer ≥ 0, [h, w], same, valid or full"

    def convert(self, value: Any) -> tuple[int, int] | str:
        if isinstance(value, Symbol) and value in ("same", "valid", "full"):
            return str(value)
        try:
            return Pair(0).convert(value)
        except UserError:
            raise self._fail(value) from None


@dataclass(frozen=True)
class P:
    """One entry of a layer's signature."""

    name: str
    type: ArgType
    default: Any = REQUIRED
    doc: str = ""


class Args(Mapping[str, Any]):
    """A layer's converted arguments, readable as attributes: `self.a.k`."""

    def __init__(self, values: dict[str, Any]):
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        if name == "_values":  # not yet set: an unpickled copy (a network shipped to another process)
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


# ----------------------------------------------------------------- receptive field


@dataclass(frozen=True)
class ReceptiveField:
    """Size and jump (stride) of one unit, in input pixels, per spatial axis."""

    size: tuple[Fraction, Fraction]
    jump: tuple[Fraction, Fraction]

    @staticmethod
    def unit() -> "ReceptiveField":
        one = Fraction(1)
        return ReceptiveField((one, one), (one, one))

    def window(self, kernel: tuple[int, int], stride: tuple[int, int] | tuple[Fraction, Fraction],
               dilation: tuple[int, int] = (1, 1)) -> "ReceptiveField":
        """The field after a sliding window: r + (d(k-1)) j, jump j·s."""
        size = tuple(r + d * (k - 1) * j for r, k, d, j in zip(self.size, kernel, dilation, self.jump))
        jump = tuple(j * s for j, s in zip(self.jump, stride))
        return ReceptiveField(size, jump)  # type: ignore[arg-type]

    @staticmethod
    def widest(fields: list["ReceptiveField"]) -> "ReceptiveField":
        """Where paths meet, a unit sees the union: the largest over the paths."""
        size = tuple(max(f.size[i] for f in fields) for i in range(2))
        jump = tuple(max(f.jump[i] for f in fields) for i in range(2))
        return ReceptiveField(size, jump)  # type: ignore[arg-type]


# ----------------------------------------------------------------- layers


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def fmt_shape(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class Layer:
    """Base class of every layer kind. Subclasses set the class attributes and
    override the methods whose default does not fit."""

    kind: ClassVar[str]               # the word in .net files
    prefix: ClassVar[str] = ""        # stem of automatic names (`conv` → conv1, conv2)
    family: ClassVar[str] = "other"   # colour group in drawings
    signature: ClassVar[tuple[P, ...]] = ()
    inputs: ClassVar[int | None] = 1  # None: two or more tensors (merges)
    doc: ClassVar[str] = ""
    title: ClassVar[str] = ""         # the layer in messages ("batch norm"); the kind when empty
    holds: ClassVar[str] = ""         # what its buffers hold, for summaries ("batch-norm running statistics")
    # In training it normalises with statistics over the batch, per channel:
    # it needs two or more values per channel in a batch (or 0/0 variance).
    batch_statistics: ClassVar[bool] = False

    def __init__(self, args: Args):
        self.a = args

    # --- shape rule -----------------------------------------------------------
    def infer(self, inputs: list[Shape]) -> Shape:
        """The output shape; raise UserError quoting the formula when it is wrong."""
        return inputs[0]

    # --- counts ---------------------------------------------------------------
    def params(self, inputs: list[Shape], output: Shape) -> dict[str, Shape]:
        """Learnable tensors by suffix (`weight`, `bias`), PyTorch layouts."""
        return {}

    def buffers(self, inputs: list[Shape], output: Shape) -> dict[str, Shape]:
        """Non-learnable state (batch-norm running statistics); a lowering in
        training mode gives each buffer it moves its new value
        (`g.buffer_update`), which the training step writes back."""
        return {}

    def inits(self) -> dict[str, Init]:
        """How every parameter and buffer `params` and `buffers` can name
        starts, by suffix. There is no default: a tensor without one is an
        error (`init_of`), never a silent zero."""
        return {}

    def init_of(self, suffix: str) -> Init:
        declared = self.inits()
        if suffix not in declared:
            raise LookupError(f"layer kind '{self.kind}' declares no initialisation for its tensor '{suffix}' "
                              "(add it to the class's `inits`)")
        return declared[suffix]

    def random_inputs(self, output: Shape) -> dict[str, RandomInput]:
        """The random tensors its training-mode lowering reads, by suffix,
        and how to draw them; the lowering asks for each with
        `g.random_input(suffix, declaration)`, and the training loop draws
        them all each step."""
        return {}

    @property
    def label(self) -> str:
        """The layer as messages name it."""
        return self.title or self.kind

    def macs(self, inputs: list[Shape], output: Shape) -> int:
        """Multiply-adds for one sample (one multiply-add = 1)."""
        return 0

    def formula(self, inputs: list[Shape], output: Shape) -> list[str]:
        """How the output size follows from the input, with the numbers
        filled in (one line per axis), for an editor's hover; none by default."""
        return []

    # --- receptive field -------------------------------------------------------
    def receptive_field(self, fields: list[ReceptiveField | None], inputs: list[Shape],
                        output: Shape) -> ReceptiveField | None:
        """Default: an element-wise layer keeps its input's field."""
        if len(output) != 3 or fields[0] is None:
            return None
        return fields[0]

    # --- lowering to ONNX --------------------------------------------------------
    def lower(self, g, inputs: list[str]) -> str:
        """Emit ONNX nodes through `g` (a lowering.builder.LayerBuilder) and
        return the output tensor's name. `g.training` selects training mode."""
        raise NotImplementedError(f"layer kind '{self.kind}' has no ONNX lowering")

    # --- PyTorch source ------------------------------------------------------------
    def torch_code(self, t) -> TorchCode:
        """The layer in PyTorch source: its module's constructor and forward
        expression (`TorchCode`). `t` (an interop.torch_code.TorchArgs)
        writes its arguments as the source does (`t.arg("filters")`), the
        input's channels (`t.width()`) and literals (`t.lit(...)`)."""
        raise NotImplementedError(f"layer kind '{self.kind}' has no PyTorch translation "
                                  "(give its class a `torch_code` method)")

    # --- presentation ----------------------------------------------------------
    def describe(self) -> str:
        """The key arguments, for tables and drawings: `64, k=3, s=2`."""
        parts = []
        for index, p in enumerate(self.signature):
            value = self.a.get(p.name)
            if p.default is not REQUIRED and value == _normalised_default(p):
                continue
            shown = _show(value)
            # As written in .net files: the first argument bare, the rest by name.
            parts.append(shown if index == 0 and p.default is REQUIRED else f"{p.name}={shown}")
        return ", ".join(parts)


def _normalised_default(p: P) -> Any:
    if p.default is None:
        return None
    try:
        value = Symbol(p.default) if isinstance(p.default, str) else p.default
        return p.type.convert(value)
    except UserError:
        return p.default


def _show(value: Any) -> str:
    """An argument as a .net file writes it, a pair of equal sizes as one (k=3)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if isinstance(value, str):
        return value  # a choice or a padding mode: a bare word (nearest, same)
    return value_text(value)


REGISTRY: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make the layer kind known to the language."""
    if cls.kind in REGISTRY:
        raise ValueError(f"layer kind '{cls.kind}' registered twice")
    if not cls.prefix:
        cls.prefix = cls.kind
    REGISTRY[cls.kind] = cls
    return cls

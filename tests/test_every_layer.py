"""One training step for every layer kind, its gradients against finite
differences of the loss.

Each registered kind has an example: a tiny network (a few channels, 4×4
maps, 3-step sequences) in which the kind sits between layers with
parameters, so the gradient of every parameter upstream flows through the
kind's lowering. The step (mse loss, plain SGD) runs on onnxruntime; its
exposed gradients `grad/<param>` must equal central differences of the
step's own loss output, evaluated with lr = 0 on the same batch, the same
dropout masks and (batch norm in training mode) the batch's own statistics.
Float32 losses set the tolerances (see `judge`); an entry where a ReLU or a
max switches inside ±ε (its one-sided slopes disagree by more than the miss)
proves nothing and is left out, at most MAX_INCONCLUSIVE of them.

A new layer kind fails `test_every_kind_has_an_example` until an example is
added to EXAMPLES below.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from tempfile import TemporaryDirectory

import numpy as np
import pytest

from i2dl_dsl.checker import CheckedNetwork, check
from i2dl_dsl.elaborate import layer_node
from i2dl_dsl.target import Target
from i2dl_dsl.layers import REGISTRY
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.step import StepModel, TrainConfig, build_step

BATCH = 3
EPS = 1e-3          # small enough that few ReLUs or maxima switch inside ±ε, large against float32 rounding
RTOL, SCALE_TOL = 2e-2, 1e-2  # of the entry's own gradient, of the parameter's largest
NOISE_ULPS = 16     # the loss's float32 rounding, in units in the last place
MAX_ENTRIES = 48    # entries checked per parameter (all of them in these tiny networks but the LSTM's)
SGD = {"name": "sgd"}


@dataclass(frozen=True)
class Example:
    """A tiny network using one layer kind: `input x[<input>]`, then `body`."""

    input: str
    body: str


IMAGE, VECTOR, SEQUENCE = "2, 4, 4", "5", "T=3, 2"
INPUT_KIND = "input"  # the network's source: not a registered layer, but every network has one

EXAMPLES: dict[str, Example] = {
    INPUT_KIND: Example(VECTOR, "fc(2)"),
    "conv": Example(IMAGE, "conv(4, k=3, s=2, p=1, round=floor) -> conv(2, k=1, groups=2)"),
    "upconv": Example(IMAGE, "conv(2, k=1) -> upconv(4, k=2, s=2, groups=2) -> upconv(2, k=3, p=1)"),
    "fc": Example(VECTOR, "fc(4) -> fc(3, bias=false)"),
    "flatten": Example(IMAGE, "conv(2, k=1) -> flatten -> fc(3)"),
    "relu": Example(IMAGE, "conv(3, k=1) -> relu -> conv(2, k=1)"),
    "sigmoid": Example(IMAGE, "conv(3, k=1) -> sigmoid -> conv(2, k=1)"),
    "tanh": Example(IMAGE, "conv(3, k=1) -> tanh -> conv(2, k=1)"),
    "leaky_relu": Example(IMAGE, "conv(3, k=1) -> leaky_relu(alpha=0.2) -> conv(2, k=1)"),
    "prelu": Example(IMAGE, "conv(3, k=1) -> prelu(per_channel=true) -> conv(2, k=1) -> prelu"),
    "maxout": Example(IMAGE, "conv(4, k=1) -> maxout(pieces=2) -> conv(2, k=1)"),
    "softmax": Example(IMAGE, "conv(3, k=1) -> softmax -> conv(2, k=1)"),
    "batchnorm": Example(IMAGE, "conv(3, k=3, p=1, bias=false) -> batchnorm -> tanh -> conv(2, k=1) -> flatten"
                                    " -> fc(4, bias=false) -> batchnorm"),
    "dropout": Example(IMAGE, "conv(3, k=1) -> dropout(p=0.5) -> conv(2, k=1)"),
    "maxpool": Example(IMAGE, "conv(3, k=1) -> maxpool(k=2, s=2) -> conv(2, k=1)"),
    "avgpool": Example(IMAGE, "conv(3, k=1) -> avgpool(k=3, s=1, p=1) -> conv(2, k=1)"),
    "global_avgpool": Example(IMAGE, "conv(3, k=3, p=1) -> global_avgpool -> flatten -> fc(2)"),
    "global_maxpool": Example(IMAGE, "conv(3, k=3, p=1) -> global_maxpool -> flatten -> fc(2)"),
    "upsample": Example(IMAGE, "conv(2, k=1) -> upsample(scale=2) -> conv(2, k=1) -> upsample(mode=bilinear)"),
    "relu6": Example(IMAGE, "conv(3, k=1) -> relu6 -> conv(2, k=1)"),
    "hardsigmoid": Example(IMAGE, "conv(3, k=1) -> hardsigmoid -> conv(2, k=1)"),
    "hardswish": Example(IMAGE, "conv(3, k=1) -> hardswish -> conv(2, k=1)"),
    "silu": Example(IMAGE, "conv(3, k=1) -> silu -> conv(2, k=1)"),
    "gelu": Example(IMAGE, "conv(3, k=1) -> gelu -> conv(3, k=1) -> gelu(approximate=tanh) -> conv(2, k=1)"),
    "elu": Example(IMAGE, "conv(3, k=1) -> elu(alpha=0.5) -> conv(2, k=1)"),
    "softplus": Example(IMAGE, "conv(3, k=1) -> softplus -> conv(3, k=1) -> softplus(beta=2, threshold=1) -> conv(2, k=1)"),
    "layernorm": Example(IMAGE, "conv(3, k=3, p=1) -> layernorm -> conv(2, k=1) -> flatten -> fc(4) -> layernorm"),
    "groupnorm": Example(IMAGE, "conv(4, k=3, p=1) -> groupnorm(2) -> conv(2, k=1) -> flatten -> fc(4) -> groupnorm(2)"),
    "scale": Example(IMAGE, "conv(3, k=1) -> scale(init=0.5) -> conv(2, k=1) -> flatten -> fc(3) -> scale(init=2)"),
    "drop_path": Example(IMAGE, "conv(3, k=1) -> drop_path(0.5) -> conv(2, k=1)"),
    "channel_shuffle": Example(IMAGE, "conv(4, k=1) -> channel_shuffle(2) -> conv(2, k=1, groups=2)"),
    "adaptive_avgpool": Example(IMAGE, "conv(3, k=1) -> adaptive_avgpool(3) -> conv(3, k=1) -> adaptive_avgpool(2)"
                                       " -> conv(2, k=1)"),
    "lstm": Example(SEQUENCE, "lstm(3) -> lstm(2, sequences=false)"),
    "rnn": Example(SEQUENCE, "rnn(3) -> rnn(2, sequences=false)"),
    # merges take named tensors: two branches, joined, then a layer with parameters
    "add": Example(IMAGE, "a = x -> conv(2, k=1)\n    b = a -> conv(2, k=3, p=1)\n"
                          "    c = add(a, b)\n    add(a, b, c) -> conv(2, k=1)"),
    "concat": Example(IMAGE, "a = x -> conv(2, k=1)\n    b = x -> conv(3, k=3, p=1)\n    concat(a, b) -> conv(2, k=1)"),
    # a per-channel gate broadcast over the map, and a sum broadcast the same way
    "mul": Example(IMAGE, "a = x -> conv(2, k=1)\n    s = a -> global_avgpool -> conv(2, k=1) -> sigmoid\n"
                          "    b = mul(a, s)\n    add(b, s) -> mul(a) -> conv(2, k=1)"),
    # pieces of the channels, each read by a layer with parameters; a centre crop to another map's size
    "chunk": Example(IMAGE, "a, b = x -> conv(4, k=1) -> chunk(2)\n    c = b -> conv(2, k=3, p=1)\n"
                            "    concat(c, a) -> conv(2, k=1)"),
    "split": Example(IMAGE, "a, b, c = x -> conv(6, k=1) -> split([1, 3, 2])\n    d = b -> conv(2, k=1)\n"
                            "    concat(a, d, c) -> conv(2, k=1)"),
    "crop": Example(IMAGE, "a = x -> conv(2, k=3)\n    b = x -> conv(3, k=1) -> crop(like=a)\n"
                           "    concat(a, b) -> conv(2, k=1)"),
}


# ----------------------------------------------------------------- the library's entry points


def compile_source(name: str, example: Example) -> CheckedNetwork:
    """A network checked from a temporary .net file."""
    with TemporaryDirectory() as folder:
        source = Path(folder) / f"{name}.net"
        source.write_text(f"network Example {{\n    input x[{example.input}]\n    {example.body}\n}}\n")
        return check(source)


@lru_cache(maxsize=None)
def compile_example(kind: str) -> CheckedNetwork:
    return compile_source(kind, EXAMPLES[kind])


def training_step(net: CheckedNetwork, **config: Any) -> StepModel:
    """The step graph for the CPU: by default mse loss and SGD, gradients
    exposed as `grad/<param>`; `config` overrides TrainConfig's fields."""
    settings = {"loss": "mse", "optimizer": SGD, "expose_gradients": True, **config}
    return build_step(net, TrainConfig(**settings), target=Target.resolve("cpu"))


def layer_kinds(net: CheckedNetwork) -> set[str]:
    """The kinds of the network's layers, its input included."""
    return {layer_node(net.graph, name).layer.kind for name in net.graph.nodes}


def open_session(step: StepModel) -> TrainingSession:
    return TrainingSession(step, "cpu")


def run_step(session: TrainingSession, batch: Batch) -> tuple[float, dict[str, np.ndarray]]:
    """One step with lr = 0 (parameters unchanged): the loss and every gradient."""
    loss, _ = session.train_step(batch.x, batch.y, batch.masks, lr=0.0, step=1)
    return loss, {name: value.numpy().copy() for name, value in session.last_gradients.items()}


def loss_with(session: TrainingSession, batch: Batch, values: dict[str, np.ndarray]) -> float:
    """The step's loss with some parameters replaced."""
    session.load(values)
    return run_step(session, batch)[0]


# ----------------------------------------------------------------- batches


@dataclass(frozen=True)
class Batch:
    x: np.ndarray
    y: np.ndarray
    masks: dict[str, np.ndarray]  # dropout: one fixed draw, the same for every evaluation


def dims(step: StepModel, name: str) -> tuple[int, ...]:
    """A graph input's shape without its batch axis."""
    (value,) = [i for i in step.model.graph.input if i.name == name]
    return tuple(d.dim_value for d in value.type.tensor_type.shape.dim[1:])


def make_batch(step: StepModel, rng: np.random.Generator) -> Batch:
    masks = {name: declared.draw(rng, BATCH) for name, declared in step.masks.items()}
    x = rng.standard_normal((BATCH, *dims(step, step.input))).astype(np.float32)
    y = rng.standard_normal((BATCH, *dims(step, "y"))).astype(np.float32)
    return Batch(x, y, masks)


def random_parameters(step: StepModel, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Values away from any initial scheme's special cases (zero biases, unit γ)."""
    return {name: (rng.standard_normal(step.values[name].shape) * 0.7).astype(np.float32) for name in step.trainable}


# ----------------------------------------------------------------- finite differences


@dataclass(frozen=True)
class Entry:
    """One parameter entry: the step's gradient and the loss around it."""

    index: tuple[int, ...]
    analytic: float
    down: float   # L(θ - ε)
    center: float
    up: float     # L(θ + ε)

    @property
    def central(self) -> float:
        return (self.up - self.down) / (2 * EPS)

    @property
    def error(self) -> float:
        return abs(self.analytic - self.central)

    @property
    def kink(self) -> float:
        """How much the one-sided slopes differ: about ε·L'' where the loss
        is smooth, the size of the jump where a ReLU or a max switched inside ±ε."""
        return abs((self.up - self.center) - (self.center - self.down)) / EPS


@dataclass(frozen=True)
class Verdict:
    wrong: list[Entry]
    inconclusive: list[Entry]  # off, but a switch inside ±ε explains it


def judge(found: list[Entry], scale: float, loss: float) -> Verdict:
    """An entry is wrong when it misses the central difference by more than
    RTOL of itself plus SCALE_TOL of the parameter's largest gradient (and
    the float32 rounding of the loss), unless a kink explains the miss."""
    floor = NOISE_ULPS * np.spacing(np.float32(abs(loss))) / (2 * EPS)
    off = [e for e in found if e.error > RTOL * abs(e.central) + SCALE_TOL * scale + floor]
    return Verdict([e for e in off if e.kink <= e.error], [e for e in off if e.kink > e.error])


def entries(size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(size) if size <= MAX_ENTRIES else np.sort(rng.choice(size, MAX_ENTRIES, replace=False))


def probe(session: TrainingSession, batch: Batch, name: str, base: np.ndarray, analytic: np.ndarray,
          center: float, rng: np.random.Generator) -> list[Entry]:
    """Central differences of the loss at (some of) the entries of one parameter."""
    found = []
    for flat in entries(base.size, rng):
        index = np.unravel_index(flat, base.shape)
        losses = []
        for step in (-EPS, EPS):
            moved = base.copy()
            moved[index] += step
            losses.append(loss_with(session, batch, {name: moved}))
        found.append(Entry(tuple(int(i) for i in index), float(analytic[index]), losses[0], center, losses[1]))
    session.load({name: base})
    return found


# ----------------------------------------------------------------- the tests

ADD_AN_EXAMPLE = ("add an entry to EXAMPLES in tests/test_every_layer.py: a tiny network in which the kind sits "
                  "between layers with parameters, e.g. \"{kind}\": Example(IMAGE, \"conv(3, k=1) -> {kind} -> "
                  "conv(2, k=1)\")")
KINDS = sorted({*REGISTRY, INPUT_KIND})
MAX_INCONCLUSIVE = 0.1  # of a network's checked entries: most must be a real comparison


def test_every_kind_has_an_example() -> None:
    missing = sorted(set(REGISTRY) - set(EXAMPLES))
    assert not missing, f"layer kinds without an example: {', '.join(missing)}; " + ADD_AN_EXAMPLE.format(
        kind=missing[0])


def test_every_example_is_a_kind_it_uses() -> None:
    stale = sorted(set(EXAMPLES) - set(KINDS))
    assert not stale, f"EXAMPLES has entries for kinds that are not registered: {', '.join(stale)}"
    unused = [kind for kind in EXAMPLES if kind not in layer_kinds(compile_example(kind))]
    assert not unused, f"these examples do not use their own kind: {', '.join(unused)}"


@dataclass(frozen=True)
class Comparison:
    wrong: list[str]   # `param[index]: step ..., finite differences ...`
    inconclusive: int
    checked: int


def compare(step: StepModel, seed: int = 0) -> Comparison:
    """One step's gradients at random parameters against central differences."""
    session = open_session(step)
    rng = np.random.default_rng(seed)
    values = random_parameters(step, rng)
    session.load(values)
    batch = make_batch(step, rng)
    loss, gradients = run_step(session, batch)
    assert np.isfinite(loss) and set(gradients) == set(step.trainable)
    wrong, inconclusive, checked = [], 0, 0
    for name in step.trainable:
        assert gradients[name].shape == values[name].shape, name
        found = probe(session, batch, name, values[name], gradients[name], loss, rng)
        verdict = judge(found, float(np.abs(gradients[name]).max()), loss)
        wrong += [f"{name}{list(e.index)}: step {e.analytic:.6g}, finite differences {e.central:.6g}"
                  for e in verdict.wrong]
        inconclusive += len(verdict.inconclusive)
        checked += len(found)
    return Comparison(wrong, inconclusive, checked)


@pytest.mark.parametrize("kind", KINDS)
def test_one_step_has_the_gradients_of_finite_differences(kind: str) -> None:
    if kind not in EXAMPLES:
        pytest.fail(f"layer kind '{kind}' has no example; " + ADD_AN_EXAMPLE.format(kind=kind))
    found = compare(training_step(compile_example(kind)))
    assert not found.wrong, (
        f"'{kind}' ({EXAMPLES[kind].body!r}): d loss / d parameter differs from central differences "
        f"(ε = {EPS}) at\n  " + "\n  ".join(found.wrong[:8]) + "\nA gradient rule of an op this network "
        f"lowers to is wrong: `pytest tests/test_rule_coverage.py -k {kind}` lists them; their rules are in "
        "i2dl_dsl/autodiff/, their cases in tests/test_autodiff.py")
    assert found.inconclusive <= MAX_INCONCLUSIVE * found.checked, (
        f"'{kind}': {found.inconclusive} of {found.checked} entries sit at a kink (a ReLU or max switches "
        f"inside ±{EPS}); change the example's sizes so that the comparison means something")


def test_dropout_masks_are_fixed_and_used() -> None:
    """The dropout example really drops: the masks are inputs of the step,
    and a different draw changes the loss (so every evaluation above, with
    one draw, saw the same network)."""
    step = training_step(compile_example("dropout"))
    assert step.masks, "the dropout example has no mask input"
    session = open_session(step)
    rng = np.random.default_rng(0)
    session.load(random_parameters(step, rng))
    batch = make_batch(step, rng)
    again = Batch(batch.x, batch.y, {n: m[::-1].copy() for n, m in batch.masks.items()})
    assert run_step(session, batch)[0] == run_step(session, batch)[0] != run_step(session, again)[0]

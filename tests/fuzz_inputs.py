"""Random inputs for the fuzz test: programs generated from the language's
grammar (valid, or nearly: arguments are drawn from a pool that includes
wrong ones), and junk (random bytes, token soup, hostile shapes).

Every generator takes a `random.Random`, so a seed names an input.
"""

from __future__ import annotations

import random

from i2dl_dsl.layers.base import REGISTRY
from i2dl_dsl.trainspec import AUGMENTATIONS, CHECKS, LOSSES, OPTIMIZERS, SCHEDULES

NUMBERS = ["1", "2", "3", "4", "8", "16", "0", "-1", "2.5", "1e-3", "1e999", "10000000000000", "c", "c * 2",
           "c // 2", "c / 0", "true", '"same"', "[2, 3]", "[]", "same", "floor", "(c + 1) * 2"]
KEYWORDS = ["k", "s", "p", "d", "bias", "round", "alpha", "p", "scale", "mode", "hidden", "sequences", "out",
            "filters", "pieces", "eps", "momentum", "x", "kernel"]
LAYERS = sorted(REGISTRY)
TRAIN_VALUES = [*LOSSES, *OPTIMIZERS, *SCHEDULES, *AUGMENTATIONS, "0.1", "3", "0", "-1", "1e9", '"data.npz"',
                "digits", "true", "adam(lr=0.01)", "step(10, 0.5)", "stem", "head=0.1", "patience=3"]
INPUTS = ["[3, 16, 16]", "[1, 8, 8]", "[8]", "[4, 10]", "[c=3, h=16, w=16]", "[0]", "[3, 1000000, 1000000]"]


def _args(rng: random.Random) -> str:
    count = rng.choice([0, 1, 1, 1, 2, 2, 3, 4])
    parts = [rng.choice(NUMBERS) if rng.random() < 0.6 else f"{rng.choice(KEYWORDS)}={rng.choice(NUMBERS)}"
             for _ in range(count)]
    return f"({', '.join(parts)})" if parts or rng.random() < 0.5 else ""


def _element(rng: random.Random, depth: int, calls: list[str], names: list[str]) -> str:
    roll = rng.random()
    if calls is SAFE and roll >= 0.1:  # a valid program: the map keeps its shape
        return f"add({rng.choice(names)})" if names and roll < 0.2 else rng.choice(SAFE)
    if depth < 3 and roll < 0.1:
        shortcut = f" shortcut {{\n{_body(rng, depth + 1, calls, names)}\n}}" if rng.random() < 0.4 else ""
        return f"residual {{\n{_body(rng, depth + 1, calls, names)}\n}}{shortcut}"
    if depth < 3 and roll < 0.16:
        branches = " ".join(f"branch {{\n{_body(rng, depth + 1, calls, names)}\n}}" for _ in range(rng.randrange(4)))
        return f"concat {{ {branches} }}"
    if names and roll < 0.24:
        return f"{rng.choice(['add', 'concat'])}({rng.choice(names)})"
    call = f"{rng.choice(calls)}{_args(rng)}"
    return f"{call} * {rng.choice(['2', '0', 'c', '3'])}" if roll > 0.95 else call


def _chain(rng: random.Random, depth: int, calls: list[str], names: list[str]) -> str:
    elements = [_element(rng, depth, calls, names) for _ in range(rng.randrange(1, 5))]
    return rng.choice([" -> ", "\n-> ", " ->\n"]).join(elements)


def _body(rng: random.Random, depth: int, calls: list[str], names: list[str]) -> str:
    lines = []
    for _ in range(rng.randrange(1, 5)):
        chain, roll = _chain(rng, depth, calls, names), rng.random()
        if roll < 0.25:
            name = rng.choice(["a", "b", "skip", "x", "stem"]) if calls is not SAFE else f"t{len(names)}"
            lines.append(f"{name}: {chain}" if roll < 0.12 else f"{name} = {chain}")
            names.append(name)
        else:
            lines.append(chain)
    return "\n".join(lines)


def _train(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randrange(1, 8)):
        key = rng.choice([*CHECKS, "bogus"])
        values = ", ".join(rng.choice(TRAIN_VALUES) for _ in range(rng.choice([0, 1, 1, 1, 2])))
        lines.append(f"    {key}{_args(rng) if rng.random() < 0.1 else ''} {values}")
    return "train {\n" + "\n".join(lines) + "\n}\n"


# Calls that keep an [8, h, w] map [8, h, w]: chains of them check cleanly.
SAFE = ["conv(8, k=3, p=1)", "batchnorm", "relu", "tanh", "sigmoid", "dropout(0.2)", "leaky_relu(0.1)",
        "prelu", "conv(8, k=1)", "upsample -> maxpool(2)", "same8(8)"]


def program(rng: random.Random) -> bytes:
    """A program: half of them valid by construction, the others nearly
    (arguments drawn from a pool with wrong ones in it)."""
    return (_valid(rng) if rng.random() < 0.5 else _nearly(rng)).encode()


def _valid(rng: random.Random) -> str:
    names: list[str] = []
    block = "block same8(c) {\n    residual {\n        conv(c, k=3, p=1) -> batchnorm -> relu\n    }\n}\n"
    body = _body(rng, 0, SAFE, names)
    net = (f"network Net {{\n    input x[3, 16, 16]\n    stem: conv(8, k=3, p=1)\n{body}\n"
           f"    head: global_avgpool -> flatten -> fc(10)\n}}\n")
    return block + net + (_train(rng) if rng.random() < 0.3 else "")


def _nearly(rng: random.Random) -> str:
    blocks = [f"block{i}" for i in range(rng.randrange(3))]
    parts, calls = [], list(LAYERS)
    for name in blocks:
        params = rng.choice(["c", "c, k=3", "", "c=16"])
        parts.append(f"block {name}({params}) {{\n{_body(rng, 0, calls, [])}\n}}\n")
        calls.append(name)
    body = _body(rng, 0, calls, ["x"])
    parts.append(f"network Net{_args(rng) if rng.random() < 0.1 else ''} {{\n"
                 f"    input x{rng.choice(INPUTS)}\n{body}\n}}\n")
    if rng.random() < 0.5:
        parts.append(_train(rng))
    rng.shuffle(parts) if rng.random() < 0.1 else None
    return "\n".join(parts)


SOUP = ["network", "block", "input", "residual", "shortcut", "branch", "concat", "train", "use", "true", "false",
        "{", "}", "(", ")", "[", "]", ",", "->", "=", ":", "*", "/", "//", "+", "-", "\n", " ", "\t", "#c\n",
        "x", "conv", "fc", "relu", "3", "0.5", "1e400", '"s"', '"', "@", "\r", "\x00", "\u2192", "\ufeff"]


def junk(rng: random.Random) -> bytes:
    """Not a program: random bytes, or token soup."""
    if rng.random() < 0.25:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    return "".join(rng.choice(SOUP) for _ in range(rng.randrange(1, 200))).encode()


def shape(rng: random.Random) -> bytes:
    """Sizes that a careless implementation pays for more than linearly."""
    return _shape_text(rng).encode()


def _shape_text(rng: random.Random) -> str:
    n = rng.choice([100, 1000, 5000])
    net = "network N {{\n    input x[3, 8, 8]\n    {}\n}}\n"
    return rng.choice([
        net.format("(" * n + "relu" + ")" * n),
        net.format("fc(" + "[" * n + "1" + "]" * n + ")"),
        net.format("fc(" + " + ".join(["1"] * n) + ")"),
        net.format("conv(4, k=[" + ", ".join(["1"] * n) + "])"),
        net.format(" -> ".join(["relu"] * n)),
        net.format("residual {\n" * min(n, 300) + "relu" + "\n}" * min(n, 300)),
        net.format("x" * n * 20) + "\n" * n * 10,
        net.format("fc(1)") + "train {\n" + "    seed 1\n" * n + "}\n",
        "".join(f"block b{i}(c) {{\n    fc(c)\n}}\n" for i in range(n // 10)) + net.format("bb0(2)"),
    ])

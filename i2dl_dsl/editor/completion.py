"""Completion: what may be written at the cursor, read from the registries
(layer kinds, losses, optimizers, ...) and from the file's own words, so a
new layer kind or train setting is offered as soon as it is registered.

The text before the cursor is usually unfinished and does not parse, so the
context comes from its tokens: inside a call's brackets, that call's
arguments; inside `train { }`, its settings and their values; elsewhere in
a body, layers, blocks and named tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from lark import Token

from ..layers import REGISTRY
from ..layers.base import REQUIRED, P
from ..trainspec import CHECKS, SPLIT
from ..train.augment import AUGMENTATIONS
from ..train.losses import LOSSES
from ..train.optimizers import OPTIMIZERS
from ..train.schedules import SCHEDULES
from ..train.stopping import EARLY_STOPPING
from ..values import signature_text, value_text
from .locate import blocks_of
from .tokens import COMMENT, NEWLINE, SPACE, lex_partial, words
from .workspace import Snapshot

# The registry each train setting's value is chosen from, and the settings written with arguments.
TRAIN_VALUES = {"loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "augment": AUGMENTATIONS}
TRAIN_ARGS = {"early_stopping": EARLY_STOPPING.signature, "split": SPLIT}
BODY_WORDS = ("input", "residual", "concat", "branch", "shortcut")
TOP_WORDS = ("network", "block", "train", "use")


@dataclass(frozen=True)
class Item:
    label: str
    kind: str          # layer, block, tensor, argument, setting, value, keyword
    detail: str = ""
    doc: str = ""
    insert: str = ""   # the text to insert, where it differs from the label


def complete(snapshot: Snapshot | None, text: str, line: int, character: int) -> list[Item]:
    """The items for the 0-based position in `text` (the document as it is
    now); `snapshot` is the latest one that parsed, for blocks of used files."""
    prefix = _prefix(text, line, character)
    every = lex_partial(prefix)
    if every and every[-1].type == COMMENT and every[-1].line == line + 1:
        return []  # inside a comment
    tokens = [t for t in every if t.type not in (COMMENT, NEWLINE, SPACE)]
    if tokens and tokens[-1].type in ("NAME", "CONCAT") and not prefix[-1:].isspace():
        tokens = tokens[:-1]  # the word being typed
    call, braces = _context(tokens)
    if call is not None:
        return _arguments(snapshot, call, text)
    if "train" in braces[-1:]:
        return _train(tokens)
    if not braces:
        return [Item(w, "keyword") for w in TOP_WORDS]
    return _body(snapshot, text)


def _prefix(text: str, line: int, character: int) -> str:
    lines = text.split("\n")
    return "\n".join(lines[:line] + [lines[line][:character] if line < len(lines) else ""])


def _context(tokens: list[Token]) -> tuple[str | None, list[str]]:
    """The call whose brackets hold the cursor (None: none), and the kinds
    of the open braces around it (`train`, `block`, `network`, ...)."""
    brackets: list[str | None] = []
    braces: list[str] = []
    for index, token in enumerate(tokens):
        if token.type == "LPAR":
            before = tokens[index - 1] if index else None
            brackets.append(str(before) if before is not None and before.type in ("NAME", "CONCAT") else None)
        elif token.type == "RPAR" and brackets:
            brackets.pop()
        elif token.type == "LBRACE":
            opener = next((str(t) for t in reversed(tokens[:index]) if t.type in
                           ("TRAIN", "BLOCK", "NETWORK", "RESIDUAL", "SHORTCUT", "BRANCH", "CONCAT")), "")
            braces.append(opener)
        elif token.type == "RBRACE" and braces:
            braces.pop()
    return (brackets[-1] if brackets else None), braces


def _signature_items(signature: tuple[P, ...]) -> list[Item]:
    items = []
    for p in signature:
        default = "" if p.default is REQUIRED else f" = {value_text(p.default)}"
        items.append(Item(f"{p.name}=", "argument", f"{p.name}{default}", p.doc, f"{p.name}="))
    return items


def _arguments(snapshot: Snapshot | None, call: str, text: str) -> list[Item]:
    if call in REGISTRY:
        items = _signature_items(REGISTRY[call].signature)
        return items + (_tensors(text) if REGISTRY[call].inputs is None else [])
    for registry in (*TRAIN_VALUES.values(),):
        if call in registry:
            return _signature_items(registry[call].signature)
    if call in TRAIN_ARGS:
        return _signature_items(TRAIN_ARGS[call])
    block = blocks_of(snapshot).get(call) if snapshot is not None else None
    if block is not None:
        return [Item(f"{p.name}=", "argument", p.name, "", f"{p.name}=") for p in block.params]
    return []


def _train(tokens: list[Token]) -> list[Item]:
    """A setting at the start of a line; its values after it."""
    key = _statement_start(tokens)
    if key is None:
        return [Item(k, "setting", _train_detail(k)) for k in CHECKS]
    registry = TRAIN_VALUES.get(key)
    if registry is None:
        return []
    return [Item(name, "value", f"{name}({signature_text(registry[name].signature)})", registry[name].doc)
            for name in registry]


def _statement_start(tokens: list[Token]) -> str | None:
    """The first word of the statement the cursor is in (None: the cursor
    starts a new one)."""
    if not tokens or tokens[-1].type in ("LBRACE", "_NL"):
        return None
    line = tokens[-1].line
    first = next((t for t in tokens if t.line == line), None)
    return str(first) if first is not None and first is not tokens[-1] or tokens[-1].type == "NAME" else None


def _train_detail(key: str) -> str:
    if key in TRAIN_VALUES:
        return "one of: " + ", ".join(TRAIN_VALUES[key])
    if key in TRAIN_ARGS:
        return f"{key}({signature_text(TRAIN_ARGS[key])})"
    return ""


def _body(snapshot: Snapshot | None, text: str) -> list[Item]:
    items = [Item(kind, "layer", f"{kind}({signature_text(cls.signature)})", cls.doc)
             for kind, cls in REGISTRY.items()]
    blocks = blocks_of(snapshot) if snapshot is not None else {}
    blocks.update({name: None for name in _defined(text, "BLOCK")})
    items += [Item(name, "block", f"block {name}") for name in sorted(blocks)]
    items += _tensors(text)
    items += [Item(w, "keyword") for w in BODY_WORDS]
    return items


def _tensors(text: str) -> list[Item]:
    return [Item(name, "tensor", "named tensor") for name in sorted(set(_defined(text, "EQUAL")))]


def _named_here(tokens: list[Token]) -> list[str]:
    """The names a statement starting at tokens[0] gives its tensors:
    `e1 = ...`, `a, b = ...`; none for other statements."""
    names = []
    for index in range(0, len(tokens) - 1, 2):
        if tokens[index].type != "NAME":
            return []
        names.append(str(tokens[index]))
        if tokens[index + 1].type == "EQUAL":
            return names
        if tokens[index + 1].type != "COMMA":
            return []
    return []


def _defined(text: str, how: str) -> list[str]:
    """Names the text defines: `block NAME` (how=BLOCK), `NAME = ...` at a
    statement's start and `input NAME[` (how=EQUAL)."""
    tokens = words(text)
    found = []
    for a, b in zip(tokens, tokens[1:]):
        if how == "BLOCK" and a.type == "BLOCK" and b.type == "NAME":
            found.append(str(b))
        elif how == "EQUAL" and a.type == "INPUT" and b.type == "NAME":
            found.append(str(b))
    if how == "EQUAL":
        for index, token in enumerate(tokens):
            before = tokens[index - 1] if index else None
            if token.type == "NAME" and (before is None or before.line < token.line):
                found += _named_here(tokens[index:])
    return found

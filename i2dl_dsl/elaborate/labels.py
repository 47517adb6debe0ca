"""Labels: the names a file gives its layers, read and checked.

A label is dotted words and numbers (`stem`, `features.0`, `block1-0`); it
may mark with `{n}` where a chain's numbering goes and where it starts
(`denselayer{1}: dense_layer(32) * 6` names `denselayer1` to `denselayer6`).
Without the mark a chain of several layers is numbered under the label from
0, as `nn.Sequential` does (`stem.0`, `stem.1`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..diagnostics import UserError

_PART = re.compile(r"[A-Za-z0-9_-]+")
_MARK = re.compile(r"\{(\d+)\}")


@dataclass(frozen=True)
class Label:
    """A checked label: `text` as written; `start` is set when it holds `{n}`."""

    text: str
    start: int | None = None

    def name(self, position: int | None) -> str:
        """The name of the chain's layer at `position` (None: the chain is one layer, unnumbered)."""
        if self.start is not None:
            return _MARK.sub(str(self.start + (position or 0)), self.text, count=1)
        return self.text if position is None else f"{self.text}.{position}"

    @property
    def numbers_itself(self) -> bool:
        """True when the label says where each layer's number goes."""
        return self.start is not None


def read_label(text: str) -> Label:
    """`text` as a Label, or a UserError saying what is wrong with it."""
    marks = _MARK.findall(text)
    if len(marks) > 1:
        raise UserError(f"label '{text}' marks the numbering twice", "a label holds at most one {n}")
    plain = _MARK.sub("0", text, count=1)
    if "{" in plain or "}" in plain:
        raise UserError(f"label '{text}' has a '{{' or '}}' that is not a numbering mark",
                        "write the first number in braces: denselayer{1}")
    for part in plain.split("."):
        if not _PART.fullmatch(part):
            raise UserError(f"label '{text}' has an empty part between dots",
                            "a dotted label is words or numbers joined by single dots: features.0")
    if len(marks[0] if marks else "") > 9:
        raise UserError(f"label '{text}' starts its numbering at a number too large to be meant")
    return Label(text, int(marks[0]) if marks else None)

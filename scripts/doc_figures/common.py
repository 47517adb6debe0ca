"""What every check shares: the repository, a mismatch, and how a quoted
figure is compared with the one a script gives."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d+\.\d+"
# A figure printed by a fresh run may differ from the quoted one in its last
# digits where floating-point sums are ordered differently (another CPU,
# another onnxruntime build): within this relative distance it is reported
# as drift, beyond it as a mismatch. Counts (no decimal point) must be equal.
TOLERANCE = 0.02


@dataclass(frozen=True)
class Mismatch:
    doc: Path
    line: int
    quoted: str
    reproduced: str
    what: str
    drift: bool = False  # within TOLERANCE: reported, not a failure

    def __str__(self) -> str:
        doc = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc
        kind = "drifted to" if self.drift else "reproduced"
        return f"{doc}:{self.line}: quoted {self.quoted}, {kind} {self.reproduced} ({self.what})"


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def lines(doc: Path) -> list[tuple[int, str]]:
    return list(enumerate(doc.read_text().splitlines(), start=1))


def decimals(quoted: str) -> int:
    return len(quoted.split(".")[1]) if "." in quoted else 0


def like(quoted: str, value: float) -> str:
    """`value` written with as many decimals as `quoted` has."""
    return f"{value:.{decimals(quoted)}f}"


def number(figure: str) -> float | None:
    """A figure as written in the docs: `1,293`, `0.9916`, `1e-08`, `1.5·10⁻⁵`."""
    mantissa, _, power = figure.replace(",", "").partition("·10")
    try:
        return float(mantissa) * 10.0 ** int(power.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")) or 0)
    except ValueError:
        return None


def close(quoted: str, reproduced: str) -> bool:
    """Two differently written figures within TOLERANCE (not counts: those have no decimal point)."""
    a, b = number(quoted), number(reproduced)
    if a is None or b is None or "." not in quoted or "." not in reproduced:
        return False
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b))


def verdict(doc: Path, line: int, quoted: str, reproduced: str, what: str) -> list[Mismatch]:
    """Nothing when the two are written alike; drift when close; else a mismatch."""
    if reproduced == quoted:
        return []
    return [Mismatch(doc, line, quoted, reproduced, what, drift=close(quoted, reproduced))]


def compare(doc: Path, line: int, quoted: str, value: float | None, what: str) -> list[Mismatch]:
    """A figure quoted with some decimals against a value computed from results."""
    if value is None:
        return [Mismatch(doc, line, quoted, "nothing", what)]
    return verdict(doc, line, quoted, like(quoted, value), what)


def line_of(text: str, position: int) -> int:
    return text[:position].count("\n") + 1


def find(doc: Path, words: str) -> tuple[int, re.Match] | None:
    """The first match of `words` (any whitespace between words, line breaks included)."""
    text = doc.read_text()
    match = re.search(words.replace(" ", r"\s+"), text)
    return None if match is None else (line_of(text, match.start()), match)

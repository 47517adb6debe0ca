"""Figures quoted in prose and tables that a command prints: each claim names
the words around the figures in its doc and, per figure, the printed line it
comes from. Durations are checked loosely (they depend on the machine), and
a sum the README quotes is checked against the table it sums."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .common import Mismatch, compare, find, verdict
from .transcripts import Runner, blocks

LOOSE = 10  # a stated duration holds if the measured one is within this factor of it (an order of magnitude)


@dataclass(frozen=True)
class Claim:
    """Figures in a sentence or table row of `doc` that `command` prints."""
    doc: Path
    words: str  # found with common.find; one group per figure
    command: str
    printed: tuple[str, ...]  # per figure, a pattern for the printed line; its group 1 is the figure
    scale: float = 1.0  # a percentage quotes 100 × a printed fraction


@dataclass(frozen=True)
class Timing:
    """A duration `doc` states for `command` (group 1 of `words`: '15 s', '4–7 min', '3 min 20 s')."""
    doc: Path
    words: str
    command: str


def printed_figure(printed: str, wanted: str) -> str | None:
    match = re.search(wanted, printed, re.MULTILINE)
    return None if match is None else match.group(1)


def check_claim(claim: Claim, runner: Runner) -> list[Mismatch]:
    found = find(claim.doc, claim.words)
    if found is None:
        return [Mismatch(claim.doc, 0, claim.words, "no such words", f"figures of {claim.command}")]
    number, match = found
    printed = runner.run((claim.command,))[0][0]
    problems = []
    for quoted, wanted in zip(match.groups(), claim.printed):
        figure = printed_figure(printed, wanted)
        what = f"{claim.command}: {wanted}"
        if figure is None:
            problems.append(Mismatch(claim.doc, number, quoted, "nothing printed", what))
        elif claim.scale == 1 and "." not in figure:
            problems += verdict(claim.doc, number, quoted, figure, what)
        else:
            problems += compare(claim.doc, number, quoted, float(figure) * claim.scale, what)
    return problems


def duration(text: str) -> tuple[float, float]:
    """'about 15 s' → (15, 15); '4–7 min' → (240, 420); '3 min 20 s' → (200, 200)."""
    low = high = 0.0
    for first, last, unit in re.findall(r"(\d+(?:\.\d+)?)(?:–(\d+(?:\.\d+)?))? (min|s)\b", text):
        scale = 60 if unit == "min" else 1
        low, high = low + float(first) * scale, high + float(last or first) * scale
    return low, high


def check_timing(timing: Timing, seconds: float) -> list[Mismatch]:
    found = find(timing.doc, timing.words)
    if found is None:
        return [Mismatch(timing.doc, 0, timing.words, "no such words", f"duration of {timing.command}")]
    number, match = found
    low, high = duration(match.group(1))
    if high and low / LOOSE <= seconds <= high * LOOSE:
        return []
    return [Mismatch(timing.doc, number, match.group(1), f"{seconds:.0f} s",
                     f"duration of {timing.command}, more than {LOOSE}× off")]


WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def check_search_cost(doc: Path) -> list[Mismatch]:
    """'The N trials cost E epochs of training, where training each fully would cost F': the sum of the
    quoted table's epochs column and trials × --epochs of the quoted command."""
    found = find(doc, r"The (\w+) trials cost (\d+) epochs of training, where training each fully would cost (\d+)")
    search = next((c for b in blocks(doc) for c in b.commands if "--search" in c.text), None)
    if found is None or search is None:
        return [Mismatch(doc, 0, "a search and the sentence on its cost", "no such text", "--search")]
    number, match = found
    header = next(text.split() for _, text in search.quoted if text.startswith("#"))
    rows = [text.split() for _, text in search.quoted if re.match(r"\d", text)]
    column = header.index("epochs")
    trials = int(re.search(r"--trials (\d+)", search.text).group(1))
    epochs = int(re.search(r"--epochs (\d+)", search.text).group(1))
    words, spent, full = match.groups()
    return (verdict(doc, number, str(WORDS.get(words, words)), str(len(rows)), "trials in the table")
            + verdict(doc, number, spent, str(sum(int(r[column]) for r in rows)), "sum of the table's epochs")
            + verdict(doc, number, full, str(trials * epochs), "--trials × --epochs"))

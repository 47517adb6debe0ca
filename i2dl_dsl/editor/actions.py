"""Quick fixes: a diagnostic whose hint says `did you mean 'X'?` offers to
write X in place of the word it most likely means."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .tokens import words

_DID_YOU_MEAN = re.compile(r"did you mean '([^']+)'\?")


@dataclass(frozen=True)
class Fix:
    title: str
    line: int          # 0-based range of the word replaced
    start: int
    end: int
    new_text: str


def fixes(text: str, line: int, start: int, end_line: int, end: int, hints: list[str]) -> list[Fix]:
    """Fixes for a diagnostic over the 0-based range, from its hints."""
    found = []
    for hint in hints:
        match = _DID_YOU_MEAN.search(hint)
        if match is None:
            continue
        fix = _replace_word(text, line, start, end_line, end, match.group(1))
        if fix is not None:
            found.append(fix)
    return found


def _replace_word(text: str, line: int, start: int, end_line: int, end: int, wanted: str) -> Fix | None:
    """Replace the word in the range closest to `wanted` (the misspelt name
    or argument), if any is close."""
    best, best_score = None, 0.0
    for token in words(text):
        row, col = token.line - 1, token.column - 1
        if not (line, start) <= (row, col) <= (end_line, end) or token.type not in ("NAME", "STRING"):
            continue
        word = str(token).strip('"')
        score = difflib.SequenceMatcher(None, word, wanted.split("/")[-1]).ratio()
        if word != wanted and score > best_score:
            best, best_score = token, score
    if best is None or best_score < 0.5:
        return None
    quoted = str(best).startswith('"')
    new = f'"{wanted}"' if quoted else wanted
    return Fix(f"Change '{str(best)}' to '{new}'", best.line - 1, best.column - 1, best.end_column - 1, new)

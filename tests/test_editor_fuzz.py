"""The editor's answers never fail: hover, definition, references,
completion, inlay hints and quick fixes at every token of generated
programs (valid, nearly valid and junk), through the same functions the
server calls."""

from __future__ import annotations

import random

import pytest

from fuzz_inputs import junk, program
from i2dl_dsl.editor import actions, completion, hover, inlay, navigation
from i2dl_dsl.editor.convert import to_lsp
from i2dl_dsl.editor.tokens import lex_partial

pytest.importorskip("lsprotocol")

SEEDS = range(25)


def _texts():
    for seed in SEEDS:
        rng = random.Random(seed)
        yield f"program-{seed}", program(rng).decode()
        yield f"junk-{seed}", junk(rng).decode("utf-8", "replace")


@pytest.mark.parametrize("name,text", list(_texts()), ids=[n for n, _ in _texts()])
def test_every_answer_at_every_token(name: str, text: str, tmp_path) -> None:
    from i2dl_dsl.editor.workspace import Workspace

    path = str(tmp_path / "f.net")
    snapshot = Workspace().open(path, text)
    for diagnostic in snapshot.diagnostics:
        converted = to_lsp(diagnostic, path)
        r = converted.range
        actions.fixes(text, r.start.line, r.start.character, r.end.line, r.end.character,
                      (converted.data or {}).get("hints", []))
    inlay.shape_hints(snapshot)
    for token in lex_partial(text)[:120]:
        line, character = token.line - 1, token.column - 1
        hover.hover_text(snapshot, line, character)
        navigation.definition(snapshot, line, character)
        navigation.references(snapshot, line, character)
        completion.complete(snapshot, text, line, character)
    if snapshot.module is not None:
        navigation.symbols(snapshot.module)

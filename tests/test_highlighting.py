"""Highlighting: the TextMate grammar (VS Code) and the Pygments lexer
(documentation tools) read every zoo file with no text left unmatched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from i2dl_dsl.editor import textmate
from i2dl_dsl.editor.tokens import keywords

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted((ROOT / "models").glob("*.net")) + sorted((ROOT / "examples").rglob("*.net"))
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
NET_BLOCK = re.compile(r"^```net\n(.*?)^```", re.S | re.M)


def test_the_committed_grammar_is_the_one_the_language_gives() -> None:
    committed = json.loads(textmate.GRAMMAR_FILE.read_text(encoding="utf-8"))
    assert committed == textmate.grammar(), "run: python -m i2dl_dsl.editor.textmate"


def test_every_reserved_word_of_the_language_is_a_keyword() -> None:
    rules = textmate.grammar()["repository"]
    pattern = re.compile(rules["keyword"]["match"])
    assert {"network", "block", "residual", "concat", "train", "use", "input"} <= set(keywords())
    for word in keywords():
        assert pattern.fullmatch(word) or re.fullmatch(rules["constant"]["match"], word), word


def _textmate_tokens(text: str):
    tm = pytest.importorskip("textmate_grammar.parsers.base")
    parser = tm.LanguageParser(json.loads(textmate.GRAMMAR_FILE.read_text(encoding="utf-8")))
    element = parser.parse_string(text)
    return element.flatten() if element is not None else []


@pytest.mark.parametrize("path", ZOO, ids=lambda p: str(p.relative_to(ROOT)))
def test_textmate_grammar_tokenises_every_zoo_file(path: Path) -> None:
    text = path.read_text()
    lines = text.split("\n")
    covered = [set() for _ in lines]
    for (line, column), token, scopes in _textmate_tokens(text):
        assert "invalid.illegal.net" not in scopes, f"{path.name}:{line + 1}:{column + 1}: {token!r} is invalid"
        if token.strip():
            assert len(scopes) > 1, f"{path.name}:{line + 1}:{column + 1}: {token!r} has no scope"
            covered[line].update(range(column, column + len(token)))
    for number, line in enumerate(lines):
        unmatched = [c for c, ch in enumerate(line) if not ch.isspace() and c not in covered[number]]
        assert not unmatched, f"{path.name}:{number + 1}:{unmatched[0] + 1}: unmatched text {line[unmatched[0]:]!r}"


VSCODE = ROOT / "editors" / "vscode"


def test_vscode_textmate_engine_tokenises_every_zoo_file() -> None:
    """The same check with VS Code's own engine, where node and the
    extension's modules are present (`npm install` in editors/vscode)."""
    node = shutil.which("node")
    if node is None or not (VSCODE / "node_modules" / "vscode-textmate").is_dir():
        pytest.skip("needs node and `npm install` in editors/vscode")
    result = subprocess.run([node, str(VSCODE / "test" / "tokenize.js"), *map(str, ZOO)], capture_output=True,
                            text=True, timeout=120, check=True)
    covered: dict[tuple[str, int], set[int]] = {}
    for file, line, start, end, scopes in json.loads(result.stdout):
        assert "invalid.illegal.net" not in scopes, f"{Path(file).name}:{line + 1}:{start + 1} is invalid"
        if len(scopes) > 1:
            covered.setdefault((file, line), set()).update(range(start, end))
    for path in ZOO:
        for number, line in enumerate(path.read_text().split("\n")):
            seen = covered.get((str(path), number), set())
            unmatched = [c for c, ch in enumerate(line) if not ch.isspace() and c not in seen]
            assert not unmatched, f"{path.name}:{number + 1}:{unmatched[0] + 1}: unmatched {line[unmatched[0]:]!r}"


def test_textmate_grammar_marks_what_is_not_the_language() -> None:
    scopes = {token: s[-1] for _, token, s in _textmate_tokens("network N {\n    conv(8, k=3) -> relu ; @\n}\n")}
    assert scopes["N"] == "entity.name.function.net" and scopes["conv"] == "entity.name.function.call.net"
    assert scopes["k"] == "variable.parameter.net" and scopes["->"] == "keyword.operator.chain.net"
    assert scopes[";"] == scopes["@"] == "invalid.illegal.net"


def _errors(text: str) -> list:
    pytest.importorskip("pygments")
    from pygments.token import Error

    from i2dl_dsl.editor.lexer import NetLexer

    return [value for kind, value in NetLexer().get_tokens(text) if kind in Error]


@pytest.mark.parametrize("path", ZOO, ids=lambda p: str(p.relative_to(ROOT)))
def test_pygments_lexer_reads_every_zoo_file(path: Path) -> None:
    assert _errors(path.read_text()) == []


def test_pygments_lexer_reads_every_net_block_of_the_docs() -> None:
    blocks = [(doc.name, block) for doc in DOCS for block in NET_BLOCK.findall(doc.read_text())]
    assert blocks, "the docs show .net code in ```net blocks"
    for name, block in blocks:
        assert _errors(block) == [], name
    assert _errors("network N { ; }") == [";"]


def test_the_lexer_is_registered_as_an_entry_point() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pygments.lexers"]
    module, _, name = declared["net"].partition(":")
    lexer = getattr(import_module(module), name)
    assert "net" in lexer.aliases and "*.net" in lexer.filenames

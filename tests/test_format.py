"""The formatter: every zoo file is already formatted; formatting is
idempotent on a fuzzed corpus and never changes what a file means (the
syntax tree without its places, and the checked graph, are the same)."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from pathlib import Path

import pytest

from i2dl_dsl.checker import examine
from i2dl_dsl.diagnostics import CompileError, Span
from i2dl_dsl.editor.format import format_text, is_formatted
from i2dl_dsl.editor.layout import MAX_WIDTH
from i2dl_dsl.editor.tokens import COMMENT, NEWLINE, SPACE, lex
from i2dl_dsl.elaborate import layer_node
from i2dl_dsl.syntax.parser import parse_text
from fuzz_inputs import program

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted((ROOT / "models").glob("*.net")) + sorted((ROOT / "examples").rglob("*.net"))
_PUNCTUATION = {"LPAR", "RPAR", "LSQB", "RSQB", "LBRACE", "RBRACE", "COMMA", "COLON", "EQUAL", "_ARROW",
                "PLUS", "MINUS", "STAR", "SLASH", "SLASHSLASH"}


def _bare(tree):
    """A syntax tree as nested tuples, without its spans: what it means."""
    if isinstance(tree, Span):
        return None
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return (type(tree).__name__, *(_bare(getattr(tree, f.name)) for f in dataclasses.fields(tree)
                                       if f.name not in ("path",)))
    if isinstance(tree, (tuple, list)):
        return tuple(_bare(x) for x in tree)
    return tree


def _graph(path: Path):
    """The checked graph as plain data (names, kinds, arguments, inputs,
    shapes) and the diagnostics' messages."""
    try:
        found = examine(path)
    except CompileError as exc:
        return ("errors", tuple(d.message for d in exc.diagnostics))
    graph = found.graph
    nodes = tuple((n, layer_node(graph, n).layer.kind, layer_node(graph, n).layer.describe(),
                   layer_node(graph, n).inputs, found.analysis.shapes.get(n)) for n in found.analysis.order)
    return nodes, tuple(sorted(d.message for d in found.diags)), graph.graph.get("output")


def _messy(text: str, rng: random.Random) -> str:
    """The same tokens, spaced and indented at random (comments kept; a
    line with a trailing comment keeps its spacing, so the comment's
    column, which the formatter keeps where it fits, stays put)."""
    out, previous = [], None
    tokens = list(lex(text))
    commented = {t.line for t in tokens if t.type == COMMENT}
    for token in tokens:
        if token.type == SPACE and token.line not in commented:
            glue = previous is not None and previous.type in _PUNCTUATION
            out.append(" " * rng.choice([0, 1, 2, 3] if glue else [1, 2, 3]))
        elif token.type == NEWLINE and token.end_line in commented:
            out.append(str(token))
        elif token.type == NEWLINE:
            out.append("\n" * str(token).count("\n") + " " * rng.randrange(0, 9))
        else:
            if token.type in _PUNCTUATION and previous is not None and previous.type not in (SPACE, NEWLINE) \
                    and token.line not in commented and rng.random() < 0.5:
                out.append(" ")
            out.append(str(token))
        previous = token
    return "".join(out)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_zoo_file_is_formatted(path: Path) -> None:
    text = path.read_text()
    assert format_text(text, str(path)) == text, f"i2dl-fmt {path.relative_to(ROOT)} would change it"


@pytest.mark.parametrize("path", ZOO[:6], ids=lambda p: p.name)
def test_a_messy_zoo_file_formats_back_to_itself(path: Path) -> None:
    text = path.read_text()
    rng = random.Random(path.name)
    lines_with_comments = {i for i, line in enumerate(text.split("\n")) if "#" in line}
    messy = _messy(text, rng)
    assert messy != text
    formatted = format_text(messy)
    # Lines with trailing comments kept their spacing; every other line is laid out again.
    assert formatted == text, "\n".join(
        f"{i + 1}: {a!r} != {b!r}" for i, (a, b) in enumerate(zip(formatted.split("\n"), text.split("\n")))
        if a != b and i not in lines_with_comments)


def _corpus():
    for seed in range(100):
        rng = random.Random(seed)
        text = program(rng).decode()
        try:
            parse_text(text)
        except CompileError:
            continue
        yield seed, text
        yield f"{seed}-messy", _messy(text, rng)


CORPUS = list(_corpus())


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 120


@pytest.mark.parametrize("name,text", CORPUS[:300], ids=[str(n) for n, _ in CORPUS[:300]])
def test_formatting_is_idempotent_and_keeps_the_meaning(name, text: str, tmp_path: Path) -> None:
    once = format_text(text)
    assert format_text(once) == once
    assert _bare(parse_text(once)) == _bare(parse_text(text))
    before, after = tmp_path / "before.net", tmp_path / "after.net"
    before.write_text(text)
    after.write_text(once)
    assert _graph(after) == _graph(before)


def test_a_long_chain_breaks_before_its_arrows() -> None:
    chain = " -> ".join(f"conv(8, k=3, p=1) -> relu" for _ in range(12))
    text = f"network N {{\n    input x[8, 8, 8]\n    body: {chain}   # the trunk\n}}\n"
    formatted = format_text(text)
    lines = formatted.split("\n")
    assert all(len(line) <= MAX_WIDTH for line in lines)
    assert len(lines) > 5 and lines[3].startswith("       -> ")  # the next element under the chain's first
    assert lines[-3].endswith("# the trunk")
    assert _bare(parse_text(formatted)) == _bare(parse_text(text))
    assert format_text(formatted) == formatted


def test_spacing_and_comment_alignment() -> None:
    text = ("block b(c,s=1){\n  conv(c*4,k=3,s=s,p=(c - 1)//2)->relu\n}\nnetwork N{\ninput x[c=3,h=8,w=8]\n"
            "a:b(8)\nlonger:b(8)*2\ny=x->conv(8, k=1)   # one\nyy = y->relu # two\n}\n"
            "train {\n  lr_scale a=0.1\n  seed -1\n}\n")
    assert format_text(text) == (
        "block b(c, s=1) {\n    conv(c*4, k=3, s=s, p=(c - 1)//2) -> relu\n}\nnetwork N {\n"
        "    input x[c=3, h=8, w=8]\n    a: b(8)\n    longer: b(8) * 2\n"
        "    y = x -> conv(8, k=1)  # one\n    yy = y -> relu         # two\n}\n"
        "train {\n    lr_scale a=0.1\n    seed -1\n}\n")


def test_a_syntax_error_is_reported_not_formatted() -> None:
    with pytest.raises(CompileError):
        format_text("network N {\n    input x[3, 8, 8\n}\n")


# ----------------------------------------------------------------- the command


def _fmt(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "i2dl_dsl.cli.fmt", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_the_command_rewrites_checks_and_filters(tmp_path: Path) -> None:
    messy = "network N {\n  input x[3,8,8]\n  conv(8,k=3)->relu\n}\n"
    path = tmp_path / "m.net"
    path.write_text(messy)
    check = _fmt("--check", str(path))
    assert check.returncode == 1 and "would reformat" in check.stderr and path.read_text() == messy
    assert _fmt(str(tmp_path)).returncode == 0
    assert path.read_text() == format_text(messy) and is_formatted(path.read_text())
    assert _fmt("--check", str(path)).returncode == 0
    piped = _fmt("-", stdin=messy)
    assert piped.returncode == 0 and piped.stdout == format_text(messy)


def test_the_command_leaves_a_broken_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "bad.net"
    path.write_text("network N {\n  input x[3,8,8\n}\n")
    result = _fmt(str(path))
    assert result.returncode == 2 and "bad.net:2:" in result.stderr and "Traceback" not in result.stderr
    assert path.read_text() == "network N {\n  input x[3,8,8\n}\n"

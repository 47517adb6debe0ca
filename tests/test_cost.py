"""Reading and reporting cost time and memory linear in the input, and small.

Each bound is generous (a loaded two-core machine passes it) and far below
what the quadratic or per-line code this replaced took: 1 M blank lines
took 577 MiB in the lexer, 40,000 errors 31 s to print, and a 100,000-item
list argument gave a 300 KB message.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import (ELLIPSIS, MAX_MESSAGE, MAX_SHOWN, WINDOW, CompileError, Diagnostic,
                                  SourceCache, Span, render, render_all, value_text)
from i2dl_dsl.syntax.parser import parse_text

NET = "network N {\n    input x[3]\n    fc(2)\n}\n"
MiB = 2**20


def _cost(run) -> tuple[float, int]:
    """Seconds and peak traced bytes of `run()`."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        run()
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, peak


@pytest.mark.parametrize("where", ["after", "before", "inside"])
def test_a_million_blank_lines_parse_in_little_memory(where: str) -> None:
    blank = "\n" * 1_000_000
    text = {"after": NET + blank, "before": blank + NET,
            "inside": NET.replace("fc(2)\n", "fc(2)\n" + blank)}[where]
    seconds, peak = _cost(lambda: parse_text(text, f"blank-{where}.net"))
    # The text itself is 1 MB; the old lexer peaked at 577 MiB.
    assert peak < 32 * MiB, f"{peak / MiB:.0f} MiB"
    assert seconds < 20, f"{seconds:.1f} s"


def test_blank_lines_between_statements_cost_the_same_as_few() -> None:
    module = parse_text(NET.replace("\n", "\n\n\n  \t\r\n"), "spaced.net")
    assert [n.name for n in module.networks] == ["N"]


def _many(count: int, same_message: bool) -> tuple[list[Diagnostic], SourceCache]:
    sources = SourceCache()
    sources.add("many.net", "    seed 1\n" * count)
    diagnostics = [Diagnostic("error", "'seed' is set twice" if same_message else f"mistake {i}",
                              Span("many.net", i + 1, 5, i + 1, 9)) for i in range(count)]
    return diagnostics, sources


@pytest.mark.parametrize("same_message", [True, False], ids=["one message", "distinct messages"])
def test_forty_thousand_errors_render_fast_and_short(same_message: bool) -> None:
    diagnostics, sources = _many(40_000, same_message)
    text = ""

    def run() -> None:
        nonlocal text
        text = render_all(diagnostics, sources)
    seconds, _ = _cost(run)
    assert seconds < 10, f"{seconds:.1f} s (31 s when each diagnostic searched its group)"
    heads = [line for line in text.splitlines() if line.startswith("many.net:") and ": error: " in line]
    assert len(heads) <= MAX_SHOWN
    assert text.endswith("40000 errors")
    if not same_message:
        assert f"... and {40_000 - MAX_SHOWN:,} more errors (not shown)" in text


def test_render_all_without_a_limit_shows_every_diagnostic() -> None:
    diagnostics, sources = _many(MAX_SHOWN + 5, same_message=False)
    text = render_all(diagnostics, sources, limit=None)
    assert text.count(": error: ") == MAX_SHOWN + 5 and "not shown" not in text


def test_a_compile_error_keeps_every_diagnostic(tmp_path: Path) -> None:
    net = tmp_path / "many.net"
    net.write_text(NET + "train {\n" + "    seed 1\n" * (MAX_SHOWN * 3) + "}\n")
    with pytest.raises(CompileError) as caught:
        check(net)
    assert len(caught.value.diagnostics) == MAX_SHOWN * 3 - 1


def _quoted(line: str, col: int, end_col: int) -> tuple[str, str]:
    sources = SourceCache()
    sources.add("long.net", line)
    quote, caret = render(Diagnostic("error", "here", Span("long.net", 1, col, 1, end_col)), sources).splitlines()[1:3]
    return quote.split(" | ", 1)[1], caret.split(" | ", 1)[1]


@pytest.mark.parametrize("col", [1, 60, 500_000, 999_990])
def test_a_long_line_is_quoted_in_a_window_with_the_caret_on_the_span(col: int) -> None:
    line = "x" * 1_000_000
    line = line[: col - 1] + "Z" + line[col:]
    quote, caret = _quoted(line, col, col + 1)
    assert len(quote) <= WINDOW + 2 * len(ELLIPSIS)
    assert quote[caret.index("^")] == "Z"
    assert quote.startswith(ELLIPSIS) == (col > WINDOW // 3) and quote.endswith(ELLIPSIS) == (col < 999_000)


def test_the_window_keeps_tabs_aligned() -> None:
    line = "\t".join(["ab"] * 200_000)
    col = line.index("ab", 300_000) + 1
    quote, caret = _quoted(line, col, col + 2)
    start = caret.index("^")
    assert quote[start:start + 2] == "ab" and caret[start:] == "^~"


def test_a_short_line_is_quoted_whole() -> None:
    quote, caret = _quoted("    conv(64, k=5)", 5, 18)
    assert quote == "    conv(64, k=5)" and caret == "    ^~~~~~~~~~~~~"


def test_value_text_of_a_huge_list_is_short_unless_written_back() -> None:
    values = list(range(100_000))
    assert len(value_text(values, short=True)) < 200
    assert value_text(values) == "[" + ", ".join(map(str, values)) + "]"
    assert value_text("a" * 10_000, short=True).count("a") < 300


@pytest.mark.parametrize("argument", ["k=[{}]", "{}"], ids=["list", "positional"])
def test_a_huge_argument_list_gives_a_short_message(argument: str, tmp_path: Path) -> None:
    items = ", ".join(["1"] * 20_000)
    net = tmp_path / "huge.net"
    net.write_text(f"network N {{\n    input x[3, 8, 8]\n    conv(4, {argument.format(items)})\n}}\n")
    with pytest.raises(CompileError) as caught:
        check(net)
    (diagnostic,) = caught.value.diagnostics
    assert len(diagnostic.message) < MAX_MESSAGE and len(render(diagnostic)) < 3 * MAX_MESSAGE


def test_a_long_file_with_many_syntax_errors_is_reported_quickly() -> None:
    lines = ["    relu"] * 40_000
    for number in range(0, len(lines), len(lines) // 25):
        lines[number] = "    fc(2) fc(3)"  # a syntax error; the statements after it still parse
    text = "network N {\n    input x[3]\n" + "\n".join(lines) + "\n}\n"
    start = time.process_time()
    with pytest.raises(CompileError) as caught:
        parse_text(text, "errors.net")
    seconds = time.process_time() - start
    # Searching for all 20 by parsing the whole file again for each took 15 s.
    assert seconds < 4, f"{seconds:.1f} s CPU"
    assert caught.value.diagnostics[0].span.line == 3


def test_a_short_file_gets_every_syntax_error() -> None:
    lines = ["    relu"] * 200
    for number in range(0, len(lines), 10):
        lines[number] = "    fc(2) fc(3)"
    with pytest.raises(CompileError) as caught:
        parse_text("network N {\n    input x[3]\n" + "\n".join(lines) + "\n}\n", "errors.net")
    assert len(caught.value.diagnostics) == 20

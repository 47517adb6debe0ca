"""Random input never crashes the checker, and never costs much.

Three kinds of input: every `models/**/*.net` file (and the sample files
in tests/diagnostics/fuzz_seeds/) mutated with a fixed seed (a token
dropped or doubled, a number changed, identifiers swapped, junk inserted,
the file cut short, a byte that is not UTF-8); programs generated from the
language's grammar, valid or nearly (tests/fuzz_inputs.py); and junk
(random bytes, token soup, hostile sizes). Each input is checked
in-process, and the run must end the way a user error ends: exit code 0 or
2, no traceback, no internal error, every diagnostic headed
`path:line:col: error|warning|note:`, and at most LIMIT_S seconds of CPU
time (CPU time, not wall time, so that a loaded machine does not fail it;
the limit is one only a blow-up crosses). The slowest input is printed.

The default run (about a minute) checks a few thousand inputs;
I2DL_FUZZ_SCALE=10 checks ten times as many generated ones.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import time
from pathlib import Path

import pytest

from i2dl_dsl.cli.compile import main

from fuzz_inputs import junk, program, shape

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "tests" / "diagnostics" / "fuzz_seeds"
MODELS = ROOT / "models"
TOTAL_MUTANTS = 600
MIN_PER_FILE, MAX_PER_FILE = 12, 80

TOKEN = re.compile(r'#[^\n]*|"[^"\n]*"|->|//|\d+\.\d*(?:[eE][+-]?\d+)?|\d+|[A-Za-z_][A-Za-z0-9_]*|\s+|.', re.S)
NUMBER = re.compile(r"\d")
NAME = re.compile(r"[A-Za-z_]")
NEW_NUMBERS = ["0", "-1", str(10**12), "3.5", "1e999", "99999999999999999999999999999999", "2"]
JUNK = ["@", "$", ";", "'", '"', "{", "}", "(", ")", "[", "]", ",", "->", "=", ":", "*", "/", "//", "\t",
        "\x00", "→", "\n", "network", "block", "input", "residual", "shortcut", "branch", "concat", "train",
        "use", "in", "true", "x", "relu", "conv(8, k=3)", "add(x)", "* 0", "= y", "label:", '"no.net"']
HEAD = re.compile(r"^.+:\d+:\d+: (error|warning|note): ")
# The lines that end a report: the count, and what was not shown.
TAIL = re.compile(r"\d+ errors|\.\.\. and [\d,]+ more \w+( and [\d,]+ more \w+)* \(not shown\)")
LIMIT_S = float(os.environ.get("I2DL_FUZZ_LIMIT_S", "2.0"))  # CPU seconds for one input
SCALE = int(os.environ.get("I2DL_FUZZ_SCALE", "1"))
GENERATED = {"program": (program, 1000), "junk": (junk, 1000), "shape": (shape, 30)}


def _sources() -> list[Path]:
    files = sorted(MODELS.rglob("*.net")) if MODELS.is_dir() else []
    return files + sorted(SEEDS.rglob("*.net"))


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _code_positions(tokens: list[str], pattern: re.Pattern | None = None) -> list[int]:
    return [i for i, t in enumerate(tokens)
            if not t.isspace() and not t.startswith("#") and (pattern is None or pattern.match(t))]


def mutate(text: str, rng: random.Random) -> tuple[str, bytes]:
    """One random mistake: what was done, and the mutant's bytes."""
    tokens = _tokens(text)
    code = _code_positions(tokens)
    kind = rng.choice(["drop", "duplicate", "number", "swap", "junk", "truncate", "bytes"])
    if not code and kind in ("drop", "duplicate", "number"):
        kind = "junk"
    if kind == "drop":
        i = rng.choice(code)
        return f"drop token {tokens[i]!r}", "".join(tokens[:i] + tokens[i + 1:]).encode()
    if kind == "duplicate":
        i = rng.choice(code)
        return f"duplicate token {tokens[i]!r}", "".join(tokens[:i + 1] + tokens[i:]).encode()
    if kind == "number":
        numbers = _code_positions(tokens, NUMBER) or code
        i, new = rng.choice(numbers), rng.choice(NEW_NUMBERS)
        return f"number {tokens[i]!r} -> {new}", "".join(tokens[:i] + [new] + tokens[i + 1:]).encode()
    if kind == "swap":
        names = _code_positions(tokens, NAME)
        if len(names) < 2:
            return "unchanged", text.encode()
        i, j = rng.sample(names, 2)
        tokens[i], tokens[j] = tokens[j], tokens[i]
        return f"swap {tokens[j]!r} and {tokens[i]!r}", "".join(tokens).encode()
    if kind == "junk":
        i, junk = rng.randrange(len(tokens) + 1), rng.choice(JUNK)
        return f"insert {junk!r}", "".join(tokens[:i] + [f" {junk} "] + tokens[i:]).encode()
    data = text.encode()
    if kind == "truncate":
        cut = rng.randrange(len(data) + 1)
        return f"truncate at byte {cut}", data[:cut]
    at, byte = rng.randrange(len(data) + 1), rng.choice([b"\xff", b"\xc3", b"\x80", b"\xe2\x82"])
    return f"insert byte {byte!r} at {at}", data[:at] + byte + data[at:]


def _per_file(count: int) -> int:
    return max(MIN_PER_FILE, min(MAX_PER_FILE, TOTAL_MUTANTS // max(count, 1)))


def _copy_tree(source: Path, tmp_path: Path) -> Path:
    """Mutants are written next to a copy of the file, so that its `use`
    statements still find what they import."""
    top = MODELS if source.is_relative_to(MODELS) else SEEDS
    copy = tmp_path / top.name
    if not copy.exists():
        shutil.copytree(top, copy, ignore=lambda folder, names: [
            n for n in names if not n.endswith(".net") and not (Path(folder) / n).is_dir()])
    return copy / source.relative_to(top)


def _check_output(stderr: str, code: int) -> str | None:
    """What is wrong with a run's output, or None."""
    if code not in (0, 2):
        return f"exit code {code}"
    if "Traceback" in stderr or "internal error" in stderr:
        return "a traceback or an internal error"
    heads = [line for line in stderr.splitlines()
             if line and not line.startswith((" ", "hint: ")) and not TAIL.fullmatch(line)]
    for line in heads:
        if not HEAD.match(line):
            return f"a diagnostic without path:line:col: {line!r}"
    has_error = any(": error: " in line for line in heads)
    if has_error != (code == 2):
        return f"exit code {code} with{'' if has_error else 'out'} an error"
    return None


SOURCES = _sources()


SLOWEST: dict[str, tuple[float, str]] = {}  # kind of input: its slowest, and which


def _run(target: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[str | None, float, str]:
    """Check one input: what is wrong with how it ended (or None), its CPU
    seconds, and its stderr."""
    target.write_bytes(data)
    start = time.process_time()
    code = main([str(target)])
    seconds = time.process_time() - start
    stderr = capsys.readouterr().err
    problem = _check_output(stderr, code)
    if problem is None and seconds > LIMIT_S:
        problem = f"took {seconds:.2f} s of CPU time (the limit is {LIMIT_S} s)"
    return problem, seconds, stderr


def _record(kind: str, seconds: float, name: str) -> None:
    if seconds > SLOWEST.get(kind, (-1.0, ""))[0]:
        SLOWEST[kind] = (seconds, name)


def _report(kind: str, count: int, capsys: pytest.CaptureFixture[str]) -> None:
    seconds, name = SLOWEST.get(kind, (0.0, "none"))
    with capsys.disabled():
        print(f"\nfuzz {kind}: {count} inputs, the slowest {seconds:.3f} s CPU ({name})")


@pytest.mark.parametrize("source", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_mutants_never_crash(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(f"i2dl-fuzz:{source.relative_to(ROOT)}")
    text = source.read_text(encoding="utf-8")
    target = _copy_tree(source, tmp_path).with_suffix(".mutant.net")
    for number in range(_per_file(len(SOURCES))):
        what, data = mutate(text, rng)
        problem, seconds, stderr = _run(target, data, capsys)
        _record("mutant", seconds, f"mutant {number} of {source.name} ({what})")
        assert problem is None, (f"mutant {number} of {source.name} ({what}): {problem}\n"
                                 f"--- stderr\n{stderr}\n--- mutant\n{data.decode('utf-8', 'replace')}")
    if source == SOURCES[-1]:
        _report("mutant", TOTAL_MUTANTS, capsys)


@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_generated_inputs_never_crash(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, count = GENERATED[kind]
    count *= SCALE
    target = tmp_path / f"{kind}.net"
    for number in range(count):
        data = make(random.Random(f"i2dl-fuzz:{kind}:{number}"))
        problem, seconds, stderr = _run(target, data, capsys)
        _record(kind, seconds, f"{kind} {number}")
        assert problem is None, (f"{kind} {number} (random.Random('i2dl-fuzz:{kind}:{number}')): {problem}\n"
                                 f"--- stderr\n{stderr[:4000]}\n--- input\n{data[:4000].decode('utf-8', 'replace')}")
    _report(kind, count, capsys)


def test_the_seeds_themselves_check_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    """Mutants of broken files would prove little: every seed must pass."""
    for seed in SEEDS.glob("*.net"):
        assert main([str(seed)]) == 0, capsys.readouterr().err


def test_output_check_rejects_a_traceback() -> None:
    assert _check_output("Traceback (most recent call last):\n", 2) is not None
    assert _check_output("error: no position\n", 2) is not None
    assert _check_output("a.net:1:2: error: fine\n 1 | x\n   | ^\nhint: h\n", 2) is None
    assert _check_output("a.net:1:2: error: fine\n", 0) is not None
    assert _check_output("a.net:1:2: error: fine\n... and 1,000 more errors (not shown)\n1051 errors\n", 2) is None

"""CONTRIBUTING.md is tested, so that it cannot drift from the code.

Its worked example (a `softsign` layer, its gradient rule, and the entries
of the tests that guard them) is written as fenced blocks, each after an
HTML comment naming where it goes:

    <!-- new file: PATH -->                      the block is a new file
    <!-- append to: PATH -->                     appended to PATH
    <!-- insert into: PATH, after: TEXT -->      after the one line of PATH containing TEXT
    <!-- insert into: PATH, before: TEXT -->     before it
    <!-- excerpt: PATH -->                       quoted from PATH, line for line
    <!-- run -->                                 the command that runs the example's tests

The blocks are applied to a copy of the package (the source tree is never
written), and there, in a subprocess: a tiny network with the new layer is
checked (shapes, parameters), run, and trained one step with its gradients
against central finite differences; then the guide's own command runs the
tests it names for the new kind (every-layer, rule coverage, the rule's
finite-difference case, the PyTorch oracle). Besides: every path the guide
names exists, every `g.` and `ctx.` it names is there, and every excerpt is
the code as it is.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from onnx import helper

from i2dl_dsl.autodiff import RULES
from i2dl_dsl.autodiff.context import GradContext
from i2dl_dsl.layers import REGISTRY
from i2dl_dsl.lowering.builder import LoweringGraph, LayerBuilder

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"
COPIED = ("i2dl_dsl", "grammars", "tests", "docs", "pyproject.toml")  # what the example's blocks and tests read
NEW_KIND, NEW_OP = "softsign", "Softsign"
TIMEOUT = 300  # seconds for the subprocess; it takes about 15 on an idle machine

BLOCK = re.compile(r"<!-- (new file|append to|insert into|excerpt): (.+?) -->\n```[\w-]*\n(.*?)```", re.S)
RUN = re.compile(r"<!-- run -->\n```sh\n(.*?)```", re.S)
PLACE = re.compile(r"(.+?), (after|before): (.+)")


@dataclass(frozen=True)
class Block:
    action: str  # new file, append to, insert into, excerpt
    path: str
    text: str
    anchor: str = ""  # insert into: part of the one line the block goes after or before
    before: bool = False


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def blocks() -> list[Block]:
    found = []
    for action, where, text in BLOCK.findall(guide()):
        place = PLACE.fullmatch(where) if action == "insert into" else None
        if action == "insert into" and place is None:
            raise AssertionError(f"'insert into: {where}' says neither ', after: TEXT' nor ', before: TEXT'")
        if place:
            found.append(Block(action, place[1], text, place[3], place[2] == "before"))
        else:
            found.append(Block(action, where, text))
    return found


def example() -> list[Block]:
    return [b for b in blocks() if b.action != "excerpt"]


def apply(block: Block, root: Path) -> None:
    """Write one block of the worked example into the tree at `root`."""
    target = root / block.path
    if block.action == "new file":
        assert not target.exists(), f"the guide's new file {block.path} exists already"
        target.write_text(block.text, encoding="utf-8")
        return
    assert target.exists(), f"the guide adds to {block.path}, which does not exist"
    text = target.read_text(encoding="utf-8")
    if block.action == "append to":
        target.write_text(text + ("" if text.endswith("\n") else "\n") + block.text, encoding="utf-8")
        return
    lines = text.splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if block.anchor in line]
    assert len(at) == 1, (f"the guide inserts into {block.path} {'before' if block.before else 'after'} the line "
                          f"containing {block.anchor!r}, which {len(at) or 'no'} lines contain: update CONTRIBUTING.md")
    index = at[0] if block.before else at[0] + 1
    target.write_text("".join(lines[:index]) + block.text + "".join(lines[index:]), encoding="utf-8")


# ----------------------------------------------------------------- what the guide says exists


PATH = re.compile(r"`((?:i2dl_dsl|tests|docs|grammars|scripts|bench|models|examples)/[\w./-]*|[\w-]+\.(?:py|md))"
                  r"(?:::[^`]*)?`")


def test_every_path_the_guide_names_exists() -> None:
    created = {b.path for b in example() if b.action == "new file"}
    missing = []
    for path in sorted(set(PATH.findall(guide())) - created):
        if "/" in path:
            exists = (ROOT / path).exists()
        else:  # a bare file name (`rules_nn.py`): somewhere in the package, the tests or the top level
            exists = (ROOT / path).exists() or any((ROOT / d).rglob(path) for d in ("i2dl_dsl", "tests"))
        if not exists:
            missing.append(path)
    assert not missing, f"CONTRIBUTING.md names paths that do not exist: {', '.join(missing)}"


def _layer_builder() -> LayerBuilder:
    return LayerBuilder(LoweringGraph(init_param=lambda *args: None), "l", "", [(3,)], (3,), {})


def _grad_context() -> GradContext:
    graph = helper.make_graph([], "empty", [], [])
    return GradContext(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))


@pytest.mark.parametrize("prefix, make", [("g", _layer_builder), ("ctx", _grad_context)], ids=["g", "ctx"])
def test_every_builder_member_the_guide_names_exists(prefix: str, make) -> None:
    named = set(re.findall(rf"`{prefix}\.(\w+)", guide()))
    assert named, f"the guide names no `{prefix}.` member: is this test still reading it right?"
    builder = make()
    assert sorted(n for n in named if not hasattr(builder, n)) == []


def test_every_excerpt_is_the_code() -> None:
    """An excerpt's lines are consecutive lines of its file (blank lines aside)."""
    excerpts = [b for b in blocks() if b.action == "excerpt"]
    assert excerpts
    for block in excerpts:
        wanted = [line.rstrip() for line in block.text.splitlines() if line.strip()]
        source = [line.rstrip() for line in (ROOT / block.path).read_text(encoding="utf-8").splitlines()
                  if line.strip()]
        starts = [i for i in range(len(source)) if source[i:i + len(wanted)] == wanted]
        assert starts, f"CONTRIBUTING.md quotes {block.path}, which no longer reads so:\n" + "\n".join(wanted)


# ----------------------------------------------------------------- the worked example, applied


def test_the_worked_example_adds_what_the_package_lacks() -> None:
    assert NEW_KIND not in REGISTRY and NEW_OP not in RULES, (
        f"the package now has '{NEW_KIND}' or a rule for '{NEW_OP}': the guide's worked example must add what "
        "the package lacks; choose another ONNX activation without a rule (CONTRIBUTING.md, 'Worked example')")
    touched = {b.path for b in example()}
    for path in ("i2dl_dsl/autodiff/rules.py", "tests/test_autodiff.py", "tests/test_every_layer.py",
                 "tests/test_onnx_layers.py"):
        assert path in touched, f"the worked example no longer adds to {path}"
    assert any(b.path.startswith("i2dl_dsl/layers/") for b in example()), "the worked example adds no layer"


# Written into the copy beside its tests: checks of the new kind that do not
# depend on the entries the guide adds to the test files.
BY_HAND = '''
"""The worked example of CONTRIBUTING.md, applied to this copy: checked by hand."""

from pathlib import Path

import numpy as np

import i2dl_dsl
from i2dl_dsl.checker import check
from i2dl_dsl.lowering.export import to_onnx
from i2dl_dsl.runtime import create_session
from test_every_layer import Example, compare, compile_source, training_step

TINY = "conv(3, k=1) -> softsign -> conv(2, k=1)"


def test_the_copy_is_what_is_imported():
    assert Path(i2dl_dsl.__file__).resolve().parents[1] == Path(__file__).resolve().parents[1]


def test_a_tiny_network_checks(tmp_path):
    source = tmp_path / "tiny.net"
    source.write_text("network Tiny {\\n    input x[3, 4, 4]\\n    " + TINY + "\\n}\\n")
    a = check(source).analysis
    assert a.shapes["softsign1"] == (3, 4, 4)
    assert a.params.get("softsign1", {}) == {} and a.macs.get("softsign1", 0) == 0
    assert a.total_params == (3 * 3 + 3) + (3 * 2 + 2)


def test_inference_computes_softsign(tmp_path):
    source = tmp_path / "alone.net"
    source.write_text("network Alone {\\n    input x[5]\\n    softsign\\n}\\n")
    net = check(source)
    x = np.linspace(-50, 50, 15, dtype=np.float32).reshape(3, 5)
    (y,) = create_session(to_onnx(net).SerializeToString(), "cpu").session.run(None, {net.input: x})
    np.testing.assert_allclose(y, x / (1 + np.abs(x)), rtol=1e-6)


def test_one_step_of_the_tiny_network_has_the_gradients_of_finite_differences():
    found = compare(training_step(compile_source("tiny", Example("3, 4, 4", TINY))))
    assert found.checked > 0 and not found.wrong, found.wrong
'''

# The results the guide's command must report: the rule against finite
# differences, one training step of every kind, the coverage walk and the oracle.
MUST_PASS = (
    "tests/test_autodiff.py::test_rule_matches_finite_differences[Softsign]",
    "tests/test_autodiff.py::test_rule_runs_in_onnxruntime[Softsign]",
    "tests/test_autodiff.py::test_every_rule_has_a_case",
    "tests/test_every_layer.py::test_every_kind_has_an_example",
    "tests/test_every_layer.py::test_one_step_has_the_gradients_of_finite_differences[softsign]",
    "tests/test_rule_coverage.py::test_layer_ops_have_rules_and_cases[softsign-training]",
    "tests/test_rule_coverage.py::test_layer_ops_have_rules_and_cases[softsign-inference]",
    "tests/test_onnx_layers.py::test_layer_matches_pytorch[softsign]",
    "tests/test_onnx_layers.py::test_every_layer_kind_is_covered",
    "tests/test_softsign_by_hand.py::test_one_step_of_the_tiny_network_has_the_gradients_of_finite_differences",
)


def guide_command() -> list[str]:
    (command,) = RUN.findall(guide())
    words = shlex.split(command.strip())
    assert words[:3] == ["python", "-m", "pytest"], f"the guide's run command is not `python -m pytest ...`: {command}"
    return words[3:]


def test_the_worked_example_works(tmp_path) -> None:
    pytest.importorskip("torch")  # the oracle case of tests/test_onnx_layers.py
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        else:
            shutil.copy2(source, tmp_path / name)
    for block in example():
        apply(block, tmp_path)
    (tmp_path / "tests" / "test_softsign_by_hand.py").write_text(BY_HAND, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", *guide_command(), "tests/test_softsign_by_hand.py", "-rA",
               "-p", "no:cacheprovider", "--tb=short"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    report = result.stdout + result.stderr
    assert result.returncode == 0, "the guide's worked example fails:\n" + report[-6000:]
    passed = set(re.findall(r"^PASSED (\S+)", report, re.M))
    missing = [t for t in MUST_PASS if t not in passed]
    assert not missing, "the guide's command no longer runs these:\n" + "\n".join(missing)

"""Every user error prints diagnostics, never a traceback, and exits 2.

Each `tests/diagnostics/*.net` holds one kind of mistake; its `.expected`
file holds exactly what `i2dl-compile CASE.net` prints on stderr when run
from the repository root. After a deliberate change to a message, rewrite
the golden files with

    UPDATE_GOLDEN=1 python -m pytest tests/test_diagnostics.py

and read the diff. Files under tests/diagnostics/lib/ are imported by the
cases and are not cases themselves. Cases named `warning_*` are correct
networks that draw a warning: they exit 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import i2dl_dsl.cli.compile as compile_cli
from i2dl_dsl import reading
from i2dl_dsl.cli.compile import main

ROOT = Path(__file__).resolve().parents[1]
CASES_DIR = ROOT / "tests" / "diagnostics"
CASES = sorted(CASES_DIR.glob("*.net"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# The mistakes the checker promises to explain; each has at least one case.
REQUIRED = [
    "syntax_missing_arrow", "syntax_missing_comma", "syntax_unclosed_paren", "syntax_unclosed_brace",
    "syntax_single_quotes", "syntax_keyword_as_name", "syntax_several_errors",
    "unknown_layer", "unknown_block", "unknown_argument", "wrong_argument_type", "too_many_arguments",
    "missing_argument", "positional_after_keyword", "output_not_whole", "output_not_positive",
    "residual_mismatch", "concat_spatial_mismatch", "fc_unflattened", "lstm_non_sequence",
    "duplicate_label", "duplicate_tensor", "duplicate_block", "undefined_tensor", "merge_unknown_tensor",
    "tensor_mid_chain", "self_recursive_block", "cyclic_blocks", "use_cycle", "use_missing_file", "empty",
    "sizes_overflow", "sizes_overflow_params", "input_in_block", "two_inputs", "no_input", "no_network",
    "arithmetic_not_whole", "repeat_negative", "in_misuse",
    "concat_needs_crop", "block_tensor_argument", "unknown_layer_elsewhere", "train_errors", "warning_unused_tensor", "many_errors",
]


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_every_required_case_exists() -> None:
    names = {case.stem for case in CASES}
    assert not [name for name in REQUIRED if name not in names]


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_case_matches_its_golden_file(case: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, stderr = _run([_relative(case)], capsys)
    golden = case.with_suffix(".expected")
    if UPDATE:
        golden.write_text(stderr, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with UPDATE_GOLDEN=1"
    assert stderr == golden.read_text(encoding="utf-8")
    assert code == (0 if case.stem.startswith("warning_") else 2)
    assert "Traceback" not in stderr and "internal error" not in stderr


def test_every_golden_file_has_its_case() -> None:
    assert not [g.name for g in CASES_DIR.glob("*.expected") if not g.with_suffix(".net").exists()]


@pytest.mark.parametrize("case", ["syntax_unclosed_paren", "residual_mismatch", "use_cycle"])
def test_a_real_process_exits_2_with_the_same_text(case: str) -> None:
    path = CASES_DIR / f"{case}.net"
    run = subprocess.run([sys.executable, "-m", "i2dl_dsl", _relative(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr == path.with_suffix(".expected").read_text(encoding="utf-8")
    assert run.stdout == ""


# ----------------------------------------------------------------- files that cannot be read


def test_missing_file(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run(["nowhere.net"], capsys) == (2, "nowhere.net: error: file 'nowhere.net' does not exist\n")


def test_missing_file_suggests_a_neighbour(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet5.net").write_text("network N {\n    input x[3]\n}\n")
    assert _run(["lenet.net"], capsys) == (
        2, "lenet.net: error: file 'lenet.net' does not exist\nhint: did you mean 'lenet5.net'?\n")


def test_directory_instead_of_a_file(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert _run(["models"], capsys) == (2, "models: error: 'models' is a directory, not a .net file\n")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads every file, whatever its mode")
def test_unreadable_file(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "secret.net"
    secret.write_text("network N {\n    input x[3]\n}\n")
    secret.chmod(0)
    try:
        assert _run(["secret.net"], capsys) == (2, "secret.net: error: cannot read 'secret.net': Permission denied\n")
    finally:
        secret.chmod(0o644)


def test_read_failure_is_a_user_error(tmp_path: Path, capsys, monkeypatch) -> None:
    """What the unreadable-file test shows, where root would read the file anyway."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "locked.net").write_text("network N {\n    input x[3]\n}\n")

    def refuse(self, label):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(reading, "open_regular", refuse)
    assert _run(["locked.net"], capsys) == (2, "locked.net: error: cannot read 'locked.net': Permission denied\n")


def test_file_that_is_not_utf8(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latin1.net").write_bytes("# réseau\nnetwork N {\n    input x[3]\n}\n".encode("latin-1"))
    assert _run(["latin1.net"], capsys) == (2, (
        "latin1.net:1:4: error: the file is not UTF-8 text (byte 0xe9)\n"
        " 1 | # r\ufffdseau\n"
        "   |    ^\n"
        "hint: save the file as UTF-8\n"))


def test_imported_file_that_is_not_utf8(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocks.net").write_bytes(b"block b(c) {\n    conv(c, k=1) \xff\n}\n")
    (tmp_path / "main.net").write_text('use "blocks.net"\nnetwork N {\n    input x[3, 4, 4]\n    b(2)\n}\n')
    code, stderr = _run(["main.net"], capsys)
    assert code == 2
    assert stderr.startswith("blocks.net:2:18: error: the file is not UTF-8 text (byte 0xff)")
    assert "main.net:1:1: note: 'blocks.net' is imported here" in stderr


def test_byte_order_mark_is_ignored(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bom.net").write_text("\ufeffnetwork N {\n    input x[3]\n    fc(2)\n}\n", encoding="utf-8")
    assert _run(["bom.net"], capsys)[0] == 0


def test_tabs_keep_the_caret_under_the_mistake(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tabs.net").write_text("network N {\n\tinput x[3]\n\tfc(2) -> rleu\n}\n")
    code, stderr = _run(["tabs.net"], capsys)
    assert code == 2
    quoted, caret = stderr.splitlines()[1:3]
    assert quoted == " 3 |     fc(2) -> rleu"
    assert caret == "   |              ^~~~"


# ----------------------------------------------------------------- exit codes and --debug


def test_debug_shows_the_traceback_of_a_user_error(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, stderr = _run(["tests/diagnostics/unknown_layer.net", "--debug"], capsys)
    assert code == 2
    assert "Traceback" in stderr and "error: unknown layer or block 'rleu'" in stderr


def test_a_bug_exits_1_without_a_traceback(capsys, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(compile_cli, "check", broken)
    code, stderr = _run(["any.net"], capsys)
    assert code == 1
    assert "internal error: RuntimeError: a bug" in stderr and "Traceback" not in stderr


def test_a_bug_with_debug_raises(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(compile_cli, "check", broken)
    with pytest.raises(RuntimeError):
        main(["any.net", "--debug"])


# ----------------------------------------------------------------- correct programs stay quiet

QUIET = {
    "a labelled residual reads a tensor named outside it": """
network N {
    input x[4, 8, 8]
    side = x -> conv(4, k=1)
    res: residual { conv(4, k=3, p=1) -> add(side) }
    flatten -> fc(2)
}""",
    "a block's concat branches read its input as 'in'": """
block two(c) {
    concat {
        branch { conv(c, k=1) }
        branch { in -> conv(c, k=3, p=1) }
    }
}
network N {
    input x[4, 8, 8]
    two(4) * 2
    flatten -> fc(2)
}""",
    "a chain goes on over lines": """
network N {
    input x[4, 8, 8]
    conv(4, k=3,
         p=1)
        -> relu ->
        flatten
    fc(2)
}
train {
    lr_scale fc1=0.5
    seed 0
}""",
}


@pytest.mark.parametrize("text", QUIET.values(), ids=list(QUIET))
def test_correct_program_prints_nothing(text: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.net").write_text(text)
    assert _run(["ok.net"], capsys) == (0, "")

"""The walk-through in examples/first_model quotes the compiler: the quotes
must be what the compiler prints today."""

from __future__ import annotations

from pathlib import Path

import pytest

from i2dl_dsl.cli.compile import main

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "examples" / "first_model"


@pytest.mark.parametrize("step", ["step1", "step2", "step3"])
def test_walkthrough_quotes_the_real_diagnostics(step, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main([f"examples/first_model/{step}.net"]) == 2
    printed = capsys.readouterr().err.strip()
    assert printed in (WALK / "README.md").read_text()


def test_walkthrough_summary_rows_are_real(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["examples/first_model/step4.net", "--summary"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("conv", "fc1", "maxpool1"))]
    readme = (WALK / "README.md").read_text()
    assert rows and all(row in readme for row in rows)

"""The figures the docs quote for the adding problem and the transfer-learning
example are the ones their scripts print (scripts/check_docs)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_docs"


def load_check_docs():
    loader = importlib.machinery.SourceFileLoader("check_docs", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("check_docs", loader))
    sys.modules["check_docs"] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


def test_every_quoted_figure_matches_the_committed_results():
    assert [str(m) for m in load_check_docs().check_docs()] == []


def test_a_wrong_figure_is_reported_with_its_doc_line_and_both_figures(tmp_path):
    check_docs = load_check_docs()
    readme = check_docs.ADDING / "README.md"
    text = readme.read_text().splitlines()
    number = next(i for i, line in enumerate(text, start=1) if line.startswith("| 20 |"))
    cells = text[number - 1].split("|")
    quoted = cells[2].strip()
    cells[2] = " 0.9999 "  # quoted to 4 decimals, as the figure it replaces
    text[number - 1] = "|".join(cells)
    doc = tmp_path / "README.md"
    doc.write_text("\n".join(text))
    rows = check_docs.read_rows(check_docs.ADDING / "results.csv")
    problems = [str(m) for m in check_docs.check_adding_table(doc, rows)]
    assert problems == [f"{doc}:{number}: quoted 0.9999, reproduced {quoted} (rnn test MSE, T=20)"]


def test_a_doc_without_its_table_fails(tmp_path):
    check_docs = load_check_docs()
    doc = tmp_path / "README.md"
    doc.write_text("no figures here\n")
    rows = check_docs.read_rows(check_docs.TRANSFER / "results.csv")
    assert check_docs.check_transfer_table(doc, rows) != []
    assert check_docs.check_transfer_sentence(doc, rows) != []


def test_a_fresh_row_that_differs_from_the_committed_one_is_reported():
    check_docs = load_check_docs()
    run = check_docs.FAST[0]
    rows = check_docs.read_rows(run.results)
    changed = [dict(rows[0], test_mse="0.5")] + rows[1:]
    assert [str(m) for m in check_docs.compare_rows(run, changed)] == [
        f"examples/adding_problem/results.csv:2: quoted {check_docs.significant(rows[0]['test_mse'])}, "
        f"reproduced 0.5 (test_mse of {rows[0]['model']}, {rows[0]['T']})"]


def rerun(level: str) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--rerun", level], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_fresh_run_of_the_adding_problem_at_10_steps_reproduces_its_rows():
    rerun("fast")  # 8 s on 2 cores


@pytest.mark.slow
def test_fresh_runs_at_20_steps_and_of_transfer_learning_reproduce_their_rows():
    rerun("slow")  # 40 s on 2 cores

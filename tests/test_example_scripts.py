"""The example scripts write under runs/ (ignored by git) and change nothing
tracked in the repository by running."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def porcelain() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
@pytest.mark.parametrize("script, flags, written", [
    ("adding_problem/adding.py", ["--steps", "5", "--samples", "200", "--epochs", "1"], ["results.csv", "adding.png"]),
    ("lbfgs_vs_adam/compare.py", ["--passes", "2", "--lrs", "0.1"], ["results.csv", "lbfgs_vs_adam.png"]),
])
def test_an_example_writes_under_runs_and_leaves_the_tree_clean(script, flags, written):
    before = porcelain()
    out = ROOT / "runs" / "examples" / Path(script).parent.name
    for name in written:
        (out / name).unlink(missing_ok=True)
    subprocess.run([sys.executable, str(ROOT / "examples" / script), *flags], cwd=ROOT, check=True,
                   capture_output=True)
    assert all((out / name).is_file() for name in written)
    assert porcelain() == before

"""Every figure the docs quote is the one its script or command prints
(scripts/check_docs and scripts/doc_figures/)."""

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


check_docs = load_check_docs()
from doc_figures import claims, examples, transcripts  # noqa: E402  (on sys.path once check_docs is loaded)


def rewritten(tmp_path: Path, doc: Path, old: str, new: str) -> Path:
    """A copy of `doc` with `old` (which must occur once) replaced."""
    text = doc.read_text()
    assert text.count(old) == 1, old
    copy = tmp_path / doc.name
    copy.write_text(text.replace(old, new))
    return copy


def test_every_quoted_figure_matches_the_committed_results():
    assert [str(m) for m in check_docs.check_docs()] == []


def test_a_wrong_figure_is_reported_with_its_doc_line_and_both_figures(tmp_path):
    readme = examples.ADDING / "README.md"
    text = readme.read_text().splitlines()
    number = next(i for i, line in enumerate(text, start=1) if line.startswith("| 20 |"))
    cells = text[number - 1].split("|")
    quoted = [c.strip() for c in cells[2].split(",")]
    cells[2] = " " + ", ".join(["0.9999", *quoted[1:]]) + " "  # seed 0, quoted to 4 decimals as the figure it replaces
    text[number - 1] = "|".join(cells)
    doc = tmp_path / "README.md"
    doc.write_text("\n".join(text))
    rows = check_docs.read_rows(examples.ADDING / "results.csv")
    problems = [str(m) for m in examples.check_adding_table(doc, rows)]
    assert problems == [f"{doc}:{number}: quoted 0.9999, reproduced {quoted[0]} (rnn test MSE, T=20, seed 0)"]


def test_a_doc_without_its_table_or_sentence_fails(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("no figures here\n")
    transfer = check_docs.read_rows(examples.TRANSFER / "results.csv")
    adding = check_docs.read_rows(examples.ADDING / "results.csv")
    lbfgs = check_docs.read_rows(examples.LBFGS / "results.csv")
    for problems in (examples.check_transfer_table(doc, transfer), examples.check_transfer_sentence(doc, transfer),
                     examples.check_transfer_counts(doc, transfer), examples.check_adding_table(doc, adding),
                     examples.check_adding_sentence(doc, adding), examples.check_adding_learnt(doc, adding),
                     examples.check_adding_counts(doc, adding), examples.check_lbfgs_table(doc, lbfgs),
                     examples.check_lbfgs_sentences(doc, doc, lbfgs), claims.check_search_cost(doc)):
        assert problems and not any(p.drift for p in problems)


def test_a_wrong_count_of_runs_that_learnt_is_reported(tmp_path):
    rows = check_docs.read_rows(examples.ADDING / "results.csv")
    doc = rewritten(tmp_path, check_docs.README, "learns 30 steps with one of three", "learns 30 steps with two of three")
    assert [m.what for m in examples.check_adding_counts(doc, rows)] == ["rnn runs that learnt, T=30"]
    doc = rewritten(tmp_path, examples.ADDING / "README.md", "| rnn | 3 | 3 | 1 | 0 | 0 |", "| rnn | 3 | 3 | 1 | 1 | 0 |")
    assert [m.what for m in examples.check_adding_learnt(doc, rows)] == ["rnn runs that learnt, T=50"]


def test_the_lbfgs_table_is_read_in_its_own_notation(tmp_path):
    rows = check_docs.read_rows(examples.LBFGS / "results.csv")
    assert examples.written_as("1.5·10⁻⁵", 1.4569e-05) == "1.5·10⁻⁵"
    assert examples.written_as("0.21", 0.2062) == "0.21"
    doc = rewritten(tmp_path, examples.LBFGS / "README.md", "| 1.5·10⁻⁵ |", "| 2.5·10⁻⁵ |")
    assert [str(m).split(": ", 1)[1] for m in examples.check_lbfgs_table(doc, rows)] == [
        "quoted 2.5·10⁻⁵, reproduced 1.5·10⁻⁵ (lbfgs, max |θ − θ*|)"]


def test_the_search_cost_is_the_sum_of_the_quoted_table(tmp_path):
    assert claims.check_search_cost(check_docs.README) == []
    doc = rewritten(tmp_path, check_docs.README, "trials cost 20 epochs", "trials cost 24 epochs")
    assert [m.what for m in claims.check_search_cost(doc)] == ["sum of the table's epochs"]


def test_a_fresh_row_that_differs_from_the_committed_one_is_reported():
    run = check_docs.FAST[0]
    rows = check_docs.read_rows(run.results)
    changed = [dict(rows[0], test_mse="0.5")] + rows[1:]
    assert [str(m) for m in check_docs.compare_rows(run, changed)] == [
        f"examples/adding_problem/results.csv:2: quoted {check_docs.significant(rows[0]['test_mse'])}, "
        f"reproduced 0.5 (test_mse of {rows[0]['model']}, {rows[0]['T']}, {rows[0]['seed']})"]


# ----------------------------------------------------------------- quoted terminal sessions

SESSION = """intro
```
$ i2dl-train models/x.net --overfit 8      # a comment
overfit 8 samples: loss 0.009214 after 21 epochs (target < 0.01); the model can fit them
```
```sh
i2dl-train models/y.net                    # no $: not a session
```
```
$ i2dl-compile a.net
training X on linear:8 (800 train, ...), ...
...
test (180 samples): accuracy 0.9944, loss 0.0302
```
"""


def test_sessions_are_the_fenced_blocks_with_dollar_lines(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(SESSION)
    found = transcripts.blocks(doc)
    assert [[(c.line, c.text, [n for n, _ in c.quoted]) for c in b.commands] for b in found] == [
        [(3, "i2dl-train models/x.net --overfit 8", [4])], [(10, "i2dl-compile a.net", [11, 12, 13])]]


def mismatches(tmp_path: Path, printed: str) -> list[str]:
    doc = tmp_path / "README.md"
    doc.write_text(SESSION)
    command = transcripts.blocks(doc)[1].commands[0]
    return [("drift " if m.drift else "") + str(m).split(": ", 1)[1] for m in
            transcripts.compare_lines(doc, command, printed)]


def test_a_session_matches_with_elisions_and_compares_every_figure(tmp_path):
    printed = ("training X on linear:8 (800 train, 100 validation), running on CPU\nepoch 1\nepoch 2\n"
               "test (180 samples): accuracy 0.9944, loss 0.0302\nwrote files\n")
    assert mismatches(tmp_path, printed) == []
    drifted = printed.replace("loss 0.0302", "loss 0.0305")
    assert mismatches(tmp_path, drifted) == ["drift quoted 0.0302, drifted to 0.0305 ($ i2dl-compile a.net)"]
    wrong = printed.replace("accuracy 0.9944", "accuracy 0.8944").replace("(180 samples", "(181 samples")
    assert mismatches(tmp_path, wrong) == ["quoted 180, reproduced 181 ($ i2dl-compile a.net)",
                                           "quoted 0.9944, reproduced 0.8944 ($ i2dl-compile a.net)"]


def test_a_quoted_line_that_is_not_printed_is_reported(tmp_path):
    assert mismatches(tmp_path, "training X on linear:8 (800 train, 1), x\n") == [
        "quoted 'test (180 samples): accuracy 0.9944, loss 0.0302', reproduced 'nothing' ($ i2dl-compile a.net)"]
    # without `...` a quoted line must follow the one before it
    assert mismatches(tmp_path, "epoch 1\ntraining X on linear:8 (800 train, 1), x\n")[0].startswith(
        "quoted 'training X on linear:8 (800 train, ...), ...', reproduced 'epoch 1'")


# ----------------------------------------------------------------- claims and durations

def test_a_claim_reads_its_figure_from_the_command_output(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("digits (≈ 99% test accuracy in about 15 s on 2 cores); svm | accuracy 0.961 |\n")
    runner = transcripts.Runner(tmp_path / "runs")
    runner.done[("train",)] = [("test (359 samples): accuracy 0.9916, loss 0.0308\n", 14.0)]
    percent = claims.Claim(doc, r"≈ (\d+)% test accuracy", "train", (r"^test .*accuracy (\S+),",), scale=100)
    assert claims.check_claim(percent, runner) == []
    three = claims.Claim(doc, r"svm \| accuracy (\d\.\d+)", "train", (r"^test .*accuracy (\S+),",))
    assert [str(m).split(": ", 1)[1] for m in claims.check_claim(three, runner)] == [
        "quoted 0.961, reproduced 0.992 (train: ^test .*accuracy (\\S+),)"]


def test_durations_are_checked_within_an_order_of_magnitude(tmp_path):
    assert claims.duration("about 15 s") == (15, 15)
    assert claims.duration("4–7 min") == (240, 420)
    assert claims.duration("3 min 20 s") == (200, 200)
    doc = tmp_path / "README.md"
    doc.write_text("accuracy in about 15 s on 2 cores\n")
    timing = claims.Timing(doc, r"accuracy in (about \d+ s) on", "train")
    assert claims.check_timing(timing, 149) == [] and claims.check_timing(timing, 1.6) == []
    assert [m.reproduced for m in claims.check_timing(timing, 151)] == ["151 s"]
    assert [m.reproduced for m in claims.check_timing(timing, 1.4)] == ["1 s"]


# ----------------------------------------------------------------- fresh runs

def rerun(level: str) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--rerun", level], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_fresh_runs_of_the_quick_commands_and_examples_reproduce_what_the_docs_quote():
    rerun("fast")  # 1.5 to 3 min on 2 shared cores


@pytest.mark.slow
def test_fresh_runs_of_the_slower_commands_and_partial_examples_reproduce_what_the_docs_quote(request):
    # 3 to 9 min: only where slow tests are asked for (`-m slow`), not in the
    # default run, which must stay short; CI runs `--rerun full` after the tests.
    if "slow" not in (request.config.option.markexpr or "") or "not slow" in request.config.option.markexpr:
        pytest.skip("runs with -m slow")
    rerun("slow")  # 4 to 9 min on 2 shared cores


def test_after_an_elision_the_line_with_the_quoted_figures_is_the_one_compared(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("```\n$ i2dl-train m.net --cv 3\nfold 1: val_acc 0.9537\n...\nfold 3: val_acc 0.9567\n```\n")
    command = transcripts.blocks(doc)[0].commands[0]
    printed = "fold 1: val_acc 0.9537\nfold 2: val_acc 0.9722\nfold 3: val_acc 0.9567\n"
    assert transcripts.compare_lines(doc, command, printed) == []
    assert [str(m).split(": ", 1)[1] for m in transcripts.compare_lines(doc, command, printed.replace("0.9567", "0.9167"))] \
        == ["quoted 0.9567, reproduced 0.9167 ($ i2dl-train m.net --cv 3)"]


def test_every_declared_claim_and_duration_is_found_in_its_doc():
    from doc_figures.common import find

    missing = [(c.doc.name, c.words) for c in (*check_docs.CLAIMS, *check_docs.TIMINGS) if find(c.doc, c.words) is None]
    assert missing == []
    full = {check_docs.FULL[0].command: 7 * 60, check_docs.FULL[1].command: 5 * 60}  # as measured
    assert [str(m) for m in check_docs.check_timings(full)] == []
    assert len(check_docs.check_timings({check_docs.FULL[0].command: 80 * 60})) == 1
    for timing in check_docs.TIMINGS:  # each names a command that some tier runs
        reruns = {r.command for level in check_docs.RERUNS.values() for r in level}
        commands = {c.command for c in check_docs.CLAIMS}
        assert timing.command in reruns | commands, timing

"""The example scripts' figures: each example's README table, and README.md's
sentences about it, against the results.csv committed beside the script
(means and spreads over seeds computed as the script's README states them)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .common import NUMBER, ROOT, Mismatch, compare, find, line_of, lines, read_rows, verdict

ADDING = ROOT / "examples" / "adding_problem"
TRANSFER = ROOT / "examples" / "transfer_learning"
LBFGS = ROOT / "examples" / "lbfgs_vs_adam"
SPREAD = re.compile(rf"\**({NUMBER}) ± ({NUMBER})\**")


def mean_std(values: list[float]) -> tuple[float, float] | None:
    return (float(np.mean(values)), float(np.std(values))) if values else None


def compare_cell(doc: Path, line: int, cell: str, stats: tuple[float, float] | None, what: str) -> list[Mismatch]:
    """A cell `mean ± std` (bold or not) against the mean and std over seeds."""
    match = SPREAD.fullmatch(cell.strip())
    if match is None:
        return [Mismatch(doc, line, cell.strip(), "a cell 'mean ± std'", what)]
    mean, std = match.groups()
    if stats is None:
        return [Mismatch(doc, line, f"{mean} ± {std}", "nothing", what)]
    return (compare(doc, line, mean, stats[0], f"{what}, mean over seeds")
            + compare(doc, line, std, stats[1], f"{what}, std over seeds"))


# ----------------------------------------------------------------- the adding problem

def adding_values(rows: list[dict], model: str, steps: str, column: str = "test_mse") -> list[float]:
    """One value per seed, in the order of the seeds."""
    mine = sorted((r for r in rows if r["model"] == model and r["T"] == steps), key=lambda r: int(r["seed"]))
    return [float(r[column]) for r in mine]


def compare_seeds(doc: Path, line: int, cell: str, values: list[float], what: str) -> list[Mismatch]:
    """A cell `a, b, c`: one figure per seed, in the order of the seeds."""
    quoted = [figure.strip() for figure in cell.split(",")]
    if len(quoted) != len(values):
        return [Mismatch(doc, line, f"{len(quoted)} seeds", f"{len(values)} seeds", what)]
    return [m for seed, (figure, value) in enumerate(zip(quoted, values))
            for m in compare(doc, line, figure, value, f"{what}, seed {seed}")]


def check_adding_table(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """The rows `| T | rnn per seed | rnn mean ± std | lstm per seed | lstm mean ± std | mean predictor |`."""
    pattern = re.compile(r"^\| (\d+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")
    found, problems = 0, []
    for number, text in lines(doc):
        if not (match := pattern.match(text)):
            continue
        found += 1
        steps, *cells, mean = (cell.strip() for cell in match.groups())
        for model, each, spread in zip(("rnn", "lstm"), cells[::2], cells[1::2]):
            runs = adding_values(rows, model, steps)
            problems += compare_seeds(doc, number, each, runs, f"{model} test MSE, T={steps}")
            problems += compare_cell(doc, number, spread, mean_std(runs), f"{model} test MSE, T={steps}")
        problems += compare(doc, number, mean, np.mean(adding_values(rows, "rnn", steps, "baseline_mse")),
                            f"mean predictor, T={steps}, mean over seeds")
    return problems + ([] if found else [Mismatch(doc, 0, "a table of test MSE", "no such table", "adding problem")])


def ratios(rows: list[dict], model: str, steps: str) -> list[float]:
    """Each seed's test MSE over its mean predictor's."""
    return [m / b for m, b in zip(adding_values(rows, model, steps), adding_values(rows, model, steps, "baseline_mse"))]


def check_adding_learnt(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """'below half the mean predictor's (every run lands either below L or above H of it)' and the table
    `| T | 10 | 20 | ... |` with one row per model: how many seeds learnt the task."""
    found = find(doc, rf"below half the mean predictor's \(every run lands either below ({NUMBER}) or above "
                      rf"({NUMBER}) of it\)")
    if found is None:
        return [Mismatch(doc, 0, "what 'learnt' means", "no such sentence", "adding problem")]
    number, match = found
    every = [r for m in ("rnn", "lstm") for t in {row["T"] for row in rows} for r in ratios(rows, m, t)]
    low, high = max(r for r in every if r < 0.5), min(r for r in every if r >= 0.5)
    problems = ([] if low < float(match.group(1)) else [Mismatch(doc, number, match.group(1), f"{low:.3f}",
                                                                  "largest ratio of a run that learnt")])
    problems += [] if high > float(match.group(2)) else [Mismatch(doc, number, match.group(2), f"{high:.3f}",
                                                                   "smallest ratio of a run that did not")]
    steps, counted = None, 0
    for number, text in lines(doc):
        cells = [c.strip() for c in text.strip("|").split("|")]
        if cells[0] == "T" and all(c.isdigit() for c in cells[1:]):
            steps = cells[1:]
        elif steps and cells[0] in ("rnn", "lstm"):
            counted += 1
            for t, cell in zip(steps, cells[1:]):
                problems += verdict(doc, number, cell, learnt(rows, cells[0], t), f"{cells[0]} runs that learnt, T={t}")
    return problems + ([] if counted == 2 else [Mismatch(doc, 0, "runs that learnt", "no such table", "adding")])


def check_adding_sentence(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """README.md: "the LSTM's MSE stays at X or below up to N steps" (every seed)."""
    found = find(doc, rf"LSTM's MSE stays at ({NUMBER}) or below up to (\d+) steps")
    if found is None:
        return [Mismatch(doc, 0, "the adding-problem sentence", "no such sentence", "lstm test MSE")]
    number, match = found
    quoted, steps = match.groups()
    worst = max((float(r["test_mse"]) for r in rows if r["model"] == "lstm" and int(r["T"]) <= int(steps)),
                default=None)
    return compare(doc, number, quoted, worst, f"largest lstm test MSE up to T={steps}, every seed")


COUNTS = {"none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def learnt(rows: list[dict], model: str, steps: str) -> str:
    return str(sum(r < 0.5 for r in ratios(rows, model, steps)))


def check_adding_counts(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """README.md: 'Both learn A and B steps with every seed of N', '(RNN|LSTM) learns T steps with K of N seeds'
    and 'RNN learns T steps with ... and none of the longer ones'."""
    text, problems = doc.read_text(), []
    seeds = str(len({r["seed"] for r in rows}))
    both = find(doc, r"Both learn (\d+) and (\d+) steps with every seed of (\w+)\.")
    if both is None:
        return [Mismatch(doc, 0, "the adding-problem counts", "no such sentence", "runs that learnt")]
    number, match = both
    problems += verdict(doc, number, str(COUNTS[match.group(3)]), seeds, "seeds")
    for model in ("rnn", "lstm"):
        for steps in match.groups()[:2]:
            problems += verdict(doc, number, seeds, learnt(rows, model, steps), f"{model} runs that learnt, T={steps}")
    for found in re.finditer(r"(RNN|LSTM)\s+learns\s+(\d+)\s+steps\s+with\s+(\w+)\s+of\s+(\w+)\s+seeds"
                             r"(\s+and\s+none\s+of\s+the\s+longer\s+ones)?", text):
        model, steps, count, total, longer = found.groups()
        number, model = line_of(text, found.start()), model.lower()
        problems += verdict(doc, number, str(COUNTS[total]), seeds, "seeds")
        problems += verdict(doc, number, str(COUNTS[count]), learnt(rows, model, steps),
                            f"{model} runs that learnt, T={steps}")
        for longer_steps in sorted({r["T"] for r in rows if int(r["T"]) > int(steps)} if longer else ()):
            problems += verdict(doc, number, "0", learnt(rows, model, longer_steps),
                                f"{model} runs that learnt, T={longer_steps}")
    return problems


# ----------------------------------------------------------------- transfer learning

def transfer_cell(rows: list[dict], variant: str, train: str) -> tuple[float, float] | None:
    """Mean and standard deviation over seeds, as run.py prints them."""
    return mean_std([float(r["accuracy"]) for r in rows if r["variant"] == variant and r["train"] == train])


def check_transfer_table(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """The header `| training samples of 5–9 | 20 | 50 | 100 |` and one row per variant."""
    variants = sorted({r["variant"] for r in rows})
    sizes, found, problems = None, 0, []
    for number, text in lines(doc):
        cells = [c.strip() for c in text.strip("|").split("|")]
        if text.startswith("| training samples of"):
            sizes = cells[1:]
        elif sizes and cells[0] in variants:
            found += 1
            for train, cell in zip(sizes, cells[1:]):
                problems += compare_cell(doc, number, cell, transfer_cell(rows, cells[0], train),
                                         f"{cells[0]}, {train} samples")
    return problems + ([] if found == len(variants) else
                       [Mismatch(doc, 0, f"{found} of {len(variants)} variants", "a row for each", "transfer table")])


def check_transfer_sentence(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """README.md: 'scores T on the unseen 5–9 against S from scratch; with the convolutions frozen it scores F'."""
    found = find(doc, rf"scores ({NUMBER}) on the unseen 5–9 against ({NUMBER}) from scratch; with the "
                      rf"convolutions frozen it scores ({NUMBER})")
    if found is None:
        return [Mismatch(doc, 0, "the transfer-learning sentence", "no such sentence", "20 samples")]
    number, match = found
    problems = []
    for quoted, variant in zip(match.groups(), ("pre-trained convolutions, trained", "from scratch",
                                                "pre-trained convolutions, frozen")):
        stats = transfer_cell(rows, variant, "20")
        problems += compare(doc, number, quoted, stats and stats[0], f"{variant}, 20 samples, mean over seeds")
    return problems


def check_transfer_counts(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """'(867, 825 and 754 of them)': the unseen samples each size is scored on."""
    found = find(doc, r"\((\d+), (\d+) and (\d+) of them\)")
    if found is None:
        return [Mismatch(doc, 0, "the samples scored on", "no such sentence", "transfer learning")]
    number, match = found
    sizes = list(dict.fromkeys(r["train"] for r in rows))
    problems = []
    for quoted, train in zip(match.groups(), sizes):
        scored = {r["scored_on"] for r in rows if r["train"] == train}
        problems += verdict(doc, number, quoted, ",".join(sorted(scored)), f"samples scored on, {train} samples")
    return problems


# ----------------------------------------------------------------- L-BFGS against Adam

SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def written_as(quoted: str, value: float) -> str:
    """`value` written as `quoted` is: `1.5·10⁻⁵` (the same mantissa digits) or `0.21`."""
    if "·10" not in quoted:
        return f"{value:.{len(quoted.split('.')[1]) if '.' in quoted else 0}f}"
    mantissa = quoted.split("·")[0]
    digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
    m, e = f"{value:.{digits}e}".split("e")
    return f"{m}·10{str(int(e)).translate(SUPERSCRIPT)}"


def last_row(rows: list[dict], method: str) -> dict | None:
    mine = [r for r in rows if r["method"] == method]
    return mine[-1] if mine else None


def first_within(rows: list[dict], method: str, bound: float) -> str:
    passes = [int(r["passes"]) for r in rows if r["method"] == method and float(r["distance"]) < bound]
    return str(min(passes)) if passes else "—"


def check_lbfgs_table(doc: Path, rows: list[dict]) -> list[Mismatch]:
    """`| method | passes | loss − optimum | max |θ − θ*| | first pass within 10⁻² / 10⁻³ |`, one row per method."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    found, problems = 0, []
    for number, text in lines(doc):
        cells = [c.strip() for c in text.strip().strip("|").split("|")]
        method = cells[0].strip("`").split("(")[0]
        if method not in methods or len(cells) != 5:
            continue
        found += 1
        last = last_row(rows, method)
        figures = ((cells[1].split()[0], last["passes"], "passes"),
                   (cells[2], written_as(cells[2], float(last["loss_gap"])), "training loss − optimum"),
                   (cells[3], written_as(cells[3], float(last["distance"])), "max |θ − θ*|"),
                   (cells[4], f"{first_within(rows, method, 1e-2)} / {first_within(rows, method, 1e-3)}",
                    "first pass within 10⁻² / 10⁻³"))
        for quoted, reproduced, what in figures:
            problems += verdict(doc, number, quoted, reproduced, f"{method}, {what}")
    return problems + ([] if found == len(methods) else
                       [Mismatch(doc, 0, f"{found} of {len(methods)} methods", "a row for each", "lbfgs table")])


def best_adam(rows: list[dict]) -> dict:
    return min((last_row(rows, m) for m in dict.fromkeys(r["method"] for r in rows) if m.startswith("adam")),
               key=lambda r: float(r["distance"]))


def check_lbfgs_sentences(readme: Path, example: Path, rows: list[dict]) -> list[Mismatch]:
    """README.md: 'within D of the least-squares solution after P passes ..., where Adam is still A away after Q';
    the example's README: 'within 10⁻³ of θ* after P passes' and 'still A away after Q passes'."""
    lbfgs, adam, problems = last_row(rows, "lbfgs"), best_adam(rows), []
    wanted = ((readme, r"within (\S+) of the least-squares solution after (\d+) passes over the data, where Adam is "
                       r"still (\S+) away after (\d+)",
               (("distance", lbfgs), ("passes", lbfgs), ("distance", adam), ("passes", adam))),
              (example, r"still (\S+) away after (\d+) passes", (("distance", adam), ("passes", adam))))
    for doc, words, sources in wanted:
        found = find(doc, words)
        if found is None:
            problems.append(Mismatch(doc, 0, "the sentence on L-BFGS and Adam", "no such sentence", words))
            continue
        number, match = found
        for quoted, (column, row) in zip(match.groups(), sources):
            reproduced = row[column] if column == "passes" else written_as(quoted, float(row[column]))
            problems += verdict(doc, number, quoted, reproduced, f"{row['method']}, {column} at its last pass")
    found = find(example, r"within 10⁻³ of θ\* after (\d+) passes")
    if found is None:
        return problems + [Mismatch(example, 0, "'within 10⁻³ of θ* after'", "no such sentence", "lbfgs")]
    return problems + verdict(example, found[0], found[1].group(1), first_within(rows, "lbfgs", 1e-3),
                              "lbfgs, first pass within 10⁻³")

"""The course's training toolkit, each feature shown doing its job:
augmentation changes training batches and never evaluation; cross-validation
folds are disjoint, cover the data and leave the test split for one final
evaluation; successive halving stops the weak runs; ensembles train on
bootstrap samples and beat their members on average; --overfit tells a net
that can fit a few samples from one that cannot; the validation-gap warning
fires on a skewed split; frozen weights stay bit-identical; and bad input is
refused with exit 2 before anything is trained or written.

Runs go through `i2dl-train`'s `main` in this process, on small networks and
a few epochs over the built-in digits.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.cli.train import main as train_main
from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.train import checkpoint, experiments
from i2dl_dsl.train import data as datamod
from i2dl_dsl.train.augment import make_augmenter
from i2dl_dsl.train.loop import LAST
from i2dl_dsl.train.run import Settings
from i2dl_dsl.train.search import (Trial, best_section, configurations, parse_space, rungs, successive_halving,
                                   write_best)
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.step import TrainConfig, build_step
from helpers import tensors, train

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "models" / "mlp.net"
DIGITS_CNN = ROOT / "models" / "digits_cnn.net"

TINY = """network Tiny(width=4) {
    input image[1, 8, 8]
    stem: conv(width, k=3, p=1) -> relu -> maxpool(k=2)
    flatten
    fc1: fc(10)
}

train {
    loss cross_entropy
    optimizer adam(lr=0.01)
    batch 64
    epochs 3
    seed 0
}
"""


def write(directory: Path, text: str, name: str = "net.net") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def rows_of(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


def unique_data(path: Path, count: int = 200, seed: int = 0) -> Path:
    """Samples that can be told apart by their bytes, with labels a linear
    model can learn (the largest of the first ten features)."""
    rng = np.random.default_rng(seed)
    x = rng.random((count, 64), dtype=np.float32)
    np.savez(path, x=x, y=x[:, :10].argmax(axis=1).astype(np.int64))
    return path


# ----------------------------------------------------------------- augmentation


def images(count: int = 64, seed: int = 0) -> np.ndarray:
    """Positive pixels, so the zeros a crop pads with can be told apart."""
    return np.random.default_rng(seed).uniform(0.1, 1.0, (count, 1, 8, 8)).astype(np.float32)


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """x moved by (dy, dx), zeros where nothing moved in."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_crop_keeps_the_shape_and_shifts_the_content_within_the_padding():
    x = images()
    out = make_augmenter([{"name": "crop", "pad": 2}], (1, 8, 8))(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    shifts = []
    for original, cropped in zip(x, out):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(shifted(original, dy, dx), cropped)]
        assert len(found) == 1, "every crop is the image moved by at most the padding"
        shifts.append(found[0])
    assert len(set(shifts)) >= 15  # of the 25 offsets: the windows really are random
    assert shifts.count((0, 0)) < len(x) / 4


def test_flip_mirrors_about_half_of_the_images_left_to_right():
    x = images(200)
    out = make_augmenter([{"name": "flip"}], (1, 8, 8))(x, np.random.default_rng(1))
    mirrored = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert (mirrored ^ kept).all()
    assert 70 < mirrored.sum() < 130


def test_jitter_scales_and_shifts_each_image_within_its_bounds():
    x = images(100)
    out = make_augmenter([{"name": "jitter", "brightness": 0.1, "contrast": 0.2}], (1, 8, 8))(
        x, np.random.default_rng(1))
    for original, jittered in zip(x.reshape(len(x), -1), out.reshape(len(out), -1)):
        scale, shift = np.polyfit(original, jittered, 1)  # jittered = scale·x + shift, exactly
        assert np.allclose(scale * original + shift, jittered, atol=1e-5)
        assert 0.8 - 1e-4 <= scale <= 1.2 + 1e-4 and abs(shift) <= 0.1 + 1e-4
    assert not np.allclose(out, x)


def test_augmentation_repeats_for_a_seed_and_differs_between_seeds():
    augment = make_augmenter([{"name": "crop", "pad": 1}, {"name": "flip"}, {"name": "jitter", "brightness": 0.1,
                                                                              "contrast": 0.0}], (1, 8, 8))
    x = images()
    first, again = augment(x, np.random.default_rng([0, 1])), augment(x, np.random.default_rng([0, 1]))
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, augment(x, np.random.default_rng([0, 2])))
    assert np.array_equal(x, images()), "the batch itself is not changed in place"


def test_training_batches_are_augmented_and_evaluation_sees_the_data_as_it_is(tmp_path, monkeypatch):
    net = check(write(tmp_path, TINY))
    settings = Settings.merge(net.train, {"augment": [{"name": "crop", "pad": 2}, {"name": "flip"}], "epochs": 1})
    data = experiments.prepare(net, settings).data
    train_set, val_set, _ = datamod.split(data, 0.1, 0.1, 0)
    seen: dict[str, list[np.ndarray]] = {"train": [], "predict": []}
    real_step, real_predict = TrainingSession.train_step, TrainingSession.predict

    def train_step(session, x, *args):
        seen["train"].append(x.copy())
        return real_step(session, x, *args)

    def predict(session, x, *args, **kwargs):
        seen["predict"].append(x.copy())
        return real_predict(session, x, *args, **kwargs)

    monkeypatch.setattr(TrainingSession, "train_step", train_step)
    monkeypatch.setattr(TrainingSession, "predict", predict)
    trainer = experiments.fit(net, settings, train_set, val_set, tmp_path / "run", "cpu")

    order = datamod.batches(len(train_set), 64, 0, 0)
    assert len(seen["train"]) == len(order)
    augment = make_augmenter(settings["augment"], (1, 8, 8))
    for batch, (index, x) in enumerate(zip(order, seen["train"])):
        raw = train_set.x[index]
        assert np.array_equal(x, augment(raw, np.random.default_rng([0, 0, batch, 3])))
        assert not np.array_equal(x, raw)
    assert seen["predict"][0].tobytes() == val_set.x.tobytes()  # the epoch's validation, untouched
    for x in seen["predict"][1:]:  # the validation-gap check reads training data, unaugmented too
        assert x.tobytes() == train_set.x[: len(x)].tobytes()

    plain = experiments.make_trainer(net, Settings({**settings.values, "augment": []}), train_set, val_set,
                                     tmp_path / "plain", "cpu")
    plain.session.load(trainer.session.parameters())
    assert plain.evaluate(val_set) == trainer.evaluate(val_set)


def test_augment_needs_images_and_labels_that_do_not_move_with_the_pixels():
    with pytest.raises(UserError, match="image inputs"):
        make_augmenter([{"name": "flip"}], (64,))
    with pytest.raises(UserError, match="label per pixel"):
        make_augmenter([{"name": "crop", "pad": 2}], (3, 64, 64), (21, 64, 64))
    assert make_augmenter([{"name": "jitter", "brightness": 0.1, "contrast": 0.0}], (3, 64, 64), (21, 64, 64))


# ----------------------------------------------------------------- cross-validation


@pytest.mark.parametrize("count, k", [(10, 2), (11, 3), (1617, 5), (7, 7)])
def test_folds_are_disjoint_and_cover_every_index(count, k):
    parts = experiments.folds(count, k, seed=0)
    assert len(parts) == k
    assert sorted(np.concatenate(parts).tolist()) == list(range(count))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    other = experiments.folds(count, k, seed=1)
    assert any(not np.array_equal(a, b) for a, b in zip(parts, other)) or k == count


def test_cross_validation_holds_the_test_split_out_until_one_final_evaluation(tmp_path, monkeypatch, capsys):
    data = unique_data(tmp_path / "data.npz")
    fits, predicted = [], []
    real_fit, real_predict = experiments.fit, TrainingSession.predict

    def fit(net, settings, train_set, val_set, out, *args, **kwargs):
        fits.append((rows_of(train_set.x), rows_of(val_set.x)))
        return real_fit(net, settings, train_set, val_set, out, *args, **kwargs)

    def predict(session, x, *args, **kwargs):
        predicted.append(rows_of(x))
        return real_predict(session, x, *args, **kwargs)

    monkeypatch.setattr(experiments, "fit", fit)
    monkeypatch.setattr(TrainingSession, "predict", predict)
    assert train(MLP, tmp_path / "cv", "--cv", "3", "--data", str(data), "--epochs", "2") == 0

    everything = datamod.load(str(data), (64,))
    outside, _, test = datamod.split(everything, 0.0, 0.1, 0)
    outside, test = rows_of(outside.x), rows_of(test.x)
    assert len(test) == 20 and len(outside) == 180
    *folds, final = fits
    assert len(folds) == 3
    held = [val for _, val in folds]
    assert set().union(*held) == outside and sum(map(len, held)) == len(outside)  # disjoint, covering
    for train_rows, val_rows in folds:
        assert train_rows == outside - val_rows
    assert final == (outside, set())  # the final model learns from all of it
    touching = [i for i, rows in enumerate(predicted) if rows & test]
    assert touching == [len(predicted) - 1] and predicted[-1] == test  # once, at the very end

    result = json.loads((tmp_path / "cv" / "result.json").read_text())
    for key in ("val_loss", "val_acc"):
        values = [fold[key] for fold in result["folds"]]
        assert result[key]["mean"] == pytest.approx(np.mean(values))
        assert result[key]["std"] == pytest.approx(np.std(values))
    out = capsys.readouterr().out
    mean, std = result["val_acc"]["mean"], result["val_acc"]["std"]
    assert f"3-fold cross-validation: val_loss {result['val_loss']['mean']:.4f} ± " in out
    assert f"val_acc {mean:.4f} ± {std:.4f}" in out
    assert re.search(r"test \(20 samples, touched once, model trained on all 180\): accuracy [\d.]+", out)


# ----------------------------------------------------------------- successive halving


def test_rungs_double_up_to_the_full_budget():
    assert rungs(8, 8) == [1, 2, 4, 8]
    assert rungs(12, 4) == [3, 6, 12]
    assert rungs(10, 1) == [10]


def test_successive_halving_stops_the_weak_runs_at_the_first_rung():
    quality = [0.3, 0.9, 0.1, 0.7, 0.5, 0.2, 0.8, 0.4]  # trial i+1 scores quality[i], a little more with training
    calls: list[tuple[int, int, bool]] = []

    def train(trial, until, resume):
        calls.append((trial.index, until, resume))
        return quality[trial.index - 1] + until / 100, [{"epoch": e + 1} for e in range(until)]

    ranked = successive_halving([Trial(i + 1, {"lr": q}) for i, q in enumerate(quality)], 8, train)
    first = [c for c in calls if c[1] == 1]
    assert sorted(t for t, _, _ in first) == list(range(1, 9)) and not any(r for _, _, r in first)
    weakest = {3, 6, 1, 8}  # the four lowest qualities
    assert {t.index for t in ranked if t.stopped_at == 1} == weakest
    assert not any(t in weakest for t, until, _ in calls if until > 1), "stopped runs never train again"
    assert sorted(t for t, until, _ in calls if until == 2) == [2, 4, 5, 7]  # the better half goes on
    assert sorted(t for t, until, _ in calls if until == 4) == [2, 7]
    assert [t for t, until, _ in calls if until == 8] == [2]  # the survivor gets the whole budget
    assert all(resume for _, until, resume in calls if until > 1)
    assert ranked[0].index == 2 and ranked[0].epochs == 8 and ranked[0].stopped_at is None
    assert sum(t.epochs for t in ranked) == 8 + 4 + 4 + 4  # epochs trained (resuming), not 8 · 8 = 64


def test_a_diverged_run_stops_at_once_and_ranks_last():
    def train(trial, until, resume):
        score = -math.inf if trial.index == 1 else trial.index / 10
        return score, [{"epoch": e + 1} for e in range(until)]

    ranked = successive_halving([Trial(i + 1, {"lr": i}) for i in range(4)], 4, train)
    assert ranked[-1].index == 1 and ranked[-1].diverged and ranked[-1].epochs == 1
    assert ranked[0].index == 4


@pytest.mark.parametrize("space, says", [
    ("lr=1e-1..1e-4:log", "the range is empty"),
    ("lr=abc", "cannot read 'lr=abc'"),
    ("lr=0..1:log", "a log range needs positive bounds"),
    ("momentum=1|2", "unknown key 'momentum'"),
    ("lr", "'lr' is not key=range"),
    (" , ", "search space is empty"),
    ("batch=16..64", "'batch' takes choices"),
    ("lr=1e-3|x", "'x' in 'lr=1e-3|x' is not a number"),
    ("lr=1e-3|1e-2, lr=1e-1|1", "names a key twice"),
    ("epochs=5|10", "'epochs' is the budget"),
    ("batch=0|32", "'batch' in 'batch=0|32': expected a positive integer, got 0"),
    ("batch=16.5|32", "expected a positive integer, got 16.5"),
    ("lr=-1..1", "'lr' in 'lr=-1..1': expected a number ≥ 0, got -1"),
])
def test_spaces_that_do_not_parse_are_explained(space, says):
    with pytest.raises(UserError, match=re.escape(says)):
        parse_space(space, {"width"})


def test_spaces_parse_into_ranges_and_choices():
    dims = parse_space("lr=1e-4..1e-1:log, batch=32|64, width=2|8, dropout=0..0.5", {"width", "dropout"})
    by_key = {d.key: d for d in dims}
    assert (by_key["lr"].low, by_key["lr"].high, by_key["lr"].log) == (1e-4, 1e-1, True)
    assert by_key["batch"].choices == (32, 64) and by_key["width"].choices == (2, 8)
    assert (by_key["dropout"].low, by_key["dropout"].high, by_key["dropout"].log) == (0.0, 0.5, False)
    configs = configurations(dims, 50, "random", seed=0)
    assert all(1e-4 <= c["lr"] <= 1e-1 and 0 <= c["dropout"] <= 0.5 and c["batch"] in (32, 64) for c in configs)
    assert np.median([c["lr"] for c in configs]) < 1e-2  # log-uniform: as many below 10^-2.5 as above
    assert configurations(dims, 8, "random", seed=0) == configs[:8]


def test_a_grid_crosses_every_range_point_with_every_choice():
    dims = parse_space("lr=1e-4..1e-1:log, width=2|4|8", {"width"})
    grid = configurations(dims, 12, "grid", seed=0)
    assert len(grid) == 12
    assert sorted({c["lr"] for c in grid}) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert {(round(math.log10(c["lr"])), c["width"]) for c in grid} == \
        {(e, w) for e in (-4, -3, -2, -1) for w in (2, 4, 8)}
    assert len(configurations(parse_space("width=2|4|8", {"width"}), 2, "random", seed=0)) == 2
    assert len(configurations(parse_space("width=2|4", {"width"}), 5, "random", seed=0)) == 2  # no repeats


def test_the_best_configuration_becomes_a_train_section_that_checks(tmp_path):
    model = write(tmp_path, TINY.replace("    seed 0\n", """    seed 0
    lr 0.02
    augment crop(pad=1), flip, jitter(brightness=0.05)
    freeze stem
    lr_scale fc1=0.5
    early_stopping(patience=3)
    split(val=0.2, test=0.1)
    schedule cosine()
"""))
    net = check(model)
    settings = Settings.merge(net.train, {"epochs": 7, "batch": 32})
    section = best_section({"lr": 0.003, "weight_decay": 1e-4, "width": 6}, net.train, settings.values)
    best = check(write_best(model, {"lr": 0.003, "weight_decay": 1e-4, "width": 6}, section, tmp_path))
    assert best.graph.graph["params"]["width"] == 6
    assert Settings.merge(best.train, {}).optimizer()["lr"] == pytest.approx(0.003)
    expected = {**net.train, "epochs": 7, "batch": 32, "weight_decay": 1e-4}
    expected.pop("lr")
    assert {k: v for k, v in best.train.items() if k != "optimizer"} == \
        {k: v for k, v in expected.items() if k != "optimizer"}
    assert compile_main([str(tmp_path / "best.net")]) == 0
    kept = check(write_best(model, {"lr": 0.1}, section, tmp_path / "param", params={"width": 5}))
    assert kept.graph.graph["params"]["width"] == 5  # a --param value the search ran with


def table_rows(text: str) -> list[dict[str, str]]:
    lines = [line.split() for line in text.splitlines() if re.match(r"^(#|\d+)\s", line)]
    header, *rows = lines
    return [dict(zip(header, row)) | {"status": " ".join(row[len(header) - 1:])} for row in rows]


def test_a_search_ranks_its_trials_stops_the_weak_ones_and_writes_the_best(tmp_path, capsys):
    model = write(tmp_path, TINY)
    out = tmp_path / "search"
    assert train(model, out, "--search", "lr=1e-3..1e-1:log, width=2|6", "--trials", "4", "--epochs", "2",
                 "--batch", "128", "--seed", "1") == 0
    printed = capsys.readouterr().out
    rows = table_rows(printed)
    assert len(rows) == 4 and rows[0]["status"] == "best"
    finished = [r for r in rows if r["status"] in ("best", "finished")]
    stopped = [r for r in rows if r["status"] == "stopped early"]
    assert len(finished) == 2 and len(stopped) == 2
    assert rows == finished + stopped
    assert all(r["epochs"] == "2" for r in finished) and all(r["epochs"] == "1" for r in stopped)
    for group in (finished, stopped):
        accs = [float(r["val_acc"]) for r in group]
        assert accs == sorted(accs, reverse=True)
    assert min(float(r["val_acc"]) for r in finished) >= max(float(r["val_acc"]) for r in stopped)
    for r in rows:  # the stopped runs really trained one epoch only
        assert len((out / f"trial{r['#']}" / "metrics.csv").read_text().splitlines()) == 1 + int(r["epochs"])

    assert f"best configuration written to {out / 'best.net'}" in printed
    assert compile_main([str(out / "best.net")]) == 0
    best = check(out / "best.net")
    assert best.graph.graph["params"]["width"] == int(rows[0]["width"])
    settings = Settings.merge(best.train, {})
    assert settings.optimizer()["lr"] == pytest.approx(float(rows[0]["lr"]), rel=1e-3)
    assert (settings["epochs"], settings["batch"], settings["seed"]) == (2, 128, 1)  # the flags it ran with


# ----------------------------------------------------------------- ensembles


def test_an_ensemble_trains_on_bootstrap_samples_and_averages_its_members(tmp_path, monkeypatch, capsys):
    members = []
    real_fit = experiments.fit

    def fit(net, settings, train_set, val_set, out, *args, **kwargs):
        trainer = real_fit(net, settings, train_set, val_set, out, *args, **kwargs)
        members.append((train_set, trainer))
        return trainer

    monkeypatch.setattr(experiments, "fit", fit)
    assert train(MLP, tmp_path / "ens", "--ensemble", "5", "--epochs", "4") == 0

    net = check(MLP)
    train_set, _, test = datamod.split(experiments.prepare(net, Settings.merge(net.train, {})).data, 0.1, 0.1, 0)
    originals = {row.tobytes(): i for i, row in enumerate(train_set.x)}
    drawn = []
    for sample, _ in members:
        index = [originals[row.tobytes()] for row in sample.x]  # every sample comes from the training split
        assert len(index) == len(train_set)
        assert 0.55 < len(set(index)) / len(train_set) < 0.72  # with replacement: about 1 - 1/e distinct
        drawn.append(tuple(index))
    assert len(set(drawn)) == 5

    result = json.loads((tmp_path / "ens" / "result.json").read_text())
    probabilities = []
    for (_, trainer), single in zip(members, result["single_acc"]):
        z = trainer.session.predict(test.x)
        assert single == pytest.approx(float((z.argmax(1) == test.y).mean()))
        e = np.exp(z - z.max(1, keepdims=True))
        probabilities.append(e / e.sum(1, keepdims=True))
    averaged = np.mean(probabilities, axis=0)
    assert result["ensemble_acc"] == pytest.approx(float((averaged.argmax(1) == test.y).mean()))
    assert result["ensemble_acc"] >= result["mean_single_acc"]
    printed = capsys.readouterr().out
    assert f"accuracy {result['ensemble_acc']:.4f}" in printed
    assert "single models: " + ", ".join(f"{a:.4f}" for a in result["single_acc"]) in printed


# ----------------------------------------------------------------- overfitting


def test_a_small_net_overfits_a_few_samples(tmp_path, capsys):
    assert train(write(tmp_path, TINY), tmp_path / "of", "--overfit", "16") == 0
    result = json.loads((tmp_path / "of" / "result.json").read_text())
    assert result["fits"] and result["loss"] < 0.01 and result["accuracy"] == 1.0
    assert "overfit 16 samples" in capsys.readouterr().out
    assert result["epochs"] < 300


def test_overfitting_is_judged_as_predict_sees_the_samples(tmp_path, capsys):
    """Batch norm and dropout: the verdict reads the loss in inference mode."""
    assert train(DIGITS_CNN, tmp_path / "of", "--overfit", "8") == 0
    assert "the model can fit them" in capsys.readouterr().out
    result = json.loads((tmp_path / "of" / "result.json").read_text())
    trained, _ = checkpoint.load(tmp_path / "of" / LAST)
    net = check(DIGITS_CNN)
    session = TrainingSession(build_step(net, TrainConfig()), "cpu")
    session.load({k: v for k, v in trained.items() if k in session.spec.values})
    data = experiments.prepare(net, Settings.merge(net.train, {})).data
    z = session.predict(data.x[:8])
    shifted_z = z - z.max(1, keepdims=True)
    loss = float(-(shifted_z[np.arange(8), data.y[:8]] - np.log(np.exp(shifted_z).sum(1))).mean())
    assert loss == pytest.approx(result["loss"], rel=1e-4) and loss < 0.01


@pytest.mark.parametrize("change, flags", [
    (("fc(10)\n}", "fc(10) -> sigmoid\n}"), ()),  # squashed logits: the loss cannot go below log(1 + 9/e)
    (None, ("--lr", "0")),
])
def test_a_crippled_setting_is_reported_as_unable_to_fit(tmp_path, capsys, change, flags):
    text = TINY.replace(*change) if change else TINY
    assert train(write(tmp_path, text), tmp_path / "of", "--overfit", "16", *flags) == 1
    out = capsys.readouterr().out
    assert "the model cannot fit them: check the learning rate, the loss and the labels" in out
    result = json.loads((tmp_path / "of" / "result.json").read_text())
    assert not result["fits"] and result["loss"] > 1.0 and result["epochs"] == 300


# ----------------------------------------------------------------- the validation gap

GAP = "validation loss has been below training loss"


def skewed_data(path: Path, noisy: str) -> Path:
    """The digits with 40 % of the labels of one split (`train` or `val`)
    replaced at random."""
    with np.load(datamod.DIGITS) as digits:
        x, y = digits["x"].astype(np.float32) / 16, digits["y"].astype(np.int64)
    order = np.random.default_rng([0, 7]).permutation(len(x))  # data.split's order for seed 0
    n = int(round(0.1 * len(x)))
    part = order[2 * n:] if noisy == "train" else order[n:2 * n]
    rng = np.random.default_rng(5)
    relabel = part[rng.random(len(part)) < 0.4]
    y[relabel] = rng.integers(0, 10, len(relabel))
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.parametrize("noisy, warns", [("train", True), ("val", False)])
def test_validation_loss_below_training_loss_is_warned_about(tmp_path, capsys, noisy, warns):
    data = skewed_data(tmp_path / "skewed.npz", noisy)
    code = train_main([str(MLP), "--data", str(data), "--epochs", "6", "--out", str(tmp_path / "run"),
                       "--device", "cpu"])
    assert code == 0
    assert (GAP in capsys.readouterr().err) == warns


def test_an_ordinary_run_does_not_warn(tmp_path, capsys):
    assert train_main([str(MLP), "--epochs", "6", "--out", str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert GAP not in capsys.readouterr().err


# ----------------------------------------------------------------- transfer learning

PRETRAINED = """network Source {
    input image[1, 8, 8]
    stem: conv(4, k=3, p=1) -> relu -> maxpool(k=2)
    flatten
    fc1: fc(10)
    extra: fc(3)
}
"""
FINE_TUNED = """network Target {
    input image[1, 8, 8]
    stem: conv(4, k=3, p=1) -> relu -> maxpool(k=2)
    flatten
    fc1: fc(16)
    relu
    head: fc(10)
}
"""


def test_fine_tuning_keeps_frozen_layers_bit_identical_and_reports_the_transfer(tmp_path, capsys):
    source = {"stem.0.weight": np.random.default_rng(0).normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32),
              "stem.0.bias": np.full(4, 0.1, np.float32), "extra.weight": np.zeros((3, 10), np.float32)}
    np.savez(tmp_path / "pre.npz", **source)
    model = write(tmp_path, FINE_TUNED + "train {\n    epochs 2\n}\n")
    out = tmp_path / "ft"
    assert train(model, out, "--weights", str(tmp_path / "pre.npz"), "--freeze", "stem") == 0
    report = capsys.readouterr().err
    assert f"weights from {tmp_path / 'pre.npz'}: 2 of 6 tensors loaded" in report
    assert "initialised (not in the file): fc1.weight, fc1.bias, head.weight, head.bias" in report
    assert "ignored (not in the network): extra.weight" in report
    assert "frozen (no gradient, no optimizer state): stem.0.weight, stem.0.bias\n" in report

    trained = tensors(out / "weights.npz")
    for name in ("stem.0.weight", "stem.0.bias"):
        assert trained[name].tobytes() == source[name].tobytes()
    saved, meta = checkpoint.load(out / LAST)
    assert not [k for k in saved if k.startswith("state/stem")], "no optimizer state for frozen layers"
    assert {"state/head.weight/exp_avg", "state/head.weight/exp_avg_sq", "state/fc1.bias/exp_avg"} <= set(saved)
    assert meta["trainable"] == ["fc1.weight", "fc1.bias", "head.weight", "head.bias"]
    start = check(model)
    initial = build_step(start, TrainConfig(seed=0)).values
    assert not np.array_equal(trained["head.weight"], initial["head.weight"])  # the rest did learn


def test_lr_scale_multiplies_a_layers_step(tmp_path):
    net = check(write(tmp_path, FINE_TUNED))
    x = images(16)
    y = np.arange(16, dtype=np.int64) % 10
    moves = {}
    for scales in ({}, {"fc1": 0.25, "head": 0.0}):
        step = build_step(net, TrainConfig(optimizer={"name": "sgd"}, lr_scale=scales, seed=0))
        session = TrainingSession(step, "cpu")
        before = session.parameters()
        session.train_step(x, y, {}, 0.1, 1)
        after = session.parameters()
        moves[bool(scales)] = {k: after[k] - before[k] for k in before}
    plain, scaled = moves[False], moves[True]
    assert np.abs(plain["fc1.weight"]).max() > 0
    np.testing.assert_allclose(scaled["fc1.weight"], 0.25 * plain["fc1.weight"], rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(scaled["stem.0.weight"], plain["stem.0.weight"], rtol=1e-3, atol=1e-7)
    assert not scaled["head.weight"].any() and plain["head.weight"].any()


def test_weights_whose_shapes_do_not_fit_are_listed_before_training(tmp_path, capsys):
    np.savez(tmp_path / "pre.npz", **{"stem.0.weight": np.zeros((8, 1, 3, 3), np.float32),
                                      "fc1.weight": np.zeros((16, 99), np.float32),
                                      "stem.0.bias": np.zeros(4, np.float32)})
    model = write(tmp_path, FINE_TUNED)
    assert train(model, tmp_path / "ft", "--weights", str(tmp_path / "pre.npz"), "--freeze", "stem") == 2
    err = capsys.readouterr().err
    assert "do not fit the network" in err
    assert "stem.0.weight: expected [4, 1, 3, 3], got [8, 1, 3, 3]" in err
    assert "fc1.weight: expected [16, 64], got [16, 99]" in err
    assert "stem.0.bias" not in err.split("shapes that do not match")[1]
    assert not (tmp_path / "ft").exists()


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("model, flags, says", [
    ("tiny", ["--search", "lr=1e-1..1e-4"], "search space: in 'lr=1e-1..1e-4' the range is empty"),
    ("tiny", ["--search", "depth=1|2"], "search space: unknown key 'depth'"),
    ("tiny", ["--freeze", "stem,fc2"], "'fc2' is no layer or block of Tiny"),
    ("tiny", ["--lr-scale", "stemm=0.1"], "'stemm' is no layer or block of Tiny"),
    ("tiny", ["--cv", "5000"], "--cv 5000: k-fold cross-validation needs 2 ≤ k ≤ 1617"),
    ("tiny", ["--cv", "1"], "--cv 1: k-fold cross-validation needs 2 ≤ k"),
    ("tiny", ["--ensemble", "1"], "an ensemble needs at least 2 members"),
    ("tiny", ["--overfit", "5000"], "--overfit 5000: the data has 1797 samples"),
    ("tiny", ["--augment", "rotate"], "unknown augmentation 'rotate'"),
    ("tiny", ["--cv", "3", "--optimizer", "lbfgs"], "--cv trains with the mini-batch loop"),
    ("mlp", ["--augment", "flip"], "augment works on image inputs [C, H, W]"),
    ("mlp", ["--search", "lr=1e-3|1e-2", "--optimizer", "lbfgs"], "--search trains with the mini-batch loop"),
])
def test_bad_input_is_refused_before_anything_is_trained(tmp_path, capsys, model, flags, says):
    path = write(tmp_path, TINY) if model == "tiny" else MLP
    assert train(path, tmp_path / "run", *flags) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()

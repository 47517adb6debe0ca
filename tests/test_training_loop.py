"""The training loop and `i2dl-train`, end to end on the built-in digits.

Runs go through the command's `main` in this process (so that a test can
interrupt or poison a step with monkeypatch) on a small CNN with batch
norm, max pooling and dropout; the oracles are an uninterrupted run of the
same settings, the exported model evaluated independently, and torch-free
recomputations of what the run recorded.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from i2dl_dsl.cli.run import main as run_main
from helpers import tensors, train
from i2dl_dsl.checker import check
from i2dl_dsl.runtime import create_session
from i2dl_dsl.train import checkpoint
from i2dl_dsl.train import data as datamod
from i2dl_dsl.train.loop import LAST, learning_rate
from i2dl_dsl.train.metrics import accuracy, loss_value
from i2dl_dsl.train.progress import COLUMNS, Progress
from i2dl_dsl.train.run import Settings, config_for, prepare_data
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.step import build_step

ROOT = Path(__file__).resolve().parents[1]
NETWORK = """network Tiny {
    input image[1, 8, 8]
    conv(4, k=3, p=1) -> batchnorm -> relu -> maxpool(k=2)
    flatten -> dropout(0.2)
    fc(10)
}
"""
TRAIN = """
train {
    loss cross_entropy
    optimizer adam(lr=0.01)
    batch 128
    epochs 4
    schedule cosine()
    seed 3
%s}
"""
STEPS_PER_EPOCH = 12  # 1,437 training samples (80 % of 1,797) in batches of 128
TIMING = ("samples_per_s", "seconds")


def write_net(directory: Path, extra: str = "", name: str = "tiny.net") -> Path:
    path = directory / name
    path.write_text(NETWORK + TRAIN % extra)
    return path


def assert_identical(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert sorted(ours) == sorted(theirs)
    different = [k for k in ours if ours[k].tobytes() != theirs[k].tobytes()]
    assert not different, f"not bit-identical: {different}"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def split_of(net_path: Path) -> tuple[datamod.Dataset, datamod.Dataset, datamod.Dataset]:
    net = check(net_path)
    return prepare_data(net, Settings.merge(net.train, {}), integer_labels=True)


def exported_predictions(run: Path, x: np.ndarray) -> np.ndarray:
    return create_session(str(run / "model.onnx"), "cpu").run({"image": x})[0]


class StepSpy:
    """Wraps TrainingSession.train_step: counts steps, records snapshots and
    masks, and runs an action after a chosen step."""

    def __init__(self, monkeypatch, after: dict[int, Callable] | None = None, record: tuple[int, ...] = (),
                 before: dict[int, Callable] | None = None):
        self.count = 0
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}
        self.masks: list[dict[str, np.ndarray]] = []
        self.after, self.before, self.record = after or {}, before or {}, record
        real = TrainingSession.train_step
        spy = self

        def train_step(session, x, y, masks, lr, step):
            spy.count += 1
            if spy.count in spy.before:
                x = spy.before[spy.count](x)
            spy.masks.append({k: v.copy() for k, v in masks.items()})
            result = real(session, x, y, masks, lr, step)
            if spy.count in spy.record:
                spy.snapshots[spy.count] = session.snapshot()
            if spy.count in spy.after:
                spy.after[spy.count](session)
            return result

        monkeypatch.setattr(TrainingSession, "train_step", train_step)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """One uninterrupted 4-epoch run, with snapshots after steps 12 (end of
    epoch 1) and 17 (inside epoch 2) and the dropout masks of every step."""
    root = tmp_path_factory.mktemp("baseline")
    net = write_net(root)
    with pytest.MonkeyPatch.context() as mp:
        spy = StepSpy(mp, record=(STEPS_PER_EPOCH, 17))
        assert train(net, root / "run") == 0
    return root / "run", spy


# ----------------------------------------------------------------- resuming


def test_resume_after_two_of_four_epochs_equals_an_uninterrupted_run(tmp_path, baseline, monkeypatch, capsys):
    from i2dl_dsl.train.loop import Trainer

    reference, _ = baseline
    net = write_net(tmp_path)
    real_epoch = Trainer._epoch

    def epoch(trainer):
        if trainer.position["epoch"] == 2:
            raise KeyboardInterrupt  # Ctrl-C as the third epoch begins
        real_epoch(trainer)

    monkeypatch.setattr(Trainer, "_epoch", epoch)
    assert train(net, tmp_path / "run") == 130
    assert "interrupted: checkpoint saved" in capsys.readouterr().err
    assert len(read_csv(tmp_path / "run" / "metrics.csv")) == 2
    monkeypatch.setattr(Trainer, "_epoch", real_epoch)

    assert train(net, tmp_path / "run", "--resume") == 0
    assert_identical(tensors(tmp_path / "run" / "weights.npz"), tensors(reference / "weights.npz"))
    assert_identical(checkpoint.load(tmp_path / "run" / LAST)[0], checkpoint.load(reference / LAST)[0])
    assert without_timing(read_csv(tmp_path / "run" / "metrics.csv")) == \
        without_timing(read_csv(reference / "metrics.csv"))


def test_ctrl_c_inside_a_step_saves_a_consistent_checkpoint(tmp_path, baseline, monkeypatch, capsys):
    """A real SIGINT arriving while step 17 (epoch 2) runs: the step finishes,
    the checkpoint holds exactly the state after it, and resuming from it
    gives the uninterrupted run's weights."""
    reference, reference_spy = baseline
    net = write_net(tmp_path)
    StepSpy(monkeypatch, after={17: lambda session: os.kill(os.getpid(), signal.SIGINT)})
    assert train(net, tmp_path / "run") == 130
    assert "interrupted: checkpoint saved" in capsys.readouterr().err

    saved, meta = checkpoint.load(tmp_path / "run" / LAST)
    assert (meta["position"]["epoch"], meta["position"]["batch"], meta["position"]["step"]) == (1, 5, 17)
    assert_identical(saved, reference_spy.snapshots[17])

    monkeypatch.undo()
    assert train(net, tmp_path / "run", "--resume") == 0
    assert_identical(tensors(tmp_path / "run" / "weights.npz"), tensors(reference / "weights.npz"))
    assert without_timing(read_csv(tmp_path / "run" / "metrics.csv")) == \
        without_timing(read_csv(reference / "metrics.csv"))


def test_keyboard_interrupt_before_a_step_resumes_exactly(tmp_path, baseline, monkeypatch):
    reference, reference_spy = baseline

    def interrupt(x):
        raise KeyboardInterrupt

    net = write_net(tmp_path)
    StepSpy(monkeypatch, before={18: interrupt})
    assert train(net, tmp_path / "run") == 130
    saved, meta = checkpoint.load(tmp_path / "run" / LAST)
    assert meta["position"]["step"] == 17
    assert_identical(saved, reference_spy.snapshots[17])
    monkeypatch.undo()
    assert train(net, tmp_path / "run", "--resume") == 0
    assert_identical(tensors(tmp_path / "run" / "weights.npz"), tensors(reference / "weights.npz"))


def test_ctrl_c_is_held_until_the_block_ends():
    from i2dl_dsl.train.loop import deferred_interrupts

    done = []
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("rest of the step")
    assert done == ["rest of the step"]
    assert signal.getsignal(signal.SIGINT) is handler


def test_resume_without_a_checkpoint_is_a_user_error(tmp_path, capsys):
    assert train(write_net(tmp_path), tmp_path / "empty", "--resume") == 2
    assert "no checkpoint" in capsys.readouterr().err


# ----------------------------------------------------------------- dropout masks


def test_dropout_masks_are_fresh_each_step_and_seeded(tmp_path, baseline, monkeypatch):
    _, reference_spy = baseline
    masks = [m["dropout1.mask"] for m in reference_spy.masks]
    assert len(masks) == 4 * STEPS_PER_EPOCH
    keep = 0.8
    for mask in masks:
        assert set(np.unique(mask)) <= {np.float32(0), np.float32(1 / keep)}
    assert len({m.tobytes() for m in masks}) == len(masks), "a mask repeated"
    dropped = np.mean([np.mean(m == 0) for m in masks])
    assert abs(dropped - 0.2) < 0.01

    def masks_of(seed: int) -> list[np.ndarray]:
        with pytest.MonkeyPatch.context() as mp:
            spy = StepSpy(mp)
            assert train(write_net(tmp_path), tmp_path / f"seed{seed}", "--seed", str(seed), "--epochs", "1") == 0
        return [m["dropout1.mask"] for m in spy.masks]

    same, other = masks_of(3), masks_of(4)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(same, masks))
    assert not any(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(other, masks))


# ----------------------------------------------------------------- divergence


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, baseline, monkeypatch, capsys):
    _, reference_spy = baseline
    net = write_net(tmp_path)
    StepSpy(monkeypatch, before={STEPS_PER_EPOCH + 3: lambda x: x * np.float32("nan")})
    assert train(net, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert f"the loss became nan at epoch 2, step {STEPS_PER_EPOCH + 3}" in err
    assert str(tmp_path / "run" / LAST) in err  # where the last good checkpoint is
    saved, meta = checkpoint.load(tmp_path / "run" / LAST)
    assert meta["position"]["epoch"] == 1
    assert_identical(saved, reference_spy.snapshots[STEPS_PER_EPOCH])
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_weights_that_become_nan_at_an_epochs_end_are_not_checkpointed(tmp_path, baseline, monkeypatch, capsys):
    """The last step of epoch 2 had a finite loss but left NaN weights: the
    epoch's evaluation catches it before the checkpoint is overwritten."""
    _, reference_spy = baseline

    def poison(session):
        session.load({"fc1.weight": np.full((10, 64), np.nan, np.float32)})

    net = write_net(tmp_path)
    StepSpy(monkeypatch, after={2 * STEPS_PER_EPOCH: poison})
    assert train(net, tmp_path / "run") == 2
    assert "epoch 2" in capsys.readouterr().err
    saved, meta = checkpoint.load(tmp_path / "run" / LAST)
    assert meta["position"]["epoch"] == 1
    assert_identical(saved, reference_spy.snapshots[STEPS_PER_EPOCH])


def test_a_huge_learning_rate_diverges_with_a_clear_message(tmp_path, capsys):
    assert train(write_net(tmp_path), tmp_path / "run", "--optimizer", "sgd", "--lr", "1e6") == 2
    err = capsys.readouterr().err
    assert "error: the loss became" in err and "training stopped" in err and "lower the learning rate" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------- early stopping


def val_loss_of_exported(run: Path, val: datamod.Dataset) -> float:
    return loss_value("cross_entropy", exported_predictions(run, val.x), val.y)


@pytest.mark.parametrize("restore", ["true", "false"])
def test_early_stopping_restores_the_best_epoch(tmp_path, restore: str):
    # a min_delta above the first epoch's loss: only the first epoch counts as an improvement
    net = write_net(tmp_path, f"    early_stopping(patience=2, min_delta=5, restore_best={restore})\n")
    assert train(net, tmp_path / "run", "--epochs", "10") == 0
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert len(rows) == 3  # epoch 1 best, then two without enough improvement
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["best_epoch"] == 1
    _, val, _ = split_of(net)
    final = val_loss_of_exported(tmp_path / "run", val)
    chosen = rows[0] if restore == "true" else rows[-1]
    assert final == pytest.approx(float(chosen["val_loss"]), rel=1e-5)
    assert float(rows[0]["val_loss"]) != pytest.approx(float(rows[-1]["val_loss"]), rel=1e-3)
    if restore == "true":
        assert_identical(tensors(tmp_path / "run" / "weights.npz"), checkpoint.load(tmp_path / "run" / "best.npz")[0])


# ----------------------------------------------------------------- files of a run


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / LAST
    checkpoint.save(path, {"w": np.arange(3, dtype=np.float32)}, {"epoch": 1})
    before = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"w": np.zeros(3, dtype=np.float32)}, {"epoch": 2})
    assert path.read_bytes() == before
    assert checkpoint.load(path)[1] == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]  # no temporary file left


def test_metrics_csv_has_the_columns_and_a_row_per_epoch(baseline):
    run, _ = baseline
    rows = read_csv(run / "metrics.csv")
    with open(run / "metrics.csv", newline="") as f:
        assert next(csv.reader(f)) == list(COLUMNS)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    for epoch, row in enumerate(rows):
        assert float(row["lr"]) == pytest.approx(learning_rate(0.01, {"name": "cosine"}, epoch, 4), rel=1e-12)
        assert 0 <= float(row["train_acc"]) <= 1 and 0 <= float(row["val_acc"]) <= 1
        assert math.isfinite(float(row["train_loss"])) and float(row["samples_per_s"]) > 0
    # the last row's validation figures are those of the final weights
    _, val, _ = split_of(run.parent / "tiny.net")
    z = exported_predictions(run, val.x)
    assert float(rows[-1]["val_loss"]) == pytest.approx(loss_value("cross_entropy", z, val.y), rel=1e-5)
    assert float(rows[-1]["val_acc"]) == pytest.approx(accuracy("cross_entropy", z, val.y))
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])


def test_curves_png_is_a_png(baseline):
    run, _ = baseline
    data = (run / "curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > height > 100


def test_exported_model_runs_in_i2dl_run_and_reproduces_predict(baseline, tmp_path):
    run, _ = baseline
    net_path = run.parent / "tiny.net"
    _, _, test = split_of(net_path)
    np.save(tmp_path / "x.npy", test.x)
    assert run_main([str(run / "model.onnx"), "--input", str(tmp_path / "x.npy"), "--output",
                     str(tmp_path / "y.npy"), "--device", "cpu"]) == 0
    z = np.load(tmp_path / "y.npy")

    net = check(net_path)
    settings = Settings.merge(net.train, {})
    session = TrainingSession(build_step(net, config_for(settings), tensors(run / "weights.npz")), "cpu")
    np.testing.assert_allclose(z, session.predict(test.x), rtol=1e-5, atol=1e-5)
    result = json.loads((run / "result.json").read_text())
    assert result["test_samples"] == len(test) == 180
    assert accuracy("cross_entropy", z, test.y) == pytest.approx(result["test_acc"])


def test_session_keeps_tensors_on_the_device(tmp_path, monkeypatch):
    """Between steps, parameters, buffers and optimizer state stay OrtValues
    on the session's device; a step moves only the batch, its masks, lr and t in."""
    import onnxruntime as ort

    net = check(write_net(tmp_path))
    step = build_step(net, config_for(Settings.merge(net.train, {})))
    session = TrainingSession(step, "cpu")
    uploads = []
    real = session._ortvalue
    monkeypatch.setattr(session, "_ortvalue", lambda array: uploads.append(array.shape) or real(array))
    before = dict(session.tensors)
    initial = session.parameters()
    x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    session.train_step(x, np.arange(8), {"dropout1.mask": np.ones((8, 64), np.float32)}, 0.01, 1)
    # the step wrote into the second set of buffers; the next step writes back into the first
    after_one = dict(session.tensors)
    assert all(after_one[name] is not before[name] for name in step.values)
    session.train_step(x, np.arange(8), {"dropout1.mask": np.ones((8, 64), np.float32)}, 0.01, 2)
    assert all(session.tensors[name] is before[name] for name in step.values)
    assert sorted(uploads) == sorted([(8, 1, 8, 8), (8,), (), (), (8, 64)] * 2)
    # host copies are copies: neither the step's initial values nor parameters() see the writes
    changed = session.parameters()
    for name, value in initial.items():
        np.testing.assert_array_equal(value, step.values[name])
        assert not np.array_equal(changed[name], value), name
    # optimizer state is flat on the device (one vector per slot), per parameter in snapshots
    assert set(session.tensors) == set(step.values) | {f"state/{slot}" for slot in step.slots}
    assert set(session.snapshot()) == set(step.values) | set(step.state)
    for name, value in session.tensors.items():
        assert isinstance(value, ort.OrtValue) and value.device_name().lower() == "cpu", name


# ----------------------------------------------------------------- settings


def test_flags_override_the_train_section(tmp_path):
    net = write_net(tmp_path)
    out = tmp_path / "run"
    assert train(net, out, "--epochs", "1", "--batch", "200", "--optimizer", "momentum", "--lr", "0.02",
                 "--loss", "hinge", "--seed", "5") == 0
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 1 and float(rows[0]["lr"]) == 0.02
    saved, meta = checkpoint.load(out / LAST)
    assert meta["position"]["step"] == math.ceil(1437 / 200)
    assert {k.rsplit("/", 1)[1] for k in saved if k.startswith("state/")} == {"velocity"}
    # the validation loss recorded is the hinge loss of the final weights on the seed-5 split
    settings = Settings.merge(check(net).train, {"seed": 5})
    _, val, _ = prepare_data(check(net), settings, integer_labels=True)
    z = exported_predictions(out, val.x)
    assert float(rows[0]["val_loss"]) == pytest.approx(loss_value("hinge", z, val.y), rel=1e-5)


def test_the_train_section_gives_the_defaults(tmp_path):
    source = tmp_path / "section.net"
    source.write_text(NETWORK + "\ntrain {\n    optimizer momentum(beta=0.5)\n    lr 0.03\n    batch 500\n"
                                "    epochs 2\n    loss mse\n}\n")
    assert train(source, tmp_path / "run") == 0
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [float(r["lr"]) for r in rows] == [0.03, 0.03]
    saved, meta = checkpoint.load(tmp_path / "run" / LAST)
    assert meta["position"]["step"] == 2 * math.ceil(1437 / 500)
    assert any(k.endswith("/velocity") for k in saved)


def test_settings_merge_in_any_order() -> None:
    section = {"optimizer": {"name": "sgd", "lr": 0.5}}
    one = Settings.merge(section, {"lr": 0.02, "optimizer": "adam"}).optimizer()
    two = Settings.merge(section, {"optimizer": "adam", "lr": 0.02}).optimizer()
    assert one == two and one["name"] == "adam" and one["lr"] == 0.02
    kept = Settings.merge(section, {"optimizer": "sgd"}).optimizer()
    assert kept["lr"] == 0.5


# ----------------------------------------------------------------- bad data


def bad_data(tmp_path: Path, case: str) -> Path:
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, 20)
    path = tmp_path / f"{case}.npz"
    if case == "missing":
        return path
    if case == "no_y":
        np.savez(path, x=x)
    elif case == "pickled":
        np.savez(path, x=np.array([{"pixels": 1}] * 20, dtype=object), y=y)
    elif case == "shape":
        np.savez(path, x=x.reshape(20, 8, 8)[:, :5, :5], y=y)
    elif case == "labels":
        np.savez(path, x=x, y=np.where(np.arange(20) == 7, 12, y))
    elif case == "negative":
        np.savez(path, x=x, y=np.where(np.arange(20) == 7, -1, y))
    elif case == "lengths":
        np.savez(path, x=x, y=y[:15])
    elif case == "nan":
        x[3, 0, 2, 2] = np.nan
        np.savez(path, x=x, y=y)
    elif case == "empty":
        np.savez(path, x=x[:0], y=y[:0])
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("no_y", "has no array 'y'"),
    ("pickled", "pickled"),
    ("shape", "are [5, 5]; the network's input is [1, 8, 8]"),
    ("labels", "to 12, but the network has 10 outputs"),
    ("negative", "labels run from -1 to"),
    ("lengths", "x has 20 samples but y has 15"),
    ("nan", "x holds NaN or Inf values in 1 sample(s), the first is sample 3"),
    ("empty", "holds no samples"),
])
def test_bad_data_is_refused_before_training(tmp_path, capsys, case: str, message: str):
    out = tmp_path / "run"
    assert train(write_net(tmp_path), out, "--data", str(bad_data(tmp_path, case))) == 2
    err = capsys.readouterr().err
    assert message in err and "error:" in err and "Traceback" not in err, err
    assert not out.exists()


def test_an_npz_with_x_and_y_trains(tmp_path):
    x, y = datamod.load("digits", (1, 8, 8)).x[:300], datamod.load("digits", (1, 8, 8)).y[:300]
    np.savez(tmp_path / "d.npz", x=x.reshape(300, 64), y=y)  # flat samples fit the [1, 8, 8] input
    assert train(write_net(tmp_path), tmp_path / "run", "--data", str(tmp_path / "d.npz"), "--epochs", "1") == 0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["test_samples"] == 30


def test_split_is_disjoint_complete_and_seeded():
    data = datamod.load("digits", (1, 8, 8))
    data = datamod.Dataset(data.x, np.arange(len(data)), "index")  # each sample's label is its index
    train_part, val, test = datamod.split(data, 0.1, 0.2, seed=1)
    assert (len(train_part), len(val), len(test)) == (1258, 180, 359)
    assert sorted(np.concatenate([train_part.y, val.y, test.y])) == list(range(len(data)))
    assert np.array_equal(datamod.split(data, 0.1, 0.2, seed=1)[2].y, test.y)
    assert not np.array_equal(datamod.split(data, 0.1, 0.2, seed=2)[2].y, test.y)


def test_batches_cover_every_sample_once_and_never_hold_one_alone():
    sizes = {count: [len(b) for b in datamod.batches(count, 4, seed=0, epoch=0)] for count in (8, 9, 10, 1)}
    assert sizes == {8: [4, 4], 9: [4, 5], 10: [4, 4, 2], 1: [1]}
    order = np.concatenate(datamod.batches(1437, 128, seed=0, epoch=2))
    assert sorted(order) == list(range(1437))
    assert not np.array_equal(order, np.concatenate(datamod.batches(1437, 128, seed=0, epoch=3)))


def test_batch_norm_over_vectors_refuses_batches_of_one(tmp_path, capsys):
    source = tmp_path / "bn.net"
    source.write_text("network BN {\n    input x[64]\n    fc(16) -> batchnorm -> relu\n    fc(10)\n}\n")
    assert train(source, tmp_path / "run", "--batch", "1") == 2
    assert "batch norm 'bn1' sees 1 value per channel in a batch of 1" in capsys.readouterr().err


# ----------------------------------------------------------------- progress


class Terminal:
    def __init__(self):
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_progress_bar_shows_batches_elapsed_time_loss_accuracy_and_speed():
    terminal = Terminal()
    progress = Progress(1, 5, batches=4, stream=terminal)
    progress.update(2, 0.51234, 0.875, 1234.4)
    assert (progress.bar.n, progress.bar.postfix) == (2, "loss 0.5123 acc 0.8750")
    assert "epoch 2/5:" in terminal.text and "0/4 [00:00<?" in terminal.text  # batches, elapsed time, ETA
    progress.finish({"train_loss": 0.4, "train_acc": 0.9, "val_loss": 0.3, "val_acc": 0.95, "samples_per_s": 999.6})
    summary = terminal.text.split("\r")[-1].split("\x1b[A")[-1].lstrip()
    assert re.search(r"epoch 2/5 loss 0.4000 acc 0.9000 val_loss 0.3000 val_acc 0.9500 1,000 samples/s \d+\.\d s\n$",
                     summary), repr(terminal.text)


# ----------------------------------------------------------------- the README's command


def test_readme_command_trains_the_digits_cnn_to_98_percent(tmp_path):
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "i2dl_dsl.cli.train", "models/digits_cnn.net",
                                "--out", str(tmp_path / "digits")], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert completed.returncode == 0, completed.stderr
    result = json.loads((tmp_path / "digits" / "result.json").read_text())
    print(f"\ndigits_cnn: test accuracy {result['test_acc']:.4f} on {result['test_samples']} samples "
          f"in {seconds:.1f} s ({result['epochs']} epochs)")
    assert result["test_acc"] >= 0.98
    assert seconds < 60

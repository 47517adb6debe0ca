"""Runs never clobber each other: numbered run directories with a `latest`
link, a lock while a run writes, finished runs kept unless --resume or
--overwrite, leftover temporaries removed; and what a terminal user expects
(exit 130 on Ctrl-C after saving, a clear exit 2 for a run directory that
cannot be written, a progress display that suits a log file, a plot that
marks the best epoch)."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import train
from i2dl_dsl.cli.train import main as train_main
from i2dl_dsl.files import PARTIAL, save_bytes
from i2dl_dsl.train import checkpoint
from i2dl_dsl.train.loop import LAST
from i2dl_dsl.train.progress import Progress, best_epoch, figure
from i2dl_dsl.train.rundir import LOCK, locked
from i2dl_dsl.train.session import TrainingSession

TINY = """network Tiny {
    input image[1, 8, 8]
    conv(4, k=3, p=1) -> relu -> maxpool(k=2)
    flatten
    fc1: fc(10)
}

train {
    optimizer adam(lr=0.01)
    batch 64
    epochs 1
}
"""


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "tiny.net"
    path.write_text(TINY)
    return path


def run_default(net, *flags: str) -> int:
    """`i2dl-train NET` without --out, as a user types it."""
    return train_main([str(net), "--device", "cpu", "--quiet", *flags])


# ----------------------------------------------------------------- numbered runs


def test_runs_without_out_are_numbered_and_latest_follows(tmp_path, net, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_default(net) == 0 and run_default(net) == 0
    root = tmp_path / "runs" / "tiny"
    assert sorted(p.name for p in root.iterdir()) == ["1", "2", "latest"]
    assert (root / "latest").resolve() == (root / "2").resolve()
    assert (root / "1" / "result.json").is_file() and (root / "2" / "result.json").is_file()
    assert "wrote runs/tiny/2/" in capsys.readouterr().out
    assert run_default(net, "--resume", "--epochs", "2") == 0  # --resume alone continues the latest run
    assert len((root / "2" / "metrics.csv").read_text().splitlines()) == 3


def test_a_run_refused_before_writing_leaves_no_numbered_directory(tmp_path, net, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_default(net) == 0
    assert run_default(net, "--data", str(tmp_path / "missing.npz")) == 2
    root = tmp_path / "runs" / "tiny"
    assert sorted(p.name for p in root.iterdir()) == ["1", "latest"]
    assert (root / "latest").resolve() == (root / "1").resolve()


def test_a_first_run_refused_before_writing_leaves_no_model_directory(tmp_path, net, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_default(net, "--data", str(tmp_path / "missing.npz")) == 2
    assert not (tmp_path / "runs" / "tiny").exists()


def test_experiments_write_under_the_run_directory(tmp_path, net, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_default(net, "--cv", "2") == 0
    run = tmp_path / "runs" / "tiny" / "1"
    assert {"fold1", "fold2", "result.json"} <= {p.name for p in run.iterdir()}


# ----------------------------------------------------------------- locks and finished runs


def test_a_second_training_into_a_locked_directory_is_refused_at_once(tmp_path, net, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(out / LOCK)!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'%d' % os.getpid())\n"
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert train(net, out) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"the run directory '{out}' is in use by process {holder.pid}" in err
    assert not (out / "metrics.csv").exists()
    assert train(net, out) == 0  # the lock died with its process


def test_the_lock_is_exclusive_within_one_process_too(tmp_path, net, capsys):
    with locked(tmp_path):
        assert train(net, tmp_path) == 2
    assert f"in use by process {os.getpid()}" in capsys.readouterr().err


def test_a_finished_run_is_kept_unless_resume_or_overwrite(tmp_path, net, capsys):
    out = tmp_path / "run"
    assert train(net, out) == 0
    before = (out / "weights.npz").read_bytes()
    assert train(net, out, "--lr", "0.5") == 2
    err = capsys.readouterr().err
    assert "holds a finished run" in err and "--overwrite" in err and "--resume" in err
    assert (out / "weights.npz").read_bytes() == before
    assert train(net, out, "--resume", "--overwrite") == 2
    assert train(net, out, "--overwrite", "--lr", "0.5") == 0
    assert (out / "weights.npz").read_bytes() != before


# ----------------------------------------------------------------- temporaries


def test_temporaries_are_named_so_users_recognise_them(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (seen.append(os.path.basename(a)), real_replace(a, b)))
    save_bytes(tmp_path / "model.onnx", b"x")
    assert len(seen) == 1 and seen[0].startswith(f".model.onnx.{PARTIAL}-")


def test_leftover_temporaries_are_removed_by_the_next_run(tmp_path, net):
    out = tmp_path / "run"
    assert train(net, out) == 0
    (out / "fold1").mkdir()
    ours = [out / f".checkpoint.npz.{PARTIAL}-0badc0de", out / ".model.onnx.1234abcd.tmp",
            out / "fold1" / f".weights.npz.{PARTIAL}-00ff"]
    theirs = [out / ".notes.tmp", out / "model.onnx.backup"]
    for path in ours + theirs:
        path.write_bytes(b"left behind by a kill")
    assert train(net, out, "--resume", "--epochs", "2") == 0
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)


# ----------------------------------------------------------------- run directories that cannot be written


def test_an_out_under_a_file_is_refused_before_training(tmp_path, net, capsys):
    (tmp_path / "afile").write_text("")
    assert train(net, tmp_path / "afile" / "run") == 2
    err = capsys.readouterr().err
    assert f"cannot write the run in '{tmp_path / 'afile' / 'run'}'" in err and "Not a directory" in err
    assert "internal error" not in err


@pytest.mark.parametrize("call, code, reason", [
    ("mkdir", errno.EROFS, "Read-only file system"),
    ("pwrite", errno.ENOSPC, "No space left on device"),
])
def test_a_read_only_or_full_file_system_is_refused_before_training(tmp_path, net, capsys, monkeypatch, call, code,
                                                                    reason):
    def fail(*args, **kwargs):
        raise OSError(code, reason)

    if call == "mkdir":
        monkeypatch.setattr("pathlib.Path.mkdir", fail)
    else:
        monkeypatch.setattr(os, "pwrite", fail)
    started = []
    monkeypatch.setattr(TrainingSession, "train_step", lambda *a: started.append(1))
    assert train(net, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert f"cannot write the run in '{tmp_path / 'run'}': {reason}" in err and not started


def test_a_disk_that_fills_during_training_is_a_clear_error(tmp_path, net, capsys, monkeypatch):
    def full(path, *args):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint, "save_arrays", full)
    assert train(net, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert f"cannot write the run in '{tmp_path / 'run' / LAST}': No space left on device" in err
    assert "--resume" in err and "internal error" not in err


# ----------------------------------------------------------------- data and checkpoints


def test_two_samples_train_and_say_plainly_that_nothing_was_tested(tmp_path, net, capsys):
    data = tmp_path / "two.npz"
    np.savez(data, x=np.zeros((2, 1, 8, 8), np.float32), y=np.array([0, 1]))
    assert train(net, tmp_path / "run", "--data", str(data)) == 0
    out = capsys.readouterr().out
    assert "test: none (the test split of" in out and "is empty" in out


def test_a_misshapen_checkpoint_tensor_is_refused_by_name_before_resuming(tmp_path, net, capsys, monkeypatch):
    out = tmp_path / "run"
    assert train(net, out) == 0
    saved, meta = checkpoint.load(out / LAST)
    saved["fc1.weight"] = saved["fc1.weight"][:, :5]
    checkpoint.save(out / LAST, saved, meta)
    started = []
    monkeypatch.setattr(TrainingSession, "train_step", lambda *a: started.append(1))
    assert train(net, out, "--resume", "--epochs", "2") == 2
    err = capsys.readouterr().err
    assert "tensor 'fc1.weight' is [10, 5] float32, the network expects [10, 64] float32" in err and not started


# ----------------------------------------------------------------- Ctrl-C and the overfitting verdict


def test_ctrl_c_in_a_step_saves_the_checkpoint_and_exits_130(tmp_path, net, capsys, monkeypatch):
    real_step = TrainingSession.train_step
    steps = []

    def step(self, *args):
        steps.append(1)
        if len(steps) == 3:
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(TrainingSession, "train_step", step)
    out = tmp_path / "run"
    assert train(net, out, "--batch", "16") == 130
    err = capsys.readouterr().err
    assert f"interrupted: checkpoint saved in {out / LAST}" in err and f"continue with --resume --out {out}" in err
    assert checkpoint.load(out / LAST)[1]["position"]["step"] == 2
    monkeypatch.undo()
    assert train(net, out, "--resume") == 0  # the lock went with the interrupted run


def test_ctrl_c_in_lbfgs_writes_the_last_iterate_and_exits_130(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from i2dl_dsl.train.lbfgs import Objective

    real_call = Objective.__call__
    calls = []

    def call(self, theta):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_call(self, theta)

    monkeypatch.setattr(Objective, "__call__", call)
    out = tmp_path / "run"
    model = Path(__file__).resolve().parents[1] / "models" / "linear_regression.net"
    assert train(model, out) == 130
    err = capsys.readouterr().err
    assert f"interrupted: the last iterate's model and weights are saved in {out}" in err
    assert (out / "weights.npz").is_file() and (out / "result.json").is_file()


# ----------------------------------------------------------------- what the user sees


class Log(io.StringIO):
    """A stream that is no terminal (a log file, a pipe)."""

    def isatty(self) -> bool:
        return False


def test_progress_on_a_narrow_log_is_one_line_per_epoch(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    log = Log()
    progress = Progress(0, 3, batches=200, stream=log)
    for done in range(1, 201):
        progress.update(done, 0.5, 0.9, 1000.0)
    progress.finish({"train_loss": 0.4, "train_acc": 0.9, "val_loss": 0.3, "samples_per_s": 1000.0})
    lines = log.getvalue().split("\n")
    assert len(lines) == 2 and lines[1] == "" and "\r" not in log.getvalue()
    assert lines[0].startswith("epoch 1/3 loss 0.4000 acc 0.9000 val_loss 0.3000 1,000 samples/s ")
    assert lines[0].endswith(" s")


def test_quiet_progress_writes_nothing():
    log = Log()
    progress = Progress(0, 3, batches=2, quiet=True, stream=log)
    progress.update(1, 0.5, None, 10.0)
    progress.finish({"train_loss": 0.4, "samples_per_s": 1.0})
    assert log.getvalue() == ""


def history(losses: list[float], val: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": t, "val_loss": v, "train_acc": 0.5, "val_acc": 0.5}
            for i, (t, v) in enumerate(zip(losses, val))]


def test_the_plot_has_whole_epoch_ticks_the_best_epoch_and_a_log_loss_axis():
    import matplotlib.pyplot as plt

    rows = history([2.0, 0.5, 0.1, 0.05, 0.02], [2.1, 0.6, 0.15, 0.2, 0.3])
    assert best_epoch(rows) == 3 and best_epoch(rows, 2) == 2
    fig = figure(rows, "t", best_epoch(rows))
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_yscale() == "log" and ax_acc.get_yscale() == "linear"
    for ax in (ax_loss, ax_acc):
        ticks = [t for t in ax.get_xticks() if 1 <= t <= 5]
        assert ticks and all(float(t).is_integer() for t in ticks)
        marks = [line for line in ax.lines if line.get_label() == "best epoch 3"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [3, 3]
    plt.close(fig)
    flat = figure(history([0.5, 0.4], [0.45, 0.42]), "t")
    assert flat.axes[0].get_yscale() == "linear" and not any("best" in line.get_label() for line in flat.axes[0].lines)
    plt.close(flat)


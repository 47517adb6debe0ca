"""The ray backend on a local 2-CPU Ray cluster: data-parallel training
against one process, a killed training worker, a search on Ray Tune with a
killed trial, its resumption, and cross-validation against the local
backend. Slow (a Ray cluster starts); run with `python -m pytest -m ray`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("torch")

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.train import experiments  # noqa: E402
from i2dl_dsl.train.backends import Backend  # noqa: E402
from i2dl_dsl.train.experiments import make_trainer  # noqa: E402
from i2dl_dsl.train.parallel import KILLED, train_parallel  # noqa: E402
from i2dl_dsl.train.run import Settings, train_network  # noqa: E402
from i2dl_dsl.train.search import plan_search, trial_settings  # noqa: E402
from i2dl_dsl.train.tune_search import run_tune  # noqa: E402
from helpers import tensors  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# No dropout, no batch norm: N workers must give one process's weights.
PLAIN = """
network Plain {
    input image[1, 8, 8]
    conv(8, k=3, p=1) -> relu -> maxpool(k=2)
    flatten
    fc(32) -> relu
    fc(10)
}
train {
    optimizer adam(lr=1e-3)
    batch 32
    epochs 2
    seed 0
    early_stopping(patience=5)
}
"""
MLP = Path(__file__).resolve().parents[1] / "models" / "mlp.net"


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module: 2 CPUs, a small object store."""
    import ray

    from i2dl_dsl.train.cluster import start_local

    start_local(cpus=2)
    yield Backend("ray", address="local")
    ray.shutdown()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The network's file, and the weights one process trains from it."""
    folder = tmp_path_factory.mktemp("plain")
    path = folder / "plain.net"
    path.write_text(PLAIN, encoding="utf-8")
    net = check(path)
    train_network(net, Settings.merge(net.train, {}), folder / "one", device="cpu", quiet=True)
    return path, tensors(folder / "one" / "weights.npz")


def _largest_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert set(a) == set(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_two_workers_give_one_process_weights(cluster, plain, tmp_path):
    path, expected = plain
    net = check(path)
    result = train_parallel(net, Settings.merge(net.train, {}), tmp_path, Backend("ray", workers=2), "cpu",
                            quiet=True)
    assert result["workers"] == 2 and result["epochs"] == 2 and result["restarts"] == []
    assert result["best_epoch"] == 2 and (tmp_path / "best.npz").exists()  # the weights are the best epoch's
    assert _largest_difference(tensors(tmp_path / "weights.npz"), expected) <= 1e-4


def test_a_killed_worker_restarts_the_run_from_its_last_checkpoint(cluster, plain, tmp_path):
    path, expected = plain
    net = check(path)
    # worker 1 dies in the second epoch, at its 6th batch: the group restarts from epoch 1's checkpoint
    result = train_parallel(net, Settings.merge(net.train, {}), tmp_path, Backend("ray", workers=2), "cpu",
                            quiet=True, fault=(1, 1, 5))
    assert (tmp_path / KILLED).exists()
    assert result["restarts"] == [1] and result["epochs"] == 2
    assert _largest_difference(tensors(tmp_path / "weights.npz"), expected) <= 1e-4


def test_a_search_on_tune_survives_a_killed_trial_and_resumes(cluster, tmp_path):
    settings = Settings.merge(check(MLP).train, {"epochs": 4})
    space = "lr=1e-4..1e-1:log"
    ranked, table, best = run_tune(MLP, settings, space, 4, "random", tmp_path, cluster, "cpu", fault=(2, 1))
    assert (tmp_path / "trial2" / ".fault-injected").exists()
    assert best == tmp_path / "best.net" and check(best).train["optimizer"]["lr"] == ranked[0].config["lr"]
    assert len(table.splitlines()) == 1 + 4 and sorted(t.index for t in ranked) == [1, 2, 3, 4]
    assert ranked[0].epochs == 4 and sum(t.epochs for t in ranked) < 4 * 4  # ASHA stopped some early
    # The killed trial went on from its checkpoint: its curve is a straight run's.
    killed = next(t for t in ranked if t.index == 2)
    plan = plan_search(MLP, settings, space, 4, "random")
    straight = make_trainer(check(MLP), trial_settings(settings, killed.config), plan.train_set, plan.val_set,
                            tmp_path / "straight", "cpu", epochs=killed.epochs, schedule_epochs=4)
    straight.run()
    with open(tmp_path / "trial2" / "metrics.csv", encoding="utf-8") as f:
        losses = [float(row["val_loss"]) for row in csv.DictReader(f)]
    np.testing.assert_allclose(losses, [row["val_loss"] for row in straight.history], rtol=1e-5)
    # Resuming the finished search restores Tune's records instead of training again.
    again = run_tune(MLP, settings, space, 4, "random", tmp_path, cluster, "cpu", resume=True)
    assert again[1] == table


def test_cross_validation_and_ensembles_on_ray_give_the_local_numbers(cluster, tmp_path):
    net = check(MLP)
    settings = Settings.merge(net.train, {"epochs": 1})
    local = experiments.cross_validate(net, settings, 2, tmp_path / "local", "cpu")
    on_ray = experiments.cross_validate(net, settings, 2, tmp_path / "ray", "cpu", backend=cluster)
    assert json.dumps(on_ray, sort_keys=True) == json.dumps(local, sort_keys=True)
    local = experiments.ensemble(net, settings, 2, tmp_path / "local-ensemble", "cpu")
    on_ray = experiments.ensemble(net, settings, 2, tmp_path / "ray-ensemble", "cpu", backend=cluster)
    assert json.dumps(on_ray, sort_keys=True) == json.dumps(local, sort_keys=True)


def test_an_interrupted_search_exits_130_and_resumes(tmp_path):
    """Ctrl-C while the trials train: Tune saves its state, the command says
    how to continue and exits 130; --resume finishes the search."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    command = [sys.executable, "-m", "i2dl_dsl.cli.train", str(MLP), "--epochs", "6", "--search",
               "lr=1e-3..1e-1:log", "--trials", "4", "--out", str(out), "--backend", "ray", "--ray-address", "local"]
    running = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (out / "trial1" / "checkpoint.npz").exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=300)
    assert running.returncode == 130, err[-2000:]
    assert f"hint: continue with --resume --out {out}" in err and not (out / "best.net").exists()
    resumed = subprocess.run([*command, "--resume"], cwd=root, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "best configuration written to" in resumed.stdout and (out / "best.net").exists()
    with open(out / "trial1" / "metrics.csv", encoding="utf-8") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == list(range(1, len(epochs) + 1))  # one consecutive curve

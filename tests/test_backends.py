"""The backend choice and the training step split for data-parallel
training, without Ray: the split parts against the fused step, several
simulated workers summing their gradients, and a clear error when Ray is
not installed. (The Ray runs themselves: test_ray.py, `-m ray`.)"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.cli.train import main as train_main
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.train.backends import Backend, choose, require_ray
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.shard import ShardStep, shard
from i2dl_dsl.train.split import build_split
from i2dl_dsl.train.step import LR, STEP, TrainConfig, build_step
from i2dl_dsl.trainspec import section_text

# Convolution, batch norm (running statistics: buffers) and a head.
NET = """
network Small {
    input image[1, 8, 8]
    conv(4, k=3, p=1, bias=false) -> batchnorm -> relu -> maxpool(k=2)
    flatten
    fc(16) -> relu
    fc(10)
}
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "net.net"
    path.write_text(text, encoding="utf-8")
    return path


def batches(count: int, sizes: list[int]):
    rng = np.random.default_rng(4)
    for size in sizes[:count]:
        yield (rng.normal(size=(size, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, size).astype(np.int64))


CONFIG = TrainConfig(optimizer={"name": "adam", "lr": 1e-2}, weight_decay=1e-3, l2=1e-4, seed=3)
SIZES = [16, 16, 16, 7]  # the last batch does not split evenly


def test_backend_comes_from_the_section_and_the_command_line_overrides_it(tmp_path):
    net = check(write(tmp_path, NET + "train {\n    backend ray(workers=4, gpus_per_worker=1)\n}\n"))
    assert net.train["backend"] == {"name": "ray", "workers": 4, "gpus_per_worker": 1.0, "cpus_per_worker": 1.0}
    assert "    backend ray(workers=4, gpus_per_worker=1)\n" in section_text(net.train)
    assert choose(None) == Backend()
    pytest.importorskip("ray")
    assert choose(net.train["backend"], workers=2) == Backend("ray", workers=2, gpus_per_worker=1.0)
    assert choose(net.train["backend"], "local") == Backend()


def test_a_misspelt_backend_argument_is_located(tmp_path, capsys):
    path = write(tmp_path, NET + "train {\n    backend ray(wrkers=2)\n}\n")
    assert train_main([str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:10:17: error: ray has no argument 'wrkers'" in err and "did you mean 'workers'" in err


def test_workers_without_the_ray_backend_is_refused():
    with pytest.raises(UserError, match="--workers needs the ray backend"):
        choose(None, workers=2)


def test_without_ray_the_ray_backend_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(UserError) as caught:
        require_ray()
    assert "pip install 'i2dl-dsl[ray]'" in str(caught.value.hints)
    path = write(tmp_path, NET)
    assert train_main([str(path), "--out", str(tmp_path / "run"), "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert "the ray backend needs Ray" in err and "pip install 'i2dl-dsl[ray]'" in err and "Traceback" not in err


def test_shards_cover_the_batch_and_differ_by_at_most_one():
    for count in (1, 7, 16, 33):
        for workers in (1, 2, 3, 8):
            parts = [shard(count, rank, workers) for rank in range(workers)]
            rows = [i for part in parts for i in range(count)[part]]
            assert rows == list(range(count))
            sizes = [part.stop - part.start for part in parts]
            assert max(sizes) - min(sizes) <= 1


def test_the_gradient_part_has_no_optimizer_and_the_update_part_no_network(tmp_path):
    split = build_split(check(write(tmp_path, NET)), CONFIG)
    gradient_inputs = {i.name for i in split.gradients.graph.input}
    assert not gradient_inputs & {LR, STEP} and not any(n.startswith("state/") for n in gradient_inputs)
    assert {o.name for o in split.gradients.graph.output} >= {f"grad/{p}" for p in split.step.trainable}
    assert not {n.op_type for n in split.update.graph.node} & {"Conv", "Gemm", "MatMul", "BatchNormalization"}
    assert {o.name for o in split.update.graph.output} == {f"new/{p}" for p in split.step.trainable} | {
        f"new/state/{s}" for s in split.step.slots}


def _fused(net, steps: int) -> dict[str, np.ndarray]:
    session = TrainingSession(build_step(net, CONFIG), "cpu")
    for t, (x, y) in enumerate(batches(steps, SIZES), start=1):
        session.train_step(x, y, {}, 1e-2, t)
    return session.snapshot()


def test_one_worker_computes_what_the_fused_step_computes(tmp_path):
    net = check(write(tmp_path, NET))
    worker = ShardStep(build_split(net, CONFIG), "cpu")
    for t, (x, y) in enumerate(batches(len(SIZES), SIZES), start=1):
        worker.step(x, y, {}, 1e-2, t, 1.0, lambda v: v)
    expected, got = _fused(net, len(SIZES)), worker.snapshot()
    assert set(got) == set(expected)  # parameters, running statistics, optimizer slots
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_workers_summing_weighted_gradients_equal_one_process(tmp_path):
    """Three workers (threads) on uneven shards, summing through a barrier:
    the parameters equal the fused step's on the whole batch."""
    net = check(write(tmp_path, NET.replace("batchnorm -> ", "")))  # per-worker batch statistics would differ
    split = build_split(net, CONFIG)
    workers = [ShardStep(split, "cpu") for _ in range(3)]
    for t, (x, y) in enumerate(batches(len(SIZES), SIZES), start=1):
        _step_together(workers, x, y, t)
    expected = _fused(net, len(SIZES))
    for worker in workers:
        for name, value in worker.parameters().items():
            np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


def _step_together(workers: list[ShardStep], x: np.ndarray, y: np.ndarray, t: int) -> None:
    barrier, parts = threading.Barrier(len(workers)), []

    def reduce(vector: np.ndarray) -> np.ndarray:
        parts.append(vector)
        barrier.wait()
        return np.sum(parts, axis=0, dtype=np.float32)

    def run(rank: int) -> None:
        rows = shard(len(x), rank, len(workers))
        workers[rank].step(x[rows], y[rows], {}, 1e-2, t, (rows.stop - rows.start) / len(x), reduce)

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_gradient_part_keeps_what_subgraphs_read(tmp_path):
    """On a CPU with blocked convolutions, convolution gradients hold If
    nodes whose branches read tensors of the enclosing graph."""
    net = check(Path(__file__).resolve().parents[1] / "models" / "digits_cnn.net")
    split = build_split(net, TrainConfig())
    worker = ShardStep(split, "cpu")  # onnxruntime refuses a graph that lost a tensor a branch reads
    x = np.random.default_rng(0).normal(size=(4, 1, 8, 8)).astype(np.float32)
    masks = {name: draw.draw(np.random.default_rng(1), 4) for name, draw in split.step.masks.items()}
    loss, _ = worker.step(x, np.arange(4), masks, 1e-3, 1, 1.0, lambda v: v)
    assert np.isfinite(loss)

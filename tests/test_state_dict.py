"""A PyTorch `state_dict` saved as .npz loads through `--weights` as it is:
its batch norms' `num_batches_tracked` step counts are reported as ignored
(one line), every other name must match."""

from __future__ import annotations

import numpy as np

from i2dl_dsl.cli.compile import main as compile_main

NET = """network Net {
    input x[3, 8, 8]
    conv1: conv(4, k=3, p=1, bias=false)
    bn1: batchnorm
    relu -> flatten
    fc: fc(2)
}
"""


def state_dict(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"conv1.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
            "bn1.weight": np.ones(4, np.float32), "bn1.bias": np.zeros(4, np.float32),
            "bn1.running_mean": np.zeros(4, np.float32), "bn1.running_var": np.ones(4, np.float32),
            "bn1.num_batches_tracked": np.array(7, np.int64),
            "fc.weight": rng.normal(size=(2, 256)).astype(np.float32), "fc.bias": np.zeros(2, np.float32)}


def compile_with(tmp_path, weights: dict[str, np.ndarray], capsys) -> tuple[int, str]:
    (tmp_path / "net.net").write_text(NET)
    np.savez(tmp_path / "w.npz", **weights)
    code = compile_main([str(tmp_path / "net.net"), "--onnx", str(tmp_path / "net.onnx"),
                         "--weights", str(tmp_path / "w.npz")])
    return code, capsys.readouterr().err


def test_step_counts_of_batch_norms_are_reported_as_ignored(tmp_path, capsys):
    code, err = compile_with(tmp_path, state_dict(np.random.default_rng(0)), capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "num_batches_tracked" in line]
    assert lines == [f"weights from {tmp_path / 'w.npz'}: 1 num_batches_tracked entries ignored "
                     "(PyTorch's batch-norm step counts; nothing here uses them)"]
    import onnx

    model = onnx.load(str(tmp_path / "net.onnx"))
    names = {t.name for t in model.graph.initializer}
    assert "bn1.running_var" in names and not any("num_batches_tracked" in n for n in names)


def test_a_step_count_of_no_batch_norm_is_still_refused(tmp_path, capsys):
    weights = state_dict(np.random.default_rng(0))
    weights["bn2.num_batches_tracked"] = np.array(1, np.int64)
    code, err = compile_with(tmp_path, weights, capsys)
    assert code == 2
    assert "not in the network:\n  bn2.num_batches_tracked" in err


def test_every_other_name_must_match(tmp_path, capsys):
    weights = state_dict(np.random.default_rng(0))
    weights["downsample.0.weight"] = weights.pop("conv1.weight")
    code, err = compile_with(tmp_path, weights, capsys)
    assert code == 2
    assert "missing from the weights:\n  conv1.weight" in err and "not in the network:\n  downsample.0.weight" in err


POINTWISE = """network Net {
    input x[4, 3, 3]
    pw: conv(8, k=1)
}
"""


def test_a_linear_weight_loads_into_a_1x1_convolution(tmp_path, capsys):
    """[out, in] is the same numbers as [out, in, 1, 1]: ConvNeXt's per-position Linear."""
    import onnx
    from onnx import numpy_helper

    (tmp_path / "net.net").write_text(POINTWISE)
    weight = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    np.savez(tmp_path / "w.npz", **{"pw.weight": weight, "pw.bias": np.zeros(8, np.float32)})
    assert compile_main([str(tmp_path / "net.net"), "--onnx", str(tmp_path / "net.onnx"),
                         "--weights", str(tmp_path / "w.npz")]) == 0, capsys.readouterr().err
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "net.onnx")).graph.initializer}
    assert stored["pw.weight"].shape == (8, 4, 1, 1)
    np.testing.assert_array_equal(stored["pw.weight"][:, :, 0, 0], weight)


def test_other_shapes_of_the_same_size_are_refused(tmp_path, capsys):
    (tmp_path / "net.net").write_text(POINTWISE)
    np.savez(tmp_path / "w.npz", **{"pw.weight": np.zeros((4, 8), np.float32), "pw.bias": np.zeros(8, np.float32)})
    assert compile_main([str(tmp_path / "net.net"), "--onnx", str(tmp_path / "net.onnx"),
                         "--weights", str(tmp_path / "w.npz")]) == 2
    assert "pw.weight: expected [8, 4, 1, 1], got [4, 8]" in capsys.readouterr().err

"""Whole networks on onnxruntime against plain-PyTorch builds of the same
networks (tests/reference/torch_models.py) with the same weights.

Each model is exported with a seed; its batch-norm running statistics and
its biases are then replaced by random values (running variances positive),
so that no parameter is trivially 0 or 1, and the network is exported again
through `i2dl-compile --weights`, as a user would. The PyTorch build loads
the same arrays by parameter name, in eval mode (running statistics, no
dropout). Both run on the same random batch.

Tolerance: max |onnxruntime - PyTorch| ≤ 1e-4 · max(1, max |PyTorch|),
that is 1e-4 absolute for outputs of order one and 1e-4 relative to the
largest output where outputs are larger.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from onnx import numpy_helper  # noqa: E402

from i2dl_dsl.cli.compile import main as compile_main  # noqa: E402
from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.lowering.export import lower_network, parameter_shapes  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402
from reference import torch_models  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4
SEED = 11
BATCH = 2
MODELS = ["lenet5", "resnet18", "googlenet", "fcn", "lstm_classifier"]


def reference_weights(net) -> dict[str, np.ndarray]:
    """The seeded initial weights, with random biases and running statistics."""
    builder, _ = lower_network(net, seed=SEED)  # the values fed, by parameter name (an export stores an LSTM's reordered)
    seeded = {name: numpy_helper.to_array(t) for name, t in builder.initializers.items()}
    rng = np.random.default_rng(SEED)
    weights = {}
    for name in parameter_shapes(net):
        value = seeded[name]
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, value.shape)
        elif name.endswith(("running_mean", "bias", "bias_ih_l0", "bias_hh_l0")):
            value = rng.normal(0.0, 0.1, value.shape)
        elif name.endswith("weight") and value.ndim == 1:  # batch-norm scale
            value = rng.uniform(0.5, 1.5, value.shape)
        weights[name] = value.astype(np.float32)
    return weights


def onnxruntime_output(net, weights: dict[str, np.ndarray], x: np.ndarray, tmp_path: Path) -> np.ndarray:
    np.savez(tmp_path / "weights.npz", **weights)
    model = tmp_path / "model.onnx"
    assert compile_main([net.path, "--onnx", str(model), "--weights", str(tmp_path / "weights.npz")]) == 0
    session = create_session(str(model), "cpu").session
    return session.run(None, {net.input: x})[0]


def pytorch_output(name: str, weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    module = torch_models.BUILDERS[name]()
    missing, unexpected = module.load_state_dict({n: torch.from_numpy(a) for n, a in weights.items()}, strict=False)
    assert [n for n in missing if not n.endswith("num_batches_tracked")] == []
    assert unexpected == []
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_matches_pytorch(name, tmp_path):
    net = check(ROOT / "models" / f"{name}.net")
    weights = reference_weights(net)
    x = np.random.default_rng(0).standard_normal((BATCH, *net.analysis.shapes[net.input])).astype(np.float32)
    ours = onnxruntime_output(net, weights, x, tmp_path)
    expected = pytorch_output(name, weights, x)
    assert ours.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    assert float(np.abs(ours - expected).max()) <= TOL * scale


@pytest.mark.parametrize("name", MODELS)
def test_reference_weights_are_not_trivial(name):
    """The comparison is only as strong as the weights: no bias or statistic at its default."""
    weights = reference_weights(check(ROOT / "models" / f"{name}.net"))
    trivial = [n for n, a in weights.items() if np.all(a == 0) or np.all(a == 1)]
    assert trivial == []

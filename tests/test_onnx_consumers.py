"""The exported ONNX at the default opset, read by the tools users run it
with: ONNX's reference evaluator, onnxslim (then onnxruntime), OpenVINO's
ONNX reader (CPU, float32) and onnx2torch, each against onnxruntime's
outputs, for every zoo model (large ones smaller: helpers.ZOO_224, ZOO_SMALLER).

Each consumer is skipped where it is not installed: onnxslim is in the
`[test]` extra; OpenVINO (180 MB installed) and onnx2torch (it needs
torchvision, whose PyPI build needs PyPI's CUDA torch) are not. onnx2torch
has no LSTM or RNN converter at any opset: those models are expected to
fail there, strictly, so the day it gains one the test says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from i2dl_dsl.lowering.export import DEFAULT_OPSET, parameter_shapes, to_onnx
from i2dl_dsl.runtime import create_session
from helpers import random_weights, zoo_net

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted(p.stem for p in (ROOT / "models").glob("*.net"))
RECURRENT = {"adding_lstm", "adding_rnn", "lstm_classifier", "rnn_classifier"}
SLOW_REFERENCE = {"alexnet", "googlenet", "resnet18", "resnet50", "unet", "vgg16"}  # numpy convolutions: 5-60 s each
TOL = 1e-5  # relative to the largest output


def reference_evaluator(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)[0]


def onnxslim_then_onnxruntime(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    onnxslim = pytest.importorskip("onnxslim")
    return create_session(onnxslim.slim(model).SerializeToString(), "cpu").run(feeds)[0]


def openvino(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    # Its CPU plugin computes in bf16/f16 where the processor has them, unless told otherwise.
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(list(feeds.values()))[0]


def onnx2torch(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    converter = pytest.importorskip("onnx2torch")
    torch = pytest.importorskip("torch")
    module = converter.convert(model).eval()
    with torch.no_grad():
        return module(*[torch.from_numpy(v) for v in feeds.values()]).numpy()


CONSUMERS = {"reference": reference_evaluator, "onnxslim": onnxslim_then_onnxruntime, "openvino": openvino,
             "onnx2torch": onnx2torch}


def cases():
    for consumer in CONSUMERS:
        for name in ZOO:
            marks = []
            if consumer == "reference" and name in SLOW_REFERENCE:
                marks.append(pytest.mark.slow)
            if consumer == "onnx2torch" and name in RECURRENT:
                marks.append(pytest.mark.xfail(raises=NotImplementedError, strict=True,
                                               reason="onnx2torch converts no LSTM or RNN"))
            yield pytest.param(consumer, name, marks=marks, id=f"{consumer}-{name}")


@pytest.mark.parametrize("consumer, name", cases())
def test_consumer_computes_what_onnxruntime_does(consumer: str, name: str, tmp_path: Path) -> None:
    net = zoo_net(name, tmp_path)
    model = to_onnx(net, weights=random_weights(parameter_shapes(net), 0, scale=0.3))
    assert model.opset_import[0].version == DEFAULT_OPSET
    x = np.random.default_rng(0).standard_normal((2, *net.analysis.shapes[net.input])).astype(np.float32)
    expected = create_session(model.SerializeToString(), "cpu").run({net.input: x})[0]
    ours = CONSUMERS[consumer](onnx.ModelProto.FromString(model.SerializeToString()), {net.input: x})
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= TOL * max(1.0, float(np.abs(expected).max()))

#!/usr/bin/env python3
"""Which ONNX opsets the tools users run exported models with accept.

    python scripts/onnx_consumers.py [--opsets 18,19,20,21,22] [--models lenet5,...]

For each opset and zoo model (224×224 ones smaller, as tests/helpers.ZOO_224
says), the export with fixed random weights (seed 0) is run by onnxruntime
and by each consumer installed: ONNX's reference evaluator, onnxslim (then
onnxruntime), OpenVINO (CPU, float32) and onnx2torch. One line per model:
each consumer's largest difference from onnxruntime, relative to the
largest output, or what it refused. docs/interop.md has the table this
printed; tests/test_onnx_consumers.py holds the default opset to it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import random_weights, zoo_net  # noqa: E402
from test_onnx_consumers import CONSUMERS  # noqa: E402

from i2dl_dsl.lowering.export import MAX_OPSET, MIN_OPSET, parameter_shapes, to_onnx  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402


def outcome(consumer, model: onnx.ModelProto, feeds: dict, expected: np.ndarray) -> str:
    try:
        ours = consumer(onnx.ModelProto.FromString(model.SerializeToString()), feeds)
    except BaseException as exc:  # noqa: BLE001: pytest's skip is a BaseException; any refusal is the answer
        if type(exc).__name__ == "Skipped":
            return "absent"
        return f"refused ({type(exc).__name__}: {str(exc).splitlines()[0][:90] if str(exc) else ''})"
    return f"{np.abs(ours - expected).max() / max(1.0, float(np.abs(expected).max())):.1e}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--opsets", default=",".join(map(str, range(MIN_OPSET, MAX_OPSET + 1))))
    p.add_argument("--models", default=",".join(sorted(m.stem for m in (ROOT / "models").glob("*.net"))))
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp())
    for opset in map(int, args.opsets.split(",")):
        for name in args.models.split(","):
            net = zoo_net(name, folder)
            model = to_onnx(net, opset=opset, weights=random_weights(parameter_shapes(net), 0, scale=0.3))
            x = np.random.default_rng(0).standard_normal((2, *net.analysis.shapes[net.input])).astype(np.float32)
            expected = create_session(model.SerializeToString(), "cpu").run({net.input: x})[0]
            results = [f"{c}={outcome(f, model, {net.input: x}, expected)}" for c, f in CONSUMERS.items()]
            print(opset, name, " ".join(results), flush=True)


if __name__ == "__main__":
    main()

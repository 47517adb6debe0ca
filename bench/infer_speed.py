"""Inference speed: the exported ONNX model on onnxruntime against the same
network in PyTorch eager (eval mode, no_grad), same weights, same threads,
in the same run: latency at batch 1 and throughput at batch 64 (medians of
repeated timings after warm-up).

    python bench/infer_speed.py [--device cpu|cuda] [--models lenet5,resnet18,lstm_classifier]

Needs torch. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from i2dl_dsl.compiler import check  # noqa: E402
from i2dl_dsl.onnx.export import to_onnx  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402


def median_seconds(run, repeat: int, inner: int) -> float:
    for _ in range(5):
        run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            run()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def measure(name: str, device: str, threads: int, repeat: int) -> dict[str, float]:
    import torch

    from tests.reference import torch_models

    net = check(ROOT / "models" / f"{name}.net")
    model = to_onnx(net, seed=0)
    weights = {t.name: np.frombuffer(t.raw_data, np.float32).reshape(t.dims).copy()
               for t in model.graph.initializer if "/" not in t.name and t.raw_data}
    session = create_session(model.SerializeToString(), device, threads).session
    torch.set_num_threads(threads)
    reference = getattr(torch_models, name)().eval().to(device)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    out = {}
    for batch, key, inner in ((1, "latency", 20), (64, "throughput", 3)):
        x = np.random.default_rng(0).standard_normal((batch, *net.analysis.shapes[net.input])).astype(np.float32)
        tx = torch.from_numpy(x).to(device)
        ours = median_seconds(lambda: session.run(None, {net.input: x}), repeat, inner)

        def eager() -> None:
            with torch.no_grad():
                reference(tx).cpu()

        theirs = median_seconds(eager, repeat, inner)
        out[key] = (ours, theirs, batch)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--models", default="lenet5,resnet18,lstm_classifier")
    args = ap.parse_args()
    import onnxruntime
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; onnxruntime {onnxruntime.__version__}, "
          f"torch {torch.__version__}; {args.threads} threads, device {args.device}\n")
    print("| model | measure | ours | PyTorch eager | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        for key, (ours, theirs, batch) in measure(name, args.device, args.threads, args.repeat).items():
            if key == "latency":
                print(f"| {name} | latency, batch 1 (ms) | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | {theirs / ours:.2f}× |")
            else:
                print(f"| {name} | throughput, batch 64 (samples/s) | {batch / ours:,.0f} | {batch / theirs:,.0f} | "
                      f"{theirs / ours:.2f}× |", flush=True)


if __name__ == "__main__":
    main()

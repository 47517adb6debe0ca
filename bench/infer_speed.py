"""Inference speed: the exported ONNX model on onnxruntime against the same
network in PyTorch eager (eval mode, no_grad), same weights, same threads,
in the same run: latency at batch 1 and throughput at batch 64 (medians of
repeated timings after warm-up).

    python bench/infer_speed.py [--device cpu|cuda] [--models lenet5,resnet18,lstm_classifier]

Needs torch. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.lowering.export import to_onnx  # noqa: E402
from i2dl_dsl.runtime import create_session  # noqa: E402
from isolate import measure_apart  # noqa: E402


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


def measure(name: str, side: str, device: str, threads: int, repeat: int) -> dict[str, float]:
    """Seconds per run at batch 1 and batch 64 for one side ("ours" or "torch")."""
    net = check(ROOT / "models" / f"{name}.net")
    model = to_onnx(net, seed=0)
    out = {}
    for batch, key, inner in ((1, "latency", 20), (64, "throughput", 3)):
        x = np.random.default_rng(0).standard_normal((batch, *net.analysis.shapes[net.input])).astype(np.float32)
        if side == "ours":
            session = create_session(model.SerializeToString(), device, threads).session
            out[key] = median_seconds(lambda: session.run(None, {net.input: x}), repeat, inner)
            continue
        import torch

        from tests.reference import torch_models

        torch.set_num_threads(threads)
        weights = {t.name: np.frombuffer(t.raw_data, np.float32).reshape(t.dims).copy()
                   for t in model.graph.initializer if "/" not in t.name and t.raw_data}
        reference = getattr(torch_models, name)().eval().to(device)
        reference.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
        tx = torch.from_numpy(x).to(device)

        def eager() -> None:
            with torch.no_grad():
                reference(tx).cpu()

        out[key] = median_seconds(eager, repeat, inner)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--models", default="lenet5,resnet18,lstm_classifier")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "SIDE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.device, args.threads, args.repeat)))
        return
    import onnxruntime
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; onnxruntime {onnxruntime.__version__}, "
          f"torch {torch.__version__}; {args.threads} threads, device {args.device}\n")
    print("| model | measure | ours | PyTorch eager | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    common = ["--device", args.device, "--threads", str(args.threads), "--repeat", str(args.repeat)]
    for name in args.models.split(","):
        mine = measure_apart(Path(__file__), name, "ours", *common)
        other = measure_apart(Path(__file__), name, "torch", *common)
        for key, batch in (("latency", 1), ("throughput", 64)):
            ours, theirs = mine[key], other[key]
            if key == "latency":
                print(f"| {name} | latency, batch 1 (ms) | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | {theirs / ours:.2f}× |")
            else:
                print(f"| {name} | throughput, batch 64 (samples/s) | {batch / ours:,.0f} | {batch / theirs:,.0f} | "
                      f"{theirs / ours:.2f}× |", flush=True)


if __name__ == "__main__":
    main()

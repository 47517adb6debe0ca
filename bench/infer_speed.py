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
from i2dl_dsl.runtime import Placement, create_session  # noqa: E402
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


def torch_reference(name: str, device: str):
    """The same network in PyTorch: the hand-written reference of
    tests/reference where there is one, else torchvision's builder of that
    name (the zoo files named after torchvision's builders carry its
    parameter names). LookupError where neither exists."""
    from tests.reference import torch_models

    if hasattr(torch_models, name):
        return getattr(torch_models, name)().eval().to(device)
    try:
        from tests.torchvision_oracle import build  # imports torchvision as the tests do
    except ImportError:
        build = None
    if build is not None:
        try:
            return build(name).to(device)
        except AttributeError:  # torchvision has no builder of that name
            pass
    raise LookupError(f"no PyTorch reference for {name}")


def set_tf32(torch, on: bool) -> None:
    """TF32 for PyTorch's convolutions and matrix products alike (its
    defaults differ: on for cuDNN convolutions, off for matmul)."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def measure(name: str, side: str, device: str, threads: int, repeat: int, batches: tuple[int, ...] = (1, 64),
            tf32: bool = False) -> dict[str, float]:
    """Seconds per run at each batch size for one side: "ours", "torch"
    (eager) or "compiled" (torch.compile)."""
    net = check(ROOT / "models" / f"{name}.net")
    model = to_onnx(net, seed=0)
    out = {}
    session = reference = None
    if side == "ours":
        session = create_session(model.SerializeToString(), device, threads,
                                 placement=Placement(tf32=tf32 if device == "cuda" else None)).session
    else:
        import torch

        torch.set_num_threads(threads)
        set_tf32(torch, tf32)
        weights = {t.name: np.frombuffer(t.raw_data, np.float32).reshape(t.dims).copy()
                   for t in model.graph.initializer if "/" not in t.name and t.raw_data}
        reference = torch_reference(name, device)
        reference.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
        if side == "compiled":
            reference = torch.compile(reference)
    for batch in batches:
        x = np.random.default_rng(0).standard_normal((batch, *net.analysis.shapes[net.input])).astype(np.float32)
        inner = 20 if batch == 1 else 3
        if session is not None:
            out[str(batch)] = median_seconds(lambda: session.run(None, {net.input: x}), repeat, inner)
            continue
        import torch

        tx = torch.from_numpy(x).to(device)

        def eager() -> None:
            with torch.no_grad():
                reference(tx).cpu()  # the output comes back to the host, as ours does

        out[str(batch)] = median_seconds(eager, repeat, inner)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--models", default="lenet5,resnet18,lstm_classifier")
    ap.add_argument("--batches", default="1,64", help="batch sizes (the first is timed as latency)")
    ap.add_argument("--tf32", action="store_true", help="CUDA: let both sides use TF32")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "SIDE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = tuple(int(b) for b in args.batches.split(","))
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.device, args.threads, args.repeat, batches,
                                 args.tf32)))
        return
    import onnxruntime
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; onnxruntime {onnxruntime.__version__}, "
          f"torch {torch.__version__}; {args.threads} threads, device {args.device}\n")
    print("| model | measure | ours | PyTorch eager | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    common = ["--device", args.device, "--threads", str(args.threads), "--repeat", str(args.repeat),
              "--batches", args.batches] + (["--tf32"] if args.tf32 else [])
    for name in args.models.split(","):
        mine = measure_apart(Path(__file__), name, "ours", *common)
        other = measure_apart(Path(__file__), name, "torch", *common)
        for i, batch in enumerate(batches):
            ours, theirs = mine[str(batch)], other[str(batch)]
            if i == 0:
                print(f"| {name} | latency, batch {batch} (ms) | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | "
                      f"{theirs / ours:.2f}× |")
            else:
                print(f"| {name} | throughput, batch {batch} (samples/s) | {batch / ours:,.0f} | "
                      f"{batch / theirs:,.0f} | {theirs / ours:.2f}× |", flush=True)


if __name__ == "__main__":
    main()

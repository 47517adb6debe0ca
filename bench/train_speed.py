"""Training-step throughput: the compiler's ONNX training step on
onnxruntime against the same model in PyTorch eager, same batch, same
optimizer (Adam), same threads, in the same run.

    python bench/train_speed.py [--batch 64] [--steps 20] [--rounds 15] [--device cpu|cuda] [--models digits_cnn,lenet5]
                                [--plain-convs] [--against CHECKOUT]

Prints a Markdown table for BENCHMARKS.md. Each side runs in a process of
its own, set up and warmed up once; a round times `--steps` steps of each
side, one right after the other (in alternating order). The table gives
the median over rounds of each side and of the per-round ratio, with the
ratio's range: on a shared machine the speed drifts, and the two sides of
one round see nearly the same conditions.
`--plain-convs` adds a column: our step again with onnxruntime's blocked
convolutions turned off (`I2DL_BLOCKED_CONVS=0`), to show what they give.
`--against CHECKOUT` adds a side: our step as another checkout of the project
builds it (its own bench/train_speed.py serves it), timed in the same rounds,
so that a change is measured against its parent in one run: the column is
the median per-round ratio of its step time to ours (above 1: ours is faster).
Needs torch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.runtime import Placement  # noqa: E402
from i2dl_dsl.train.session import TrainingSession  # noqa: E402
from i2dl_dsl.target import Target  # noqa: E402
from i2dl_dsl.train.step import TrainConfig, build_step  # noqa: E402
from isolate import Served, serve  # noqa: E402

MODELS = {  # .net file → PyTorch builder in tests/reference/torch_models.py
    "digits_cnn": "digits_cnn", "lenet5": "lenet5", "resnet_small": "resnet_small", "lstm_classifier": "lstm_classifier",
    "resnet50": "resnet50",
}
DEFAULT_MODELS = ("digits_cnn", "lenet5", "resnet_small", "lstm_classifier")


def batch_for(net, batch: int, rng):
    shape = net.analysis.shapes[net.input]
    classes = net.analysis.shapes[net.output][-1]
    return rng.standard_normal((batch, *shape)).astype(np.float32), rng.integers(0, classes, batch).astype(np.int64)


def ours(name: str, batch: int, device: str, threads: int, tf32: bool = False):
    """One training step of the compiler's graph, as a callable."""
    net = check(ROOT / "models" / f"{name}.net")
    spec = build_step(net, TrainConfig(loss="cross_entropy", optimizer={"name": "adam", "beta1": 0.9,
                                                                       "beta2": 0.999, "eps": 1e-8}),
                      target=Target.resolve(device))
    session = TrainingSession(spec, device, threads, placement=Placement(tf32=tf32 if device == "cuda" else None))
    x, y = batch_for(net, batch, np.random.default_rng(0))
    masks = {m: np.ones((batch, *draw.shape), np.float32) for m, draw in spec.masks.items()}
    counter = iter(range(1, 10**9))
    return lambda: session.train_step(x, y, masks, 1e-3, next(counter))


def theirs(name: str, batch: int, device: str, threads: int, tf32: bool = False):
    """One training step of the same model in PyTorch eager, as a callable."""
    import torch

    from infer_speed import set_tf32
    from tests.reference import torch_models

    torch.set_num_threads(threads)
    set_tf32(torch, tf32)
    net = check(ROOT / "models" / f"{name}.net")
    model = getattr(torch_models, MODELS[name])().to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = batch_for(net, batch, np.random.default_rng(0))
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # the loss comes back to the host each step, as in ours
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--tf32", action="store_true", help="CUDA: let both sides use TF32")
    ap.add_argument("--plain-convs", action="store_true", help="also time our step without the blocked convolutions")
    ap.add_argument("--against", metavar="CHECKOUT", help="also time our step as this other checkout builds it")
    ap.add_argument("--serve", nargs=2, metavar=("MODEL", "SIDE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        side = ours if args.serve[1] == "ours" else theirs
        serve(side(args.serve[0], args.batch, args.device, args.threads, args.tf32))
        return
    import onnxruntime
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; onnxruntime {onnxruntime.__version__}, "
          f"torch {torch.__version__}; batch {args.batch}, {args.threads} threads, device {args.device}\n")
    plain = " ours, plain Conv (samples/s) | ratio, plain Conv |" if args.plain_convs else ""
    against = f" {Path(args.against).name} (samples/s) | ours against it (range) |" if args.against else ""
    print(f"| model | ours (samples/s) | PyTorch eager (samples/s) | ratio, median of {args.rounds} rounds (range) |"
          f"{plain}{against}")
    print("| --- | --- | --- | --- |" + (" --- | --- |" if args.plain_convs else "")
          + (" --- | --- |" if args.against else ""))
    common = ["--batch", str(args.batch), "--device", args.device, "--threads", str(args.threads)] + (
        ["--tf32"] if args.tf32 else [])
    for name in args.models.split(","):
        sides = {"ours": Served(Path(__file__), name, "ours", *common),
                 "torch": Served(Path(__file__), name, "torch", *common)}
        if args.plain_convs:
            sides["plain"] = Served(Path(__file__), name, "ours", *common, env={"I2DL_BLOCKED_CONVS": "0"})
        if args.against:
            sides["against"] = Served(Path(args.against) / "bench" / "train_speed.py", name, "ours", *common)
        times: dict[str, list[float]] = {side: [] for side in sides}
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(sides)[::-1]  # ABBA: a trend falls on both
            for side in order:
                times[side].append(sides[side].time(args.steps))
        for served in sides.values():
            served.close()
        ours_s, theirs_s, plain_s = times["ours"], times["torch"], times.get("plain", [])
        ratios = sorted(b / a for a, b in zip(ours_s, theirs_s))
        row = (f"| {name} | {args.batch / statistics.median(ours_s):,.0f} | {args.batch / statistics.median(theirs_s):,.0f} "
               f"| {statistics.median(ratios):.2f}× ({ratios[0]:.2f}–{ratios[-1]:.2f}) |")
        if args.plain_convs:
            plain_ratios = sorted(b / a for a, b in zip(plain_s, theirs_s))
            row += f" {args.batch / statistics.median(plain_s):,.0f} | {statistics.median(plain_ratios):.2f}× |"
        if args.against:
            before = sorted(b / a for a, b in zip(ours_s, times["against"]))
            row += (f" {args.batch / statistics.median(times['against']):,.0f} | {statistics.median(before):.2f}× "
                    f"({before[0]:.2f}–{before[-1]:.2f}) |")
        print(row, flush=True)


if __name__ == "__main__":
    main()

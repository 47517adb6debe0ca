"""The data-parallel scaling model of docs/cluster.md, on paper.

Per step, a ring all-reduce makes each worker send (and receive)
2·(N−1)/N × params × 4 bytes. With no overlap of communication and
computation (the pessimistic case), a step takes t_compute + t_comm and
the efficiency is t_compute / (t_compute + t_comm): the fraction of N
times one worker's throughput that N workers reach.

    python bench/scaling_model.py        # prints the table docs/cluster.md holds

Inputs (each stated where it comes from):
- digits CNN: params from the compiler's analysis of models/digits_cnn.net;
  compute 64 / 8,374 s per step of 64 samples, the training-step figure in
  BENCHMARKS.md (this 2-core CPU).
- ResNet-50: params and MACs from the compiler's analysis of models/resnet50.net.
- ViT-B/16: 86,567,656 params and 17.56 G multiply-adds per 224×224 image,
  torchvision's published figures for vit_b_16 (its "GFLOPS" column counts
  multiply-adds: it gives 4.09 for ResNet-50, whose analysis here says 4.09 G MACs).
- For ResNet-50 and ViT-B/16, an assumed accelerator: a training step costs
  3 × the forward multiply-adds, 64 samples per worker, at a sustained
  62.5 T multiply-adds/s (125 TFLOP/s, about 40% of an A100's 312 TFLOP/s
  dense bf16 peak). An assumption, not a measurement: no such machine was
  measured for this table.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from i2dl_dsl.checker import check  # noqa: E402

WORKERS = (2, 8, 64)
LINKS_GBIT = (100, 400)
BATCH = 64
DIGITS_SAMPLES_PER_S = 8374          # BENCHMARKS.md, training step, digits CNN, batch 64
ACCELERATOR_MACS_PER_S = 62.5e12     # assumed, see the docstring
VIT_PARAMS, VIT_MACS = 86_567_656, 17.56e9


def models() -> list[tuple[str, int, float, str]]:
    """(name, params, compute seconds per step, where the compute time comes from)."""
    digits = check(ROOT / "models" / "digits_cnn.net").analysis
    resnet = check(ROOT / "models" / "resnet50.net").analysis

    def accelerator(macs: float) -> float:
        return 3 * macs * BATCH / ACCELERATOR_MACS_PER_S

    return [("digits CNN", digits.total_params, BATCH / DIGITS_SAMPLES_PER_S, "measured, this CPU"),
            ("ResNet-50", resnet.total_params, accelerator(resnet.total_macs), "assumed accelerator"),
            ("ViT-B/16", VIT_PARAMS, accelerator(VIT_MACS), "assumed accelerator")]


def comm_seconds(params: int, workers: int, gbit: float) -> float:
    """Seconds per step each worker spends sending its share of the ring all-reduce."""
    return 2 * (workers - 1) / workers * params * 4 * 8 / (gbit * 1e9)


def table() -> str:
    lines = ["| model | params | compute per step (64/worker) | link | " +
             " | ".join(f"N = {n}: all-reduce, efficiency" for n in WORKERS) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in WORKERS) + " |"]
    for name, params, compute, source in models():
        for gbit in LINKS_GBIT:
            cells = []
            for n in WORKERS:
                comm = comm_seconds(params, n, gbit)
                cells.append(f"{comm * 1e3:.3g} ms, {100 * compute / (compute + comm):.1f}%")
            lines.append(f"| {name} | {params:,} | {compute * 1e3:.3g} ms ({source}) | {gbit} Gb/s | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())

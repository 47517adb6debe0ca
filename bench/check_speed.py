"""Checking speed: `i2dl-compile MODEL.net --summary` against building the
same network in PyTorch and counting its parameters, both as whole processes,
in the same run. Also the checker's cost as the depth grows.

    python bench/check_speed.py [--repeat 7]

Prints a Markdown table for BENCHMARKS.md. Needs torch for the comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEEP_BLOCK = """
block basic(c) {
    residual {
        conv(c, k=3, p=1, bias=false) -> batchnorm -> relu
        conv(c, k=3, p=1, bias=false) -> batchnorm
    }
    relu
}
network Deep {
    input x[3, 32, 32]
    stem: conv(16, k=3, p=1, bias=false) -> batchnorm -> relu
    body: basic(16) * BLOCKS
    head: global_avgpool -> flatten -> fc(10)
}
"""

TORCH_DEEP = """
import sys, torch, torch.nn as nn
class Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
blocks = int(sys.argv[1])
model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                      *[Basic(16) for _ in range(blocks)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
print(sum(p.numel() for p in model.parameters()))
"""

TORCH_RESNET50 = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.reference.torch_models import resnet50
print(sum(p.numel() for p in resnet50().parameters()))
"""


def timed(command: list[str], repeat: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
        out = done.stdout
    return statistics.median(times), out


def deep_file(blocks: int, folder: Path) -> Path:
    path = folder / f"deep{blocks}.net"
    path.write_text(DEEP_BLOCK.replace("BLOCKS", str(blocks)))
    return path


def in_process_check(path: Path, repeat: int) -> tuple[float, int]:
    sys.path.insert(0, str(ROOT))
    from i2dl_dsl.checker import check

    check(path)  # warm: grammar built, modules imported
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        net = check(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(net.analysis.order)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    py = sys.executable
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = []
    ours, _ = timed([py, "-m", "i2dl_dsl", "models/resnet50.net", "--summary"], args.repeat)
    theirs, count = timed([py, "-c", TORCH_RESNET50, str(ROOT)], args.repeat)
    rows.append(("ResNet-50", ours, theirs, count.strip()))
    with tempfile.TemporaryDirectory() as tmp:
        deep = deep_file(142, Path(tmp))  # 3 + 142·7 + 3 = 1,000 layers
        ours, _ = timed([py, "-m", "i2dl_dsl", str(deep), "--summary"], args.repeat)
        theirs, count = timed([py, "-c", TORCH_DEEP, "142"], args.repeat)
        rows.append(("ResNet, 1,000 layers", ours, theirs, count.strip()))
        print("\n| model | i2dl-compile --summary (s) | PyTorch build + count (s) | speed-up | params |")
        print("| --- | --- | --- | --- | --- |")
        for name, a, b, params in rows:
            print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.1f}× | {int(params):,} |")
        print("\nChecker cost in-process (parse, elaborate, analyse), by depth:\n")
        print("| layers | check (ms) | µs per layer |")
        print("| --- | --- | --- |")
        for blocks in (35, 71, 142, 285, 571):
            seconds, layers = in_process_check(deep_file(blocks, Path(tmp)), 3)
            print(f"| {layers:,} | {seconds * 1e3:.1f} | {seconds * 1e6 / layers:.0f} |")


if __name__ == "__main__":
    main()

"""Run each side of a comparison in a process of its own.

onnxruntime's and PyTorch's thread pools both spin while they wait for
work; in one process each starves the other and the comparison measures
the contention. `measure_apart` runs a benchmark function in a fresh
interpreter and returns what it printed as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def measure_apart(script: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(script), "--one", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


class Served:
    """A benchmark side kept alive in a process of its own: it sets up once,
    then times a block of steps each time it is asked (`script --serve ARGS`
    answers each line `N` with {"seconds": per-step seconds} as JSON).
    Alternating short blocks of two sides puts their timings seconds apart
    instead of a process start-up apart, so that drift in the machine's
    speed falls on both sides alike."""

    # onnxruntime's and OpenMP's worker threads spin for a while after work:
    # the idle side gets this long to go quiet before the other one is timed.
    SETTLE_S = 0.3

    def __init__(self, script: Path, *args: str, env: dict[str, str] | None = None):
        """`env`: variables to set in the child (e.g. `I2DL_BLOCKED_CONVS=0`)."""
        self.process = subprocess.Popen([sys.executable, str(script), "--serve", *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self._read()  # "ready": set up and warmed up

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark side {self.process.args[2:]} ended early (exit {self.process.wait()})")
        return json.loads(line)

    def time(self, steps: int) -> float:
        time.sleep(self.SETTLE_S)
        self.process.stdin.write(f"{steps}\n")
        self.process.stdin.flush()
        return self._read()["seconds"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def serve(step) -> None:
    """The child's side of `Served`: warm up, then time blocks on request."""
    for _ in range(5):
        step()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        steps = int(line)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        print(json.dumps({"seconds": (time.perf_counter() - start) / steps}), flush=True)

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
from pathlib import Path


def measure_apart(script: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """`env`: variables to set in the child (e.g. `I2DL_BLOCKED_CONVS=0`)."""
    done = subprocess.run([sys.executable, str(script), "--one", *args], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})
    return json.loads(done.stdout.strip().splitlines()[-1])

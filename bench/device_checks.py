"""The correctness half of bench/gpu_check.py: what runs where, whether the
device agrees with the CPU, whether training state stays on the device, and
whether the digits CNN learns there.

Each check returns plain data (dicts of numbers and strings) for the JSON
report, and an `ok` that the table shows: the checks report, they do not
raise, so one failing model does not hide the others.

Placement comes from onnxruntime's profiler, which records for every node it
runs the execution provider that ran it; `MemcpyToHost`/`MemcpyFromHost`
nodes in that record are the copies onnxruntime inserted between a device
node and a CPU one. On CUDA the sessions are also created strict
(`Placement(strict=True)`: no CPU fallback), so a node the CUDA provider
cannot run fails the session, named, before anything is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from i2dl_dsl.checker import CheckedNetwork, check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.lowering.export import to_onnx
from i2dl_dsl.runtime import Placement, create_session
from i2dl_dsl.target import Target
from i2dl_dsl.train.losses import resolve as resolve_loss
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.settings import Settings, config_for
from i2dl_dsl.train.step import StepModel, build_step

ROOT = Path(__file__).resolve().parents[1]
PROVIDER = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
COPY_OPS = ("MemcpyToHost", "MemcpyFromHost")
OUTPUT_TOLERANCE = 1e-4    # max |device - reference| / max |reference|, per output
GRADIENT_TOLERANCE = 1e-3  # the same per parameter; a backward pass sums in more orders


def zoo_network(name: str) -> CheckedNetwork:
    return check(ROOT / "models" / f"{name}.net")


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """The largest difference relative to the reference's scale: elementwise
    ratios blow up where the reference crosses zero."""
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return float(np.max(np.abs(got - want))) / (scale or 1.0) if want.size else 0.0


# ------------------------------------------------------------ environment
def environment(device: str) -> dict[str, Any]:
    """Versions and hardware: onnxruntime and its providers, torch and its
    CUDA/cuDNN build, the GPU's name and memory."""
    import onnxruntime

    info: dict[str, Any] = {"device": device, "python": sys.version.split()[0],
                            "onnxruntime": onnxruntime.__version__,
                            "providers": onnxruntime.get_available_providers()}
    try:
        import torch
    except ImportError:
        info["torch"] = None
        return info
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}")
    return info


# ------------------------------------------------------------- placement
def profiled_nodes(profile_file: str) -> list[dict[str, str]]:
    """Every node run recorded in an onnxruntime profile: name, op, provider."""
    events = json.loads(Path(profile_file).read_text())
    nodes = []
    for event in events:
        args = event.get("args", {})
        if event.get("cat") == "Node" and "provider" in args and event.get("name", "").endswith("_kernel_time"):
            nodes.append({"node": event["name"][:-len("_kernel_time")], "op": args.get("op_name", "?"),
                          "provider": args["provider"]})
    return nodes


def placement_report(nodes: list[dict[str, str]], device: str, runs: int, doc: dict[str, str]) -> dict[str, Any]:
    """Which nodes ran off the device (with their .net line) and how many
    copies onnxruntime made per run."""
    wanted = PROVIDER[device]
    off = sorted({(n["op"], n["node"]) for n in nodes if n["provider"] != wanted and n["op"] not in COPY_OPS})
    copies = sum(n["op"] in COPY_OPS for n in nodes)
    return {"nodes_per_run": (len(nodes) - copies) // max(runs, 1), "off_device": [
        {"op": op, "node": node, "source": doc.get(node, "")} for op, node in off],
        "copies_per_run": copies / max(runs, 1)}


def _doc_strings(model) -> dict[str, str]:
    return {node.name: node.doc_string for node in model.graph.node}


def _profile_prefix(folder: str, tag: str) -> str:
    return str(Path(folder) / tag)


# ---------------------------------------------------------- inference
def inference_check(name: str, device: str, batch: int = 1, seed: int = 0) -> dict[str, Any]:
    """One zoo model: strict session on the device, run once profiled,
    output compared with an unoptimised CPU run of the same graph."""
    started = time.perf_counter()
    net = zoo_network(name)
    model = to_onnx(net, seed=seed)
    data = model.SerializeToString()
    x = np.random.default_rng(seed).standard_normal((batch, *net.analysis.shapes[net.input])).astype(np.float32)
    report: dict[str, Any] = {"model": name}
    with tempfile.TemporaryDirectory() as folder:
        try:
            session = create_session(data, device, profile=_profile_prefix(folder, name),
                                     placement=Placement(strict=True, tf32=False))
        except UserError as error:  # strict placement refused a node: that is the finding
            return {**report, "ok": False, "error": error.message}
        got = session.run({net.input: x})[0]
        nodes = profiled_nodes(session.session.end_profiling())
    want = create_session(data, "cpu", placement=Placement(optimize=False)).run({net.input: x})[0]
    report.update(placement_report(nodes, device, 1, _doc_strings(model)))
    report.update(output_error=relative_error(got, want), seconds=round(time.perf_counter() - started, 2))
    report["ok"] = not report["off_device"] and report["output_error"] <= OUTPUT_TOLERANCE
    return report


# ---------------------------------------------------------- training
def _config(net: CheckedNetwork):
    """The model's own loss; Adam for every model (a full-batch L-BFGS
    section has no per-batch step to check); gradients as outputs."""
    config = config_for(Settings.merge(net.train, {"optimizer": "adam"}))
    config.expose_gradients = True
    return config


def _batch(net: CheckedNetwork, step: StepModel, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *net.analysis.shapes[net.input])).astype(np.float32)
    out = net.analysis.shapes[net.output]
    if resolve_loss(step.loss).integer_labels:
        return x, rng.integers(0, out[-1], (batch, *out[:-1])).astype(np.int64)
    return x, rng.uniform(0, 1, (batch, *out)).astype(np.float32)


def _steps(step: StepModel, device: str, x, y, steps: int, placement: Placement, profile: str | None = None):
    """A session that has run `steps` steps, and its gradients of the first."""
    session = TrainingSession(step, device, profile=profile, placement=placement)
    masks = {m: np.ones((len(x), *draw.shape), np.float32) for m, draw in step.masks.items()}
    first = None
    for t in range(1, steps + 1):
        session.train_step(x, y, masks, 1e-3, t)
        if first is None:
            first = {name: value.numpy().copy() for name, value in session.last_gradients.items()}
    return session, first


def reference_target(device: str) -> Target:
    """The CPU graph gradients are compared with: on CUDA the CPU's own
    (blocked) form; on the CPU the plain form, so the comparison still
    crosses two different graphs and kernels."""
    return Target.resolve("cpu") if device == "cuda" else Target("cpu", 0)


def training_check(name: str, device: str, batch: int = 2, steps: int = 3, seed: int = 0,
                   compare: bool = True) -> dict[str, Any]:
    """One training step's session: strict placement, copies per step,
    whether every parameter and optimizer slot is on the device after
    `steps` steps, and (compare) the first step's gradients against the CPU."""
    started = time.perf_counter()
    net = zoo_network(name)
    config = _config(net)
    step = build_step(net, config, target=Target.resolve(device))
    x, y = _batch(net, step, batch, seed)
    report: dict[str, Any] = {"model": name, "batch": batch}
    with tempfile.TemporaryDirectory() as folder:
        try:
            session, grads = _steps(step, device, x, y, steps, Placement(strict=True, tf32=False),
                                    _profile_prefix(folder, name))
        except UserError as error:
            return {**report, "ok": False, "error": error.message}
        nodes = profiled_nodes(session.step_session.session.end_profiling())
    report.update(placement_report(nodes, device, steps, _doc_strings(step.model)))
    places = {value.device_name().lower() for value in session.tensors.values()}
    report["state_on"] = sorted(places)
    report["resident"] = places == {device}
    if compare:
        reference = build_step(net, config, target=reference_target(device))
        _, want = _steps(reference, "cpu", x, y, 1, Placement(optimize=False))
        errors = {p: relative_error(grads[p], want[p]) for p in want}
        worst = max(errors, key=errors.get)
        report.update(gradient_error=errors[worst], worst_parameter=worst)
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["ok"] = (not report["off_device"] and report["resident"]
                    and report.get("gradient_error", 0.0) <= GRADIENT_TOLERANCE)
    return report


# ---------------------------------------------------------- learning
def learning_check(device: str, bar: float = 0.98) -> dict[str, Any]:
    """`i2dl-train models/digits_cnn.net --device DEVICE` as a user runs it;
    its test accuracy from the run's result.json."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "i2dl_dsl.cli.train", str(ROOT / "models" / "digits_cnn.net"),
                   "--device", device, "--out", folder, "--quiet", "--overwrite"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        result_file = Path(folder) / "result.json"
        if done.returncode != 0 or not result_file.exists():
            return {"ok": False, "error": (done.stderr or done.stdout).strip()[-500:], "exit": done.returncode}
        result = json.loads(result_file.read_text())
    return {"command": f"i2dl-train models/digits_cnn.net --device {device}", "device": result["device"],
            "test_accuracy": result["test_acc"], "epochs": result["epochs"], "seconds": round(seconds, 1),
            "bar": bar, "ok": result["device"] == device and result["test_acc"] >= bar}

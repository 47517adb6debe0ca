"""The whole GPU verification as one command: what the machine is, whether
every zoo model and training step runs wholly on the device, whether the
device agrees with the CPU, whether training learns there, and how fast it
is against PyTorch on the same device, in the same run.

    python bench/gpu_check.py --device cuda [--out gpu.json]     # on a GPU machine, < 8 min on an H200
    python bench/gpu_check.py --device cpu --quick [--out x.json] # the same code paths, small, on any CPU

Prints one table and writes one JSON (`--out`). Exit 0 when every
correctness check passes (placement, agreement, residency, learning); the
speed targets (inference >= 1.5x, training >= 1.0x PyTorch eager) are
reported, not enforced. On CUDA, TF32 is off for the agreement checks (so
1e-4 is a float32 tolerance) and on for both sides of the speed runs (what
users run with); the table says so.
How onnxruntime-gpu reaches a GPU machine without a registry: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import device_checks as checks  # noqa: E402
from isolate import Served, measure_apart  # noqa: E402

from i2dl_dsl.zoo import zoo_models  # noqa: E402

# Peak dense rates (TFLOPS) from NVIDIA's data sheets (SXM parts): FP32 on
# the CUDA cores, TF32 on the tensor cores without sparsity.
PEAKS = {"H200": {"fp32": 67.0, "tf32": 494.7}, "H100": {"fp32": 67.0, "tf32": 494.7},
         "A100": {"fp32": 19.5, "tf32": 156.0}}
NEWEST = ("mobilenet_v2", "efficientnet_b0", "convnext_tiny")  # timed where the zoo has them
TARGETS = {"inference": 1.5, "training": 1.0}


@dataclass(frozen=True)
class Plan:
    """What one run covers: the full plan on a GPU, a small one (`--quick`)
    that walks the same code on a CPU in about a minute."""

    inference: tuple[str, ...]
    training: tuple[str, ...]
    compare_gradients: tuple[str, ...]
    infer_speed: tuple[str, ...]
    infer_batches: tuple[int, ...]
    train_speed: tuple[str, ...]
    train_batches: tuple[int, ...]
    compile: tuple[str, ...] = ()
    rounds: int = 5
    steps: int = 10
    repeat: int = 5
    notes: list[str] = field(default_factory=list)


def plan_for(quick: bool) -> Plan:
    zoo = tuple(m.name for m in zoo_models())
    if quick:
        return Plan(inference=("lenet5", "digits_cnn", "resnet_small", "lstm_classifier"),
                    training=("digits_cnn", "resnet_small", "lstm_classifier"),
                    compare_gradients=("digits_cnn", "resnet_small", "lstm_classifier"),
                    infer_speed=("lenet5",), infer_batches=(1, 16), train_speed=("digits_cnn",),
                    train_batches=(32,), rounds=3, steps=5, repeat=3)
    newest = tuple(m for m in NEWEST if m in zoo)
    return Plan(inference=zoo, training=zoo,
                compare_gradients=("digits_cnn", "resnet_small", "lstm_classifier", "resnet18", "resnet50") + newest,
                infer_speed=("resnet18", "resnet50") + newest, infer_batches=(1, 64, 256),
                train_speed=("resnet_small", "resnet50", "lstm_classifier"), train_batches=(64, 256),
                compile=("resnet50",), rounds=4)


# ------------------------------------------------------------------ speed
def _side(script: str, name: str, side: str, args: list[str]) -> dict[str, Any]:
    """One side's timings in a process of its own; why not, when it fails
    (a model without a PyTorch reference here, torch.compile unavailable)."""
    try:
        return measure_apart(BENCH / script, name, side, *args)
    except subprocess.CalledProcessError as failed:
        lines = (failed.stderr or "").strip().splitlines()
        return {"skipped": lines[-1] if lines else f"exit {failed.returncode}"}


def inference_speed(plan: Plan, device: str, tf32: bool) -> list[dict[str, Any]]:
    rows = []
    args = ["--device", device, "--repeat", str(plan.repeat), "--batches", ",".join(map(str, plan.infer_batches))]
    args += ["--tf32"] if tf32 else []
    for name in plan.infer_speed:
        ours = _side("infer_speed.py", name, "ours", args)
        sides = {"torch": _side("infer_speed.py", name, "torch", args)}
        if name in plan.compile:
            sides["compiled"] = _side("infer_speed.py", name, "compiled", args)
        for batch in map(str, plan.infer_batches):
            row = {"model": name, "batch": int(batch), "ours_s": ours.get(batch), "skipped": ours.get("skipped")}
            for side, times in sides.items():
                row[f"{side}_s"] = times.get(batch)
                if times.get(batch) and ours.get(batch):
                    row[f"vs_{side}"] = times[batch] / ours[batch]
                elif "skipped" in times:
                    row[f"{side}_skipped"] = times["skipped"]
            rows.append(row)
    return rows


def _served_times(name: str, batch: int, device: str, tf32: bool, plan: Plan) -> dict[str, list[float]]:
    args = ["--batch", str(batch), "--device", device] + (["--tf32"] if tf32 else [])
    sides = {side: Served(BENCH / "train_speed.py", name, side, *args) for side in ("ours", "torch")}
    times: dict[str, list[float]] = {side: [] for side in sides}
    try:
        for round_ in range(plan.rounds):
            for side in (list(sides) if round_ % 2 == 0 else list(sides)[::-1]):
                times[side].append(sides[side].time(plan.steps))
    finally:
        for served in sides.values():
            served.close()
    return times


def training_speed(plan: Plan, device: str, tf32: bool, peak: float | None) -> list[dict[str, Any]]:
    rows = []
    for name in plan.train_speed:
        macs = checks.zoo_network(name).analysis.total_macs
        for batch in plan.train_batches:
            try:
                times = _served_times(name, batch, device, tf32, plan)
            except RuntimeError as failed:
                rows.append({"model": name, "batch": batch, "skipped": str(failed)})
                continue
            ours, theirs = statistics.median(times["ours"]), statistics.median(times["torch"])
            ratios = sorted(b / a for a, b in zip(times["ours"], times["torch"]))
            # forward 1 MAC = 2 FLOPs; backward ~2x forward: 3 passes' worth per sample
            flops = macs * 2 * 3 * batch / ours
            rows.append({"model": name, "batch": batch, "ours_samples_s": batch / ours,
                         "torch_samples_s": batch / theirs, "vs_torch": statistics.median(ratios),
                         "range": [ratios[0], ratios[-1]], "tflops": flops / 1e12,
                         "fraction_of_peak": flops / (peak * 1e12) if peak else None})
    return rows


def peak_for(env: dict[str, Any], tf32: bool, given: float | None) -> tuple[float | None, str]:
    if given:
        return given, f"{given} TFLOPS (--peak-tflops)"
    for gpu, rates in PEAKS.items():
        if gpu in str(env.get("gpu", "")):
            kind = "tf32" if tf32 else "fp32"
            return rates[kind], f"{rates[kind]} TFLOPS ({gpu} {kind.upper()} dense, NVIDIA data sheet)"
    return None, "unknown (pass --peak-tflops)"


# ----------------------------------------------------------------- report
def _ok(rows: list[dict[str, Any]]) -> bool:
    return all(row["ok"] for row in rows)


def run(device: str, quick: bool, tf32: bool, peak_tflops: float | None) -> dict[str, Any]:
    started = time.perf_counter()
    plan = plan_for(quick)
    report: dict[str, Any] = {"environment": checks.environment(device), "quick": quick, "tf32_speed": tf32}
    report["inference"] = [checks.inference_check(name, device) for name in plan.inference]
    report["training"] = [checks.training_check(name, device, compare=name in plan.compare_gradients)
                          for name in plan.training]
    report["learning"] = checks.learning_check(device)
    peak, peak_note = peak_for(report["environment"], tf32, peak_tflops)
    report["peak"] = {"tflops": peak, "source": peak_note}
    report["speed"] = {"inference": inference_speed(plan, device, tf32),
                       "training": training_speed(plan, device, tf32, peak)}
    report["targets"] = TARGETS
    report["ok"] = _ok(report["inference"]) and _ok(report["training"]) and report["learning"]["ok"]
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else format(value, spec) + suffix


def table(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"# {env.get('gpu', platform.processor() or platform.machine())} · onnxruntime {env['onnxruntime']} · "
             f"torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}) · device "
             f"{env['device']}", "", "| check | model | result | detail |", "| --- | --- | --- | --- |"]
    for row in report["inference"]:
        detail = row.get("error") or (f"{row['nodes_per_run']} nodes, {len(row['off_device'])} off device, "
                                      f"{row['copies_per_run']:g} copies; max rel. error {row['output_error']:.1e}")
        lines.append(f"| inference | {row['model']} | {'ok' if row['ok'] else 'FAIL'} | {detail} |")
    for row in report["training"]:
        detail = row.get("error") or (f"{row['nodes_per_run']} nodes, {len(row['off_device'])} off device, "
                                      f"{row['copies_per_run']:g} copies/step, state on {','.join(row['state_on'])}"
                                      + (f"; gradients rel. error {row['gradient_error']:.1e}"
                                         if "gradient_error" in row else ""))
        lines.append(f"| training step | {row['model']} | {'ok' if row['ok'] else 'FAIL'} | {detail} |")
    learn = report["learning"]
    detail = learn.get("error") or (f"test accuracy {learn['test_accuracy']:.4f} (bar {learn['bar']}) on "
                                    f"{learn['device']}, {learn['epochs']} epochs, {learn['seconds']} s")
    lines.append(f"| learning | digits_cnn | {'ok' if learn['ok'] else 'FAIL'} | {detail} |")
    lines += ["", f"Speed against PyTorch eager, same device, same run (TF32 {'on' if report['tf32_speed'] else 'off'}"
              f" on both sides); peak {report['peak']['source']}:", "",
              "| model | batch | ours | PyTorch eager | ratio | torch.compile ratio | target |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in report["speed"]["inference"]:
        unit = (lambda s: f"{s * 1e3:.3f} ms") if row["batch"] == 1 else (lambda s: f"{row['batch'] / s:,.0f}/s")
        ratio = row.get("vs_torch")
        lines.append(f"| {row['model']} (inference) | {row['batch']} | {unit(row['ours_s']) if row['ours_s'] else row.get('skipped') or '—'} | "
                     f"{unit(row['torch_s']) if row.get('torch_s') else row.get('torch_skipped', '—')} | "
                     f"{_fmt(ratio, '.2f', '×')} | {_fmt(row.get('vs_compiled'), '.2f', '×')} | "
                     f"{'met' if ratio and ratio >= TARGETS['inference'] else 'not met'} |")
    for row in report["speed"]["training"]:
        if "skipped" in row:
            lines.append(f"| {row['model']} (training) | {row['batch']} | — | — | — | — | {row['skipped']} |")
            continue
        peak = f", {row['fraction_of_peak']:.1%} of peak" if row["fraction_of_peak"] is not None else ""
        lines.append(f"| {row['model']} (training) | {row['batch']} | {row['ours_samples_s']:,.0f}/s "
                     f"({row['tflops']:.2f} TFLOPS{peak}) | {row['torch_samples_s']:,.0f}/s | {row['vs_torch']:.2f}× "
                     f"({row['range'][0]:.2f}–{row['range'][1]:.2f}) | — | "
                     f"{'met' if row['vs_torch'] >= TARGETS['training'] else 'not met'} |")
    lines += ["", f"correctness: {'all passed' if report['ok'] else 'FAILED'} · {report['seconds']} s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--quick", action="store_true", help="a small plan that walks every check (CI, on a CPU)")
    ap.add_argument("--out", type=Path, help="write the report as JSON here")
    ap.add_argument("--no-tf32", action="store_true", help="CUDA speed runs without TF32 on both sides")
    ap.add_argument("--peak-tflops", type=float, help="the device's peak rate for the fraction-of-peak column")
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    report = run(args.device, args.quick, args.device == "cuda" and not args.no_tf32, args.peak_tflops)
    print(table(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""bench/gpu_check.py: its checks can fail, and its quick plan runs on this
CPU end to end, so the script that verifies a GPU cannot rot between the
times a GPU is at hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from i2dl_dsl.runtime import Placement, session_options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import device_checks  # noqa: E402


def test_strict_placement_lists_no_cpu_provider_and_disables_the_fallback():
    placement = Placement(strict=True, tf32=False)
    assert placement.providers(True) == [("CUDAExecutionProvider", {"use_tf32": "0"})]
    options = placement.options(None, None, use_cuda=True)
    assert options.get_session_config_entry("session.disable_cpu_ep_fallback") == "1"
    assert Placement().providers(True) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # On the CPU the CPU is the device: strictness changes nothing there.
    assert placement.providers(False) == ["CPUExecutionProvider"]
    with pytest.raises(Exception, match="disable_cpu_ep_fallback"):  # onnxruntime: no such entry
        placement.options(None, None, use_cuda=False).get_session_config_entry("session.disable_cpu_ep_fallback")


def test_an_unoptimised_session_runs_the_graph_as_written():
    import onnxruntime as ort

    assert session_options(optimize=False).graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert session_options().graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_nodes_off_the_device_and_copies_are_reported(tmp_path):
    """A profile where one node fell back to the CPU with a copy each way."""
    def node(name, op, provider):
        return {"cat": "Node", "name": f"{name}_kernel_time", "args": {"op_name": op, "provider": provider}}

    events = [node("conv1/Conv", "Conv", "CUDAExecutionProvider"),
              node("copy_in", "MemcpyToHost", "CUDAExecutionProvider"),
              node("lstm1/LSTM", "LSTM", "CPUExecutionProvider"),
              node("copy_out", "MemcpyFromHost", "CUDAExecutionProvider"),
              {"cat": "Session", "name": "model_run", "args": {}}]
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(events))
    nodes = device_checks.profiled_nodes(str(profile))
    report = device_checks.placement_report(nodes, "cuda", 1, {"lstm1/LSTM": "m.net:4:5: lstm(8)"})
    assert report["nodes_per_run"] == 2 and report["copies_per_run"] == 2
    assert report["off_device"] == [{"op": "LSTM", "node": "lstm1/LSTM", "source": "m.net:4:5: lstm(8)"}]
    assert device_checks.placement_report(nodes, "cpu", 1, {})["off_device"][0]["op"] == "Conv"


def test_relative_error_is_against_the_references_scale():
    want = __import__("numpy").array([0.0, 10.0], "float32")
    assert device_checks.relative_error(want + [1e-3, 0], want) == pytest.approx(1e-4)


@pytest.mark.slow
def test_quick_check_passes_on_the_cpu(tmp_path):
    """`gpu_check.py --device cpu --quick`: every check ran and passed, the
    digits CNN learned, and both sides of each speed row were timed."""
    pytest.importorskip("torch")
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--quick",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["ok"] and report["environment"]["device"] == "cpu"
    assert {r["model"] for r in report["inference"]} >= {"lenet5", "digits_cnn", "resnet_small", "lstm_classifier"}
    for row in report["inference"]:
        assert row["off_device"] == [] and row["nodes_per_run"] > 0 and row["output_error"] <= 1e-4
    for row in report["training"]:
        assert row["resident"] and row["state_on"] == ["cpu"] and row["copies_per_run"] == 0
        assert row["gradient_error"] <= device_checks.GRADIENT_TOLERANCE
    assert report["learning"]["test_accuracy"] >= 0.98 and report["learning"]["device"] == "cpu"
    for row in report["speed"]["inference"]:
        assert row["ours_s"] > 0 and row["torch_s"] > 0 and row["vs_torch"] > 0
    for row in report["speed"]["training"]:
        assert row["ours_samples_s"] > 0 and row["torch_samples_s"] > 0
    assert "| learning | digits_cnn | ok |" in done.stdout

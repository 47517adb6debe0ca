"""docs/cluster.md holds the scaling model's table as bench/scaling_model.py
prints it: its figures come from the script, not by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_cluster_page_holds_the_scaling_model_table_as_printed():
    spec = importlib.util.spec_from_file_location("scaling_model", ROOT / "bench" / "scaling_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.table() in (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")


def test_the_model_sends_two_n_minus_one_over_n_times_the_gradient():
    spec = importlib.util.spec_from_file_location("scaling_model", ROOT / "bench" / "scaling_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # ResNet-50 on 100 Gb/s, N = 8: 2·7/8 × 25,557,032 × 4 bytes × 8 bits / 1e11 bits/s
    assert abs(module.comm_seconds(25_557_032, 8, 100) - 1.75 * 25_557_032 * 32 / 1e11) < 1e-12

"""docs/limits.md states the limits the code enforces: each figure it gives
is read back here and compared with the constant that enforces it."""

from __future__ import annotations

from pathlib import Path

from i2dl_dsl import diagnostics, reading
from i2dl_dsl.lowering import export
from i2dl_dsl.syntax import parser

LIMITS = (Path(__file__).resolve().parents[1] / "docs" / "limits.md").read_text()


def test_the_source_size_limit() -> None:
    assert reading.SOURCE_LIMIT == 2**20 and "At most 1 MiB per file (`SOURCE_LIMIT`)" in LIMITS
    largest = max(p.stat().st_size for p in (Path(__file__).resolve().parents[1] / "models").glob("*.net"))
    assert largest < 10 * 2**10 and "the largest model of `models/` is\n  under 10 KiB" in LIMITS


def test_the_safetensors_header_limit() -> None:
    from i2dl_dsl.interop import safetensors_io

    assert safetensors_io.HEADER_LIMIT == 100_000_000 and "at most\n  100 MB (`HEADER_LIMIT`" in LIMITS


def test_the_export_estimate() -> None:
    assert export.EXPORT_COPIES == 4 and export.EXPORT_LAYER_BYTES == 16 * 2**10
    assert "4 × 4 bytes × (parameters + buffers)  +  16 KiB × layers" in LIMITS


def test_the_diagnostics_limits() -> None:
    assert f"the first {diagnostics.MAX_SHOWN} diagnostics are printed (`MAX_SHOWN`)" in LIMITS
    assert f"at most {diagnostics.WINDOW} characters around the mistake" in LIMITS
    assert f"past {diagnostics.MAX_MESSAGE} characters (`MAX_MESSAGE`)" in LIMITS
    assert f"at most {parser.RECOVERY_BUDGET:,}\n  more characters" in LIMITS

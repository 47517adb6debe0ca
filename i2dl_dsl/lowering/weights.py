"""Weights by parameter name: read from `.npz` (never pickled) or `.onnx`,
matched against what a network expects, every mismatch named."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..diagnostics import UserError


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Parameter name → array from an `.npz` or the initializers of an `.onnx`."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file '{p}' does not exist")
    if p.suffix == ".npz":
        return _read_npz(p)
    if p.suffix == ".onnx":
        return _read_onnx(p)
    raise UserError(f"weights file '{p}' is neither .npz nor .onnx", "save weights with numpy.savez(path, **arrays)")


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as data:
            return {name: np.asarray(data[name]) for name in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read weights '{p}': {exc}",
                        "an .npz written with numpy.savez holding plain arrays (no object arrays)") from None


def _read_onnx(p: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(p))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds
        raise UserError(f"cannot read '{p}' as ONNX: {exc}") from None
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if "/" not in t.name}


def match_weights(given: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], source: str,
                  strict: bool = True) -> dict[str, np.ndarray]:
    """The arrays of `given` that the network expects, as float32.

    strict: every expected name must be given and nothing else. Shape
    mismatches are always errors. The message lists every problem at once.
    """
    problems = []
    missing = [n for n in expected if n not in given]
    unexpected = [n for n in given if n not in expected]
    wrong = [f"  {n}: expected {list(expected[n])}, got {list(given[n].shape)}"
             for n in expected if n in given and tuple(given[n].shape) != tuple(expected[n])]
    not_numbers = [f"  {n}: {given[n].dtype}" for n in expected
                   if n in given and not (np.issubdtype(given[n].dtype, np.floating)
                                          or np.issubdtype(given[n].dtype, np.integer))]
    if strict and missing:
        problems.append("missing from the weights:\n" + "\n".join(f"  {n}" for n in missing))
    if strict and unexpected:
        problems.append("not in the network:\n" + "\n".join(f"  {n}" for n in unexpected))
    if wrong:
        problems.append("shapes that do not match:\n" + "\n".join(wrong))
    if not_numbers:
        problems.append("arrays that are not real numbers:\n" + "\n".join(not_numbers))
    if problems:
        raise UserError(f"weights '{source}' do not fit the network\n" + "\n".join(problems),
                        "parameter names follow the layer names in `i2dl-compile MODEL.net --summary`")
    return {n: np.asarray(given[n], dtype=np.float32) for n in expected if n in given}

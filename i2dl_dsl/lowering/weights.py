"""Weights by parameter name: read from `.npz` (never pickled),
`.safetensors` or `.onnx` (and PyTorch's pickled `.pt` only when allowed),
matched against what a network expects, every mismatch named."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..diagnostics import Diagnostic, Span, UserError
from ..reading import ArrayHeader, npz_arrays, npz_headers, open_npz, regular_file, require_memory


# PyTorch's batch-norm step counter: a buffer it keeps for momentum=None,
# which the compiled networks have no use for; accepted and ignored.
IGNORED_SUFFIXES = (".num_batches_tracked",)
FORMATS = ".npz, .safetensors or .onnx"


def read_weights(path: str | Path, expected: Mapping[str, tuple[int, ...]] | None = None,
                 allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Parameter name → array from an `.npz`, a `.safetensors`, the
    initializers of an `.onnx`, or (only with `allow_pickle`: unpickling can
    run code) a PyTorch `.pt`/`.pth` state_dict, as stored (PyTorch's
    `num_batches_tracked` counters included: `drop_step_counters`).

    With `expected` (name → shape), only the entries of those names and
    shapes are unpacked; the others stand as zero-stride arrays of their
    declared shape (ArrayHeader.stand_in), enough to name them in a report.
    What is unpacked must fit in the available memory (reading.py).
    """
    from ..interop import torch_pickle

    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise UserError(f"weights file '{p}' does not exist")
    if p.suffix in torch_pickle.SUFFIXES:
        if not allow_pickle:
            raise torch_pickle.refuse(p)
        weights = torch_pickle.read_pickle(p)
    elif p.suffix in _READERS:
        weights = _READERS[p.suffix](p, expected)
    else:
        raise UserError(f"weights file '{p}' is not {FORMATS}",
                        "save weights with safetensors (safetensors.numpy.save_file) or numpy.savez(path, **arrays)")
    return weights


def fits(given: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Whether an array of shape `given` is a parameter of shape `expected`:
    the same shape, or a Linear's [out, in] for a 1x1 convolution's
    [out, in, 1, 1], the same numbers in the same order (ConvNeXt's
    per-position Linear layers are 1x1 convolutions here)."""
    given, expected = tuple(given), tuple(expected)
    return given == expected or (len(given) == 2 and expected == (*given, 1, 1))


def _wanted(headers: Mapping[str, ArrayHeader], expected: Mapping[str, tuple[int, ...]] | None) -> list[str]:
    """The entries worth unpacking: every one, or those the network expects with a shape that fits."""
    return [n for n, h in headers.items() if expected is None or (n in expected and fits(h.shape, expected[n]))]


def _read_npz(p: Path, expected: Mapping[str, tuple[int, ...]] | None) -> dict[str, np.ndarray]:
    label = f"weights '{p}'"
    with open_npz(p, label) as archive:
        headers = npz_headers(archive, label)
        arrays = npz_arrays(archive, headers, _wanted(headers, expected), label)
    return {name: arrays[name] if name in arrays else header.stand_in() for name, header in headers.items()}


def _read_safetensors(p: Path, expected: Mapping[str, tuple[int, ...]] | None) -> dict[str, np.ndarray]:
    from ..interop.safetensors_io import read_safetensors

    label = f"weights '{p}'"
    headers, arrays = read_safetensors(p, lambda found: _wanted(found, expected), label)
    return {name: arrays[name] if name in arrays else header.stand_in() for name, header in headers.items()}


def _read_onnx(p: Path, expected: Mapping[str, tuple[int, ...]] | None) -> dict[str, np.ndarray]:
    import onnx

    label = f"weights '{p}'"
    info = regular_file(p, label)
    require_memory(info.st_size, f"reading {label}", "an .onnx model larger than the free memory is never read")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds
        raise UserError(f"cannot read '{p}' as ONNX: {exc}") from None
    tensors = {t.name: t for t in model.graph.initializer if "/" not in t.name}
    headers = {name: _declared(t, label) for name, t in tensors.items()}
    wanted = _wanted(headers, expected)
    require_memory(sum(headers[n].nbytes for n in wanted), f"reading {label}",
                   "check the initializers' shapes; tensors larger than the free memory are never read")
    arrays = {n: _onnx_array(tensors[n], p.parent, label) for n in wanted}
    found = {name: arrays[name] if name in arrays else header.stand_in() for name, header in headers.items()}
    return {**found, **_stored_rearranged(model, p.parent, label)}


def _stored_rearranged(model, folder: Path, label: str) -> dict[str, np.ndarray]:
    """Parameters an export stores rearranged for its op (an LSTM's W, R, B as
    `<layer>/W`, ...), by their own names again: the layer kind that lowers to
    the op (its `onnx_op`) says how (`onnx_to_torch`)."""
    from ..layers import REGISTRY

    readers = {cls.onnx_op: cls for cls in REGISTRY.values() if hasattr(cls, "onnx_to_torch")}
    stored = {t.name: t for t in model.graph.initializer if "/" in t.name}
    found: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        names = [i for i in node.input if i in stored]
        layers = {name.rsplit("/", 1)[0] for name in names}
        if node.op_type not in readers or len(layers) != 1 or not node.name.startswith(f"{next(iter(layers))}/"):
            continue
        layer = layers.pop()
        arrays = [_onnx_array(stored[name], folder, label) for name in names]
        found.update({f"{layer}.{suffix}": value for suffix, value in readers[node.op_type].onnx_to_torch(*arrays).items()})
    return found


def _declared(tensor, label: str) -> ArrayHeader:
    """An initializer's declared shape and type, its data not looked at."""
    from onnx import helper

    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{label}: initializer '{tensor.name}' has an unknown data type ({tensor.data_type})") from None
    if any(d < 0 for d in tensor.dims):
        raise UserError(f"{label}: initializer '{tensor.name}' declares a negative size {list(tensor.dims)}")
    return ArrayHeader(tuple(int(d) for d in tensor.dims), dtype)


def _onnx_array(tensor, folder: Path, label: str) -> np.ndarray:
    from onnx import external_data_helper, numpy_helper

    try:
        if external_data_helper.uses_external_data(tensor):
            external_data_helper.load_external_data_for_tensor(tensor, str(folder))
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - onnx raises several kinds for data that does not fit its dims
        raise UserError(f"cannot read {label}, initializer '{tensor.name}': {exc}") from None


_READERS = {".npz": _read_npz, ".safetensors": _read_safetensors, ".onnx": _read_onnx}


def nonfinite_warning(weights: Mapping[str, np.ndarray], expected: Iterable[str] | None, source: str,
                      shown: int = 5) -> list[Diagnostic]:
    """A warning naming the unpacked tensors (of `expected`, or all) that
    hold NaN or Inf: a network fed them outputs NaN."""
    names = [n for n in (weights if expected is None else expected) if n in weights]
    broken = [n for n in names if _is_number(weights[n]) and not np.isfinite(weights[n]).all()]
    if not broken:
        return []
    more = f" and {len(broken) - shown} more" if len(broken) > shown else ""
    return [Diagnostic("warning", f"{len(broken)} tensor(s) hold NaN or Inf values: {', '.join(broken[:shown])}{more}",
                       Span.unreadable(source), ("the outputs will be NaN; check how these weights were saved",))]


def _is_number(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)


STEP_COUNTER = "num_batches_tracked"  # PyTorch's count of a batch norm's training steps


def drop_step_counters(given: dict[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]
                       ) -> tuple[dict[str, np.ndarray], list[str]]:
    """`given` without the `<layer>.num_batches_tracked` entries of the
    network's batch norms, and their names. PyTorch counts training steps in
    them and uses the count only for `momentum=None`; nothing here reads
    them, so a torchvision `state_dict` loads as it is saved."""
    dropped = [n for n in given if n.endswith("." + STEP_COUNTER)
               and n[: -len(STEP_COUNTER)] + "running_mean" in expected]
    return {n: a for n, a in given.items() if n not in dropped}, dropped


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
             for n in expected if n in given and not fits(given[n].shape, expected[n])]
    not_numbers = [f"  {n}: {given[n].dtype}" for n in expected if n in given and not _is_number(given[n])]
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
    return {n: np.asarray(given[n], dtype=np.float32).reshape(expected[n]) for n in expected if n in given}

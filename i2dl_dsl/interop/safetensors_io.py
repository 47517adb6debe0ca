"""Weights as safetensors (the format PyTorch, Hugging Face and timm share).

A file is an 8-byte little-endian header length N, N bytes of JSON (per
tensor: dtype, shape, data_offsets [begin, end) into the data that follows;
an optional `__metadata__` of strings), then the data. The header is read
and checked first, within HEADER_LIMIT and the file's size: every dtype
known, every size a whole number of elements lying inside the data. Then
only the tensors asked for are read, after checking that they fit in the
free memory (reading.py), so a hostile file is a clear error, never a huge
allocation. Writing goes through the safetensors library, atomically.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np

from ..diagnostics import UserError
from ..files import atomic_write
from ..reading import ArrayHeader, open_regular, regular_file, require_memory, size_text

# The safetensors library refuses headers over 100 MB; a real one holds a few
# hundred bytes per tensor, so even a model of 100,000 tensors stays far below.
HEADER_LIMIT = 100_000_000
METADATA = "__metadata__"
# safetensors dtype → NumPy's; BF16 has no NumPy type and is widened to float32.
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
HINT = "save it with safetensors (safetensors.torch.save_file or safetensors.numpy.save_file)"


class Entry:
    """One tensor of the header: where its bytes lie and what they hold."""

    def __init__(self, name: str, dtype: str, shape: tuple[int, ...], begin: int, end: int):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end

    @property
    def header(self) -> ArrayHeader:
        """Its shape and the dtype it is read as (BF16 as float32)."""
        return ArrayHeader(self.shape, np.dtype(np.float32 if self.dtype == "BF16" else DTYPES[self.dtype]))


def read_header(f: BinaryIO, size: int, label: str) -> tuple[dict[str, Entry], int]:
    """The tensors a file declares and where its data starts; UserError for
    anything that is not a well-formed safetensors header."""
    head = f.read(8)
    if len(head) < 8:
        raise UserError(f"cannot read {label} as safetensors: the file is {size} bytes, shorter than a header", HINT)
    (length,) = struct.unpack("<Q", head)
    if length > min(HEADER_LIMIT, size - 8):
        raise UserError(f"cannot read {label} as safetensors: its header claims {size_text(length)}, "
                        f"{'more than the file holds' if length > size - 8 else 'more than the 100 MB allowed'}",
                        "is the file complete, and is it a safetensors file?")
    try:
        document = json.loads(f.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {label} as safetensors: its header is not JSON ({exc})", HINT) from None
    if not isinstance(document, dict):
        raise UserError(f"cannot read {label} as safetensors: its header is not a JSON object", HINT)
    start = 8 + length
    entries = {name: _entry(name, value, label) for name, value in document.items() if name != METADATA}
    _check_layout(entries.values(), size - start, label)
    return entries, start


def _entry(name: str, value: object, label: str) -> Entry:
    def bad(what: str) -> UserError:
        return UserError(f"cannot read {label}: tensor '{name}' {what}", HINT)

    if not isinstance(value, dict):
        raise bad("is not described by a JSON object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in DTYPES:
        raise bad(f"has the data type {json.dumps(dtype)}, which is none of {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"has the shape {json.dumps(shape)}, not a list of sizes ≥ 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int and o >= 0 for o in offsets)
            and offsets[0] <= offsets[1]):
        raise bad(f"has the data offsets {json.dumps(offsets)}, not [begin, end] with 0 ≤ begin ≤ end")
    entry = Entry(name, dtype, tuple(shape), offsets[0], offsets[1])
    expected = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
    if entry.end - entry.begin != expected:
        raise bad(f"is {dtype} {list(shape)}, {expected:,} bytes, but its data offsets span "
                  f"{entry.end - entry.begin:,} bytes")
    return entry


def _check_layout(entries: Iterable[Entry], data_size: int, label: str) -> None:
    for entry in entries:
        if entry.end > data_size:
            raise UserError(f"cannot read {label}: tensor '{entry.name}' lies at bytes {entry.begin:,} to "
                            f"{entry.end:,} of the data, which holds {data_size:,}",
                            "is the file complete? a download or copy may have been cut short")


def _array(f: BinaryIO, start: int, entry: Entry, label: str) -> np.ndarray:
    f.seek(start + entry.begin)
    data = f.read(entry.end - entry.begin)
    if len(data) != entry.end - entry.begin:
        raise UserError(f"cannot read {label}: tensor '{entry.name}' is cut short", "is the file complete?")
    array = np.frombuffer(data, dtype=DTYPES[entry.dtype]).reshape(entry.shape)
    if entry.dtype == "BF16":  # the upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=True)


def read_safetensors(path: str | Path, select: Callable[[dict[str, ArrayHeader]], Iterable[str]] | None = None,
                     label: str | None = None) -> tuple[dict[str, ArrayHeader], dict[str, np.ndarray]]:
    """Every tensor's header, and the arrays that `select` picks from the
    headers (None: all), which together must fit in the free memory."""
    p = Path(path)
    label = label or f"'{p}'"
    info = regular_file(p, label)
    with open_regular(p, label) as f:
        entries, start = read_header(f, info.st_size, label)
        headers = {name: entry.header for name, entry in entries.items()}
        names = list(entries) if select is None else [n for n in select(headers) if n in entries]
        require_memory(sum(entries[n].header.nbytes for n in names), f"reading {label}",
                       "check the tensors' shapes; tensors larger than the free memory are never read")
        arrays = {name: _array(f, start, entries[name], label) for name in names}
    return headers, arrays


def save_safetensors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` as a safetensors file, atomically."""
    from safetensors.numpy import save

    data = save({name: np.ascontiguousarray(array) for name, array in arrays.items()})
    atomic_write(path, lambda f: f.write(data))

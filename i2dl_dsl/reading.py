"""The one safe way to read files a user names: .net sources, and the arrays
of .npy and .npz files. Nothing is opened before its type is checked (a
FIFO or a device would block or never end), nothing is read past a stated
limit, and an array is unpacked only after its header says it fits in the
memory this machine has free. The limits are described in docs/limits.md.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np
from numpy.lib import format as npy_format

from .diagnostics import Span, UserError

SOURCE_LIMIT = 1 << 20  # bytes of one .net file: the largest zoo model is under 10 KiB
SOURCE_SUFFIX = ".net"
_FALLBACK_MEMORY = 4 << 30  # where the free memory cannot be read (not Linux): a modest machine's

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def size_text(count: float) -> str:
    """A byte count as people write it: 512 bytes, 3.6 TiB."""
    if count < 1024:
        return f"{int(count)} bytes"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB")
    power = min(len(units), int(math.log(count, 1024)))
    return f"{count / 1024 ** power:.1f} {units[power - 1]}"


def available_memory() -> int:
    """Bytes this process can still be given: the machine's available memory,
    lowered by a container's (cgroup v2) limit or an address-space ulimit
    where one is set, for either ends the process before the machine runs out."""
    return int(min(_machine_memory(), _cgroup_room(), _address_space_room()))


def _machine_memory() -> int:
    """MemAvailable of /proc/meminfo (free memory plus caches the kernel can
    drop), else free pages, else a modest fallback."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return _FALLBACK_MEMORY


def _cgroup_room() -> int | float:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii"))
        return math.inf if limit == "max" else max(0, int(limit) - used)
    except (OSError, ValueError):
        return math.inf


def _address_space_room() -> int | float:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return math.inf
        with open("/proc/self/status", encoding="ascii") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        return max(0, soft - size)
    except (ImportError, OSError, ValueError, StopIteration):
        return math.inf


def require_memory(needed: int, what: str, hint: str, span: Span | None = None) -> None:
    """Refuse work that needs more memory than is available, before it starts."""
    free = available_memory()
    if needed > free:
        raise UserError(f"{what} needs about {size_text(needed)}; this machine has {size_text(free)} available",
                        hint, span=span)


# ----------------------------------------------------------------- plain files


def _stat(path: Path, label: str) -> os.stat_result:
    """os.stat, with a symbolic-link loop as a user error; a missing file
    raises FileNotFoundError for the caller to word."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{label} is a loop of symbolic links", "point the link at a real file") from None
        raise UserError(f"cannot read {label}: {exc.strerror or exc}") from None


def regular_file(path: str | Path, label: str) -> os.stat_result:
    """The stat of `path` if it is a regular file (links followed); anything
    else, which could block or never end, is a UserError naming its kind."""
    info = _stat(Path(path), label)
    _require_regular(info, label)
    return info


def _require_regular(info: os.stat_result, label: str) -> None:
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise UserError(f"{label} is {kind}, not a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{label} is not a regular file")


def open_regular(path: Path, label: str) -> BinaryIO:
    """Open a file checked to be regular. O_NONBLOCK: should it have been
    swapped for a FIFO since the check, opening returns at once instead of
    waiting for a writer, and the type is checked again on what was opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    f = os.fdopen(fd, "rb")
    try:
        _require_regular(os.fstat(f.fileno()), label)
    except UserError:
        f.close()
        raise
    return f


def read_source_bytes(path: str | Path, net_suffix: bool = True) -> bytes:
    """The bytes of a .net file: a regular file (ending in .net unless
    `net_suffix` is False: the main file a user names may be called
    anything; a `use` must not quote other files), at most SOURCE_LIMIT
    bytes. FileNotFoundError passes through; every other refusal is a
    UserError."""
    limit = SOURCE_LIMIT
    p = Path(path)
    label = f"'{p}'"
    info = _stat(p, label)
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{label} is a directory, not a .net file")
    _require_regular(info, label)
    if net_suffix and p.suffix != SOURCE_SUFFIX:
        raise UserError(f"{label} is not a .net file", "models and the files they `use` end in .net")
    with open_regular(p, label) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UserError(f"{label} is {size_text(max(info.st_size, len(data)))}; a .net file may hold at most "
                        f"{size_text(limit)}", "split it into files joined with `use`")
    return data


# ----------------------------------------------------------------- arrays


@dataclass(frozen=True)
class ArrayHeader:
    """What an .npy header declares, read without the data."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize

    def stand_in(self) -> np.ndarray:
        """A read-only array of this shape and dtype that holds one element
        (zero strides): enough to name and report an entry never unpacked."""
        return np.broadcast_to(np.zeros((), self.dtype), self.shape)


def _header(f: BinaryIO, label: str) -> ArrayHeader:
    try:
        version = npy_format.read_magic(f)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise UserError(f"cannot read {label} as .npy: {exc}", "save it with numpy.save or numpy.savez") from None
    if dtype.hasobject:  # object arrays are pickles, and loading them runs code
        raise UserError(f"cannot read {label}: it holds pickled Python objects, which are never loaded",
                        "save plain numeric arrays (x.astype('float32'))")
    return ArrayHeader(tuple(shape), dtype)


def _array(f: BinaryIO, label: str) -> np.ndarray:
    try:
        return npy_format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"cannot read {label}: {exc}") from None


def _fit(headers: dict[str, ArrayHeader], label: str) -> None:
    require_memory(sum(h.nbytes for h in headers.values()), f"reading {label}",
                   "check the array's shape; an array larger than the free memory is never read")


def read_npy(path: str | Path, label: str) -> np.ndarray:
    """The one array of an .npy file, its header checked before the data is read."""
    regular_file(path, label)
    with open_regular(Path(path), label) as f:
        if f.read(4) == b"PK\x03\x04":
            raise UserError(f"{label} is an archive of several arrays (.npz), not one array (.npy)")
        f.seek(0)
        _fit({"": _header(f, label)}, label)
        f.seek(0)
        return _array(f, label)


def npz_headers(archive: zipfile.ZipFile, label: str) -> dict[str, ArrayHeader]:
    """Entry name (as numpy.savez named it) → its header; no data unpacked."""
    headers = {}
    for member in archive.namelist():
        if member.endswith(".npy"):
            name = member[:-len(".npy")]
            try:
                with archive.open(member) as f:
                    headers[name] = _header(f, f"{label}, entry '{name}'")
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise UserError(f"cannot read {label}, entry '{name}': {exc}") from None
    return headers


@contextmanager
def open_npz(path: str | Path, label: str) -> Iterator[zipfile.ZipFile]:
    """An .npz archive (a zip), checked to be a regular file first."""
    regular_file(path, label)
    with open_regular(Path(path), label) as f:
        try:
            archive = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise UserError(f"cannot read {label} as .npz: {exc}",
                            "save it with numpy.savez(path, name=array, ...)") from None
        with archive:
            yield archive


def npz_arrays(archive: zipfile.ZipFile, headers: dict[str, ArrayHeader], names: Iterable[str],
               label: str) -> dict[str, np.ndarray]:
    """Unpack only `names` (keys of `headers`), after checking that together they fit."""
    wanted = {name: headers[name] for name in names}
    _fit(wanted, label)
    arrays = {}
    for name in wanted:
        try:
            with archive.open(f"{name}.npy") as f:
                arrays[name] = _array(f, f"{label}, entry '{name}'")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise UserError(f"cannot read {label}, entry '{name}': {exc}") from None
    return arrays

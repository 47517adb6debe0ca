"""The one place that creates onnxruntime sessions, picks the device and
runs them: it takes finished graphs and rewrites none (a graph's rewrites
for its device are its builder's: see target.py).

`device="auto"` uses CUDA when it really loads (the CUDA provider is listed
*and* the session ends up running on it), otherwise the CPU; `"cuda"` where
CUDA cannot load is an error, never a silent CPU run. onnxruntime's own
warnings about CUDA libraries it cannot find are silenced: the caller gets
one plain sentence about the device instead (`Session.device_note`).
Every run, plain (`Session.run`) or with an I/O binding (`Session.run_bound`),
reports a failing node at the line of the .net file it came from.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator

from .diagnostics import UserError

DEVICES = ("auto", "cpu", "cuda")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


class RunFailed(Exception):
    """onnxruntime failed while running; the message names the node and,
    for a compiled model, the line of the .net file it came from."""


@dataclass
class Session:
    session: Any  # onnxruntime.InferenceSession
    device: str  # "cuda" or "cpu"
    device_note: str
    source: str | bytes | None = None  # the model, to trace a failing node back to the .net file

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, feed: dict[str, Any]) -> list[Any]:
        """All outputs for `feed`; a failure raises RunFailed naming where it happened."""
        try:
            return self.session.run(None, feed)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
            raise self._failed(exc) from None

    def binding(self) -> Any:
        """A new I/O binding (onnxruntime.IOBinding) for `run_bound`."""
        return self.session.io_binding()

    def run_bound(self, binding: Any) -> None:
        """Run with the tensors `binding` holds (kept on the device); its
        outputs are then in the binding. A failure raises RunFailed naming
        where it happened, as `run` does."""
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
            raise self._failed(exc) from None

    def _failed(self, exc: Exception) -> RunFailed:
        message = str(exc).strip() or type(exc).__name__
        return RunFailed(f"onnxruntime failed{_where(self.source, message)}: {message}")


def _where(source: str | bytes | None, message: str) -> str:
    """` in node 'conv1/Conv' (model.net:7:5: conv(6, k=5))` when the message names a node."""
    found = re.search(r"Name:\s*'([^']+)'", message)
    if not found:
        return ""
    name, doc = found.group(1), ""
    if source is not None:
        import onnx

        try:
            model = onnx.load_from_string(source) if isinstance(source, bytes) else \
                onnx.load(source, load_external_data=False)
            doc = next((n.doc_string for n in model.graph.node if n.name == name), "")
        except Exception:  # noqa: BLE001 - the location is a courtesy
            doc = ""
    return f" in node '{name}'" + (f" ({doc})" if doc else "")


# Builds of onnxruntime that all install the one module `onnxruntime`: two of
# them side by side overwrite each other's files, and removing either leaves
# a module without its native part.
_ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")


def _installed_ort() -> list[str]:
    """The onnxruntime builds pip has installed."""
    from importlib import metadata

    installed = []
    for name in _ORT_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        installed.append(name)
    return installed


def _ort_clash(ort: Any | None) -> UserError | None:
    """Why the module `ort` (None: it did not import) cannot be used: two
    onnxruntime builds installed together, one whose module is broken, or
    none; None when all is well."""
    installed = _installed_ort()
    if len(installed) < 2 and ort is not None and hasattr(ort, "set_default_logger_severity"):
        return None
    pip = f"{sys.executable} -m pip"
    reinstall = f"{pip} install onnxruntime-gpu"
    if not installed:
        return UserError("onnxruntime is not installed", f"run: {reinstall}")
    remedy = f"run: {pip} uninstall -y {' '.join(_ORT_DISTRIBUTIONS)} && {reinstall}"
    if len(installed) > 1:
        return UserError(f"{' and '.join(installed)} are both installed; they share the module 'onnxruntime' "
                         "and break each other", remedy)
    return UserError(f"the module 'onnxruntime' of {installed[0]} is broken (its native part is missing, "
                     "as after removing one of two onnxruntime builds)", remedy)


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    clash = _ort_clash(ort)
    if clash is not None:
        raise clash
    # Errors only. A provider that fails to load still logs an error line of
    # its own: `_quiet_stderr` holds it back and the caller gets its reason.
    ort.set_default_logger_severity(3)
    return ort


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Hold back what native code writes to file descriptor 2 (onnxruntime's
    logger bypasses Python); the lines are yielded for the caller to use."""
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr: nothing to hold back
        yield lines
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = re.sub(r"\x1b\[[0-9;]*m", "", held.read().decode(errors="replace"))
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def _load_failure(lines: list[str]) -> str:
    """The reason in onnxruntime's log why a provider library did not load."""
    for line in lines:
        found = re.search(r"with error: (.+)", line) or re.search(r"\] (?:\[ONNXRuntimeError\] : \d+ : \w+ : )?(.+)", line)
        if found:
            return found.group(1).strip()
    return ""


def _cuda_driver_present() -> bool:
    """Cheap test before asking onnxruntime: is an NVIDIA driver installed?"""
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def cuda_available() -> tuple[bool, str]:
    """(whether CUDA can be tried, why not when it cannot)."""
    ort = _ort()
    if _CUDA not in ort.get_available_providers():
        return False, "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"
    if not _cuda_driver_present():
        return False, "no NVIDIA driver found (libcuda)"
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            with contextlib.redirect_stdout(io.StringIO()), _quiet_stderr():  # it prints its warnings
                preload()
        except Exception as exc:  # noqa: BLE001 - a failed preload only means CPU
            return False, f"the CUDA libraries did not load: {exc}"
    return True, ""


def session_options(threads: int | None = None, profile: str | None = None, optimize: bool = True):
    ort = _ort()
    options = ort.SessionOptions()
    # optimize=False runs the graph as written (no fusions, no layout
    # changes): the plainest reference to check an optimised run against.
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.log_severity_level = 3
    # Small machines: one thread per core for the kernels, no inter-op pool.
    options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return options


def _cuda_for(device: str) -> tuple[bool, str]:
    """(whether to try CUDA for `device`, why not); an unknown device, or
    "cuda" where it cannot be used, is a UserError."""
    if device not in DEVICES:
        raise UserError(f"unknown device '{device}'; choose one of {', '.join(DEVICES)}")
    use_cuda, why_not = (False, "CPU requested") if device == "cpu" else cuda_available()
    if device == "cuda" and not use_cuda:
        raise UserError(f"--device cuda: CUDA cannot be used: {why_not}", "use --device cpu or --device auto")
    return use_cuda, why_not


def resolve_device(device: str) -> str:
    """The device ("cpu" or "cuda") a session for `device` will be asked
    for: "auto" is CUDA where it can be tried here, otherwise the CPU; "cuda"
    where it cannot is a UserError. For graphs built for one device (a
    training step), resolved once, before building."""
    return "cuda" if _cuda_for(device)[0] else "cpu"


@dataclass(frozen=True)
class Placement:
    """How strictly a session keeps to its device, and how it computes there.

    strict: on CUDA, every node must run on the CUDA provider; one that
    cannot makes creating the session fail, naming it (onnxruntime's
    `session.disable_cpu_ep_fallback`), instead of running on the CPU with
    copies to and from the GPU around it at every run. On the CPU it means
    nothing: the CPU is the device.
    tf32: on CUDA, whether convolutions and matrix products may use TF32
    (inputs rounded to a 10-bit mantissa; faster on tensor cores, agreeing
    with float32 to ~1e-3 rather than ~1e-6); None leaves onnxruntime's own
    default, which the caller then cannot state.
    optimize: onnxruntime's graph optimisations (all, or none).
    """

    strict: bool = False
    tf32: bool | None = None
    optimize: bool = True

    def providers(self, use_cuda: bool) -> list:
        if not use_cuda:
            return [_CPU]
        cuda = (_CUDA, {"use_tf32": str(int(self.tf32))}) if self.tf32 is not None else _CUDA
        return [cuda] if self.strict else [cuda, _CPU]

    def options(self, threads: int | None, profile: str | None, use_cuda: bool):
        options = session_options(threads, profile, self.optimize)
        if self.strict and use_cuda:
            options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        return options


def create_session(model: str | bytes, device: str = "auto", threads: int | None = None,
                   profile: str | None = None, placement: Placement = Placement()) -> Session:
    """A session for a finished model on the requested device; raises
    UserError when the model cannot be loaded, `device="cuda"` cannot be
    honoured, or (`placement.strict`) a node cannot run on CUDA."""
    use_cuda, why_not = _cuda_for(device)
    ort = _ort()
    session, failure = None, ""
    with _quiet_stderr() as log:
        try:
            session = ort.InferenceSession(model, sess_options=placement.options(threads, profile, use_cuda),
                                           providers=placement.providers(use_cuda))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
            failure = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    if session is None:
        where = f"'{model}'" if isinstance(model, str) else "the model"
        raise UserError(f"onnxruntime cannot load {where}: {failure}",
                        "is it an ONNX model, and is any .data file beside it complete?")
    running = session.get_providers()
    if use_cuda and running[0] != _CUDA:
        reason = _load_failure(log) or "onnxruntime fell back to the CPU"
        if device == "cuda":
            raise UserError(f"--device cuda: the CUDA provider did not start: {reason}",
                            "use --device cpu or --device auto")
        return Session(session, "cpu", f"running on CPU: CUDA did not start ({reason})", model)
    if running[0] == _CUDA:
        return Session(session, "cuda", "running on CUDA", model)
    note = "running on CPU" + (f": {why_not}" if device == "auto" and why_not else "")
    return Session(session, "cpu", note, model)

"""Hostile files and sizes: each is refused with exit 2 (or named in a
warning) and a message that says where and why, within seconds, and
nothing is read or allocated past a stated limit (docs/limits.md)."""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from numpy.lib import format as npy_format
from onnx import TensorProto, helper

from i2dl_dsl import reading
from i2dl_dsl.checker import check
from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.cli.run import main as run_main
from i2dl_dsl.cli.train import main as train_main
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.lowering.export import parameter_shapes, save_model, to_onnx
from i2dl_dsl.lowering.weights import read_weights

TINY = "network Tiny {\n    input x[3]\n    fc(2)\n}\n"
TERA = (10**6, 10**6)  # 10¹² floats: 3.6 TiB
SECONDS = 30  # each case takes about one; the rest is room for a loaded machine


def tiny(folder: Path, text: str = TINY, name: str = "tiny.net") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def cli(capfd, main, *args) -> tuple[int, str]:
    """A command in-process, timed: (exit code, stderr); never a traceback or an internal error."""
    start = time.monotonic()
    code = main([str(a) for a in args])
    err = capfd.readouterr().err
    assert time.monotonic() - start < SECONDS
    assert "Traceback" not in err and "internal error" not in err
    return code, err


@pytest.fixture
def deadline():
    """Fail, rather than hang, a test whose command blocks (a FIFO opened for
    reading waits for a writer for ever; /dev/zero never ends)."""
    def expire(signum, frame):
        raise TimeoutError(f"blocked for {SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def claimed(shape: tuple[int, ...]) -> bytes:
    """An .npy header that declares `shape` float32, with no data after it."""
    f = io.BytesIO()
    npy_format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return f.getvalue()


def npz(path: Path, arrays: dict[str, np.ndarray], raw: dict[str, bytes] | None = None) -> Path:
    """An .npz of `arrays`, plus members written as raw bytes (hostile headers)."""
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as archive:
        for name, data in (raw or {}).items():
            archive.writestr(f"{name}.npy", data)
    return path


# ----------------------------------------------------------------- --seed


@pytest.mark.parametrize("main", [compile_main, train_main, run_main], ids=["compile", "train", "run"])
def test_negative_seed_is_a_usage_error(tmp_path, capfd, main):
    with pytest.raises(SystemExit) as stopped:
        main([str(tiny(tmp_path)), "--seed", "-1"])
    assert stopped.value.code == 2
    assert "--seed: expected a non-negative integer, got -1" in capfd.readouterr().err


# ----------------------------------------------------------------- the export's size


def test_export_past_available_memory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "available_memory", lambda: 1000)
    with pytest.raises(UserError, match=r"exporting network Tiny needs about .* KiB; this machine has 1000 bytes"):
        to_onnx(check(tiny(tmp_path)))


def test_a_terabyte_layer_exits_2_in_seconds(tmp_path, capfd):
    net = tiny(tmp_path, "network Huge {\n    input x[1000000]\n    fc(1000000)\n}\n", "huge.net")
    code, err = cli(capfd, compile_main, net, "--onnx", tmp_path / "huge.onnx")
    assert code == 2
    assert f"{net}: error: exporting network Huge needs about 14.6 TiB" in err
    assert "hint: use smaller layers" in err
    assert not (tmp_path / "huge.onnx").exists()


# ----------------------------------------------------------------- source files


def test_symlink_loop_as_the_main_file(tmp_path, capfd):
    os.symlink(tmp_path / "a.net", tmp_path / "b.net")
    os.symlink(tmp_path / "b.net", tmp_path / "a.net")
    code, err = cli(capfd, compile_main, tmp_path / "a.net")
    assert (code, err.splitlines()[0]) == (2, f"{tmp_path / 'a.net'}: error: '{tmp_path / 'a.net'}' is a loop of "
                                              "symbolic links")


def test_symlink_loop_in_use(tmp_path, capfd):
    os.symlink(tmp_path / "loop.net", tmp_path / "loop.net")
    main = tiny(tmp_path, 'use "loop.net"\n' + TINY)
    code, err = cli(capfd, compile_main, main)
    assert code == 2
    assert f"{main}:1:" in err and "is a loop of symbolic links" in err


def test_use_of_a_file_that_is_not_net_does_not_quote_it(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("I2DL_HOSTILE_MARKER", "do-not-print-me")
    main = tiny(tmp_path, 'use "/proc/self/environ"\n' + TINY)
    code, err = cli(capfd, compile_main, main)
    assert code == 2
    assert f"{main}:1:" in err and "not a .net file" in err
    assert "do-not-print-me" not in err


def test_use_of_a_device_is_refused_by_kind(tmp_path, capfd, deadline):
    code, err = cli(capfd, compile_main, tiny(tmp_path, 'use "/dev/zero"\n' + TINY))
    assert code == 2 and "'/dev/zero' is a device, not a regular file" in err


def test_source_past_the_size_limit(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(reading, "SOURCE_LIMIT", 64)
    main = tiny(tmp_path, TINY + "#" * 100 + "\n")
    code, err = cli(capfd, compile_main, main)
    assert code == 2 and "a .net file may hold at most 64 bytes" in err


@pytest.mark.parametrize("where", ["main", "use", "run"])
def test_fifo_is_refused_without_blocking(tmp_path, capfd, where, deadline):
    fifo = tmp_path / ("pipe.onnx" if where == "run" else "pipe.net")
    os.mkfifo(fifo)
    if where == "use":
        code, err = cli(capfd, compile_main, tiny(tmp_path, 'use "pipe.net"\n' + TINY))
    else:
        code, err = cli(capfd, run_main if where == "run" else compile_main, fifo)
    assert code == 2 and "is a named pipe (FIFO), not a regular file" in err


# ----------------------------------------------------------------- array sizes


def test_unused_weights_entry_is_never_unpacked(tmp_path):
    net = check(tiny(tmp_path))
    expected = parameter_shapes(net)
    arrays = {n: np.ones(s, np.float32) for n, s in expected.items()}
    path = npz(tmp_path / "w.npz", arrays, {"extra": claimed(TERA)})
    read = read_weights(path, expected)
    assert read["extra"].shape == TERA and read["extra"].strides == (0, 0)
    assert all(np.array_equal(read[n], a) for n, a in arrays.items())


def test_unused_weights_entry_is_reported_by_name_and_shape(tmp_path, capfd):
    net = tiny(tmp_path)
    arrays = {n: np.ones(s, np.float32) for n, s in parameter_shapes(check(net)).items()}
    path = npz(tmp_path / "w.npz", arrays, {"extra": claimed(TERA)})
    code, err = cli(capfd, compile_main, net, "--weights", path, "--onnx", tmp_path / "m.onnx")
    assert code == 2 and "not in the network:\n  extra" in err


@pytest.mark.parametrize("kind", ["npz", "onnx"])
def test_weights_header_claiming_a_terabyte(tmp_path, kind):
    path = tmp_path / f"w.{kind}"
    if kind == "npz":
        npz(path, {}, {"w": claimed(TERA)})
    else:
        tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=TERA)
        graph = helper.make_graph([], "g", [], [], [tensor])
        onnx.save_model(helper.make_model(graph), str(path))
    with pytest.raises(UserError, match=r"reading weights .* needs about 3.6 TiB; this machine has"):
        read_weights(path)


def test_input_header_claiming_a_terabyte(tmp_path, capfd):
    (tmp_path / "x.npy").write_bytes(claimed(TERA))
    code, err = cli(capfd, run_main, tiny(tmp_path), "--input", tmp_path / "x.npy")
    assert code == 2 and f"error: reading input '{tmp_path / 'x.npy'}' needs about 3.6 TiB" in err


def test_data_header_claiming_a_terabyte(tmp_path, capfd):
    data = npz(tmp_path / "d.npz", {"y": np.zeros(4, np.int64)}, {"x": claimed(TERA)})
    code, err = cli(capfd, train_main, tiny(tmp_path), "--data", data, "--out", tmp_path / "run", "--quiet")
    assert code == 2 and "needs about 3.6 TiB" in err


def test_data_entries_besides_x_and_y_are_not_unpacked(tmp_path, capfd):
    x, y = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32), np.arange(40) % 2
    data = npz(tmp_path / "d.npz", {"x": x, "y": y}, {"junk": claimed(TERA)})
    code, _ = cli(capfd, train_main, tiny(tmp_path), "--data", data, "--out", tmp_path / "run", "--quiet",
                  "--epochs", "1", "--device", "cpu")
    assert code == 0


# ----------------------------------------------------------------- NaN and Inf weights


def test_nonfinite_weights_are_named_when_loading(tmp_path, capfd):
    net = tiny(tmp_path)
    arrays = {n: np.ones(s, np.float32) for n, s in parameter_shapes(check(net)).items()}
    broken = sorted(arrays)[0]
    arrays[broken][...] = np.nan
    path = npz(tmp_path / "w.npz", arrays)
    code, err = cli(capfd, compile_main, net, "--weights", path, "--onnx", tmp_path / "m.onnx")
    assert code == 0
    assert f"{path}: warning: 1 tensor(s) hold NaN or Inf values: {broken}" in err


def test_onnx_model_with_inf_initializers_is_named(tmp_path, capfd):
    net = check(tiny(tmp_path))
    weights = {n: np.full(s, np.inf, np.float32) for n, s in parameter_shapes(net).items()}
    save_model(to_onnx(net, weights=weights), tmp_path / "m.onnx")
    code, err = cli(capfd, run_main, tmp_path / "m.onnx", "--device", "cpu")
    assert code == 0
    assert f"{tmp_path / 'm.onnx'}: warning: {len(weights)} tensor(s) hold NaN or Inf values" in err


def test_an_address_space_ulimit_lowers_the_available_memory():
    """Under `ulimit -v` the process dies long before the machine runs out."""
    limit = 4 << 30
    code = "from i2dl_dsl import reading; print(reading.available_memory())"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert 0 < int(shown.stdout) < limit


def test_nonfinite_weights_are_named_before_training(tmp_path, capfd):
    net = tiny(tmp_path)
    arrays = {n: np.full(s, np.inf, np.float32) for n, s in parameter_shapes(check(net)).items()}
    path = npz(tmp_path / "w.npz", arrays)
    data = npz(tmp_path / "d.npz", {"x": np.ones((8, 3), np.float32), "y": np.arange(8) % 2})
    _, err = cli(capfd, train_main, net, "--weights", path, "--data", data, "--out", tmp_path / "run", "--quiet",
                 "--epochs", "1", "--device", "cpu")
    assert f"{path}: warning: {len(arrays)} tensor(s) hold NaN or Inf values" in err


def test_memory_error_past_the_estimates_is_a_clear_exit_2(capsys):
    """What the size estimates let through ends as a user error, not an internal one."""
    from i2dl_dsl.cli.common import run_command

    def body(argv):
        raise MemoryError("Unable to allocate 3.64 TiB for an array with shape (1000000, 1000000)")

    assert run_command(body, []) == 2
    err = capsys.readouterr().err
    assert "out of memory: Unable to allocate 3.64 TiB" in err and "internal error" not in err
    assert "Traceback" not in err

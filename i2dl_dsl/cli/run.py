"""`i2dl-run MODEL.onnx|MODEL.net --input x.npy`: inference on onnxruntime."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from ..diagnostics import UserError
from ..files import write_for_user
from ..reading import read_npy, regular_file
from ..runtime import DEVICES
from .common import (EXIT_OK, add_allow_pickle, add_version, non_negative_int, positive_int, print_warnings,
                     read_net_weights, resolve_model, run_command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2dl-run", description="Run a model on onnxruntime (CPU or CUDA).")
    p.add_argument("model", help="an .onnx model, or a .net file to compile first")
    p.add_argument("--input", help=".npy array [N, ...] or one sample [...] (float32); random when absent")
    p.add_argument("--output", help="write the output here as .npy")
    p.add_argument("--device", choices=DEVICES, default=DEVICES[0])
    p.add_argument("--batch", type=positive_int, default=1, help="batch size of the random input (default 1)")
    p.add_argument("--bench", action="store_true", help="report latency percentiles and throughput")
    p.add_argument("--threads", type=positive_int, help="onnxruntime intra-op threads (default: all cores)")
    p.add_argument("--weights", help="for a .net model: weights (.npz, .safetensors or .onnx; .pt/.pth with "
                                     "--allow-pickle) by parameter name")
    add_allow_pickle(p)
    p.add_argument("--seed", type=non_negative_int, default=0, help="for a .net model without weights: init seed")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_version(p)
    return p


def load_model(path: str, weights: str | None, seed: int, allow_pickle: bool = False) -> bytes | str:
    """A path onnxruntime can read, or the bytes of a freshly compiled .net.
    Weights that hold NaN or Inf are named in a warning."""
    try:
        regular_file(path, f"model '{path}'")
    except FileNotFoundError:
        raise UserError(f"model '{path}' does not exist") from None
    if path.endswith(".net"):
        from ..checker import check
        from ..lowering.export import PROTOBUF_LIMIT, to_onnx

        net = check(path)
        given = read_net_weights(net, weights, allow_pickle)
        model = to_onnx(net, weights=given, seed=seed, weights_source=weights or "")
        if sum(t.ByteSize() for t in model.graph.initializer) > PROTOBUF_LIMIT:
            return _save_beside_data(model, Path(path).stem)
        return model.SerializeToString()
    if weights:
        raise UserError("--weights applies to .net models; an .onnx model carries its own")
    _warn_nonfinite(path)
    return path


def _warn_nonfinite(path: str) -> None:
    """Name the initializers of an .onnx model that hold NaN or Inf; a model
    that cannot be read is left to onnxruntime, whose message says why."""
    from ..lowering.weights import nonfinite_warning, read_weights

    try:
        initializers = read_weights(path) if path.endswith(".onnx") else {}
    except UserError:
        return
    print_warnings(nonfinite_warning(initializers, None, path))


def _save_beside_data(model, stem: str) -> str:
    """A model too large to pass as bytes: written with external data to a
    temporary directory that lasts until the command ends."""
    import atexit
    import shutil
    import tempfile

    from ..lowering.export import save_model

    directory = tempfile.mkdtemp(prefix="i2dl-run-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = str(Path(directory) / f"{stem}.onnx")
    save_model(model, path)
    return path


def _expected(session) -> tuple[str, list]:
    info = session.get_inputs()[0]
    return info.name, list(info.shape)


def prepare_input(session, path: str | None, batch: int):
    """The feed for the model's one input: the .npy at `path` (a batch, or one
    sample without the batch axis), or a random batch."""
    import numpy as np

    name, shape = _expected(session)
    sample = list(shape[1:])
    shown = "[" + ", ".join(str(d) for d in ["N", *sample]) + "]"
    if path is None:
        if not all(isinstance(d, int) for d in sample):
            raise UserError(f"the model's input {shown} has symbolic sizes; give one with --input")
        return name, np.random.default_rng(0).standard_normal([batch, *sample]).astype(np.float32)
    try:
        x = read_npy(path, f"input '{path}'")
    except FileNotFoundError:
        raise UserError(f"input '{path}' does not exist") from None
    if x.dtype != np.float32:
        raise UserError(f"input '{path}' is {x.dtype}; the model expects float32 {shown}",
                        "convert it with x.astype(numpy.float32)")
    if _fits(x.shape, sample):
        x = x[None]
    if len(x.shape) != len(shape) or not _fits(x.shape[1:], sample):
        raise UserError(f"input '{path}' has shape {list(x.shape)}; the model expects {shown} "
                        f"(or one sample {sample})")
    if x.shape[0] == 0:
        raise UserError(f"input '{path}' holds no samples (shape {list(x.shape)}); the model expects {shown}")
    return name, x


def _fits(shape, expected) -> bool:
    """Whether sizes match; a symbolic expected size matches any."""
    return len(shape) == len(expected) and all(not isinstance(e, int) or d == e for d, e in zip(shape, expected))


def benchmark(session, feed, batch: int, seconds: float = 2.0) -> dict[str, float]:
    """Latency percentiles and throughput of `session` (a runtime.Session) on `feed`."""
    import numpy as np

    for _ in range(10):
        session.run(feed)
    times = []
    start = time.perf_counter()
    while len(times) < 20 or (time.perf_counter() - start < seconds and len(times) < 2000):
        t0 = time.perf_counter()
        session.run(feed)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "throughput": batch / float(np.mean(times)), "runs": len(times)}


def write_npy(path: str, array) -> None:
    import numpy as np

    write_for_user(Path(path), lambda f: np.save(f, array))


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    resolve_model(args, "i2dl-run")
    from ..runtime import create_session

    model = load_model(args.model, args.weights, args.seed, args.allow_pickle)
    s = create_session(model, args.device, args.threads)
    print(s.device_note, file=sys.stderr)
    name, x = prepare_input(s.session, args.input, args.batch)
    y = s.run({name: x})[0]
    if args.output:
        write_npy(args.output, y)
        print(f"wrote {args.output}: shape {list(y.shape)}")
    else:
        _print_output(y)
    if args.bench:
        r = benchmark(s, {name: x}, x.shape[0])
        print(f"latency (batch {x.shape[0]}, {r['runs']} runs, {s.device}): p50 {r['p50_ms']:.3f} ms, "
              f"p90 {r['p90_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms; throughput {r['throughput']:.1f} samples/s")
    return EXIT_OK


def _print_output(y) -> None:
    import numpy as np

    print(f"output shape {list(y.shape)}")
    if y.ndim == 2 and y.shape[1] > 1:
        print("argmax per sample:", np.argmax(y, axis=1).tolist()[:32])
    with np.printoptions(precision=4, suppress=True, threshold=40):
        print(y)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

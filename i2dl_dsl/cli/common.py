"""What every command shares: user errors exit 2 without a traceback."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable, Sequence

from .. import zoo
from ..diagnostics import CompileError, Diagnostic, UserError, render, render_all
from ..runtime import RunFailed

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


def _integer(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer ≥ `minimum`, described as `what` in errors."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return convert


positive_int = _integer(1, "a positive integer")
non_negative_int = _integer(0, "a non-negative integer")  # seeds


def add_version(p: argparse.ArgumentParser) -> None:
    """`--version`: prints e.g. `i2dl-compile 0.1.0` and exits."""
    from .. import __version__

    p.add_argument("--version", action="version", version=f"{p.prog} {__version__}")


def resolve_model(args: argparse.Namespace, command: str) -> None:
    """`args.model` as the file it names: a path that exists, else a zoo
    model's bare name (`resnet18`); a missing file named like a zoo model says so."""
    args.model = zoo.resolve_model(args.model, command)


def print_warnings(diagnostics) -> None:
    for warning in diagnostics:
        print(render(warning), file=sys.stderr)


def check_model(args: argparse.Namespace):
    """The checked network of `args.model` with the --param values; its warnings printed."""
    from ..checker import check

    net = check(args.model, params=network_params(args.param))
    print_warnings(net.warnings)
    return net


def add_allow_pickle(p: argparse.ArgumentParser) -> None:
    """`--allow-pickle`: read PyTorch's .pt/.pth weights, which are pickles."""
    p.add_argument("--allow-pickle", action="store_true",
                   help="read .pt/.pth weights with torch.load: they are pickles, and loading a pickle can run any "
                        "code its author put in it; only for files you trust (prefer .safetensors)")


def read_net_weights(net, path: str | None, allow_pickle: bool = False) -> dict | None:
    """`--weights` for a checked network: only the tensors it expects are
    read, and those holding NaN or Inf are named in a warning. PyTorch's
    pickled .pt/.pth only with `allow_pickle` (--allow-pickle)."""
    if not path:
        return None
    from ..lowering.export import parameter_shapes
    from ..lowering.weights import STEP_COUNTER, drop_step_counters, nonfinite_warning, read_weights

    expected = parameter_shapes(net)
    weights, dropped = drop_step_counters(read_weights(path, expected, allow_pickle), expected)
    if dropped:
        print(f"weights from {path}: {len(dropped)} {STEP_COUNTER} entries ignored "
              "(PyTorch's batch-norm step counts; nothing here uses them)", file=sys.stderr)
    print_warnings(nonfinite_warning(weights, expected, path))
    return weights


def _tolerate_narrow_terminals() -> None:
    """Tables and messages use a few non-ASCII signs (·, ≥, ─); on a terminal
    that cannot show them they become '?' rather than an internal error."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", "strict") == "strict":
            reconfigure(errors="replace")


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command body; render CompileError/UserError and map them to exit 2,
    a run that failed inside onnxruntime (RunFailed) to exit 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    _tolerate_narrow_terminals()
    try:
        return main(args)
    except CompileError as exc:
        if debug:
            traceback.print_exc()
        print(render_all(exc.diagnostics), file=sys.stderr)
        return EXIT_USER
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(render(exc.diagnostic()), file=sys.stderr)
        return EXIT_USER
    except RunFailed as exc:  # onnxruntime failed in a node; the message names it and its .net line
        if debug:
            traceback.print_exc()
        print(render(Diagnostic("error", str(exc))), file=sys.stderr)
        return EXIT_INTERNAL
    except MemoryError as exc:  # what the size estimates let through: the input is too large for this machine
        if debug:
            traceback.print_exc()
        detail = f": {exc}" if str(exc) else ""
        print(render(Diagnostic("error", f"out of memory{detail}",
                                hints=("the sizes are too large for this machine: check them with --summary",))),
              file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt as exc:  # its text, where there is one, says what was saved
        print(str(exc) or "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\n"
              "run again with --debug for the traceback, and please report it", file=sys.stderr)
        return EXIT_INTERNAL


def network_params(pairs: list[str] | None) -> dict:
    """`--param name=value` (repeatable) as a dict of numbers or words."""
    params: dict = {}
    for pair in pairs or []:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--param takes name=value, got '{pair}'")
        text = text.strip()
        try:
            value: object = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = {"true": True, "false": False}.get(text, text)
        params[name.strip()] = value
    return params

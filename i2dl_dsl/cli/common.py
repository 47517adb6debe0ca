"""What every command shares: user errors exit 2 without a traceback."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable, Sequence

from ..diagnostics import CompileError, Diagnostic, UserError, render, render_all
from ..runtime import RunFailed

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def print_warnings(diagnostics) -> None:
    for warning in diagnostics:
        print(render(warning), file=sys.stderr)


def check_model(args: argparse.Namespace):
    """The checked network of `args.model` with the --param values; its warnings printed."""
    from ..checker import check

    net = check(args.model, params=network_params(args.param))
    print_warnings(net.warnings)
    return net


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

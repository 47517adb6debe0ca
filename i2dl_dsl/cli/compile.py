"""`i2dl-compile MODEL.net`: check a network and print what was asked for."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from ..compiler import check
from .common import EXIT_OK, print_warnings, run_command


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2dl-compile", description="Check a .net architecture and report on it.")
    p.add_argument("model", help="the .net file")
    p.add_argument("--summary", action="store_true", help="print shapes, parameters, MACs and receptive fields")
    p.add_argument("--depth", type=_positive, help="fold blocks below this many dotted name levels")
    p.add_argument("--format", choices=("table", "json"), default="table", help="summary format")
    p.add_argument("--batch", type=_positive, default=1, help="batch size for the memory estimate")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    net = check(args.model)
    print_warnings(net.warnings)
    if args.summary:
        from .. import summary

        if args.format == "json":
            print(json.dumps(summary.to_json(net, args.depth, args.batch), indent=2))
        else:
            print(summary.format_table(net, args.depth, args.batch))
    else:
        a = net.analysis
        print(f"{net.path}: ok: network {net.name}, {len(a.order)} layers, {a.total_params:,} parameters, "
              f"{a.total_macs:,} MACs")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

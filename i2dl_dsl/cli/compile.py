"""`i2dl-compile MODEL.net`: check a network and print what was asked for."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from ..checker import check
from ..lowering.export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from ..lowering.initial_values import SCHEMES
from ..render import LEVELS, RANKDIRS
from .common import EXIT_OK, network_params, positive_int, print_warnings, run_command
from .common import non_negative_int


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2dl-compile", description="Check a .net architecture and report on it.")
    p.add_argument("model", help="the .net file")
    p.add_argument("--summary", action="store_true", help="print shapes, parameters, MACs and receptive fields")
    p.add_argument("--depth", type=positive_int, help="fold blocks below this many dotted name levels")
    p.add_argument("--format", choices=("table", "json"), default="table", help="summary format")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size for the memory estimate")
    g = p.add_argument_group("ONNX export")
    g.add_argument("--onnx", metavar="OUT", help="write the inference model as ONNX")
    g.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset ({MIN_OPSET} to {MAX_OPSET}, default {DEFAULT_OPSET})")
    g.add_argument("--weights", help="initial weights by parameter name: .npz or .onnx")
    g.add_argument("--seed", type=non_negative_int, default=0, help="seed of the initial weights")
    g.add_argument("--init", choices=SCHEMES, default=SCHEMES[0],
                   help="initial weights: He N(0, 2/n), Xavier N(0, 1/n) or N(0, 0.01²)")
    p.add_argument("--graph", metavar="PATH", help="draw the network to PATH (.svg, .png, .pdf or .dot)")
    p.add_argument("--graph-depth", type=positive_int, metavar="N", help="in the drawing, fold blocks below N levels")
    p.add_argument("--rankdir", choices=RANKDIRS, default=RANKDIRS[0],
                   help=f"drawing direction (default {RANKDIRS[0]})")
    p.add_argument("--graph-level", choices=LEVELS, default=LEVELS[0],
                   help="draw the layers, or the exported ONNX op graph")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a parameter of `network Net(...)`")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    net = check(args.model, params=network_params(args.param))
    print_warnings(net.warnings)
    if args.onnx:
        _export(net, args)
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
    if args.graph:
        from ..render import draw

        written = draw(net, args.graph, args.graph_depth, args.rankdir, args.graph_level)
        print(f"wrote {written}", file=sys.stderr)
    return EXIT_OK


def _export(net, args) -> None:
    from ..lowering.export import parameter_shapes, save_model, to_onnx
    from ..lowering.weights import nonfinite_warning, read_weights

    weights = read_weights(args.weights, parameter_shapes(net)) if args.weights else None
    print_warnings(nonfinite_warning(weights, parameter_shapes(net), args.weights) if weights else [])
    model = to_onnx(net, opset=args.opset, weights=weights, seed=args.seed, init=args.init,
                    weights_source=args.weights or "")
    save_model(model, args.onnx)
    source = f"weights from {args.weights}" if weights else f"{args.init} init, seed {args.seed}"
    print(f"wrote {args.onnx}: opset {args.opset}, {len(model.graph.node)} nodes, {source}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

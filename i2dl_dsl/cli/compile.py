"""`i2dl-compile MODEL.net`: check a network and print what was asked for."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .. import zoo
from ..checker import check
from ..diagnostics import CompileError, Diagnostic, Span, UserError
from ..files import write_for_user
from ..lowering.export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, save_model, to_onnx
from ..lowering.initial_values import SCHEMES
from ..render import LEVELS, RANKDIRS
from .common import (EXIT_OK, add_allow_pickle, add_version, network_params, non_negative_int, positive_int,
                     print_warnings, read_net_weights, resolve_model, run_command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2dl-compile", description="Check a .net architecture and report on it.")
    p.add_argument("model", nargs="?", help="the .net file, or a zoo model's name (see --list-models); "
                                            "an .onnx file made elsewhere for --summary and --graph")
    p.add_argument("--list-models", action="store_true", help="list the zoo: names, descriptions, parameters")
    p.add_argument("--summary", action="store_true", help="print shapes, parameters, MACs and receptive fields")
    p.add_argument("--depth", type=positive_int, help="fold blocks below this many dotted name levels")
    p.add_argument("--format", choices=("table", "json"), default="table", help="summary format")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size for the memory estimate")
    g = p.add_argument_group("ONNX export")
    g.add_argument("--onnx", metavar="OUT", help="write the inference model as ONNX")
    g.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset ({MIN_OPSET} to {MAX_OPSET}, default {DEFAULT_OPSET})")
    g.add_argument("--weights", help="initial weights by parameter name: .npz, .safetensors or .onnx "
                                     "(.pt/.pth with --allow-pickle)")
    add_allow_pickle(g)
    g.add_argument("--seed", type=non_negative_int, default=0, help="seed of the initial weights")
    g.add_argument("--init", choices=SCHEMES, default=SCHEMES[0],
                   help="initial weights: He N(0, 2/n), Xavier N(0, 1/n) or N(0, 0.01²)")
    e = p.add_argument_group("code")
    e.add_argument("--emit", choices=("torch",), help="write the network as source code: torch (a PyTorch module)")
    e.add_argument("-o", "--output", metavar="PATH", help="where --emit writes (default: standard output)")
    p.add_argument("--graph", metavar="PATH", help="draw the network to PATH (.svg, .png, .pdf or .dot)")
    p.add_argument("--graph-depth", type=positive_int, metavar="N", help="in the drawing, fold blocks below N levels")
    p.add_argument("--rankdir", choices=RANKDIRS, default=RANKDIRS[0],
                   help=f"drawing direction (default {RANKDIRS[0]})")
    p.add_argument("--graph-level", choices=LEVELS, default=LEVELS[0],
                   help="draw the layers, or the exported ONNX op graph")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a parameter of `network Net(...)`")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_version(p)
    return p


def _main(argv: Sequence[str] | None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.list_models:
        print(_zoo_table())
        return EXIT_OK
    if args.model is None:
        p.error("the following arguments are required: model (or --list-models)")
    if args.output and not args.emit:
        p.error("-o/--output is where --emit writes: add --emit torch (the ONNX file is --onnx OUT)")
    if args.model.endswith(".onnx"):
        return _onnx_model(args)
    resolve_model(args, p.prog)
    net = check(args.model, params=network_params(args.param))
    print_warnings(net.warnings)
    if args.onnx:
        _export(net, args)
    if args.emit:
        _emit(net, args)
        if not args.output:
            return EXIT_OK  # the source alone on standard output
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


# What applies to a .net model only; an .onnx model is summarised and drawn as it is.
NET_ONLY = (("onnx", "--onnx"), ("weights", "--weights"), ("param", "--param"), ("allow_pickle", "--allow-pickle"),
            ("graph_depth", "--graph-depth"))


def _onnx_model(args) -> int:
    """An ONNX model made elsewhere: its summary (the .net table, built from
    the model's nodes) and its op graph."""
    from ..interop.onnx_in import load, summarise

    given = [flag for attr, flag in NET_ONLY if getattr(args, attr)]
    if given:
        raise UserError(f"{', '.join(given)} applies to .net models; an .onnx model is summarised (--summary, "
                        "--depth, --format) and drawn (--graph) as it is")
    model = summarise(args.model)
    if model.unknown_macs:
        shown = ", ".join(model.unknown_macs[:3]) + (" ..." if len(model.unknown_macs) > 3 else "")
        print_warnings([Diagnostic("warning", f"the MACs of {len(model.unknown_macs)} node(s) are not counted: "
                                   f"shape inference left their sizes open ({shown})", Span.unreadable(args.model))])
    if args.summary and args.format == "json":
        print(json.dumps(model.document(args.depth, args.batch), indent=2))
    elif args.summary:
        print(model.table(args.depth, args.batch))
    else:
        t = model.totals
        print(f"{args.model}: ok: ONNX model {model.name}, {model.nodes} nodes, {t['params']:,} parameters, "
              f"{t['macs']:,} MACs")
    if args.graph:
        from ..render import onnx_graph, output_format, write

        output_format(args.graph)
        written = write(onnx_graph(load(args.model), args.rankdir), args.graph)
        print(f"wrote {written}", file=sys.stderr)
    return EXIT_OK


def _zoo_table() -> str:
    """The zoo, one model a line: name, parameters, first comment line."""
    models = zoo.zoo_models()
    if not models:
        return "no zoo models found"
    counts = [_params(m.path) for m in models]
    width = max(len(m.name) for m in models)
    digits = max(len("params"), *map(len, counts))
    rows = [f"{'name':<{width}}  {'params':>{digits}}  description"]
    rows += [f"{m.name:<{width}}  {count:>{digits}}  {m.description}" for m, count in zip(models, counts)]
    return "\n".join(rows)


def _params(path: Path) -> str:
    """The model's parameter count; '?' for one that does not check (the
    listing goes on; compiling it names the mistake)."""
    try:
        return f"{check(str(path)).analysis.total_params:,}"
    except (CompileError, UserError):
        return "?"


def _export(net, args) -> None:
    weights = read_net_weights(net, args.weights, args.allow_pickle)
    model = to_onnx(net, opset=args.opset, weights=weights, seed=args.seed, init=args.init,
                    weights_source=args.weights or "")
    save_model(model, args.onnx)
    source = f"weights from {args.weights}" if weights else f"{args.init} init, seed {args.seed}"
    print(f"wrote {args.onnx}: opset {args.opset}, {len(model.graph.node)} nodes, {source}", file=sys.stderr)


def _emit(net, args) -> None:
    from ..interop import torch_code

    source = torch_code.emit(net)
    if not args.output:
        print(source, end="")
        return
    write_for_user(Path(args.output), lambda f: f.write(source.encode()))
    print(f"wrote {args.output}: PyTorch class {torch_code.root_class(source)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

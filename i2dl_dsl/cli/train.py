"""`i2dl-train MODEL.net`: train through onnxruntime; the file's `train { }`
section gives the defaults, flags override them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..diagnostics import UserError
from ..lowering.export import buffer_names, parameter_shapes
from ..lowering.weights import match_weights
from ..names import within_any
from ..runtime import DEVICES
from ..train import experiments
from ..train.backends import BACKENDS, Backend, choose
from ..train.losses import LOSSES
from ..train.optimizers import OPTIMIZERS
from ..train.run import Settings, train_network
from ..train.settings import check_settings, section_overrides
from ..train.rundir import CHECKPOINT, METRICS, MODEL, PLOT, SAFETENSORS, WEIGHTS, claim, write_failure
from ..train.search import STRATEGIES, run_search
from ..train.tune_search import run_tune
from ..train.parallel import train_parallel
from .common import (EXIT_OK, add_allow_pickle, add_version, check_model, network_params, non_negative_int,
                     positive_int, read_net_weights, resolve_model, run_command)

EXIT_CANNOT_FIT = 1  # --overfit ran and the model could not fit the samples


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2dl-train", description="Train a .net model with an ONNX training step.")
    p.add_argument("model", help="the .net file, or a zoo model's name (i2dl-compile --list-models)")
    p.add_argument("--data", help="digits (built in) or an .npz with arrays x and y")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch", type=positive_int)
    p.add_argument("--optimizer", choices=OPTIMIZERS.names(), help=OPTIMIZERS.help())
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--loss", choices=LOSSES.names(), help=LOSSES.help())
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument("--device", choices=DEVICES, default=DEVICES[0])
    p.add_argument("--out", help="run directory (default: a new runs/<model name>/<n>, linked as .../latest)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (default: runs/<model name>/latest) from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="train into --out even if it holds a finished run")
    p.add_argument("--weights", help="start from these weights (.npz, .safetensors or .onnx; .pt/.pth with "
                                     "--allow-pickle), matched by parameter name")
    add_allow_pickle(p)
    p.add_argument("--threads", type=positive_int, help="onnxruntime threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a parameter of `network Net(...)`")
    g = p.add_argument_group("generalisation and transfer")
    g.add_argument("--augment", help="image augmentation, as in the train section: 'crop(pad=2), flip, jitter(0.1)'")
    g.add_argument("--freeze", help="comma-separated layers or blocks that get no gradient (transfer learning)")
    g.add_argument("--lr-scale", action="append", metavar="NAME=FACTOR", help="learning-rate factor of a layer or block")
    modes = p.add_argument_group("experiments (one at a time)").add_mutually_exclusive_group()
    modes.add_argument("--overfit", type=positive_int, metavar="N", help="train on N samples only: can the loss reach ~0?")
    modes.add_argument("--cv", type=positive_int, metavar="K", help="k-fold cross-validation: mean ± std")
    modes.add_argument("--search", metavar="SPACE", help="hyperparameter search, e.g. 'lr=1e-4..1e-1:log, batch=32|64'")
    modes.add_argument("--ensemble", type=positive_int, metavar="K", help="bagging: K models on bootstrap samples")
    p.add_argument("--trials", type=positive_int, default=8, help="configurations to try in a search (default 8)")
    p.add_argument("--strategy", choices=STRATEGIES, default=STRATEGIES[0], help="how a search picks configurations")
    b = p.add_argument_group("backend (where trials, folds, members and shards run)")
    b.add_argument("--backend", choices=BACKENDS.names(), help="local (default) or ray; also `backend` in the train section")
    b.add_argument("--ray-address", help="the Ray cluster to join (default: a running one, else start one here)")
    b.add_argument("--workers", type=positive_int, help="data-parallel training over N Ray workers")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_version(p)
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    resolve_model(args, "i2dl-train")
    net = check_model(args)

    overrides = {"data": args.data, "epochs": args.epochs, "batch": args.batch, "optimizer": args.optimizer,
                 "lr": args.lr, "loss": args.loss, "seed": args.seed, **_section_flags(args)}
    settings = Settings.merge(net.train, overrides)
    backend = choose(settings.get("backend"), args.backend, args.ray_address, args.workers)
    check_settings(net, settings)
    weights = read_net_weights(net, args.weights, args.allow_pickle)
    if weights is not None:
        _report_transfer(net, settings, weights, args.weights)
    with claim(args.out, Path(args.model), args.resume, args.overwrite) as out:
        try:
            return _train(args, net, settings, out, weights, backend)
        except OSError as exc:  # a disk that fills, permissions taken away mid-run
            failure = write_failure(out, exc)
            if failure is None:
                raise
            raise failure from None


def _train(args, net, settings, out: Path, weights, backend: Backend) -> int:
    """Train, or run the experiment asked for, into the claimed run directory."""
    experiment = _experiment(args, net, settings, out, weights, backend)
    if experiment is not None:
        return experiment
    if backend.ray:
        result = train_parallel(net, settings, out, backend, args.device, args.resume, args.quiet, weights)
    else:
        result = train_network(net, settings, out, args.device, args.resume, args.quiet, weights, args.threads)
    if result["test_samples"]:
        acc = result["test_acc"]
        shown = f"accuracy {acc:.4f}, " if acc is not None else ""
        print(f"test ({result['test_samples']} samples): {shown}loss {result['test_loss']:.4f}")
    else:
        print(f"test: none (the test split of {settings['data']} is empty, so the model was not tested)")
    written = [n for n in (MODEL, WEIGHTS, SAFETENSORS, METRICS, CHECKPOINT, PLOT) if (out / n).exists()]
    print(f"wrote {out}/" + ", ".join(written))
    return EXIT_OK


def _section_flags(args) -> dict:
    """--augment, --freeze and --lr-scale, read as train-section statements."""
    return section_overrides(args.augment, args.freeze, args.lr_scale)


def _report_transfer(net, settings, weights, source: str) -> None:
    """Say which parameters come from the file, which are initialised, which
    of the file's are ignored and which stay frozen; shapes that do not fit
    are an error that lists them all."""
    expected = parameter_shapes(net)
    match_weights(weights, expected, source, strict=False)
    loaded = [n for n in expected if n in weights]
    fresh = [n for n in expected if n not in weights]
    ignored = [n for n in weights if n not in expected]
    prefixes = settings.get("freeze", ())
    buffers = buffer_names(net)
    frozen = [n for n in expected if n not in buffers and within_any(n, prefixes)]
    print(f"weights from {source}: {len(loaded)} of {len(expected)} tensors loaded", file=sys.stderr)
    for label, names in (("initialised (not in the file)", fresh), ("ignored (not in the network)", ignored),
                         ("frozen (no gradient, no optimizer state)", frozen)):
        if names:
            print(f"  {label}: " + ", ".join(names), file=sys.stderr)


def _experiment(args, net, settings, out: Path, weights, backend: Backend) -> int | None:
    """Run --overfit, --cv, --search or --ensemble if asked: the exit status,
    None when none was asked. An --overfit that cannot fit is a result, not
    a user error: exit 1."""
    if args.overfit:
        result = experiments.overfit(net, settings, args.overfit, out, args.device, weights=weights)
    elif args.cv:
        result = experiments.cross_validate(net, settings, args.cv, out, args.device, weights, backend)
    elif args.ensemble:
        result = experiments.ensemble(net, settings, args.ensemble, out, args.device, weights, backend)
    elif args.search:
        return _search(args, settings, out, weights, backend)
    else:
        return None
    print(experiments.describe(result))
    return EXIT_CANNOT_FIT if result.get("fits") is False else EXIT_OK


def _search(args, settings, out: Path, weights, backend: Backend) -> int:
    """--search, locally (successive halving in rounds) or on Ray Tune (ASHA)."""
    params = network_params(args.param)
    if backend.ray:
        ranked, table, best = run_tune(Path(args.model), settings, args.search, args.trials, args.strategy, out,
                                       backend, args.device, params, weights, args.resume)
    else:
        ranked, table, best = run_search(Path(args.model), settings, args.search, args.trials, args.strategy, out,
                                         args.device, params, weights)
    print(table)
    if backend.ray:
        print(f"trial-epochs: {sum(t.epochs for t in ranked)} of {len(ranked) * settings['epochs']} "
              "(ASHA stopped the rest)")
    if best is None:
            raise UserError("every trial diverged; no configuration was written", "search lower learning rates")
    print(f"best configuration written to {best}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

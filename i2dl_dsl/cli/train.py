"""`i2dl-train MODEL.net`: train through onnxruntime; the file's `train { }`
section gives the defaults, flags override them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .common import EXIT_OK, positive_int, print_warnings, run_command


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2dl-train", description="Train a .net model with an ONNX training step.")
    p.add_argument("model", help="the .net file")
    p.add_argument("--data", help="digits (built in) or an .npz with arrays x and y")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch", type=positive_int)
    p.add_argument("--optimizer", choices=("sgd", "momentum", "nesterov", "rmsprop", "adam"))
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--loss", choices=("l1", "mse", "bce", "cross_entropy", "hinge"))
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", help="run directory (default runs/<model name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--weights", help="start from these weights (.npz or .onnx), matched by parameter name")
    p.add_argument("--threads", type=positive_int, help="onnxruntime threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    from ..compiler import check

    net = check(args.model)
    print_warnings(net.warnings)
    from ..onnx.weights import read_weights
    from ..train.run import Settings, train_network

    overrides = {"data": args.data, "epochs": args.epochs, "batch": args.batch, "optimizer": args.optimizer,
                 "lr": args.lr, "loss": args.loss, "seed": args.seed}
    settings = Settings.merge(net.train, overrides)
    out = Path(args.out or Path("runs") / Path(args.model).stem)
    weights = read_weights(args.weights) if args.weights else None
    result = train_network(net, settings, out, args.device, args.resume, args.quiet, weights, args.threads)
    acc = result["test_acc"]
    shown = f"accuracy {acc:.4f}, " if acc is not None else ""
    print(f"test ({result['test_samples']} samples): {shown}loss {result['test_loss']:.4f}")
    print(f"wrote {out}/model.onnx, weights.npz, metrics.csv, checkpoint.npz" +
          (", curves.png" if result["plot"] else ""))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

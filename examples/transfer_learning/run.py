"""Transfer learning on the built-in digits: pre-train models/digits_cnn.net
on the digits 0-4, then learn the digits 5-9 from a few samples three ways:
from scratch, from the pre-trained convolutional layers kept frozen, and
from the pre-trained convolutional layers trained further.

    python examples/transfer_learning/run.py                 # from the repository root
    python examples/transfer_learning/run.py --train 100 --seeds 0 1 2

Every run goes through `i2dl-train`. The fine-tuning runs load the
pre-trained weights of conv1-conv3 and bn1-bn3 by parameter name; `fc1` and
`head` start afresh, and the labels 5-9 stay 5-9 on the 10 outputs. Each run
is scored on the digits 5-9 that it did not see (about 750-870 samples).
The runs and results.csv go to runs/transfer_learning/ (or --out); the copy of
results.csv beside this script is the one the README quotes, and running
changes nothing in the repository. Running again replaces the earlier runs
(--overwrite).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "i2dl_dsl" / "data" / "digits.npz"
CONVOLUTIONS = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")
EPOCHS = "60"  # the same budget for every fine-tuning run; early stopping (patience 8) as in the model file

VARIANTS = {  # name: (run directory, flags)
    "from scratch": ("scratch", []),
    "pre-trained convolutions, frozen": ("frozen", ["--weights", "{weights}", "--freeze", ",".join(CONVOLUTIONS)]),
    "pre-trained convolutions, trained": ("tuned", ["--weights", "{weights}"]),
}


def i2dl_train(*args: str) -> None:
    args = tuple(a.replace(f"{ROOT}/", "") for a in args)  # paths as seen from the repository root
    command = [sys.executable, "-m", "i2dl_dsl.cli.train", "models/digits_cnn.net", "--device", "cpu", "--quiet",
               *args, "--overwrite"]
    print("$ i2dl-train " + " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def accuracy(run: Path, x: np.ndarray, y: np.ndarray) -> float:
    from i2dl_dsl.runtime import create_session

    z = create_session(str(run / "model.onnx"), "cpu").run({"image": x})[0]
    return float((z.argmax(axis=1) == y).mean())


def with_splits(train: int) -> int:
    """How many samples leave `train` to train on once digits_cnn.net's
    split(val=0.1, test=0.2) has taken its parts."""
    total = train
    while total - round(0.2 * total) - round(0.1 * total) < train:
        total += 1
    return total


def pretrain(out: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Train on the digits 0-4; keep the convolutional layers' weights."""
    first = np.flatnonzero(y < 5)
    np.savez(out / "digits_0_4.npz", x=x[first], y=y[first])
    print(f"pre-training on the {len(first)} samples of the digits 0-4", flush=True)
    i2dl_train("--data", str(out / "digits_0_4.npz"), "--out", str(out / "pretrained"))
    with np.load(out / "pretrained" / "weights.npz") as weights:
        kept = {k: weights[k] for k in weights.files if k.split(".")[0] in CONVOLUTIONS}
    np.savez(out / "convolutions.npz", **kept)
    result = json.loads((out / "pretrained" / "result.json").read_text())
    print(f"pre-trained: test accuracy {result['test_acc']:.4f} on {result['test_samples']} samples of 0-4", flush=True)
    return out / "convolutions.npz"


def fine_tune(out: Path, weights: Path, x: np.ndarray, y: np.ndarray, train: int, seeds: list[int]) -> list[dict]:
    """Each variant on `train` samples of 5-9 (one subset for all), scored on the rest."""
    second = np.flatnonzero(y >= 5)
    few = np.random.default_rng(train).permutation(second)[:with_splits(train)]
    rest = np.setdiff1d(second, few)
    data = out / f"digits_5_9_{train}.npz"
    np.savez(data, x=x[few], y=y[few])
    rows = []
    for name, (directory, flags) in VARIANTS.items():
        for seed in seeds:
            run = out / f"{directory}_{train}_{seed}"
            filled = [f.format(weights=weights) for f in flags]
            i2dl_train("--data", str(data), "--epochs", EPOCHS, "--seed", str(seed), "--out", str(run), *filled)
            rows.append({"variant": name, "train": train, "seed": seed, "scored_on": len(rest),
                         "accuracy": round(accuracy(run, x[rest], y[rest]), 4)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, nargs="+", default=[20, 50, 100], help="samples of 5-9 to train on")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="one run per seed and size")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "transfer_learning")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with np.load(DIGITS) as digits:
        x = (digits["x"].astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
        y = digits["y"].astype(np.int64)

    weights = pretrain(args.out, x, y)
    rows = [row for train in args.train for row in fine_tune(args.out, weights, x, y, train, args.seeds)]
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    print(f"\naccuracy on the unseen digits 5-9, mean ± std over seeds {', '.join(map(str, args.seeds))}")
    print(f"{'training samples of 5-9':<36}" + "".join(f"{n:>17}" for n in args.train))
    for name in VARIANTS:
        cells = []
        for train in args.train:
            accs = [r["accuracy"] for r in rows if r["variant"] == name and r["train"] == train]
            cells.append(f"{np.mean(accs):.3f} ± {np.std(accs):.3f}")
        print(f"{name:<36}" + "".join(f"{c:>17}" for c in cells))


if __name__ == "__main__":
    main()

"""The adding problem for a vanilla RNN and an LSTM over growing sequence
lengths: trains models/adding_rnn.net and models/adding_lstm.net with T
steps, the same data, steps and optimizer for both, and plots test MSE
against T beside the baseline of predicting the mean.

    python examples/adding_problem/adding.py                  # T = 10 20 30 50 100, seeds 0 1 2
    python examples/adding_problem/adding.py --steps 10 50 --epochs 10 --seeds 0

Each seed draws its own data and initial weights; results.csv has a row per
model, T and seed, and the plot shows the mean over seeds with their range.

Writes results.csv and adding.png into runs/examples/adding_problem/ (or --out); the
copies beside this script are the ones the README shows, and running changes nothing in the repository.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from i2dl_dsl.checker import check
from i2dl_dsl.train.run import Settings, prepare_data, train_network

ROOT = Path(__file__).resolve().parents[2]
MODELS = {"rnn": ROOT / "models" / "adding_rnn.net", "lstm": ROOT / "models" / "adding_lstm.net"}


def with_steps(model: Path, steps: int, folder: Path) -> Path:
    """A copy of the model whose input has `steps` steps."""
    source, count = re.subn(r"\[T=\d+,", f"[T={steps},", model.read_text())
    if count != 1:
        sys.exit(f"{model}: expected one input declaration 'x[T=..., 2]'")
    path = folder / f"{model.stem}_{steps}.net"
    path.write_text(source)
    return path


def run(kind: str, steps: int, seed: int, args, folder: Path) -> dict:
    net = check(with_steps(MODELS[kind], steps, folder))
    settings = Settings.merge(net.train, {"data": f"adding:{steps}:{args.samples}", "epochs": args.epochs,
                                          "batch": args.batch, "seed": seed})
    start = time.perf_counter()
    result = train_network(net, settings, folder / f"{kind}_{steps}_{seed}", device=args.device, quiet=True)
    train, _, test = prepare_data(net, settings, integer_labels=False)
    baseline = float(np.mean((test.y - train.y.mean()) ** 2))
    return {"model": kind, "T": steps, "seed": seed, "test_mse": result["test_loss"], "baseline_mse": baseline,
            "seconds": round(time.perf_counter() - start, 1)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for kind, marker in (("rnn", "o"), ("lstm", "s")):
        steps = sorted({r["T"] for r in rows if r["model"] == kind})
        mse = [[r["test_mse"] for r in rows if r["model"] == kind and r["T"] == t] for t in steps]
        mean = np.array([np.mean(m) for m in mse])
        spread = [mean - [min(m) for m in mse], [max(m) for m in mse] - mean]
        ax.errorbar(steps, mean, yerr=spread, marker=marker, capsize=3, label=f"{kind} (mean, range over seeds)")
    steps = sorted({r["T"] for r in rows})
    baselines = [np.mean([r["baseline_mse"] for r in rows if r["model"] == "rnn" and r["T"] == t]) for t in steps]
    ax.plot(steps, baselines, "k--", linewidth=1, label="predict the mean")
    ax.set(xlabel="sequence length T", ylabel="test MSE", yscale="log", title="The adding problem")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize="small")  # clear of the points
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 30, 50, 100])
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per model, T and seed")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "examples" / "adding_problem")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for steps in args.steps:
            for kind in ("rnn", "lstm"):
                for seed in args.seeds:
                    rows.append(run(kind, steps, seed, args, Path(scratch)))
                    r = rows[-1]
                    print(f"T={steps:4d} {kind:4s} seed {seed} test MSE {r['test_mse']:.4f} (mean predictor {r['baseline_mse']:.4f}, "
                          f"{r['seconds']} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "adding.png")
    print(f"wrote {args.out / 'results.csv'} and {args.out / 'adding.png'}")


if __name__ == "__main__":
    main()

"""Full-batch L-BFGS against mini-batch Adam on least squares: trains
models/linear_regression.net both ways and measures, after every pass over
the training split, the training loss above the closed-form optimum and the
distance of the parameters to it.

    python examples/lbfgs_vs_adam/compare.py
    python examples/lbfgs_vs_adam/compare.py --passes 100 --lrs 0.01 0.1

One pass is one L-BFGS evaluation of loss and gradient over all samples, or
one Adam epoch. Writes results.csv and lbfgs_vs_adam.png into
runs/examples/lbfgs_vs_adam/ (or --out); the copies beside this script are the
ones the README shows, and running changes nothing in the repository.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from i2dl_dsl.checker import check
from i2dl_dsl.train.lbfgs import Objective, minimize
from i2dl_dsl.train.loop import RunOptions, Trainer
from i2dl_dsl.train.run import Settings, config_for, prepare_data
from i2dl_dsl.train.session import TrainingSession
from i2dl_dsl.train.step import build_step

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "linear_regression.net"


class Problem:
    """The training split, its closed-form optimum, and how far θ is from it."""

    def __init__(self, net, settings: Settings):
        self.train, self.val, _ = prepare_data(net, settings, integer_labels=False)
        self.a = np.c_[self.train.x.astype(np.float64), np.ones(len(self.train))]
        self.y = self.train.y.astype(np.float64).reshape(-1)
        self.optimum = np.linalg.lstsq(self.a, self.y, rcond=None)[0]
        self.best = self.loss(self.optimum)

    def loss(self, theta: np.ndarray) -> float:
        return float(np.mean((self.a @ theta - self.y) ** 2))

    def row(self, method: str, passes: int, theta: np.ndarray) -> dict:
        return {"method": method, "passes": passes, "loss_gap": self.loss(theta) - self.best,
                "distance": float(np.abs(theta - self.optimum).max())}


def theta_of(parameters: dict[str, np.ndarray]) -> np.ndarray:
    return np.r_[parameters["fc1.weight"].ravel(), parameters["fc1.bias"]].astype(np.float64)


def run_lbfgs(net, settings: Settings, problem: Problem, passes: int) -> list[dict]:
    config = replace(config_for(Settings({**settings.values, "optimizer": {"name": "sgd"}})), expose_gradients=True)
    objective = Objective(TrainingSession(build_step(net, config), "cpu"), problem.train)
    rows = [problem.row("lbfgs", 0, objective.flat())]

    def record(iteration: int, theta: np.ndarray, value: float) -> None:
        if objective.evaluations > rows[-1]["passes"]:
            rows.append(problem.row("lbfgs", objective.evaluations, theta))

    minimize(objective, settings.optimizer()["history"], passes, record)
    return [r for r in rows if r["passes"] <= passes]


def run_adam(net, settings: Settings, problem: Problem, lr: float, passes: int, folder: Path) -> list[dict]:
    adam = Settings.merge(settings.values, {"optimizer": "adam", "lr": lr})
    options = RunOptions(out=folder / f"adam_{lr:g}", epochs=0, batch=adam["batch"], device="cpu", quiet=True)
    trainer = Trainer(net, build_step(net, config_for(adam)), lr, options, problem.train, problem.val)
    method = f"adam lr={lr:g}"
    rows = [problem.row(method, 0, theta_of(trainer.session.parameters()))]
    for epoch in range(1, passes + 1):
        options.epochs = epoch
        trainer.run()
        rows.append(problem.row(method, epoch, theta_of(trainer.session.parameters())))
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        style = "o-" if method == "lbfgs" else "-"
        for ax, key in zip(axes, ("loss_gap", "distance")):
            ax.plot([r["passes"] for r in mine], [max(r[key], 1e-12) for r in mine], style, markersize=3,
                    label=method)
    axes[0].set(ylabel="training loss − optimum")
    axes[1].set(ylabel="max |θ − θ*|")
    for ax in axes:
        ax.set(xlabel="passes over the training set", yscale="log")
        ax.grid(alpha=0.3, which="both")
    axes[1].legend()
    fig.suptitle("Least squares: full-batch L-BFGS and mini-batch Adam")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passes", type=int, default=40)
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-2, 3e-2, 1e-1], help="Adam's learning rates")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "examples" / "lbfgs_vs_adam")
    args = p.parse_args()
    net = check(MODEL)
    settings = Settings.merge(net.train, {"batch": 64})
    problem = Problem(net, settings)
    rows = run_lbfgs(net, settings, problem, args.passes)
    with tempfile.TemporaryDirectory() as scratch:
        for lr in args.lrs:
            rows += run_adam(net, settings, problem, lr, args.passes, Path(scratch))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "lbfgs_vs_adam.png")
    print(f"{'method':14s} {'passes':>6s} {'loss − optimum':>15s} {'max |θ − θ*|':>13s}")
    for method in dict.fromkeys(r["method"] for r in rows):
        last = [r for r in rows if r["method"] == method][-1]
        print(f"{method:14s} {last['passes']:6d} {last['loss_gap']:15.3g} {last['distance']:13.3g}")
    print(f"wrote {args.out / 'results.csv'} and {args.out / 'lbfgs_vs_adam.png'}")


if __name__ == "__main__":
    main()

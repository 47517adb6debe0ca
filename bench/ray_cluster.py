"""The ray backend against the local one on this machine (docs/cluster.md):

1. a search of 8 trials: local successive halving against Ray Tune's ASHA
   on a local Ray cluster of `--cpus` CPUs (wall time, cluster start apart;
   trial-epochs trained against trials × epochs);
2. data-parallel training: one process (the local loop) against 1 and 2
   Ray workers (wall time, and the epoch's step time and time in the
   all-reduce from the workers' own records).

    python bench/ray_cluster.py [--cpus 2] [--epochs 8] [--trials 8] [--part search|parallel|both]

Fixed seeds; the timings move with the machine's load (others share it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from i2dl_dsl.checker import check  # noqa: E402
from i2dl_dsl.train.backends import Backend  # noqa: E402
from i2dl_dsl.train.run import Settings, train_network  # noqa: E402
from i2dl_dsl.train.parallel import train_parallel  # noqa: E402
from i2dl_dsl.train.search import run_search  # noqa: E402
from i2dl_dsl.train.tune_search import run_tune  # noqa: E402

MODEL = ROOT / "models" / "digits_cnn.net"
SPACE = "lr=1e-4..1e-1:log, batch=32|64"


def timed(call):
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def start_cluster(cpus: int) -> float:
    from i2dl_dsl.train.cluster import start_local

    return timed(lambda: start_local(cpus))[1]


def search(epochs: int, trials: int, backend: Backend, folder: Path) -> None:
    settings = Settings.merge(check(MODEL).train, {"epochs": epochs, "early_stopping": None})
    (local, _, _), local_s = timed(lambda: run_search(MODEL, settings, SPACE, trials, "random", folder / "local",
                                                      "cpu"))
    (tuned, table, _), tune_s = timed(lambda: run_tune(MODEL, settings, SPACE, trials, "random", folder / "tune",
                                                       backend, "cpu"))
    full = trials * epochs
    print(f"search, {trials} trials x {epochs} epochs, {SPACE}")
    print(f"  local successive halving: {local_s:.1f} s, {sum(t.epochs for t in local)} of {full} trial-epochs")
    print(f"  Ray Tune ASHA:            {tune_s:.1f} s, {sum(t.epochs for t in tuned)} of {full} trial-epochs")
    print(f"  best: local {local[0].config} {local[0].score:.4f}; tune {tuned[0].config} {tuned[0].score:.4f}")
    print(table)


def parallel(folder: Path) -> None:
    net = check(MODEL)
    settings = Settings.merge(net.train, {"epochs": 2, "early_stopping": None})
    one, one_s = timed(lambda: train_network(net, settings, folder / "one", device="cpu", quiet=True))
    print("data parallel, digits CNN, global batch 32, 2 epochs")
    print(f"  one process: {one_s:.1f} s wall, epoch 2 steps {one['final']['seconds']:.2f} s")
    for workers in (1, 2):
        result, seconds = timed(lambda: train_parallel(net, settings, folder / f"ray{workers}",
                                                       Backend("ray", workers=workers), "cpu", quiet=True))
        last = result["final"]
        print(f"  {workers} Ray worker(s): {seconds:.1f} s wall, epoch 2 steps {last['seconds']:.2f} s, "
              f"of which all-reduce {last['allreduce_seconds']:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--part", choices=("search", "parallel", "both"), default="both")
    args = ap.parse_args()
    print(f"local Ray cluster of {args.cpus} CPUs started in {start_cluster(args.cpus):.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        if args.part in ("search", "both"):
            search(args.epochs, args.trials, Backend("ray"), Path(folder))
        if args.part in ("parallel", "both"):
            parallel(Path(folder))


if __name__ == "__main__":
    main()

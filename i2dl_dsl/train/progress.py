"""What the user sees during training: a progress bar per epoch, the metrics
CSV, and a loss/accuracy plot."""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.auto import tqdm as auto_tqdm
from tqdm.notebook import tqdm_notebook

from ..files import save_bytes

COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "samples_per_s", "seconds")
IN_NOTEBOOK = issubclass(auto_tqdm, tqdm_notebook)  # tqdm.auto picks its notebook widget inside Jupyter


class Progress:
    """One epoch on the terminal: on a terminal (or in a notebook) a tqdm bar
    that fits the window, with batches done, elapsed time, ETA, loss and
    accuracy, replaced at the epoch's end by its summary line (in full,
    however narrow the window); elsewhere (a log file, a pipe) only that
    line."""

    def __init__(self, epoch: int, epochs: int, batches: int, quiet: bool = False, stream=None, done: int = 0):
        self.prefix = f"epoch {epoch + 1}/{epochs}"
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.started = time.perf_counter()
        self.bar = None
        if not quiet and (self.stream.isatty() or IN_NOTEBOOK):
            bar_class = auto_tqdm if IN_NOTEBOOK else tqdm
            self.bar = bar_class(total=batches, initial=done, desc=self.prefix, unit="batch", file=self.stream,
                                 dynamic_ncols=True, leave=False, mininterval=0.2)

    def update(self, done: int, loss: float, acc: float | None, speed: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}" + (f" acc {acc:.4f}" if acc is not None else ""),
                                     refresh=False)
            self.bar.update(done - self.bar.n)

    def finish(self, row: dict[str, Any]) -> None:
        """The epoch's summary: the bar's last state, or its one line."""
        if self.quiet:
            return
        parts = [f"loss {row['train_loss']:.4f}"]
        if row.get("train_acc") is not None:
            parts.append(f"acc {row['train_acc']:.4f}")
        if "val_loss" in row:
            parts.append(f"val_loss {row['val_loss']:.4f}")
        if row.get("val_acc") is not None:
            parts.append(f"val_acc {row['val_acc']:.4f}")
        parts.append(f"{row['samples_per_s']:,.0f} samples/s")
        self.close()
        parts.append(f"{time.perf_counter() - self.started:.1f} s")
        self.stream.write(f"{self.prefix} " + " ".join(parts) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar (also when the epoch was interrupted); idempotent."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in history:
        writer.writerow(["" if row.get(c) is None else row[c] for c in COLUMNS])
    save_bytes(path, text.getvalue().encode())


def best_epoch(history: list[dict[str, Any]], stopped_best: int | None = None) -> int | None:
    """The epoch to mark: early stopping's best, else the lowest validation loss."""
    if stopped_best is not None and stopped_best >= 1:
        return stopped_best
    rows = [r for r in history if r.get("val_loss") is not None]
    return min(rows, key=lambda r: r["val_loss"])["epoch"] if rows else None


def spans_decades(values: list[float]) -> bool:
    """Whether positive values span more than a factor of 10 (a log axis reads them better)."""
    positive = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return len(positive) == len([v for v in values if v is not None]) and bool(positive) \
        and max(positive) > 10 * min(positive)


def figure(history: list[dict[str, Any]], title: str, best: int | None = None):
    """Loss and accuracy per epoch: whole-number epoch ticks, the best epoch
    marked, the loss on a log axis where it spans more than a decade."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    losses: list[float] = []
    for ax, keys in ((ax_loss, ("train_loss", "val_loss")), (ax_acc, ("train_acc", "val_acc"))):
        for key, style in zip(keys, ("-", "--")):
            values = [r.get(key) for r in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=key.replace("_", " "))
                losses += values if ax is ax_loss else []
    if spans_decades(losses):
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best is not None:
            ax.axvline(best, color="grey", linestyle=":", label=f"best epoch {best}")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot(path: Path, history: list[dict[str, Any]], title: str, best: int | None = None) -> bool:
    """figure() as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig = figure(history, title, best_epoch(history, best))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    save_bytes(path, buffer.getvalue())
    return True

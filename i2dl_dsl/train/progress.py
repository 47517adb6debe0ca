"""What the user sees during training: a progress bar per epoch, the metrics
CSV, and a loss/accuracy plot."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

from ..files import save_bytes

COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "samples_per_s", "seconds")


class Progress:
    """`epoch 3/20 [=========>      ] loss 0.2134 acc 0.9412 5120 samples/s`."""

    WIDTH = 24

    def __init__(self, epoch: int, epochs: int, batches: int, quiet: bool = False, stream=None):
        self.prefix = f"epoch {epoch + 1}/{epochs}"
        self.batches = batches
        self.stream = stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.quiet = quiet

    def _bar(self, done: int) -> str:
        filled = self.WIDTH * done // max(1, self.batches)
        return "[" + "=" * filled + (">" if filled < self.WIDTH else "") + " " * (self.WIDTH - filled - 1) + "]"

    def update(self, done: int, loss: float, acc: float | None, speed: float) -> None:
        if self.live:
            acc_text = f" acc {acc:.4f}" if acc is not None else ""
            self.stream.write(f"\r{self.prefix} {self._bar(done)} loss {loss:.4f}{acc_text} {speed:,.0f} samples/s")
            self.stream.flush()

    def finish(self, row: dict[str, Any]) -> None:
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
        lead = "\r" if self.live else ""
        self.stream.write(f"{lead}{self.prefix} {self._bar(self.batches)} " + " ".join(parts) + "\n")
        self.stream.flush()


def write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in history:
        writer.writerow(["" if row.get(c) is None else row[c] for c in COLUMNS])
    save_bytes(path, text.getvalue().encode())


def plot(path: Path, history: list[dict[str, Any]], title: str) -> bool:
    """Loss and accuracy per epoch as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            ax_loss.plot(epochs, values, style, label=key.replace("_", " "))
    for key, style in (("train_acc", "-"), ("val_acc", "--")):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            ax_acc.plot(epochs, values, style, label=key.replace("_", " "))
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    save_bytes(path, buffer.getvalue())
    return True

"""What every training run leaves behind: model.onnx, weights.npz (and the
same as weights.safetensors), curves.png and result.json, with the test split evaluated once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checker import CheckedNetwork
from ..files import save_arrays, save_json
from ..interop.safetensors_io import save_safetensors
from ..lowering.export import save_model, to_onnx
from .dataset import Dataset
from .losses import Loss
from .progress import plot
from .rundir import MODEL, PLOT, RESULT, SAFETENSORS, WEIGHTS
from .session import TrainingSession


def write_result(path: Path, result: dict[str, Any]) -> None:
    save_json(path, result)


def evaluate(session: TrainingSession, loss: Loss, dataset: Dataset) -> tuple[float, float | None]:
    """The loss and accuracy (None where it means nothing) of the session's parameters on a data set."""
    z = session.predict(dataset.x)
    return loss.value(z, dataset.y), loss.accuracy(z, dataset.y)


def finish(net: CheckedNetwork, session: TrainingSession, loss: Loss, history: list[dict[str, Any]],
           test: Dataset, out: Path, title: str, **details: Any) -> dict[str, Any]:
    """Write the run's files and result.json; `details` are the driver's own entries
    (best epoch, iterations). Returns the result, with two entries that
    result.json leaves out: `history` (a dict per epoch) and `weights`."""
    parameters = session.parameters()
    save_model(to_onnx(net, weights=parameters), out / MODEL)
    save_arrays(out / WEIGHTS, parameters)
    save_safetensors(out / SAFETENSORS, parameters)
    test_loss, test_acc = evaluate(session, loss, test) if len(test) else (None, None)
    plotted = plot(out / PLOT, history, title, details.get("best_epoch"))
    result = {"network": net.name, "epochs": len(history), **details, "device": session.device,
              "test_loss": test_loss, "test_acc": test_acc, "test_samples": len(test),
              "final": history[-1] if history else None, "plot": plotted}
    write_result(out / RESULT, result)
    return {**result, "history": history, "weights": parameters}

"""The Python API: a checked network as an object for scripts and notebooks.

A thin layer over what the commands call: `check` is the checker's,
`Summary` holds the rows of `i2dl-compile --summary` (summary.py), `graph`
is the drawing (render.py), `to_onnx` the exporter (lowering/export.py).
Nothing here checks, counts or lowers anything itself. Documented in
docs/api.md.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from . import summary as _summary
from .checker import CheckedNetwork
from .checker import check as _check
from .diagnostics import CompileError, UserError, render

if TYPE_CHECKING:
    import graphviz
    import onnx

SOURCE_NAME = "<source>"  # how a network given as text is named in messages

__all__ = ["CompileError", "Layer", "Network", "Summary", "check"]


def check(path: str | Path | None = None, *, source: str | None = None,
          params: Mapping[str, Any] | None = None) -> "Network":
    """Check a network: a `.net` file (or a zoo model's name, `"lenet5"`),
    or `source`, the text of one. `params` set the parameters of
    `network Net(c=16, ...)`. With both, `path` names the source in
    messages. Raises CompileError, whose `str()` is what `i2dl-compile`
    prints, listing every mistake."""
    if path is None and source is None:
        raise TypeError("check() takes the path of a .net file, or source= its text")
    if source is not None:
        named = str(path) if path is not None else SOURCE_NAME
        return Network(_as_compile_error(lambda: _check(named, dict(params or {}), source=source)))
    return Network(_as_compile_error(lambda: _check(_resolve(path), dict(params or {}))))


def _resolve(path: str | Path) -> str:
    """A path that exists, else a zoo model of that name (as the commands do)."""
    from .zoo import resolve_model

    return resolve_model(str(path), "i2dl_dsl.check")


def _as_compile_error(work):
    """Run `work`; a single UserError (a missing file, a bad --param)
    becomes a CompileError, so callers catch one type."""
    try:
        return work()
    except UserError as exc:
        raise CompileError([exc.diagnostic()]) from None


@dataclass(frozen=True)
class Layer:
    """One row of the summary: a layer, or a folded block."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: dict[str, list] | None  # {"size": [h, w], "stride": [h, w]}; None where undefined


class Summary:
    """What `i2dl-compile --summary` prints: `str()` is the table,
    `to_dict()` the `--format json` document; Jupyter shows it as a table."""

    def __init__(self, net: CheckedNetwork, depth: int | None = None, batch: int = 1):
        self._net, self.depth, self.batch = net, depth, batch

    def __str__(self) -> str:
        return _summary.format_table(self._net, self.depth, self.batch)

    def __repr__(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return _summary.to_json(self._net, self.depth, self.batch)

    def _repr_html_(self) -> str:
        return summary_html(self.to_dict())


def summary_html(document: Mapping[str, Any]) -> str:
    """An HTML table of a summary document (`Summary.to_dict()`)."""
    def cell(value: Any, right: bool = False) -> str:
        align = ' style="text-align:right"' if right else ' style="text-align:left"'
        return f"<td{align}>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{h}</th>" for h in ("layer", "type", "output", "params", "MACs", "receptive field"))
    rows = []
    for row in document["layers"]:
        field = row["receptive_field"]
        shown = "-" if field is None else f"{_pair(field['size'])} /{_pair(field['stride'])}"
        rows.append("<tr>" + cell(row["name"]) + cell(row["type"]) + cell(_shape(row["output_shape"]))
                    + cell(f"{row['params']:,}", True) + cell(f"{row['macs']:,}", True) + cell(shown) + "</tr>")
    t = document["totals"]
    foot = (f"<p>params {t['params']:,} · trainable {t['trainable_params']:,} · buffers {t['buffers']:,} · "
            f"MACs per sample {t['macs']:,}</p>")
    title = f"<p><b>network {html.escape(document['network'])}</b></p>"
    return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{foot}"


def _pair(values: list) -> str:
    shown = [f"{float(v):g}" for v in values]
    return shown[0] if len(set(shown)) == 1 else "×".join(shown)


def _shape(dims: list) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


class Network:
    """A checked network: its analyses, summary, drawings and exports."""

    def __init__(self, checked: CheckedNetwork):
        self.checked = checked  # what the commands work on
        for warning in checked.warnings:
            warnings.warn(render(warning), stacklevel=3)

    # ------------------------------------------------------------- figures
    @property
    def name(self) -> str:
        return self.checked.name

    @property
    def path(self) -> str:
        return self.checked.path

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.checked.analysis.shapes[self.checked.input])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.checked.analysis.shapes[self.checked.output])

    @property
    def params(self) -> int:
        """Learnable values (batch-norm statistics are buffers, not parameters)."""
        return _summary.totals(self.checked)["params"]

    @property
    def trainable_params(self) -> int:
        """Parameters less those of layers the train section freezes."""
        return _summary.totals(self.checked)["trainable_params"]

    @property
    def buffers(self) -> int:
        return _summary.totals(self.checked)["buffers"]

    @property
    def macs(self) -> int:
        """Multiply-adds per sample."""
        return _summary.totals(self.checked)["macs"]

    @property
    def layers(self) -> list[Layer]:
        """Every layer in source order, as the summary lists them."""
        return self._layers(None)

    def _layers(self, depth: int | None) -> list[Layer]:
        rows = self.summary(depth).to_dict()["layers"]
        return [Layer(r["name"], r["type"], tuple(r["output_shape"]), r["params"], r["macs"], r["receptive_field"])
                for r in rows]

    def summary(self, depth: int | None = None, batch: int = 1) -> Summary:
        """The `--summary` table; `depth` folds blocks below that many dotted
        name levels, `batch` is the batch of the memory estimate."""
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be a positive number of levels, not {depth}")
        return Summary(self.checked, depth, batch)

    # ------------------------------------------------------------- pictures
    def graph(self, depth: int | None = None, level: str = "layers", rankdir: str = "TB") -> "graphviz.Digraph":
        """The drawing of `i2dl-compile --graph`: the layers (`depth` folds
        blocks), or `level="onnx"` for the exported op graph."""
        from .render import digraph

        return _as_compile_error(lambda: digraph(self.checked, depth, rankdir, level))

    def _repr_svg_(self) -> str | None:
        """The layer graph inline in Jupyter; None (text instead) without Graphviz's `dot`."""
        import shutil

        if shutil.which("dot") is None:
            return None
        return self.graph().pipe(format="svg").decode("utf-8")

    def __repr__(self) -> str:
        return (f"<Network {self.name} ({self.path}): {len(self.checked.analysis.order)} layers, "
                f"{self.params:,} parameters, {self.macs:,} MACs>")

    # ------------------------------------------------------------- exports
    def to_onnx(self, weights: str | Path | Mapping[str, np.ndarray] | None = None, opset: int | None = None,
                seed: int = 0, init: str = "he", allow_pickle: bool = False) -> "onnx.ModelProto":
        """The inference model, as `i2dl-compile --onnx` writes it. `weights`:
        arrays by parameter name, or a weights file (.npz, .safetensors,
        .onnx; PyTorch's pickled .pt/.pth only with `allow_pickle`, for a
        file you trust); without them, `init` initial values drawn with `seed`."""
        from .lowering.export import DEFAULT_OPSET, to_onnx

        given, source = self._weights(weights, allow_pickle)
        return _as_compile_error(lambda: to_onnx(self.checked, opset=DEFAULT_OPSET if opset is None else opset,
                                                 weights=given, seed=seed, init=init, weights_source=source))

    def to_torch(self, weights: str | Path | Mapping[str, np.ndarray] | None = None, allow_pickle: bool = False):
        """The network as a PyTorch `nn.Module` (the source `--emit torch`
        writes), its state_dict names the .net names; `weights` (a file or
        name → array) are loaded strictly, else PyTorch's own initialisation."""
        from .interop.torch_code import to_module

        return to_module(self.checked, self._weights(weights, allow_pickle)[0])

    def _weights(self, weights, allow_pickle: bool) -> tuple[dict[str, np.ndarray] | None, str]:
        if weights is None:
            return None, ""
        if isinstance(weights, Mapping):  # a state_dict's counters are no parameters
            from .lowering.weights import IGNORED_SUFFIXES

            return {n: np.asarray(v) for n, v in weights.items() if not n.endswith(IGNORED_SUFFIXES)}, "weights"
        return _as_compile_error(lambda: read_net_weights(self.checked, str(weights), allow_pickle)), str(weights)


def read_net_weights(net: CheckedNetwork, path: str, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """The tensors of a weights file the network expects; those holding NaN
    or Inf are named in a Python warning (the commands print it)."""
    from .lowering.export import parameter_shapes
    from .lowering.weights import drop_step_counters, nonfinite_warning, read_weights

    expected = parameter_shapes(net)
    weights, _ = drop_step_counters(read_weights(path, expected, allow_pickle), expected)
    for warning in nonfinite_warning(weights, expected, path):
        warnings.warn(render(warning), stacklevel=4)
    return weights

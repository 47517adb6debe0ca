"""Drawings: every layer (or folded block) is a node, edges carry shapes,
groups are clusters, files are written whole or not at all, and a missing
`dot` still leaves the DOT text behind."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from i2dl_dsl import files, render
from i2dl_dsl.cli.compile import main
from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import UserError
from i2dl_dsl.elaborate import layer_node
from nets import BASIC_BLOCK

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted(p for p in (ROOT / "models").rglob("*.net")
             if re.search(r"^\s*network\s", p.read_text(encoding="utf-8"), re.M))  # not block libraries
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")

RESIDUAL = BASIC_BLOCK + """block plain(c) {
    residual { conv(c, k=3, p=1, bias=false) -> batchnorm }
    relu
}
network Res {
    input x[3, 32, 32]
    stem:   conv(16, k=3, p=1) -> relu
    layer1: plain(16) * 2
    layer2: basic(32, s=2) -> plain(32)
    head:   global_avgpool -> flatten -> fc(10)
}
"""

INCEPTION = """
block inception(a, b) {
    concat {
        branch { conv(a, k=1) -> relu }
        branch { conv(b, k=1) -> relu -> conv(b, k=3, p=1) -> relu }
        branch { maxpool(k=3, s=1, p=1) -> conv(a, k=1) }
    }
}
network Inc {
    input x[8, 16, 16]
    inception(4, 8) -> inception(8, 8)
    global_maxpool -> flatten -> dropout(0.2) -> fc(5)
}
"""

SKIPS = """
network Skips {
    input x[3, 16, 16]
    e1 = x  -> conv(8, k=3, p=same) -> relu
    e2 = e1 -> maxpool(k=2, s=2) -> conv(16, k=3, p=same) -> relu
    u  = e2 -> upconv(8, k=2, s=2)
    y  = concat(u, e1) -> conv(4, k=1)
}
"""

SEQUENCE = """
network Seq {
    input tokens[T=12, 6]
    lstm(16) -> lstm(16, sequences=false) -> fc(3) -> softmax
}
"""

SMALL = {"residual": RESIDUAL, "inception": INCEPTION, "skips": SKIPS, "sequence": SEQUENCE}


@pytest.fixture
def small(tmp_path):
    def make(name: str):
        path = tmp_path / f"{name}.net"
        path.write_text(SMALL[name], encoding="utf-8")
        return check(path)
    return make


def _svg(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # raises on malformed XML


def _groups(root: ET.Element, cls: str) -> dict[str, str]:
    """title → all visible text, for the <g class=cls> elements of a Graphviz SVG."""
    found = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == cls:
            title = g.find(f"{SVG}title").text
            found[title] = " ".join(t.text or "" for t in g.iter(f"{SVG}text"))
    return found


def _fills(root: ET.Element) -> dict[str, str]:
    """node title → the fill of its outline (the output marker has none)."""
    fills = {}
    for g in root.iter(f"{SVG}g"):
        outline = next(g.iter(f"{SVG}path"), None)
        if g.get("class") == "node" and outline is not None:
            fills[g.find(f"{SVG}title").text] = outline.get("fill")
    return fills


def _assert_every_layer_drawn(net, svg_path: Path) -> None:
    nodes = _groups(_svg(svg_path), "node")
    assert set(nodes) == set(net.analysis.order) | {render.OUTPUT_NODE}
    for name in net.analysis.order:
        layer = layer_node(net.graph, name).layer
        shown = name.rsplit(".", 1)[-1]
        assert shown in nodes[name] and (layer.kind in nodes[name] or not layer_node(net.graph, name).inputs)


# ----------------------------------------------------------------- every model


@needs_dot
@pytest.mark.parametrize("model", ZOO, ids=[str(p.relative_to(ROOT / "models")) for p in ZOO])
def test_zoo_model_draws_every_layer(model, tmp_path):
    net = check(model)
    out = render.draw(net, tmp_path / "net.svg")
    _assert_every_layer_drawn(net, out)


@needs_dot
@pytest.mark.parametrize("name", SMALL)
def test_small_net_draws_every_layer(name, small, tmp_path):
    net = small(name)
    _assert_every_layer_drawn(net, render.draw(net, tmp_path / "net.svg"))


@needs_dot
def test_label_shows_kind_arguments_and_params(small, tmp_path):
    net = small("residual")
    nodes = _groups(_svg(render.draw(net, tmp_path / "net.svg")), "node")
    conv = layer_node(net.graph, "layer2.0.conv1").layer
    text = nodes["layer2.0.conv1"]
    assert conv.describe() in text
    assert f"{render.count_text(net.analysis.layer_params('layer2.0.conv1'))} params" in text


@needs_dot
def test_edges_carry_shapes_without_batch(small, tmp_path):
    net = small("skips")
    edges = _groups(_svg(render.draw(net, tmp_path / "net.svg")), "edge")
    for source, target in net.graph.edges:
        assert edges[f"{source}->{target}"] == "×".join(map(str, net.analysis.shapes[source]))
    assert edges[f"{net.output}->{render.OUTPUT_NODE}"] == "4×16×16"


@needs_dot
def test_every_group_is_a_cluster(small, tmp_path):
    net = small("inception")
    clusters = _groups(_svg(render.draw(net, tmp_path / "net.svg")), "cluster")
    assert set(clusters) == {f"cluster_{g}" for g in net.graph.graph["groups"]}
    assert "inception" in clusters["cluster_inception1"]


@needs_dot
def test_colour_comes_from_the_family(small, tmp_path):
    net = small("residual")
    fills = _fills(_svg(render.draw(net, tmp_path / "net.svg")))
    for name in net.analysis.order:
        family = layer_node(net.graph, name).layer.family
        assert fills[name] == render.FAMILY_COLOURS.get(family, render.OTHER_COLOURS)[0]
    assert len({fills["stem.0"], fills["stem.1"], fills["layer1.0.add1"]}) == 3


# ----------------------------------------------------------------- folding


@needs_dot
def test_depth_folds_deeper_groups_into_one_node(small, tmp_path):
    net = small("residual")
    nodes = _groups(_svg(render.draw(net, tmp_path / "net.svg", depth=1)), "node")
    assert set(nodes) == {"x", "stem", "layer1", "layer2", "head", render.OUTPUT_NODE}
    members = [n for n in net.analysis.order if n.startswith("layer2.")]
    text = nodes["layer2"]
    assert "sequence" in text and "basic" not in text  # its blocks are folded in
    assert render.count_text(sum(net.analysis.layer_params(n) for n in members)) in text
    assert f"{len(members)} layers" in text and "→ 32×16×16" in text


@needs_dot
def test_folded_blocks_keep_their_type_and_outer_cluster(small, tmp_path):
    net = small("residual")
    root = _svg(render.draw(net, tmp_path / "net.svg", depth=2))
    nodes = _groups(root, "node")
    assert {"layer1.0", "layer1.1", "layer2.0"} <= set(nodes)
    assert "plain" in nodes["layer1.0"] and "basic" in nodes["layer2.0"] and "plain" in nodes["layer2.1"]
    assert "layer1.0.conv1" not in nodes
    assert {"cluster_layer1", "cluster_layer2"} <= set(_groups(root, "cluster"))
    edges = _groups(root, "edge")
    assert edges["layer1.0->layer1.1"] == "16×32×32"
    assert edges["layer1.1->layer2.0"] == "16×32×32"
    assert edges["layer2.0->layer2.1"] == "32×16×16"


def test_depth_deeper_than_any_name_changes_nothing(small):
    net = small("inception")
    assert render.layer_graph(net, depth=9).source == render.layer_graph(net).source


# ----------------------------------------------------------------- formats and files


def test_dot_output_needs_no_graphviz(small, tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    net = small("residual")
    out = render.draw(net, tmp_path / "net.dot", rankdir="LR")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("digraph Res {")
    assert "rankdir=LR" in text and "subgraph cluster_layer1 {" in text
    assert all(f'"{name}"' in text or f"\t{name} " in text for name in net.analysis.order)


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF-")])
def test_bitmap_and_pdf(suffix, magic, small, tmp_path):
    out = render.draw(small("sequence"), tmp_path / f"net{suffix}")
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["net.jpg", "net"])
def test_unknown_format_is_a_user_error(name, small, tmp_path):
    with pytest.raises(UserError, match="picture format"):
        render.draw(small("sequence"), tmp_path / name)
    assert list(tmp_path.iterdir()) == [tmp_path / "sequence.net"]


def test_missing_folder_is_a_user_error(small, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        render.draw(small("sequence"), tmp_path / "nowhere" / "net.dot")


def test_failed_write_leaves_no_partial_file(small, tmp_path, monkeypatch):
    net = small("sequence")
    kept = tmp_path / "kept.dot"
    kept.write_text("earlier drawing", encoding="utf-8")

    def fail(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    for target in (tmp_path / "new.dot", kept):
        with pytest.raises(UserError, match="cannot write .*disk full"):
            render.draw(net, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.dot", "sequence.net"]
    assert kept.read_text(encoding="utf-8") == "earlier drawing"


def test_without_dot_the_dot_text_is_written_and_explained(small, tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    net = small("residual")
    with pytest.raises(UserError) as caught:
        render.draw(net, tmp_path / "net.svg")
    assert "net.dot" in caught.value.message and "not found" in caught.value.message
    assert any("apt-get install graphviz" in h for h in caught.value.hints)
    assert not (tmp_path / "net.svg").exists()
    assert (tmp_path / "net.dot").read_text(encoding="utf-8") == render.layer_graph(net).source


# ----------------------------------------------------------------- command line


def _write(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.net"
    path.write_text(SMALL[name], encoding="utf-8")
    return path


@needs_dot
def test_cli_draws_svg(tmp_path, capsys):
    model = _write(tmp_path, "residual")
    out = tmp_path / "net.svg"
    assert main([str(model), "--graph", str(out), "--graph-depth", "2", "--rankdir", "LR"]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    assert "layer1.0" in _groups(_svg(out), "node")


def test_cli_without_dot_exits_2_and_leaves_dot_text(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    model = _write(tmp_path, "inception")
    assert main([str(model), "--graph", str(tmp_path / "net.png")]) == 2
    err = capsys.readouterr().err
    assert "Graphviz" in err and "apt-get install graphviz" in err and "Traceback" not in err
    assert (tmp_path / "net.dot").read_text(encoding="utf-8").startswith("digraph Inc {")
    assert not (tmp_path / "net.png").exists()
    assert main([str(model), "--graph", str(tmp_path / "asked.dot")]) == 0


@pytest.mark.parametrize("extra, message", [
    (["--graph", "net.gif"], "cannot tell the picture format"),
    (["--graph", "net.dot", "--graph-level", "onnx", "--graph-depth", "2"], "--graph-depth folds blocks"),
])
def test_cli_bad_graph_options_exit_2(extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _write(tmp_path, "sequence")
    assert main([str(model), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_onnx_level_without_the_exporter_is_explained(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "i2dl_dsl.lowering.export", None)  # import fails as if absent
    model = _write(tmp_path, "sequence")
    assert main([str(model), "--graph", str(tmp_path / "ops.dot"), "--graph-level", "onnx"]) == 2
    assert "needs the ONNX exporter" in capsys.readouterr().err
    assert not (tmp_path / "ops.dot").exists()


# ----------------------------------------------------------------- ONNX op graph


def _tiny_onnx():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    weight = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "conv.weight")
    nodes = [helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "c"], ["y"], name="sum")]
    graph = helper.make_graph(
        nodes, "Tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        initializer=[weight],
        value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 4, 8, 8])])  # r left undeclared
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.checker.check_model(model)
    return model


def test_onnx_graph_has_ops_tensors_and_shapes():
    dot = render.onnx_graph(_tiny_onnx())
    source = dot.source
    assert "conv.weight" not in source  # weights are not nodes: their shapes go in the op's label
    assert "4×3×3×3" in source and "rankdir=TB" in source


@needs_dot
def test_onnx_graph_svg(tmp_path):
    out = render.write(render.onnx_graph(_tiny_onnx(), "LR"), tmp_path / "ops.svg")
    root = _svg(out)
    nodes = _groups(root, "node")
    assert set(nodes) == {"input0", "op0", "op1", "op2", "output0"}
    assert "Conv" in nodes["op0"] and "conv" in nodes["op0"] and "4×3×3×3" in nodes["op0"]
    assert "Relu" in nodes["op1"] and "Add" in nodes["op2"]
    edges = _groups(root, "edge")
    assert edges == {"input0->op0": "N×3×8×8", "op0->op1": "N×4×8×8", "op1->op2": "",
                     "op0->op2": "N×4×8×8", "op2->output0": "N×4×8×8"}


@needs_dot
def test_onnx_level_draws_the_exported_model(small, tmp_path):
    export = pytest.importorskip("i2dl_dsl.lowering.export")
    net = small("residual")
    out = render.draw(net, tmp_path / "ops.svg", level="onnx")
    nodes = _groups(_svg(out), "node")
    ops = [n for n in nodes if n.startswith("op")]
    assert len(ops) == len(export.to_onnx(net).graph.node)


# ----------------------------------------------------------------- small things


@pytest.mark.parametrize("n, text", [(0, "0"), (864, "864"), (9408, "9,408"), (36864, "36.9k"),
                                     (999_999, "1.00M"), (11_689_512, "11.7M"), (2**40, "1.10T")])
def test_count_text(n, text):
    assert render.count_text(n) == text


def test_importing_render_loads_neither_graphviz_nor_onnx():
    code = ("import sys, i2dl_dsl.checker; before = set(sys.modules); import i2dl_dsl.render; "
            "print(sorted({'graphviz', 'onnx'} & (set(sys.modules) - before)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

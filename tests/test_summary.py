"""The summary: one row per layer or folded block, and its JSON document."""

from __future__ import annotations

import json

import pytest

from i2dl_dsl import summary
from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.checker import check
from i2dl_dsl.elaborate import layer_node
from nets import BASIC_BLOCK

RESNET = BASIC_BLOCK + """
network Tiny {
    input x[3, 16, 16]
    stem: conv(8, k=3, p=1, bias=false) -> batchnorm -> relu
    layer1: basic(8) * 2
    layer2: basic(16, s=2)
    head: global_avgpool -> flatten -> fc(10)
}
"""

# Worked out by hand (conv: Cout·Cin·kh·kw; MACs: Cout·Hout·Wout·Cin·kh·kw; batch norm: 2C).
STEM_PARAMS = 8 * 3 * 9 + 2 * 8
BASIC8_PARAMS = 2 * (8 * 8 * 9) + 8 * 8 + 3 * (2 * 8)
LAYER2_PARAMS = 16 * 8 * 9 + 16 * 16 * 9 + 16 * 8 + 3 * (2 * 16)
HEAD_PARAMS = 16 * 10 + 10
STEM_MACS = 8 * 16 * 16 * 3 * 9
BASIC8_MACS = 2 * (8 * 16 * 16 * 8 * 9) + 8 * 16 * 16 * 8
LAYER2_MACS = 16 * 8 * 8 * 8 * 9 + 16 * 8 * 8 * 16 * 9 + 16 * 8 * 8 * 8
HEAD_MACS = 16 * 10


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "tiny.net"
    path.write_text(RESNET)
    return check(path)


def test_rows_without_depth_list_every_layer_in_order(net):
    rows = summary.rows(net)
    assert [r.name for r in rows] == net.analysis.order
    assert [r.type for r in rows] == [layer_node(net.graph, n).layer.kind for n in net.analysis.order]
    assert rows[0].name == "x" and rows[0].type == "input" and rows[0].output_shape == (3, 16, 16)


def test_rows_at_depth_one_fold_each_top_level_group(net):
    rows = summary.rows(net, depth=1)
    assert [(r.name, r.type, r.output_shape) for r in rows] == [
        ("x", "input", (3, 16, 16)),
        ("stem", "sequence", (8, 16, 16)),
        ("layer1", "basic ×2", (8, 16, 16)),
        ("layer2", "basic", (16, 8, 8)),
        ("head", "sequence", (10,)),
    ]


def test_folded_rows_sum_parameters_and_macs(net):
    rows = {r.name: r for r in summary.rows(net, depth=1)}
    assert [rows[n].params for n in ("stem", "layer1", "layer2", "head")] == [
        STEM_PARAMS, 2 * BASIC8_PARAMS, LAYER2_PARAMS, HEAD_PARAMS]
    assert [rows[n].macs for n in ("stem", "layer1", "layer2", "head")] == [
        STEM_MACS, 2 * BASIC8_MACS, LAYER2_MACS, HEAD_MACS]


def test_folded_row_shows_the_field_of_the_block_output(net):
    rows = {r.name: r for r in summary.rows(net, depth=1)}
    assert rows["layer2"].field == net.analysis.fields["layer2.relu2"]
    # stem: 3; layer1: two blocks of two 3×3 convs add 8; layer2: two more (jump 2 after the first): 11 + 2 + 4
    assert rows["layer1"].field.size == (11, 11) and rows["layer2"].field.size == (17, 17)
    assert rows["layer2"].field.jump == (2, 2)
    assert rows["head"].field is None


def test_rows_at_depth_two_fold_repetition_copies_and_shortcuts(net):
    rows = summary.rows(net, depth=2)
    names = [r.name for r in rows]
    assert names[:5] == ["x", "stem.0", "stem.1", "stem.2", "layer1.0"]
    assert "layer1.1" in names and "layer1.0.conv1" not in names
    assert ("layer2.shortcut", "shortcut") in [(r.name, r.type) for r in rows]
    assert [n for n in names if n.startswith("layer2.")] == [
        "layer2.conv1", "layer2.bn1", "layer2.relu1", "layer2.conv2", "layer2.bn2", "layer2.shortcut",
        "layer2.add1", "layer2.relu2"]


def test_folding_keeps_the_totals(net):
    for depth in (None, 1, 2, 3):
        rows = summary.rows(net, depth)
        assert sum(r.params for r in rows) == STEM_PARAMS + 2 * BASIC8_PARAMS + LAYER2_PARAMS + HEAD_PARAMS
        assert sum(r.macs for r in rows) == STEM_MACS + 2 * BASIC8_MACS + LAYER2_MACS + HEAD_MACS


# ----------------------------------------------------------------- JSON


def test_json_document_schema(net):
    doc = json.loads(json.dumps(summary.to_json(net)))
    assert set(doc) == {"network", "input", "layers", "totals"}
    assert doc["network"] == "Tiny"
    assert doc["input"] == {"name": "x", "shape": [3, 16, 16]}
    for layer in doc["layers"]:
        assert set(layer) == {"name", "type", "output_shape", "params", "macs", "receptive_field"}
        assert isinstance(layer["output_shape"], list) and all(isinstance(d, int) for d in layer["output_shape"])
        assert isinstance(layer["params"], int) and isinstance(layer["macs"], int)
        field = layer["receptive_field"]
        assert field is None or (set(field) == {"size", "stride"} and len(field["size"]) == len(field["stride"]) == 2)
    assert {"params", "trainable_params", "buffers", "macs"} <= set(doc["totals"])


def test_json_layers_carry_the_row_values(net):
    doc = summary.to_json(net, depth=1)
    by_name = {layer["name"]: layer for layer in doc["layers"]}
    assert by_name["layer2"] == {"name": "layer2", "type": "basic", "output_shape": [16, 8, 8],
                                 "params": LAYER2_PARAMS, "macs": LAYER2_MACS,
                                 "receptive_field": {"size": [17, 17], "stride": [2, 2]}}
    assert by_name["head"]["receptive_field"] is None


def test_json_totals(net):
    totals = summary.to_json(net)["totals"]
    params = STEM_PARAMS + 2 * BASIC8_PARAMS + LAYER2_PARAMS + HEAD_PARAMS
    assert (totals["params"], totals["trainable_params"]) == (params, params)
    assert totals["buffers"] == 2 * (8 + 2 * 3 * 8 + 3 * 16)
    assert totals["macs"] == STEM_MACS + 2 * BASIC8_MACS + LAYER2_MACS + HEAD_MACS


def test_json_fractional_fields_are_numbers(tmp_path):
    path = tmp_path / "up.net"
    path.write_text("network U {\n    input x[1, 8, 8]\n    conv(2, k=3, p=1) -> upsample\n}\n")
    layers = summary.to_json(check(path))["layers"]
    assert layers[-1]["receptive_field"] == {"size": [3, 3], "stride": [0.5, 0.5]}


def test_cli_json_is_the_document(net, capsys):
    assert compile_main([net.path, "--summary", "--format", "json", "--depth", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(summary.to_json(net, depth=1)))


# ----------------------------------------------------------------- trainable parameters


def frozen(tmp_path, names: str):
    path = tmp_path / "frozen.net"
    path.write_text(RESNET + f"train {{\n    freeze {names}\n}}\n")
    return summary.totals(check(path))


def test_freeze_subtracts_the_frozen_groups(tmp_path):
    totals = frozen(tmp_path, "stem, layer1")
    assert totals["trainable_params"] == totals["params"] - STEM_PARAMS - 2 * BASIC8_PARAMS


def test_freeze_matches_whole_name_parts_only(tmp_path):
    path = tmp_path / "parts.net"
    path.write_text("network P {\n    input x[4]\n    layer1: fc(3)\n    layer10: fc(2)\n}\n"
                    "train {\n    freeze layer1\n}\n")
    assert summary.totals(check(path))["trainable_params"] == 3 * 2 + 2

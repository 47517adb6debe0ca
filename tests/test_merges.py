"""Merges are registered layers: their keyword arguments go through their
signature, the block they close is found through the registry, and hints
list the merges that are registered."""

from __future__ import annotations

import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import CompileError
from i2dl_dsl.elaborate import layer_node
from i2dl_dsl.layers import REGISTRY
from i2dl_dsl.layers.base import Float, P
from i2dl_dsl.layers.merge import Merge, closing_merge, merge_calls


class ScaledAdd(Merge):
    """A merge with an argument, registered only while a test runs."""

    kind = "scaled_add"
    prefix = "scaled_add"
    signature = (P("scale", Float(), 1.0),)


@pytest.fixture
def scaled_add(monkeypatch):
    monkeypatch.setitem(REGISTRY, ScaledAdd.kind, ScaledAdd)


def network(tmp_path, body: str):
    path = tmp_path / "net.net"
    path.write_text(f"network N {{\n    input x[4, 8, 8]\n{body}\n}}\n")
    return check(path)


def errors(tmp_path, body: str) -> list:
    with pytest.raises(CompileError) as caught:
        network(tmp_path, body)
    return list(caught.value.diagnostics)


def test_a_merge_binds_its_keyword_arguments(tmp_path, scaled_add):
    net = network(tmp_path, "    t = x -> conv(4, k=1)\n    x -> relu -> scaled_add(t, scale=0.5)")
    node = layer_node(net.graph, "scaled_add1")
    assert node.inputs == ("relu1", "conv1") and node.layer.a.scale == 0.5


def test_a_merge_argument_takes_its_default(tmp_path, scaled_add):
    net = network(tmp_path, "    t = x -> conv(4, k=1)\n    x -> relu -> scaled_add(t)")
    assert layer_node(net.graph, "scaled_add1").layer.a.scale == 1.0


def test_a_merge_argument_is_checked_like_a_layer_argument(tmp_path, scaled_add):
    found = errors(tmp_path, "    t = x -> conv(4, k=1)\n    x -> relu -> scaled_add(t, sclae=2)")
    assert [d.message for d in found] == ["scaled_add has no argument 'sclae'"]
    assert "did you mean 'scale'?" in found[0].hints


def test_a_merge_without_arguments_reads_a_keyword_as_a_misnamed_tensor(tmp_path):
    found = errors(tmp_path, "    t = x -> conv(4, k=1)\n    x -> relu -> add(t, k=2)")
    assert [d.message for d in found] == ["add joins named tensors; this is not a tensor name"]


def test_blocks_are_closed_by_the_merge_registered_for_them():
    assert closing_merge("residual") is REGISTRY["add"] and closing_merge("concat") is REGISTRY["concat"]
    with pytest.raises(LookupError):
        closing_merge("branch")


def test_the_closing_merge_knows_its_block_when_built(tmp_path):
    net = network(tmp_path, "    residual { conv(4, k=3, p=1) } shortcut { conv(4, k=1) }\n"
                            "    t = relu\n    conv(4, k=1) -> add(t)")
    closing, written = layer_node(net.graph, "add1").layer, layer_node(net.graph, "add2").layer
    assert (closing.closing, closing.has_shortcut) == (True, True)
    assert (written.closing, written.has_shortcut) == (False, False)


def test_hints_list_the_registered_merges(tmp_path, scaled_add):
    assert merge_calls("t") == "add(t), concat(t) or scaled_add(t)"
    found = errors(tmp_path, "    t = x -> conv(4, k=1)\n    relu -> t")
    assert found[0].hints == ("to join it to this chain use add(t), concat(t) or scaled_add(t)",)


def test_the_unused_tensor_warning_lists_the_registered_merges(tmp_path, scaled_add):
    net = network(tmp_path, "    t = x -> conv(4, k=1)\n    x -> relu")
    assert [w.hints for w in net.warnings] == [("join it with add(...), concat(...) or scaled_add(...), "
                                                "or remove it",)]


def test_edges_are_derived_from_the_ordered_inputs(tmp_path):
    net = network(tmp_path, "    a = x -> conv(2, k=1)\n    b = x -> conv(3, k=1)\n    concat(b, a) -> relu")
    for name in net.graph.nodes:
        node = layer_node(net.graph, name)
        assert node.name == name and set(net.graph.predecessors(name)) == set(node.inputs)
    assert layer_node(net.graph, "concat1").inputs == ("conv2", "conv1")

"""Blocks that take tensors, repetitions of zero, broadcasting products and
sums, splitting and cropping channels: names, shapes and errors.

Values and gradients against PyTorch are in tests/test_onnx_layers.py and
tests/test_every_layer.py (one case per kind) and below where a feature
combines several layers (squeeze-and-excitation).
"""

from __future__ import annotations

import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import CompileError
from i2dl_dsl.elaborate import layer_node


def network(tmp_path, body: str, input_dims: str = "4, 8, 8", blocks: str = ""):
    path = tmp_path / "net.net"
    path.write_text(f"{blocks}\nnetwork N {{\n    input x[{input_dims}]\n{body}\n}}\n")
    return check(path)


def errors(tmp_path, body: str, input_dims: str = "4, 8, 8", blocks: str = "") -> list[str]:
    with pytest.raises(CompileError) as caught:
        network(tmp_path, body, input_dims, blocks)
    return [f"{d.span.line}:{d.span.col}: {d.message}" + "".join(f" | hint: {h}" for h in d.hints)
            for d in caught.value.diagnostics if d.severity == "error"]


def names(net) -> list[str]:
    return [n for n in net.analysis.order if n != net.input]


def shape(net, node: str):
    return net.analysis.shapes[node]


def reads(net, node: str) -> tuple[str, ...]:
    return layer_node(net.graph, node).inputs


# ----------------------------------------------------------------- repetition counts of zero


def test_repeating_a_block_zero_times_is_the_identity(tmp_path):
    blocks = "block basic(c) {\n    residual { conv(c, k=3, p=1) -> relu }\n}"
    net = network(tmp_path, "    conv(4, k=1) -> basic(4) * 0 -> relu", blocks=blocks)
    assert names(net) == ["conv1", "relu1"] and reads(net, "relu1") == ("conv1",)


def test_zero_copies_inside_a_labelled_chain_keep_its_numbering(tmp_path):
    # as nn.Sequential(conv, *[block] * 0, relu): features.0, features.1
    net = network(tmp_path, "    features: conv(4, k=1) -> relu * 0 -> conv(2, k=1) * 2 -> relu")
    assert names(net) == ["features.0", "features.1", "features.2", "features.3"]


def test_a_labelled_repetition_of_zero_names_nothing(tmp_path):
    net = network(tmp_path, "    layer1: conv(4, k=1) * 0\n    head: conv(2, k=1)")
    assert names(net) == ["head"] and reads(net, "head") == ("x",)


def test_a_count_from_a_parameter_may_be_zero(tmp_path):
    blocks = "block stack(n) {\n    conv(4, k=3, p=1) * n\n}"
    net = network(tmp_path, "    stack(0) -> stack(2)", blocks=blocks)
    assert names(net) == ["stack2.conv1.0", "stack2.conv1.1"]


def test_an_unknown_layer_repeated_zero_times_is_still_an_error(tmp_path):
    assert errors(tmp_path, "    rleu * 0") == ["4:5: unknown layer or block 'rleu' | hint: did you mean 'relu'?"]


def test_a_negative_count_is_an_error(tmp_path):
    assert errors(tmp_path, "    relu * (1 - 2)") == ["4:13: a repetition count is an integer ≥ 0, got -1"]


# ----------------------------------------------------------------- broadcasting add and mul


def test_mul_broadcasts_a_per_channel_tensor_over_the_map(tmp_path):
    net = network(tmp_path, "    s = x -> global_avgpool\n    mul(x, s)")
    assert shape(net, "global_avgpool1") == (4, 1, 1) and shape(net, "mul1") == (4, 8, 8)


def test_broadcasting_follows_numpy_from_the_last_axis(tmp_path):
    net = network(tmp_path, "    s = x -> flatten -> fc(3)\n    add(x, s)", input_dims="T=5, 3")
    assert shape(net, "add1") == (5, 3)


def test_shapes_that_do_not_broadcast_are_named_both(tmp_path):
    found = errors(tmp_path, "    s = x -> global_avgpool -> conv(3, k=1)\n    mul(x, s)")
    assert found == ["5:5: mul 'mul1' needs shapes that broadcast, got [4, 8, 8] and [3, 1, 1] "
                     "(channels 4 and 3 differ, and neither is 1)"]


def test_a_residual_block_still_needs_equal_shapes(tmp_path):
    found = errors(tmp_path, "    residual { global_avgpool }")
    assert found == ["4:5: add 'add1' closes a residual whose body gives [4, 1, 1] but whose shortcut gives "
                     "[4, 8, 8] | hint: the body ends at 1×1: to scale or shift each channel, use mul(a, s) or "
                     "add(a, s) outside a residual block (they broadcast)"]


@pytest.mark.parametrize("shortcut, body, expected", [
    ("4, 56, 56", "conv(8, k=3, s=2, p=1, round=floor)", "conv(8, k=1, s=2, round=floor, bias=false)"),
    ("4, 7, 7", "conv(8, k=3, s=2, p=1)", "conv(8, k=1, s=2, bias=false)"),
    ("4, 8, 16", "conv(8, k=1, s=[2, 4], round=floor)", "conv(8, k=1, s=[2, 4], round=floor, bias=false)"),
    ("4, 8, 8", "conv(8, k=1)", "conv(8, k=1, bias=false)"),
])
def test_the_suggested_projection_gives_the_bodys_size(tmp_path, shortcut, body, expected):
    found = errors(tmp_path, f"    residual {{ {body} }}", input_dims=shortcut)
    assert found[0].endswith(f"hint: add a projection shortcut: shortcut {{ {expected} -> batchnorm }}")
    # written as suggested, the residual checks: the closing add has the body's shape
    net = network(tmp_path, f"    residual {{ {body} }} shortcut {{ {expected} }}", input_dims=shortcut)
    assert shape(net, "add1") == shape(net, "conv1")

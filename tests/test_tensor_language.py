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


# ----------------------------------------------------------------- blocks that take tensors

UP = ("block up(c, skip) {\n"
      "    concat(skip, in -> upconv(c, k=2, s=2)) -> conv(c, k=3, p=1) -> relu\n"
      "}")
ENCODER = ("    e1 = x -> conv(8, k=3, p=1) -> relu\n"
           "    e2 = e1 -> maxpool(k=2) -> conv(16, k=3, p=1)\n")


def test_a_block_reads_the_tensor_it_is_given(tmp_path):
    net = network(tmp_path, ENCODER + "    e2 -> up(8, e1)", blocks=UP)
    assert reads(net, "up1.concat1") == ("relu1", "up1.upconv1")
    assert reads(net, "up1.upconv1") == ("conv2",) and shape(net, "up1.relu1") == (8, 8, 8)


def test_tensor_arguments_may_be_given_by_name_and_passed_on(tmp_path):
    blocks = UP + "\nblock twice(c, s1, s2) {\n    up(c, skip=s1) -> up(c, s2)\n}"
    net = network(tmp_path, ENCODER + "    e3 = e2 -> maxpool(k=2)\n    e3 -> twice(8, e2, e1)", blocks=blocks)
    assert reads(net, "twice1.up1.concat1")[0] == "conv2" and reads(net, "twice1.up2.concat1")[0] == "relu1"


def test_a_number_for_a_tensor_parameter_is_an_error_at_the_argument(tmp_path):
    found = errors(tmp_path, ENCODER + "    e2 -> up(8, 16)", blocks=UP)
    assert found == ["8:17: block 'up' takes a tensor for 'skip' (its body reads it as one at line 2), but 16 is "
                     "not a tensor | hint: pass a named tensor: t = ... -> ..., then up(..., t)"]


def test_an_unknown_name_for_a_tensor_parameter_suggests_a_tensor(tmp_path):
    found = errors(tmp_path, ENCODER + "    e2 -> up(8, e11)", blocks=UP)
    assert found == ["8:17: block 'up' takes a tensor for 'skip' (its body reads it as one at line 2), but 'e11' "
                     "is no tensor here | hint: did you mean 'e1'?"]


def test_a_tensor_for_a_number_parameter_is_an_error_at_the_argument(tmp_path):
    found = errors(tmp_path, ENCODER + "    e2 -> up(e1, e1)", blocks=UP)
    assert found == ["8:14: block 'up' takes a number for 'c', but 'e1' is a tensor | hint: a parameter takes "
                     "tensors when the body joins it (add, mul, concat, crop) or starts a chain from it: c -> ..."]


def test_a_tensor_where_a_layer_takes_a_number_is_named_as_a_tensor(tmp_path):
    found = errors(tmp_path, "    e = x -> relu\n    conv(e, k=1)")
    assert found == ["5:10: 'e' is a tensor, but conv's argument 'filters' takes a positive integer | "
                     "hint: tensors are joined (add, mul, concat) or start chains: e -> ..."]


def test_a_chain_is_no_argument_of_a_layer_that_reads_one_tensor(tmp_path):
    found = errors(tmp_path, "    conv(x -> relu, k=1)")
    assert found[0].startswith("4:10: a chain is an argument only of the layers that read tensors")


# ----------------------------------------------------------------- pieces and crops


def test_chunk_names_its_pieces_in_order(tmp_path):
    net = network(tmp_path, "    a, b = x -> conv(6, k=1) -> chunk(2)\n    concat(b, a)")
    assert reads(net, "concat1") == ("chunk1.1", "chunk1.0") and shape(net, "chunk1.0") == (3, 8, 8)


def test_split_sizes_must_add_up_to_the_channels(tmp_path):
    found = errors(tmp_path, "    a, b = x -> split([1, 2])\n    concat(a, b)")
    assert found == ["4:17: split 'split1.0' sizes 1 + 2 = 3, but the input has 4 channels | "
                     "hint: the sizes must add up to 4"]


def test_chunk_into_unequal_pieces_is_an_error(tmp_path):
    found = errors(tmp_path, "    a, b, c = x -> chunk(3)\n    concat(a, b, c)")
    assert found == ["4:20: chunk 'chunk1.0' cannot cut 4 channels into 3 equal pieces (4/3 is not whole) | "
                     "hint: split([...]) takes sizes that add up to 4"]


def test_as_many_names_as_pieces(tmp_path):
    found = errors(tmp_path, "    a, b, c = x -> chunk(2)\n    concat(a, b)")
    assert found == ["4:5: chunk gives 2 tensors, but 3 names are given (a, b, c) | hint: name each piece once, "
                     "in order"]


def test_pieces_are_named_not_chained(tmp_path):
    found = errors(tmp_path, "    x -> chunk(2) -> relu")
    assert found == ["4:10: chunk gives several tensors; name each of them | hint: e.g. a, b = x -> chunk(...), "
                     "then a and b start chains or are joined"]


def test_several_names_need_a_chain_that_gives_several(tmp_path):
    found = errors(tmp_path, "    a, b = x -> relu\n    concat(a, b)")
    assert found == ["4:17: a, b = ... names several tensors, so the chain must end in a layer that gives several | "
                     "hint: end it in chunk(n) (equal pieces) or split([sizes])"]


def test_after_pieces_a_chain_starts_from_one(tmp_path):
    found = errors(tmp_path, "    a, b = x -> chunk(2)\n    relu")
    assert found == ["5:5: this chain has no tensor to start from: the statement before gives the pieces a, b | "
                     "hint: start it from one of them: a -> ..."]


def test_crop_takes_the_size_of_like(tmp_path):
    net = network(tmp_path, "    u = x -> conv(2, k=3)\n    c = x -> crop(like=u)\n    crop(x, like=u) -> add(c)")
    assert shape(net, "crop1") == (4, 6, 6) and reads(net, "crop2") == ("x", "conv1")


def test_crop_to_a_larger_size_is_an_error(tmp_path):
    found = errors(tmp_path, "    u = x -> upsample\n    x -> crop(like=u)")
    assert found == ["5:10: crop 'crop1' cannot crop 8×8 to 16×16: the size it crops to is larger ([4, 8, 8], like "
                     "[4, 16, 16]) | hint: crop the larger tensor to the smaller one"]


def test_crop_needs_like(tmp_path):
    found = errors(tmp_path, "    x -> crop")
    assert found == ["4:10: crop needs like=<tensor>, the tensor whose height and width it crops to | "
                     "hint: e.g. e1 -> crop(like=u), or crop(e1, like=u)"]


# ----------------------------------------------------------------- unknown layers: close, and not misleading


@pytest.mark.parametrize("written, hint", [
    ("rleu", "did you mean 'relu'?"),
    ("maxpol", "did you mean 'maxpool'?"),
    ("global_avg_pool", "did you mean 'global_avgpool'?"),
    ("ReLU", "did you mean 'relu'? (names are lower case)"),
    ("Conv2d", "did you mean 'conv'? ('Conv2d' elsewhere is 'conv' here)"),
    ("linear", "did you mean 'fc'? ('linear' elsewhere is 'fc' here)"),
    ("swish2", None),  # one letter from no layer: nothing is offered
    ("mish", "'mish' is a function of other frameworks, not a layer of this language; the activation layers here are "),
])
def test_an_unknown_layer_is_answered_without_misleading(tmp_path, written, hint):
    found = errors(tmp_path, f"    conv(4, k=1) -> {written}")
    message = f"4:21: unknown layer or block '{written}'"
    if hint is None:
        assert found == [message]
    else:
        assert found[0].startswith(f"{message} | hint: {hint}")


def test_a_function_of_other_frameworks_is_not_offered_a_different_one(tmp_path):
    # gelu and elu are one edit from relu: a suggestion of relu would offer another function
    for written in ("mish", "selu", "celu", "softsign"):
        (found,) = errors(tmp_path, f"    {written}")
        assert "did you mean" not in found and "relu, sigmoid, tanh" in found


def test_a_body_does_not_end_in_pieces(tmp_path):
    found = errors(tmp_path, "    a, b = x -> chunk(2)")
    assert found == ["4:5: the last statement gives the pieces a, b, but a body ends in one tensor | "
                     "hint: join them, e.g. concat(a, b)"]


def test_a_per_channel_tensor_of_other_channels_is_told_to_match_them(tmp_path):
    found = errors(tmp_path, "    s = x -> global_avgpool -> conv(3, k=1)\n    add(x, s)")
    assert found == ["5:5: add 'add1' needs shapes that broadcast, got [4, 8, 8] and [3, 1, 1] (channels 4 and 3 "
                     "differ, and neither is 1) | hint: a [C, 1, 1] tensor broadcasts over a map of the same C: "
                     "give it 4 channels, e.g. -> conv(4, k=1)"]


def test_tensor_parameters_are_found_inside_residual_and_concat_bodies(tmp_path):
    blocks = ("block gate(c, g, ref) {\n"
              "    residual { conv(c, k=1) -> mul(g) }\n"
              "    concat {\n        branch { crop(like=ref) }\n        branch { ref -> relu -> crop(like=ref) }\n    }\n"
              "}")
    net = network(tmp_path, "    g = x -> global_avgpool\n    r = x -> conv(4, k=3)\n    x -> gate(4, g, r)",
                  blocks=blocks)
    assert reads(net, "gate1.mul1") == ("gate1.conv1", "global_avgpool1")
    assert reads(net, "gate1.branch2.relu1") == ("conv1",) and shape(net, "gate1.concat1") == (8, 6, 6)


def test_a_chain_from_a_tensor_may_be_a_tensor_argument(tmp_path):
    net = network(tmp_path, ENCODER + "    e2 -> up(8, e1 -> maxpool(k=2) -> upsample)", blocks=UP)
    assert reads(net, "up1.concat1") == ("upsample1", "up1.upconv1") and reads(net, "maxpool2") == ("relu1",)


def test_a_chain_for_a_number_parameter_is_an_error_at_the_argument(tmp_path):
    found = errors(tmp_path, ENCODER + "    e2 -> up(e1 -> relu, e1)", blocks=UP)
    assert found == ["8:14: block 'up' takes a number for 'c', but a chain gives a tensor"]

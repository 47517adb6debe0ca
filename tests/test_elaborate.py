"""Elaboration: dotted layer names, block arguments, named tensors and `use`.

The expected names are PyTorch's `state_dict` prefixes for the same model
written with nn.Sequential and submodules, as docs/language.md describes.
"""

from __future__ import annotations

import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import CompileError
from i2dl_dsl.elaborate import layer_node
from nets import BASIC_BLOCK


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def network(tmp_path, body: str, input_dims: str = "4, 8, 8", blocks: str = "", name: str = "net"):
    path = write(tmp_path / f"{name}.net", f"{blocks}\nnetwork N {{\n    input x[{input_dims}]\n{body}\n}}\n")
    return check(path)


def names(net) -> list[str]:
    return [n for n in net.analysis.order if n != net.input]


def kinds(net) -> dict[str, str]:
    return {n: layer_node(net.graph, n).layer.kind for n in names(net)}


def reads(net, node: str) -> tuple[str, ...]:
    return layer_node(net.graph, node).inputs


# ----------------------------------------------------------------- labels


def test_label_names_a_single_layer(tmp_path):
    assert names(network(tmp_path, "    head: conv(2, k=1)")) == ["head"]


def test_labelled_chain_numbers_like_sequential(tmp_path):
    net = network(tmp_path, "    stem: conv(8, k=3, p=1) -> batchnorm -> relu")
    assert kinds(net) == {"stem.0": "conv", "stem.1": "batchnorm", "stem.2": "relu"}


def test_labelled_chain_over_several_lines(tmp_path):
    net = network(tmp_path, "    stem: conv(8, k=3, p=1)\n        -> batchnorm ->\n        relu")
    assert names(net) == ["stem.0", "stem.1", "stem.2"]


def test_labelled_chain_starting_from_a_tensor_numbers_only_layers(tmp_path):
    net = network(tmp_path, "    t = x -> conv(2, k=1)\n    tail: t -> relu -> conv(3, k=1)")
    assert names(net)[-2:] == ["tail.0", "tail.1"] and reads(net, "tail.0") == ("conv1",)


def test_parameters_are_named_after_the_layer(tmp_path):
    net = network(tmp_path, "    stem: conv(8, k=3, p=1) -> batchnorm")
    a = net.analysis
    assert {f"{n}.{t}" for n in names(net) for t in (*a.params[n], *a.buffers[n])} == {
        "stem.0.weight", "stem.0.bias", "stem.1.weight", "stem.1.bias", "stem.1.running_mean", "stem.1.running_var"}


# ----------------------------------------------------------------- automatic names


def test_unlabelled_layers_count_by_kind(tmp_path):
    net = network(tmp_path, "    conv(8, k=3, p=1) -> batchnorm -> relu\n    conv(8, k=3, p=1) -> batchnorm -> relu\n"
                  "    flatten -> fc(10) -> fc(2)")
    assert names(net) == ["conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "flatten1", "fc1", "fc2"]


def test_automatic_names_skip_labels_already_taken(tmp_path):
    net = network(tmp_path, "    conv1: conv(2, k=1)\n    conv(2, k=1)")
    assert names(net) == ["conv1", "conv2"]


def test_unlabelled_block_calls_count_by_block_name(tmp_path):
    blocks = "block pair(c) {\n    conv(c, k=1) -> relu\n}"
    net = network(tmp_path, "    pair(4)\n    pair(6)", blocks=blocks)
    assert names(net) == ["pair1.conv1", "pair1.relu1", "pair2.conv1", "pair2.relu1"]


def test_counters_restart_inside_each_block(tmp_path):
    blocks = "block pair(c) {\n    conv(c, k=1) -> conv(c, k=1)\n}"
    net = network(tmp_path, "    conv(2, k=1)\n    inner: pair(4)\n    conv(2, k=1)", blocks=blocks)
    assert names(net) == ["conv1", "inner.conv1", "inner.conv2", "conv2"]


# ----------------------------------------------------------------- repetitions


BASIC = BASIC_BLOCK


def test_repeated_block_numbers_its_copies(tmp_path):
    net = network(tmp_path, "    layer1: basic(4) * 2", blocks=BASIC)
    assert names(net) == [f"layer1.{i}.{n}" for i in (0, 1) for n in (
        "conv1", "bn1", "relu1", "conv2", "bn2", "shortcut.conv1", "shortcut.bn1", "add1", "relu2")]


def test_repeated_block_in_a_labelled_chain_continues_its_numbering(tmp_path):
    net = network(tmp_path, "    layer2: basic(8, s=2) -> basic(8) * 2", blocks=BASIC)
    assert sorted({n.split(".")[1] for n in names(net)}) == ["0", "1", "2"]
    assert "layer2.2.conv1" in names(net) and "layer2.0.shortcut.conv1" in names(net)


def test_repeated_layer_numbers_its_copies(tmp_path):
    net = network(tmp_path, "    body: conv(4, k=3, p=1) * 3")
    assert names(net) == ["body.0", "body.1", "body.2"]
    assert reads(net, "body.2") == ("body.1",)


def test_unlabelled_repetition_takes_an_automatic_name(tmp_path):
    net = network(tmp_path, "    conv(4, k=1) * 2\n    conv(4, k=1)")
    assert names(net) == ["conv1.0", "conv1.1", "conv2"]


def test_repetition_count_from_a_block_parameter(tmp_path):
    blocks = "block stack(c, n) {\n    convs: conv(c, k=1) * n\n}"
    net = network(tmp_path, "    stack(3, 4)", blocks=blocks)
    assert names(net) == ["stack1.convs.0", "stack1.convs.1", "stack1.convs.2", "stack1.convs.3"]


# ----------------------------------------------------------------- residual and concat


def test_residual_body_belongs_to_the_enclosing_block(tmp_path):
    net = network(tmp_path, "    b: basic(4)", blocks=BASIC)
    add = "b.add1"
    assert reads(net, add) == ("b.shortcut.bn1", "b.bn2")
    assert reads(net, "b.conv1") == ("x",) and reads(net, "b.shortcut.conv1") == ("x",)


def test_identity_residual_adds_the_block_input(tmp_path):
    net = network(tmp_path, "    conv(4, k=1)\n    residual { conv(4, k=3, p=1) -> relu }")
    assert names(net) == ["conv1", "conv2", "relu1", "add1"]
    assert reads(net, "add1") == ("conv1", "relu1")


def test_labelled_residual_is_a_group(tmp_path):
    net = network(tmp_path, "    res: residual { conv(4, k=3, p=1) } shortcut { conv(4, k=1) }")
    assert names(net) == ["res.conv1", "res.shortcut.conv1", "res.add1"]


def test_concat_branches_are_numbered(tmp_path):
    net = network(tmp_path, """    mix: concat {
        branch { conv(2, k=1) -> relu }
        branch { conv(3, k=1) -> relu -> conv(4, k=3, p=1) }
        branch { maxpool(k=3, s=1, p=1) -> conv(5, k=1) }
    }""")
    assert names(net) == ["mix.branch1.conv1", "mix.branch1.relu1", "mix.branch2.conv1", "mix.branch2.relu1",
                          "mix.branch2.conv2", "mix.branch3.maxpool1", "mix.branch3.conv1", "mix.concat1"]
    assert reads(net, "mix.concat1") == ("mix.branch1.relu1", "mix.branch2.conv2", "mix.branch3.conv1")
    assert net.analysis.shapes["mix.concat1"] == (2 + 4 + 5, 8, 8)
    assert {reads(net, f"mix.branch{i}.{first}") for i, first in ((1, "conv1"), (2, "conv1"), (3, "maxpool1"))} \
        == {("x",)}


def test_block_with_concat_inside_is_named_after_the_call(tmp_path):
    blocks = """block inception(c1, c3) {
    concat {
        branch { conv(c1, k=1) }
        branch { conv(c3, k=3, p=1) }
    }
}"""
    net = network(tmp_path, "    inception(2, 3)\n    inception(1, 1)", blocks=blocks)
    assert names(net) == ["inception1.branch1.conv1", "inception1.branch2.conv1", "inception1.concat1",
                          "inception2.branch1.conv1", "inception2.branch2.conv1", "inception2.concat1"]


# ----------------------------------------------------------------- block arguments


def channels(net) -> list[int]:
    return [net.analysis.shapes[n][0] for n in names(net)]


def test_block_arithmetic(tmp_path):
    blocks = "block b(c) {\n    conv(c*4, k=1) -> conv(c/2, k=1) -> conv(c//3, k=1) -> conv((c + 1)*2 - 3, k=1)\n}"
    assert channels(network(tmp_path, "    b(10)", blocks=blocks)) == [40, 5, 3, 19]


def test_block_division_must_be_whole(tmp_path):
    blocks = "block b(c) {\n    conv(c/4, k=1)\n}"
    with pytest.raises(CompileError, match="not a whole number"):
        network(tmp_path, "    b(10)", blocks=blocks)


def test_block_defaults_and_keywords(tmp_path):
    blocks = "block b(c, k=3, wide=c*2) {\n    conv(wide, k=k, p=k//2)\n}"
    net = network(tmp_path, "    b(2)\n    b(2, k=1)\n    b(2, wide=5)\n    b(wide=7, c=1)", blocks=blocks)
    assert channels(net) == [4, 4, 5, 7]
    assert [net.analysis.params[n]["weight"][2:] for n in names(net)] == [(3, 3), (1, 1), (3, 3), (3, 3)]


def test_block_argument_passes_through_to_a_nested_block(tmp_path):
    blocks = "block inner(c) {\n    conv(c, k=1)\n}\nblock outer(c) {\n    inner(c + 1) -> inner(c*2)\n}"
    net = network(tmp_path, "    outer(3)", blocks=blocks)
    assert names(net) == ["outer1.inner1.conv1", "outer1.inner2.conv1"] and channels(net) == [4, 6]


def test_block_body_starts_from_in(tmp_path):
    blocks = "block side(c) {\n    a = in -> conv(c, k=1)\n    b = in -> conv(c, k=3, p=1)\n    add(a, b)\n}"
    net = network(tmp_path, "    conv(4, k=1)\n    side(4)", blocks=blocks)
    assert reads(net, "side1.conv1") == ("conv1",) and reads(net, "side1.conv2") == ("conv1",)
    assert reads(net, "side1.add1") == ("side1.conv1", "side1.conv2")


# ----------------------------------------------------------------- named tensors


def test_named_tensors_build_a_dag(tmp_path):
    net = network(tmp_path, """    e1 = x -> conv(4, k=3, p=same) -> relu
    e2 = e1 -> maxpool(k=2, s=2) -> conv(8, k=3, p=same) -> relu
    u  = e2 -> upconv(4, k=2, s=2)
    y  = concat(u, e1) -> conv(3, k=1)""")
    assert reads(net, "concat1") == ("upconv1", "relu1")
    assert net.analysis.shapes["concat1"] == (8, 8, 8)
    assert net.output == "conv3"


def test_add_in_a_chain_joins_the_chain_with_the_named_tensor(tmp_path):
    net = network(tmp_path, "    e1 = x -> conv(4, k=1)\n    e1 -> conv(4, k=3, p=1) -> relu -> add(e1)")
    assert reads(net, "add1") == ("relu1", "conv1")


def test_concat_in_a_chain_puts_the_chain_first(tmp_path):
    net = network(tmp_path, "    a = x -> conv(2, k=1)\n    b = x -> conv(3, k=1)\n    a -> relu -> concat(b, x)")
    assert reads(net, "concat1") == ("relu1", "conv2", "x")
    assert net.analysis.shapes["concat1"] == (2 + 3 + 4, 8, 8)


def test_statement_without_source_reads_the_previous_statement(tmp_path):
    net = network(tmp_path, "    a = x -> conv(2, k=1)\n    b = x -> conv(3, k=1)\n    relu")
    assert reads(net, "relu1") == ("conv2",)


def test_output_is_the_last_statement(tmp_path):
    net = network(tmp_path, "    a = x -> conv(2, k=1)\n    b = a -> relu\n    a -> conv(5, k=1)")
    assert net.output == "conv2" and net.analysis.shapes[net.output] == (5, 8, 8)


# ----------------------------------------------------------------- use


LIBRARY = """block pair(c) {
    conv(c, k=3, p=1) -> relu
}
"""


def test_use_imports_blocks_relative_to_the_importing_file(tmp_path, monkeypatch):
    write(tmp_path / "models" / "lib" / "blocks.net", LIBRARY)
    main = write(tmp_path / "models" / "main.net",
                 'use "lib/blocks.net"\nnetwork N {\n    input x[3, 8, 8]\n    p: pair(5)\n}\n')
    monkeypatch.chdir(tmp_path)  # not the importing file's folder
    net = check(main)
    assert names(net) == ["p.conv1", "p.relu1"] and net.analysis.shapes["p.relu1"] == (5, 8, 8)


def test_use_in_an_imported_file_is_relative_to_that_file(tmp_path, monkeypatch):
    write(tmp_path / "shared" / "base.net", LIBRARY)
    write(tmp_path / "lib" / "mid.net", 'use "../shared/base.net"\nblock quad(c) {\n    pair(c) -> pair(c*2)\n}\n')
    main = write(tmp_path / "main.net", 'use "lib/mid.net"\nnetwork N {\n    input x[3, 8, 8]\n    quad(2)\n}\n')
    monkeypatch.chdir(tmp_path / "lib")
    net = check(main)
    assert names(net) == ["quad1.pair1.conv1", "quad1.pair1.relu1", "quad1.pair2.conv1", "quad1.pair2.relu1"]


def test_use_of_a_missing_file_is_an_error(tmp_path):
    main = write(tmp_path / "main.net", 'use "nowhere.net"\nnetwork N {\n    input x[3, 8, 8]\n    relu\n}\n')
    with pytest.raises(CompileError):
        check(main)

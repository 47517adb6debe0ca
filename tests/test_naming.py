"""Labels that spell any `state_dict` name: numbers, dots, keywords,
hyphens, a numbering that starts where the file says, labels inside concat
branches and shortcuts, and a label beside a tensor name."""

from __future__ import annotations

import pytest

from i2dl_dsl.checker import check
from i2dl_dsl.diagnostics import CompileError
from i2dl_dsl.elaborate import layer_node


def network(tmp_path, body: str, blocks: str = "", dims: str = "4, 8, 8"):
    path = tmp_path / "net.net"
    path.write_text(f"{blocks}\nnetwork N {{\n    input x[{dims}]\n{body}\n}}\n")
    return check(path)


def names(net) -> list[str]:
    return [n for n in net.analysis.order if n != net.input]


def errors(tmp_path, body: str, blocks: str = "") -> str:
    with pytest.raises(CompileError) as exc:
        network(tmp_path, body, blocks)
    return "\n".join(d.message for d in exc.value.diagnostics)


def test_numeric_and_dotted_labels(tmp_path):
    net = network(tmp_path, "    features.0.0: conv(8, k=3, p=1)\n    features.0.1: batchnorm\n"
                            "    0: relu\n    features.1: conv(8, k=1) -> batchnorm")
    assert names(net) == ["features.0.0", "features.0.1", "0", "features.1.0", "features.1.1"]


def test_keywords_and_hyphens_are_labels(tmp_path):
    net = network(tmp_path, "    block: conv(8, k=1)\n    input: relu\n    block1-0: conv(8, k=1)")
    assert names(net) == ["block", "input", "block1-0"]


def test_numbering_starts_where_the_label_says(tmp_path):
    blocks = "block unit(c) {\n    norm1: batchnorm\n    conv1: conv(c, k=1)\n}\n"
    net = network(tmp_path, "    denselayer{1}: unit(8) * 3\n    block2-{0}: relu -> relu", blocks)
    assert names(net) == ["denselayer1.norm1", "denselayer1.conv1", "denselayer2.norm1", "denselayer2.conv1",
                          "denselayer3.norm1", "denselayer3.conv1", "block2-0", "block2-1"]


def test_a_numbering_label_on_one_layer_names_it_with_the_first_number(tmp_path):
    assert names(network(tmp_path, "    conv{5}: conv(8, k=1)")) == ["conv5"]


def test_labels_inside_branches_name_layers_of_the_enclosing_block(tmp_path):
    blocks = """block mixed(c) {
    concat {
        branch { branch1x1: conv(c, k=1) }
        branch {
            branch3x3_1: conv(c, k=1)
            branch3x3_2: conv(c, k=3, p=1)
        }
        branch {
            avgpool(k=3, s=1, p=1)
            branch_pool: conv(c, k=1)
        }
    }
}
"""
    net = network(tmp_path, "    Mixed_5b: mixed(4)", blocks)
    assert names(net) == ["Mixed_5b.branch1x1", "Mixed_5b.branch3x3_1", "Mixed_5b.branch3x3_2",
                          "Mixed_5b.branch1.avgpool1", "Mixed_5b.branch_pool", "Mixed_5b.concat1"]


def test_nested_concat_branches_name_layers_of_the_block(tmp_path):
    blocks = """block mixed(c) {
    concat {
        branch { branch1x1: conv(c, k=1) }
        branch {
            branch3x3_1: conv(c, k=1)
            concat {
                branch { branch3x3_2a: conv(c, k=[1, 3], p=[0, 1]) }
                branch { branch3x3_2b: conv(c, k=[3, 1], p=[1, 0]) }
            }
        }
    }
}
"""
    net = network(tmp_path, "    Mixed_7b: mixed(4)", blocks)
    assert [n for n in names(net) if "concat" not in n] == [
        "Mixed_7b.branch1x1", "Mixed_7b.branch3x3_1", "Mixed_7b.branch3x3_2a", "Mixed_7b.branch3x3_2b"]


def test_a_labelled_shortcut_is_named_as_the_file_wants(tmp_path):
    blocks = """block basic(c, s=1) {
    residual {
        conv1: conv(c, k=3, s=s, p=1, bias=false)
        bn1: batchnorm
    } shortcut {
        downsample: conv(c, k=1, s=s, bias=false) -> batchnorm
    }
    relu
}
"""
    net = network(tmp_path, "    layer2: basic(8, s=2) * 2", blocks, dims="4, 9, 9")
    first = [n for n in names(net) if n.startswith("layer2.0.")]
    assert first == ["layer2.0.conv1", "layer2.0.bn1", "layer2.0.downsample.0", "layer2.0.downsample.1",
                     "layer2.0.add1", "layer2.0.relu1"]
    assert layer_node(net.graph, "layer2.0.downsample.0").inputs == (layer_node(net.graph, "layer2.0.conv1").inputs)


def test_unlabelled_branches_keep_their_automatic_names(tmp_path):
    net = network(tmp_path, "    concat {\n        branch { conv(2, k=1) }\n        branch { relu }\n    }")
    assert names(net) == ["branch1.conv1", "branch2.relu1", "concat1"]


def test_a_label_and_a_tensor_name_on_one_statement(tmp_path):
    net = network(tmp_path, "    t = stem: conv(8, k=1) -> relu\n    y = t -> conv(8, k=1)\n"
                            "    head: add(y, t)")
    assert names(net) == ["stem.0", "stem.1", "conv1", "head"]
    assert layer_node(net.graph, "head").inputs == ("conv1", "stem.1")


# ----------------------------------------------------------------- mistakes


def test_duplicate_dotted_label(tmp_path):
    message = errors(tmp_path, "    features.0: conv(8, k=1)\n    features.0: relu")
    assert "duplicate label 'features.0'" in message


def test_a_dotted_label_that_repeats_a_chain_layer(tmp_path):
    message = errors(tmp_path, "    features: conv(8, k=1) -> relu\n    features.1: relu")
    assert "two layers are named 'features.1'" in message


def test_a_label_that_takes_a_name_a_numbering_made(tmp_path):
    message = errors(tmp_path, "    denselayer{1}: relu * 3\n    denselayer2: relu")
    assert "duplicate label 'denselayer2'" in message


def test_a_branch_label_that_clashes_with_the_enclosing_block(tmp_path):
    message = errors(tmp_path, "    a: conv(4, k=1)\n    concat {\n        branch { a: relu }\n"
                               "        branch { relu }\n    }")
    assert "duplicate label 'a'" in message


@pytest.mark.parametrize(("label", "says"), [
    ("features..0", "empty part between dots"),
    ("features.", "empty part between dots"),
    ("layer{1}{2}", "marks the numbering twice"),
    ("layer{x}", "not a numbering mark"),
    ("layer{1", "not a numbering mark"),
])
def test_malformed_labels(tmp_path, label, says):
    assert says in errors(tmp_path, f"    {label}: conv(4, k=1)")


def test_a_keyword_still_cannot_name_a_tensor(tmp_path):
    assert "'block' is a keyword, not a name" in errors(tmp_path, "    block = x -> relu")

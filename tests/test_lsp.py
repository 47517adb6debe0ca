"""The language server, driven over stdio by a real protocol client
(tests/lsp_client.py) as an editor drives it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pygls")

from i2dl_dsl.layers import REGISTRY  # noqa: E402
from lsp_client import ROOT, LspClient  # noqa: E402

BROKEN = """\
network Net {
    input x[3, 32, 32]
    conv(16, k=3, p=1) -> rleu
    maxpool(k=2)
    conv(32, k=3, p=1, bogus=2) -> relu
    flatten -> fc(10)
}
"""
FIXED = BROKEN.replace("rleu", "relu").replace(", bogus=2", "")

BLOCKS = """\
block pair(c) {
    conv(c, k=3, p=1) -> relu
}
"""
USES = """\
use "lib.net"

network Net {
    input x[3, 32, 32]
    s = x -> pair(8) -> maxpool(k=2)
    e1 = s -> pair(16)
    flatten -> fc(10)
}
"""


@pytest.fixture(scope="module")
def client():
    c = LspClient()
    c.initialize()
    yield c
    c.close()


def _position(text: str, needle: str, offset: int = 0) -> dict:
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return {"line": line, "character": index - (text.rfind("\n", 0, index) + 1)}


def _at(path: Path, text: str, needle: str, offset: int = 0) -> dict:
    return {"textDocument": {"uri": path.as_uri()}, "position": _position(text, needle, offset)}


def test_two_mistakes_two_diagnostics_then_cleared(client, tmp_path):
    path = tmp_path / "net.net"
    path.write_text(BROKEN)
    client.open(path, BROKEN, version=1)
    published = client.diagnostics(path, version=1)["diagnostics"]
    assert sorted(d["range"]["start"]["line"] for d in published) == [2, 4], published
    assert all(d["severity"] == 1 for d in published)
    misspelt = next(d for d in published if d["range"]["start"]["line"] == 2)
    assert "rleu" in misspelt["message"]
    assert any("relu" in r["message"] for r in misspelt["relatedInformation"])
    client.change(path, FIXED, version=2)
    assert client.diagnostics(path, version=2)["diagnostics"] == []


def test_did_you_mean_is_a_quick_fix(client, tmp_path):
    path = tmp_path / "fix.net"
    client.open(path, BROKEN, version=1)
    published = client.diagnostics(path, version=1)["diagnostics"]
    misspelt = next(d for d in published if "rleu" in d["message"])
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": path.as_uri()}, "range": misspelt["range"],
        "context": {"diagnostics": [misspelt]}})
    edit = actions[0]["edit"]["changes"][path.as_uri()][0]
    assert edit["newText"] == "relu"
    assert edit["range"]["start"] == _position(BROKEN, "rleu")


def test_hover_on_a_conv_gives_its_shape_and_formula(client, tmp_path):
    path = tmp_path / "hover.net"
    client.open(path, FIXED, version=1)
    client.diagnostics(path, version=1)
    hover = client.request("textDocument/hover", _at(path, FIXED, "conv(32", 1))
    text = hover["contents"]["value"]
    assert "[32, 16, 16]" in text, text
    assert "(16 - 3 + 2·1)/1 + 1 = 16" in text
    assert f"params {32 * 16 * 9 + 32:,}" in text


def test_completion_after_an_arrow_offers_the_layer_kinds(client, tmp_path):
    path = tmp_path / "complete.net"
    text = FIXED.replace("flatten -> fc(10)", "flatten -> ")
    client.open(path, text, version=1)
    client.diagnostics(path, version=1)
    result = client.request("textDocument/completion", _at(path, text, "flatten -> ", len("flatten -> ")))
    labels = {item["label"] for item in result["items"]}
    assert set(REGISTRY) <= labels
    commented = text.replace("flatten -> ", "flatten  # then -> ")
    client.change(path, commented, version=2)
    client.diagnostics(path, version=2)
    inside = client.request("textDocument/completion", _at(path, commented, "# then -> ", len("# then -> ")))
    assert inside["items"] == []


def test_completion_inside_a_call_offers_its_arguments(client, tmp_path):
    path = tmp_path / "args.net"
    text = FIXED.replace("maxpool(k=2)", "maxpool(k=2, ")
    client.open(path, text, version=1)
    client.diagnostics(path, version=1)
    result = client.request("textDocument/completion", _at(path, text, "maxpool(k=2, ", len("maxpool(k=2, ")))
    labels = {item["label"] for item in result["items"]}
    assert {f"{p.name}=" for p in REGISTRY["maxpool"].signature} == labels


def test_definition_of_a_block_call_is_the_block(client, tmp_path):
    (tmp_path / "lib.net").write_text(BLOCKS)
    path = tmp_path / "main.net"
    client.open(path, USES, version=1)
    assert client.diagnostics(path, version=1)["diagnostics"] == []
    location = client.request("textDocument/definition", _at(path, USES, "pair(16)"))
    assert location["uri"] == (tmp_path / "lib.net").resolve().as_uri()
    assert location["range"]["start"]["line"] == 0
    tensor = client.request("textDocument/definition", _at(path, USES, "s -> pair"))
    assert tensor["range"]["start"] == {"line": 4, "character": 4}
    use = client.request("textDocument/definition", _at(path, USES, "lib.net"))
    assert use["uri"] == (tmp_path / "lib.net").resolve().as_uri()


def test_a_file_that_uses_another_is_checked_again_when_it_changes(client, tmp_path):
    library = tmp_path / "lib.net"
    library.write_text(BLOCKS)
    path = tmp_path / "main.net"
    client.open(path, USES, version=1)
    assert client.diagnostics(path, version=1)["diagnostics"] == []
    client.open(library, BLOCKS, version=1)
    assert client.diagnostics(library, version=1)["diagnostics"] == []  # blocks alone: no network needed
    client.change(library, BLOCKS.replace("relu", "rleu"), version=2)
    uri = path.resolve().as_uri()
    again = client.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == uri and p["diagnostics"])
    again = again["diagnostics"]
    # shown where main.net instantiates the block, the place in lib.net named in the message
    assert "lib.net:2:" in again[0]["message"] and "rleu" in again[0]["message"]
    assert again[0]["range"]["start"]["line"] == 4


def test_references_rename_symbols_and_inlay_hints(client, tmp_path):
    text = BLOCKS + "\n" + USES.replace('use "lib.net"\n', "")
    path = tmp_path / "all.net"
    client.open(path, text, version=1)
    assert client.diagnostics(path, version=1)["diagnostics"] == []
    refs = client.request("textDocument/references", {**_at(path, text, "pair(8)"),
                                                     "context": {"includeDeclaration": True}})
    assert sorted(r["range"]["start"]["line"] for r in refs) == [0, 7, 8]
    edit = client.request("textDocument/rename", {**_at(path, text, "pair(8)"), "newName": "twice"})
    assert len(edit["changes"][path.as_uri()]) == 3
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": path.as_uri()}})
    assert [s["name"] for s in symbols] == ["pair", "Net"]
    assert [c["name"] for c in symbols[1]["children"]] == ["x", "s", "e1"]
    hints = client.request("textDocument/inlayHint", {"textDocument": {"uri": path.as_uri()},
                                                      "range": {"start": {"line": 0, "character": 0},
                                                                "end": {"line": 99, "character": 0}}})
    shown = {h["position"]["line"]: h["label"] for h in hints}
    assert "[8, 16, 16]" in shown[7] and "[16, 16, 16]" in shown[8] and "[10]" in shown[9]


def test_formatting_returns_the_formatted_text(client, tmp_path):
    path = tmp_path / "fmt.net"
    text = "network N {\n  input x[3,8,8]\n  conv( 8,k=3,p=1 )->relu\n}\n"
    client.open(path, text, version=1)
    client.diagnostics(path, version=1)
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": path.as_uri()},
                                                       "options": {"tabSize": 4, "insertSpaces": True}})
    assert edits[0]["newText"] == "network N {\n    input x[3, 8, 8]\n    conv(8, k=3, p=1) -> relu\n}\n"


def test_the_zoo_opens_without_diagnostics(client):
    path = ROOT / "models" / "resnet50.net"
    text = path.read_text()
    client.open(path, text, version=7)
    assert client.diagnostics(path, version=7)["diagnostics"] == []
    # A label's totals: torchvision's resnet50 layer2 holds 1,219,584 parameters.
    hover = client.request("textDocument/hover", _at(path, text, "layer2:"))
    assert "params 1,219,584" in hover["contents"]["value"] and "[512, 28, 28]" in hover["contents"]["value"]


def test_several_tensors_named_at_once(client, tmp_path):
    text = ("network N {\n    input x[8, 8, 8]\n    a, b = x -> chunk(2)\n"
            "    y = concat(a -> relu, b) -> conv(4, k=1)\n}\n")
    path = tmp_path / "pieces.net"
    client.open(path, text, version=1)
    assert client.diagnostics(path, version=1)["diagnostics"] == []
    hover = client.request("textDocument/hover", _at(path, text, "b) ->"))
    assert "[4, 8, 8]" in hover["contents"]["value"]
    location = client.request("textDocument/definition", _at(path, text, "b) ->"))
    assert location["range"]["start"] == {"line": 2, "character": 7}
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": path.as_uri()}})
    assert [c["name"] for c in symbols[0]["children"]] == ["x", "a", "b", "y"]


def test_a_used_file_changed_on_disk_is_read_again(client, tmp_path):
    library = tmp_path / "lib.net"
    library.write_text(BLOCKS)
    path = tmp_path / "main.net"
    client.open(path, USES, version=1)
    assert client.diagnostics(path, version=1)["diagnostics"] == []
    library.write_text(BLOCKS.replace("pair(c)", "pair(c, c)"))  # two parameters named c
    client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": library.as_uri(), "type": 2}]})
    uri = path.resolve().as_uri()
    again = client.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == uri and p["diagnostics"])
    assert "two parameters named 'c'" in again["diagnostics"][0]["message"]

"""The TextMate grammar of .net files (editors/vscode/syntaxes/net.tmLanguage.json),
built from the language's own grammar: its reserved words are read from
grammars/net.lark, so a new keyword is highlighted once the file is
written again (`python -m i2dl_dsl.editor.textmate`; a test compares).

The rest is generic on purpose: names, calls, keyword arguments, labels,
named tensors, numbers, strings, operators and brackets, whatever layer or
block they name, so new layers and syntax need no change here. Anything
else is marked invalid, which a test holds the zoo free of.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .tokens import keywords

ROOT = Path(__file__).resolve().parents[2]
GRAMMAR_FILE = ROOT / "editors" / "vscode" / "syntaxes" / "net.tmLanguage.json"
SCOPE = "source.net"
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_CONSTANTS = ("true", "false")
_DEFINERS = ("network", "block")  # keywords followed by the name they define


def grammar() -> dict:
    """The grammar as a JSON-ready dict."""
    words = [w for w in keywords() if w not in _CONSTANTS]
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "i2dl net",
        "scopeName": SCOPE,
        "fileTypes": ["net"],
        "comment": "Written by i2dl_dsl/editor/textmate.py from grammars/net.lark; do not edit by hand.",
        "patterns": [{"include": f"#{rule}"} for rule in _REPOSITORY_ORDER],
        "repository": _repository(words),
    }


_REPOSITORY_ORDER = ("comment", "string", "definition", "keyword", "constant", "number", "label", "assignment",
                     "argument", "call", "name", "operator", "punctuation", "invalid")


def _repository(words: list[str]) -> dict:
    definers = "|".join(w for w in _DEFINERS if w in words)
    return {
        "comment": {"name": "comment.line.number-sign.net", "match": "#.*$"},
        "string": {"name": "string.quoted.double.net", "match": r'"[^"\n]*"?'},
        "definition": {"match": rf"\b({definers})\s+({NAME})",
                       "captures": {"1": {"name": "storage.type.net"}, "2": {"name": "entity.name.function.net"}}},
        "keyword": {"name": "keyword.control.net", "match": rf"\b({'|'.join(words)})\b"},
        "constant": {"name": "constant.language.net", "match": rf"\b({'|'.join(_CONSTANTS)})\b"},
        "number": {"name": "constant.numeric.net",
                   "match": r"(?:\b\d+\.\d*(?:[eE][+-]?\d+)?|\b\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?|\b\d+)"},
        "label": {"match": rf"^\s*({NAME})\s*(:)",
                  "captures": {"1": {"name": "entity.name.tag.label.net"}, "2": {"name": "punctuation.separator.net"}}},
        "assignment": {"match": rf"^\s*({NAME})\s*(=)(?!=)",
                       "captures": {"1": {"name": "variable.other.definition.net"},
                                    "2": {"name": "keyword.operator.assignment.net"}}},
        "argument": {"match": rf"\b({NAME})\s*(=)",
                     "captures": {"1": {"name": "variable.parameter.net"},
                                  "2": {"name": "keyword.operator.assignment.net"}}},
        "call": {"name": "entity.name.function.call.net", "match": rf"\b{NAME}(?=\s*\()"},
        "name": {"name": "variable.other.net", "match": rf"\b{NAME}\b"},
        "operator": {"patterns": [{"name": "keyword.operator.chain.net", "match": "->"},
                                  {"name": "keyword.operator.arithmetic.net", "match": r"//|[*/+\-]"},
                                  {"name": "keyword.operator.assignment.net", "match": "="}]},
        "punctuation": {"patterns": [{"name": "punctuation.section.braces.net", "match": r"[{}]"},
                                     {"name": "punctuation.section.parens.net", "match": r"[()]"},
                                     {"name": "punctuation.section.brackets.net", "match": r"[\[\]]"},
                                     {"name": "punctuation.separator.net", "match": "[,:]"}]},
        "invalid": {"name": "invalid.illegal.net", "match": r"[^\s]"},
    }


def text() -> str:
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write the grammar file (the VS Code extension's copy)."""
    GRAMMAR_FILE.parent.mkdir(parents=True, exist_ok=True)
    GRAMMAR_FILE.write_text(text(), encoding="utf-8")
    print(f"wrote {GRAMMAR_FILE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

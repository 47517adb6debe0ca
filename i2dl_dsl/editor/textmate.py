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
import re
import sys
from pathlib import Path

from .tokens import keywords, pattern, symbols

ROOT = Path(__file__).resolve().parents[2]
GRAMMAR_FILE = ROOT / "editors" / "vscode" / "syntaxes" / "net.tmLanguage.json"
SCOPE = "source.net"
_CONSTANTS = ("true", "false")
_DEFINERS = ("network", "block")  # keywords followed by the name they define
_BRACKETS = {"(": "parens", ")": "parens", "[": "brackets", "]": "brackets", "{": "braces", "}": "braces"}
_SEPARATORS = (",", ":")
_CHAIN = "->"


def grammar() -> dict:
    """The grammar as a JSON-ready dict."""
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "i2dl net",
        "scopeName": SCOPE,
        "fileTypes": ["net"],
        "comment": "Written by i2dl_dsl/editor/textmate.py from grammars/net.lark; do not edit by hand.",
        "patterns": [{"include": f"#{rule}"} for rule in _REPOSITORY_ORDER],
        "repository": _repository(),
    }


_REPOSITORY_ORDER = ("comment", "string", "definition", "keyword", "constant", "number", "label", "assignment",
                     "argument", "call", "name", "operator", "punctuation", "invalid")


def terminals() -> dict[str, str]:
    """The patterns of the words, read from the grammar: a terminal it
    lacks falls back to the form it has today."""
    name = pattern("NAME") or r"[A-Za-z_][A-Za-z0-9_]*"
    found = {"NAME": name, "LABEL": pattern("LABEL") or name, "INT": pattern("INT") or r"\d+",
             "FLOAT": pattern("FLOAT") or r"\d+\.\d*", "STRING": pattern("STRING") or r'"[^"\n]*"',
             "COMMENT": pattern("COMMENT") or "#.*"}
    # Their groups must not capture: the rules number their own captures.
    return {key: re.sub(r"(?<!\\)\((?!\?)", "(?:", regex) for key, regex in found.items()}


def _alternatives(items) -> str:
    return "|".join(re.escape(i) for i in items)


def _repository() -> dict:
    t = terminals()
    words = [w for w in keywords() if w not in _CONSTANTS]
    definers = "|".join(w for w in _DEFINERS if w in words)
    operators = [s for s in symbols() if s not in _BRACKETS and s not in _SEPARATORS and s != _CHAIN]
    return {
        "comment": {"name": "comment.line.number-sign.net", "match": t["COMMENT"]},
        "string": {"name": "string.quoted.double.net", "match": t["STRING"]},
        "definition": {"match": rf"\b({definers})\s+({t['NAME']})",
                       "captures": {"1": {"name": "storage.type.net"}, "2": {"name": "entity.name.function.net"}}},
        "keyword": {"name": "keyword.control.net", "match": rf"\b({'|'.join(words)})\b"},
        "constant": {"name": "constant.language.net", "match": rf"\b({'|'.join(_CONSTANTS)})\b"},
        "number": {"name": "constant.numeric.net", "match": rf"(?:{t['FLOAT']})|(?:{t['INT']})"},
        "label": {"match": rf"({t['LABEL']})\s*(:)",
                  "captures": {"1": {"name": "entity.name.tag.label.net"}, "2": {"name": "punctuation.separator.net"}}},
        "assignment": {"match": rf"^\s*((?:{t['NAME']})(?:\s*,\s*(?:{t['NAME']}))*)\s*(=)",
                       "captures": {"1": {"name": "variable.other.definition.net"},
                                    "2": {"name": "keyword.operator.assignment.net"}}},
        "argument": {"match": rf"({t['NAME']})\s*(=)",
                     "captures": {"1": {"name": "variable.parameter.net"},
                                  "2": {"name": "keyword.operator.assignment.net"}}},
        "call": {"name": "entity.name.function.call.net", "match": rf"(?:{t['NAME']})(?=\s*\()"},
        "name": {"name": "variable.other.net", "match": t["NAME"]},
        "operator": {"patterns": [{"name": "keyword.operator.chain.net", "match": re.escape(_CHAIN)},
                                  {"name": "keyword.operator.net", "match": _alternatives(operators)}]},
        "punctuation": {"patterns": [
            *({"name": f"punctuation.section.{kind}.net", "match": _alternatives(b for b, k in _BRACKETS.items()
                                                                                  if k == kind)}
              for kind in ("braces", "parens", "brackets")),
            {"name": "punctuation.separator.net", "match": _alternatives(_SEPARATORS)}]},
        "invalid": {"name": "invalid.illegal.net", "match": r"[^\s]"},
    }


def text() -> str:
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write the grammar file (the VS Code extension's copy, in a source checkout)."""
    if not GRAMMAR_FILE.parent.parent.is_dir():
        print(f"error: no {GRAMMAR_FILE.parent.parent} here: run this in a source checkout", file=sys.stderr)
        return 2
    GRAMMAR_FILE.write_text(text(), encoding="utf-8")
    print(f"wrote {GRAMMAR_FILE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

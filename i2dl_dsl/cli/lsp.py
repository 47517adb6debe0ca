"""`i2dl-lsp`: the language server for .net files, over standard input and
output (an editor starts it; see docs/editors.md). It needs the `editor`
extra: pip install 'i2dl-dsl[editor]'."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import EXIT_USER, add_version


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="i2dl-lsp", description="Language server for .net files, over stdio.")
    p.add_argument("--stdio", action="store_true", help="talk over standard input and output (the default)")
    add_version(p)
    p.parse_args(argv)
    try:
        from ..editor.server import main as serve
    except ImportError as exc:
        print(f"error: i2dl-lsp needs {exc.name or 'pygls'}: pip install 'i2dl-dsl[editor]'", file=sys.stderr)
        return EXIT_USER
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())

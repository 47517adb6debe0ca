"""`i2dl-fmt`: lay .net files out in the one canonical layout.

    i2dl-fmt models/            rewrite every .net file under models/ in place
    i2dl-fmt --check a.net      only say which files would change (exit 1 if any)
    i2dl-fmt -                  read standard input, write standard output

A file with a syntax error is left as it is, and its errors are printed
(exit 2 at the end).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..diagnostics import CompileError, UserError, render_all
from ..files import write_for_user
from ..syntax.parser import read_source
from .common import EXIT_OK, EXIT_USER, add_version, run_command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2dl-fmt", description="Format .net files in place (as black does).")
    p.add_argument("paths", nargs="+", help=".net files or folders (searched for .net files); - for standard input")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file would be reformatted")
    add_version(p)
    return p


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(path.rglob("*.net"))
        elif path.exists():
            found.append(path)
        else:
            raise UserError(f"'{name}' does not exist")
    return found


def _one(path: Path, check: bool) -> tuple[bool, bool]:
    """(would change, failed) for one file; rewritten unless `check`."""
    from ..editor.format import format_text

    try:
        text = read_source(path)
        formatted = format_text(text, str(path))
    except CompileError as exc:
        print(render_all(exc.diagnostics), file=sys.stderr)
        return False, True
    if formatted == text:
        return False, False
    if check:
        print(f"would reformat {path}", file=sys.stderr)
    else:
        write_for_user(path, lambda f: f.write(formatted.encode("utf-8")))
        print(f"reformatted {path}", file=sys.stderr)
    return True, False


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.paths == ["-"]:
        from ..editor.format import format_text

        text = sys.stdin.read()
        formatted = format_text(text, "<stdin>")
        if args.check:
            return 1 if formatted != text else EXIT_OK
        sys.stdout.write(formatted)
        return EXIT_OK
    changed = failed = 0
    for path in _files(args.paths):
        would, bad = _one(path, args.check)
        changed += would
        failed += bad
    if failed:
        return EXIT_USER
    return 1 if args.check and changed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

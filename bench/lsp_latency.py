"""Keystroke latency of the language server: the time from an edit sent
by the editor (`textDocument/didChange`) to the diagnostics of that very
version arriving (`publishDiagnostics`), measured by a protocol client
over the server's stdio, as an editor sees it.

    python bench/lsp_latency.py [--keystrokes 60] [--model models/resnet50.net]

Two layouts of the same network: one file, and its blocks moved into a
second file that the first `use`s (the one edited); and, in the process,
the same check with nothing reused (a fresh workspace per keystroke, so
every file is parsed again) against the server's workspace, which parses
only the file that changed. The keystrokes type and delete digits of block
arguments, so every other version has an error the checker must find.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from lsp_client import LspClient  # noqa: E402

from i2dl_dsl.editor.workspace import Workspace  # noqa: E402


def versions(text: str, count: int) -> list[str]:
    """Texts as typed: a digit deleted from a call's first argument, then typed again."""
    sites = [m.end(1) for m in re.finditer(r"\b[a-z_]+\((\d+)", text.split("network", 1)[1])]
    offset = text.index("network") + len("network")
    out = []
    for i in range(count):
        at = offset + sites[(i // 2) % len(sites)]
        out.append(text[: at - 1] + text[at:] if i % 2 == 0 else text)
    return out


def split(text: str, folder: Path) -> Path:
    """The model with its blocks moved into lib.net, which main.net uses."""
    head, network = text.split("network", 1)
    (folder / "lib.net").write_text(head)
    main = folder / "main.net"
    main.write_text('use "lib.net"\n\nnetwork' + network)
    return main


def over_stdio(path: Path, texts: list[str]) -> list[float]:
    client = LspClient()
    try:
        client.initialize()
        client.open(path, path.read_text(), version=0)
        client.diagnostics(path, version=0)
        times = []
        for version, text in enumerate(texts, start=1):
            sent = time.perf_counter()
            client.change(path, text, version)
            times.append(client.diagnostics(path, version=version)["received"] - sent)
        return times
    finally:
        client.close()


def in_process(path: Path, texts: list[str], reuse: bool) -> list[float]:
    workspace = Workspace()
    workspace.open(str(path), path.read_text())
    times = []
    for text in texts:
        start = time.perf_counter()
        (workspace if reuse else Workspace()).open(str(path), text)
        times.append(time.perf_counter() - start)
    return times


def row(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"| {name} | {statistics.median(ms):.1f} | {p95:.1f} | {ms[-1]:.1f} |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keystrokes", type=int, default=60)
    p.add_argument("--model", default=str(ROOT / "models" / "resnet50.net"))
    args = p.parse_args()
    model = Path(args.model).resolve()
    text = model.read_text()
    print(f"{model.name}, {args.keystrokes} keystrokes; {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}\n")
    print("| keystroke → diagnostics | median ms | p95 ms | max ms |\n| --- | --- | --- | --- |")
    print(row("one file, over stdio", over_stdio(model, versions(text, args.keystrokes))))
    with tempfile.TemporaryDirectory() as folder:
        main_file = split(text, Path(folder))
        edits = versions(main_file.read_text(), args.keystrokes)
        print(row("blocks in a `use`d file, over stdio", over_stdio(main_file, edits)))
        print(row("blocks in a `use`d file, in process, cached trees", in_process(main_file, edits, True)))
        print(row("blocks in a `use`d file, in process, nothing reused", in_process(main_file, edits, False)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

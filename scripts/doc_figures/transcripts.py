"""Quoted terminal sessions: a fenced block in the docs whose lines start
with `$ ` quotes commands and what they printed. Each block is run again,
its commands in order, in a scratch directory of its own (a fresh clone's
view: `models/` and `examples/` linked in, nothing under `runs/`), and every
quoted line must be a line the commands print (stdout and stderr together),
in order: `...` on a line of its own stands for any lines, inside a line
for any text. Figures are compared as written; counts must be equal, other
figures within TOLERANCE are drift."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import ROOT, Mismatch, verdict

FIGURE = re.compile(r"(?<![A-Za-z_\d.])\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")  # not the digit of a name (fc2)
TOOLS = {"i2dl-compile": "compile", "i2dl-train": "train", "i2dl-run": "run"}
LINKED = ("models", "examples")
SETUP = {  # what a command needs that only an example script makes: (text in the command, the script)
    "runs/transfer_learning/": 'python examples/transfer_learning/run.py --train 20 --seeds 0 '
                               '--out "$PWD/runs/transfer_learning"',
}


@dataclass
class Command:
    line: int
    text: str
    quoted: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Block:
    doc: Path
    commands: list[Command]

    @property
    def line(self) -> int:
        return self.commands[0].line


def blocks(doc: Path) -> list[Block]:
    """Every fenced block of `doc` with at least one `$ ` line."""
    found, inside, current = [], False, None
    for number, text in enumerate(doc.read_text().splitlines(), start=1):
        if text.startswith("```"):
            inside = not inside
            if current and current.commands:
                found.append(current)
            current = Block(doc, []) if inside else None
        elif inside and text.startswith("$ "):
            # a comment after the command (two spaces and #) is the doc's, not the shell's business
            current.commands.append(Command(number, re.sub(r"\s{2,}#.*$", "", text[2:]).strip()))
        elif inside and current.commands:
            current.commands[-1].quoted.append((number, text))
    return found


def tools(folder: Path) -> Path:
    """The console scripts, as wrappers around this interpreter and this checkout."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in TOOLS.items():
        wrapper = folder / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m i2dl_dsl.cli.{module} "$@"\n')
        wrapper.chmod(0o755)
    return folder


def environment(scratch: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", COLUMNS="120")
    env["PATH"] = f"{tools(scratch / '.bin')}{os.pathsep}{env['PATH']}"
    return env


def scratch_for(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    return folder


def shell(command: str, cwd: Path, env: dict) -> tuple[str, float]:
    """What `command` prints (stdout and stderr in the order written) and its wall time."""
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    return done.stdout, time.perf_counter() - start


class Runner:
    """Runs commands as a block does, each tuple of commands once (claims and
    blocks that quote the same command share its run)."""

    def __init__(self, folder: Path):
        self.folder, self.done, self.scratch = folder, {}, {}

    def run(self, commands: tuple[str, ...]) -> list[tuple[str, float]]:
        """What each command printed and its wall time, the set-up done first (once: a set-up script
        runs as a command of its own, and what it wrote under runs/ is copied)."""
        if commands not in self.done:
            needed = [script for needle, script in SETUP.items()
                      if script not in commands and any(needle in c for c in commands)]
            for script in needed:
                self.run((script,))
            scratch = scratch_for(self.folder / str(len(self.scratch)))
            for script in needed:
                shutil.copytree(self.scratch[(script,)] / "runs", scratch / "runs", dirs_exist_ok=True)
            self.scratch[commands] = scratch
            env = environment(scratch)
            self.done[commands] = [shell(command, scratch, env) for command in commands]
        return self.done[commands]


def pattern(quoted: str) -> re.Pattern:
    """A quoted line as a pattern: its figures captured, `...` any text, runs of spaces any spaces."""
    parts = []
    for piece in re.split(r"(\.\.\.|" + FIGURE.pattern + r"|\s+)", quoted.strip()):
        if piece == "...":
            parts.append(".*?")
        elif piece and FIGURE.fullmatch(piece):
            parts.append(r"(\S+?)")
        elif piece and piece.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts) + r"\s*")


def figures(quoted: str) -> list[str]:
    return FIGURE.findall(quoted.replace("...", " "))


def best_line(quoted: str, out: list[str], lines: range) -> tuple[int, re.Match] | None:
    """The printed line `quoted` stands for: of those in `lines` with its words, the one whose
    figures differ least from the quoted ones (the first of equals)."""
    want, best = figures(quoted), None
    for i in lines:
        if match := pattern(quoted).fullmatch(out[i].strip()):
            differ = sum(a != b for a, b in zip(want, match.groups()))
            if best is None or differ < best[0]:
                best = (differ, i, match)
    return None if best is None else best[1:]


def compare_lines(doc: Path, command: Command, printed: str) -> list[Mismatch]:
    """The quoted lines against the printed ones, in order; `...` skips any."""
    out = printed.splitlines()
    position, skipping, problems = 0, False, []
    for number, quoted in command.quoted:
        if quoted.strip() == "...":
            skipping = True
            continue
        found = best_line(quoted, out, range(position, len(out) if skipping else min(position + 1, len(out))))
        if found is None:
            near = out[position] if position < len(out) else "nothing"
            return problems + [Mismatch(doc, number, repr(quoted.strip()), repr(near), f"$ {command.text}")]
        position, skipping = found[0] + 1, False
        for figure, reproduced in zip(figures(quoted), found[1].groups()):
            problems += verdict(doc, number, figure, reproduced, f"$ {command.text}")
    return problems


def check_block(block: Block, runner: Runner) -> list[Mismatch]:
    printed = runner.run(tuple(c.text for c in block.commands))
    return [m for command, (text, _) in zip(block.commands, printed) for m in compare_lines(block.doc, command, text)]

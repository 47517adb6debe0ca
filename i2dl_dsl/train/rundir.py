"""Run directories that never clobber each other.

Without `--out` every run gets the next free number under `runs/<model>/`
(`runs/digits_cnn/1`, `2`, ...) and `runs/<model>/latest` points at the
newest. Numbers rather than timestamps: they are short to type in
`--resume --out runs/digits_cnn/3`, sort as they were made, and two runs
started in the same second cannot collide (the number is claimed with an
exclusive mkdir). A run holds an exclusive lock on its directory while it
writes there, so a second training into it is refused at once; a finished
run (one holding a result or a checkpoint) is only written again with
`--resume` or `--overwrite`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..diagnostics import UserError
from ..files import PARTIAL

LOCK = ".i2dl-lock"
LATEST = "latest"
# What a run writes into its directory; every writer and reader names them from here.
MODEL, WEIGHTS, METRICS, PLOT = "model.onnx", "weights.npz", "metrics.csv", "curves.png"
SAFETENSORS = "weights.safetensors"  # the same weights, for PyTorch (safetensors.torch.load_file) and Hugging Face
CHECKPOINT, BEST, RESULT = "checkpoint.npz", "best.npz", "result.json"
RUN_FILES = (MODEL, WEIGHTS, SAFETENSORS, METRICS, CHECKPOINT, BEST, PLOT, RESULT)
FINISHED = (RESULT, CHECKPOINT)  # a run that holds either has results to lose
# Our temporaries: `.NAME.i2dl-partial-HEX`, and the `.NAME.HEX.tmp` of earlier versions.
_TEMPORARY = re.compile(rf"^\..+\.({re.escape(PARTIAL)}-[0-9a-f]+|[0-9a-f]{{8}}\.tmp)$")


def default_root(model: Path) -> Path:
    """Where the runs of a model go without --out."""
    return Path("runs") / Path(model).stem


def next_numbered(root: Path) -> Path:
    """Claim `root/<n>` for the smallest n above every existing number."""
    _make(root)
    taken = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
    number = max(taken, default=0) + 1
    while True:
        candidate = root / str(number)
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:  # another run took it between our look and our mkdir
            number += 1
        except OSError as exc:
            raise _unwritable(candidate, exc) from None


def latest(root: Path) -> Path:
    """The run `root/latest` names (a symlink, or a text file where links fail)."""
    link = root / LATEST
    if link.is_symlink():
        return root / os.readlink(link)
    if link.is_file():
        return root / link.read_text().strip()
    raise UserError(f"no run of this model to resume in '{root}'", "give the run directory: --resume --out DIR")


def point_latest(root: Path, run: Path) -> None:
    """Make `root/latest` name `run` (relative, so the tree can move)."""
    link, temporary = root / LATEST, root / f".{LATEST}.{PARTIAL}-{os.getpid()}"
    try:
        if temporary.is_symlink() or temporary.exists():
            temporary.unlink()
        try:
            os.symlink(run.name, temporary)
        except OSError:  # a file system without symbolic links
            temporary.write_text(run.name + "\n")
        os.replace(temporary, link)
    except OSError as exc:
        raise _unwritable(link, exc) from None


def _unwritable(path: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write the run in '{path}': {exc.strerror or exc}",
                     "choose another --out, or free space or permissions there")


def _make(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"cannot write the run in '{path}': it is a file, not a directory",
                        "choose another --out") from None
    except OSError as exc:
        raise _unwritable(path, exc) from None


@contextmanager
def locked(run: Path) -> Iterator[None]:
    """Hold an exclusive lock on `run` (a lock file holding our PID) for the
    block; another process that holds it is named in the refusal."""
    path = run / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _unwritable(run, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise UserError(f"the run directory '{run}' is in use by process {other}",
                            "wait for it to finish, or train into another --out") from None
        _write_pid(fd, run)
        yield
    finally:
        os.close(fd)  # closing releases the lock; the file stays, harmless and reused


def _write_pid(fd: int, run: Path) -> None:
    """Write our PID into the lock file: this also proves the directory can be
    written (a full or read-only file system fails here, before training)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
    except OSError as exc:
        raise _unwritable(run, exc) from None


def remove_temporaries(run: Path) -> list[Path]:
    """Delete what interrupted atomic writes left under `run` (only our own
    names); call it with the lock held, so no live write loses its file."""
    removed = []
    # The run and its direct subdirectories (folds, members, trials): never a walk through a whole tree.
    for path in [*run.glob(".*"), *run.glob("*/.*")]:
        if path.is_file() and _TEMPORARY.match(path.name):
            path.unlink()
            removed.append(path)
    return removed


def finished(run: Path) -> bool:
    return any((run / name).exists() for name in FINISHED)


@contextmanager
def claim(out: str | None, model: Path, resume: bool = False, overwrite: bool = False) -> Iterator[Path]:
    """The run directory of a training, locked while the block runs: `out`,
    else a new numbered directory under runs/<model>/ (with --resume, the
    latest one). A finished run is refused unless resuming or overwriting."""
    if resume and overwrite:
        raise UserError("--resume continues a run and --overwrite replaces it: give one of them")
    root = default_root(model)
    numbered = out is None and not resume
    run = Path(out) if out is not None else latest(root) if resume else next_numbered(root)
    created = numbered or not run.exists()
    _make(run)
    try:
        with locked(run):
            remove_temporaries(run)
            _check_reuse(run, resume, overwrite)
            if numbered:
                point_latest(root, run)
            yield run
    except BaseException:
        if created:
            _forget_if_empty(root, run, numbered)
        raise


def _forget_if_empty(root: Path, run: Path, numbered: bool) -> None:
    """A new run that failed before writing anything (bad data, a refused
    setting) leaves no empty directory behind, and `latest` goes back."""
    if not run.is_dir() or any(p.name != LOCK for p in run.iterdir()):
        return
    (run / LOCK).unlink(missing_ok=True)
    run.rmdir()
    if not numbered:
        return
    runs = sorted((int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True)
    if runs:
        point_latest(root, root / str(runs[0]))
        return
    if (root / LATEST).is_symlink() or (root / LATEST).exists():
        (root / LATEST).unlink()
    if not any(root.iterdir()):  # the model's first run: no empty runs/<model>/ either
        root.rmdir()


def _check_reuse(run: Path, resume: bool, overwrite: bool) -> None:
    if resume or not finished(run):
        return
    if not overwrite:
        raise UserError(f"'{run}' holds a finished run; a new training would overwrite it",
                        "continue it with --resume, replace it with --overwrite, or leave out --out "
                        "for a new numbered run")
    for name in RUN_FILES:
        if (run / name).exists():
            (run / name).unlink()


def write_failure(run: Path, exc: OSError) -> UserError | None:
    """A failed write into the run directory as the user's error (a full disk,
    permissions taken away mid-run); None for any other OSError, and for
    failures of files outside the run."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR):
        return None
    where = Path(exc.filename) if exc.filename else run
    if not where.resolve().is_relative_to(run.resolve()):  # a file read elsewhere: not the run's failure
        return None
    return UserError(f"cannot write the run in '{where}': {exc.strerror or exc}",
                     f"the last finished epoch's checkpoint, if any, is in {run}; "
                     "free space or choose another --out, then --resume")

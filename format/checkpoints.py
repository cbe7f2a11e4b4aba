"""Training checkpoints committed atomically: the one helper behind model and tokenizer training.

A training directory holds ``step-NNNNNNNN/`` checkpoint directories and a ``latest`` file that
names the current one. A checkpoint is written whole into a hidden ``.step-NNNNNNNN.tmp/``, every
file and the directory fsynced, then renamed into place; only then is ``latest`` rewritten (one
``atomic_write``) and the checkpoints beyond the ``keep`` newest removed. A kill at any moment
leaves ``latest`` naming a complete checkpoint, the new one or the one before it.

What goes inside a checkpoint is the caller's business (weights as safetensors, optimizer state
for ``torch.load(weights_only=True)``); this module imports no torch. Local directories only: the
rename is what makes a checkpoint appear whole, and object stores have no rename.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from uvd.format.storage import atomic_write, is_local

LATEST = "latest"
_STEP_NAME = re.compile(r"^step-(\d+)$")
_STAGING_NAME = re.compile(r"^\.step-\d+\.(tmp|old)$")


def step_dir_name(step: int) -> str:
    if step < 0:
        raise ValueError(f"checkpoint step {step} is negative")
    return f"step-{step:08d}"


def step_of(path: str | os.PathLike) -> int | None:
    """The step a ``step-NNNNNNNN`` directory name stands for, or None for any other name."""
    match = _STEP_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """The committed ``step-*`` directories under ``root``, oldest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if step_of(p) is not None and p.is_dir() and not p.is_symlink()]
    return sorted(found, key=step_of)


def commit_checkpoint(root: str | os.PathLike, step: int, write_files: Callable[[Path], None], *,
                      keep: int = 2) -> Path:
    """Commit ``root/step-NNNNNNNN/`` with the files ``write_files(directory)`` writes, name it in
    ``latest``, and keep it plus the ``keep - 1`` newest others. Returns the committed directory."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    root = _local_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    _remove_staging_leftovers(root)
    staging = root / f".{final.name}.tmp"
    staging.mkdir()
    write_files(staging)
    _fsync_tree(staging)
    _replace_dir(staging, final)
    _fsync_path(root)
    atomic_write(str(root / LATEST), (final.name + "\n").encode())
    _fsync_path(root)
    _prune(root, keep, final)
    return final


def latest_checkpoint(root: str | os.PathLike, *, required: tuple[str, ...] = ()) -> Path | None:
    """The checkpoint to resume from: the one ``latest`` names when it holds the ``required`` files,
    else (``latest`` missing, or naming a directory a kill removed) the newest one that does."""
    root = Path(root)
    pointer = root / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if step_of(name) is None:
            raise ValueError(f"{pointer}: names {name!r}, not a step-NNNNNNNN checkpoint directory")
        if _holds(root / name, required):
            return root / name
    complete = [p for p in list_checkpoints(root) if _holds(p, required)]
    return complete[-1] if complete else None


def _holds(directory: Path, required: tuple[str, ...]) -> bool:
    return directory.is_dir() and all((directory / name).is_file() for name in required)


def _local_dir(root: str | os.PathLike) -> Path:
    if not is_local(os.fspath(root)):
        raise ValueError(f"{root}: checkpoints are committed by a directory rename, so they go to a local "
                         "directory (copy them to an object store afterwards)")
    return Path(root)


def _remove_staging_leftovers(root: Path) -> None:
    """Half-written checkpoints of a killed run (only the one writer commits, so none is in use)."""
    for leftover in root.iterdir():
        if _STAGING_NAME.match(leftover.name):
            shutil.rmtree(leftover)


def _replace_dir(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing ``target`` (the same step committed again) is
    moved aside first and removed after, as a directory cannot be renamed over a non-empty one."""
    if not target.exists():
        os.replace(source, target)
        return
    aside = target.with_name(f".{target.name}.old")
    os.replace(target, aside)
    os.replace(source, target)
    shutil.rmtree(aside)


def _prune(root: Path, keep: int, current: Path) -> None:
    others = [p for p in list_checkpoints(root) if p != current]
    for old in others[: max(0, len(others) - (keep - 1))]:
        shutil.rmtree(old)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        _fsync_path(path)
    _fsync_path(directory)


def _fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

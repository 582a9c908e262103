"""Durable file operations for the devnet's on-disk state.

A file is written to a temporary name, fsynced, renamed over its target, and the directory is
fsynced; anything less can lose or tear the file in a crash. Removal fsyncs the directory too.
These functions block; call them from a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(
    path: Path, chunks: Iterable[bytes | bytearray | memoryview], *, mode: int = 0o600
) -> None:
    """Atomically replace `path` with the concatenation of `chunks`, durably."""
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_durably(paths: Iterable[Path]) -> None:
    """Remove files (missing ones are fine) and fsync each directory touched once."""
    dirs: set[Path] = set()
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        dirs.add(path.parent)
    for directory in dirs:
        fsync_dir(directory)


def is_temporary(path: Path) -> bool:
    """Leftovers of a write that crashed before its rename."""
    return path.name.endswith(_TMP_SUFFIX)

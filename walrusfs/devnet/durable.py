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


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_file_direct(
    path: Path, data: bytes | bytearray | memoryview, aligned: memoryview | None = None
) -> os.stat_result:
    """Write `data` to a temporary file, fsync it and rename it over `path`; no directory
    fsync (the caller does that once for everything it renamed). Returns the file's stat.

    With `aligned` (a page-aligned view starting with `data`, its length rounded up to 4096),
    the data goes to disk with O_DIRECT, skipping the page cache copy; filesystems without
    O_DIRECT (tmpfs) get an ordinary write.
    """
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    fd = -1
    if aligned is not None:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
        except OSError:
            fd = -1
    try:
        if fd >= 0:
            assert aligned is not None
            try:
                _write_all(fd, aligned)
                os.ftruncate(fd, len(data))
            except OSError:
                os.close(fd)
                fd = -1
        if fd < 0:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            _write_all(fd, data)
        os.fsync(fd)
        st = os.fstat(fd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    return st


def read_file_into(path: Path, aligned: memoryview) -> int:
    """Read the whole file at `path` into `aligned` (page-aligned, 4096-multiple, at least
    the file size), with O_DIRECT where possible; returns the number of bytes read.
    Raises FileNotFoundError if the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        direct = True
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        fd = os.open(path, os.O_RDONLY)
        direct = False
    try:
        got = 0
        while got < len(aligned):
            try:
                n = os.readv(fd, [aligned[got:]])
            except OSError:
                if not direct:
                    raise
                # The filesystem refused O_DIRECT after all: read through the page cache.
                os.close(fd)
                fd = os.open(path, os.O_RDONLY)
                direct = False
                got = 0
                continue
            if n == 0:
                break
            got += n
        return got
    finally:
        os.close(fd)

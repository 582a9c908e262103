"""Durable writes, the long way: temporary file, fsync, rename over the target, fsync the
directory. Anything less can lose or tear a file in a crash. Blocking: from trio, call
through trio.to_thread.run_sync. Used by every layer that keeps small files (configuration,
keys, wallet); it depends on nothing.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Atomically and durably replace `path` with `data`, the new file having `mode`."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # neither the umask nor a default ACL decides the mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)

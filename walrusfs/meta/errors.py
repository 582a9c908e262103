"""Errors of the metadata layer. Each carries the errno that fs/ hands to the kernel."""

from __future__ import annotations

import errno as _errno
import os

from walrusfs.errors import WalrusfsError


class FsError(WalrusfsError):
    """An operation the filesystem refuses, with the errno POSIX prescribes."""

    def __init__(self, errno: int, detail: str = "") -> None:
        # No strerror here: most FsErrors become an errno and are never printed.
        super().__init__(detail)
        self.errno = errno

    def __str__(self) -> str:
        return str(self.args[0]) if self.args and self.args[0] else os.strerror(self.errno)


def not_found() -> FsError:
    return FsError(_errno.ENOENT)


def exists() -> FsError:
    return FsError(_errno.EEXIST)

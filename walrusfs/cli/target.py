"""Finding a filesystem from what a user names: its mount point or its directory."""

from __future__ import annotations

import os

from walrusfs.errors import WalrusfsError
from walrusfs.fs import filesystem, mounts


def directory_of(target: str) -> str:
    """The filesystem directory of a walrusfs mount point, or `target` itself if it is one."""
    path = os.path.abspath(target)
    mount = mounts.find(path)
    if mount is not None and mount.fstype == mounts.FSTYPE:
        return mount.source
    if filesystem.is_filesystem(path):
        return path
    raise WalrusfsError(f"{target} is neither a walrusfs mount point nor a filesystem directory")

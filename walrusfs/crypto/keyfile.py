"""The local key file: the wrapped master key, exactly as `wrap_master_key` returns it.

Writes are durable and atomic (temporary file in the same directory, fsync, rename over the
target, fsync of the directory), so a crash during a passphrase change leaves either the old
or the new wrapped key, never a torn one. The file is created 0600.

Reading does not refuse a file that group or others can read; it logs a warning. The
wrapped key is not the secret that protects the filesystem (the same bytes are published in
the superblock on Walrus, where anyone can fetch them); the passphrase and Argon2id are.
Refusing would stop a mount without protecting anything. Writes always make it 0600 again.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from walrusfs.durable import write_durably

from .errors import BadKeyFile
from .keys import read_kdf_params

log = logging.getLogger(__name__)

# Reading stops here: a key file is 106 bytes, and garbage should not be read whole.
_READ_LIMIT = 64 * 1024


def write_key_file(path: str | os.PathLike[str], wrapped: bytes) -> None:
    """Durably replace `path` with `wrapped` (mode 0600). Refuses bytes that are not a
    wrapped key, so a bug cannot overwrite a good key file with garbage."""
    read_kdf_params(wrapped)  # raises BadKeyFile
    target = Path(path)
    write_durably(target, wrapped, mode=0o600)
    log.debug("wrote key file %s", target)


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The wrapped master key in `path`. Raises BadKeyFile if it cannot be read or is not a
    wrapped key of a version this walrusfs reads."""
    target = Path(path)
    try:
        # O_NONBLOCK: a FIFO put in the key file's place must not hang the mount.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise BadKeyFile(f"key file {target} is not a regular file")
            data = f.read(_READ_LIMIT)
    except OSError as exc:
        raise BadKeyFile(f"cannot read key file {target}: {exc.strerror}") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        log.warning("key file %s is accessible to group or others (mode %04o)", target, mode)
    try:
        read_kdf_params(data)
    except BadKeyFile as exc:
        raise BadKeyFile(f"key file {target}: {exc}") from None
    return data

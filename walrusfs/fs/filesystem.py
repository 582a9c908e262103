"""A filesystem directory: what mkfs.walrusfs creates and mount.walrusfs opens.

    DIR/            0700
      meta.db       the metadata (meta/schema.py), with its -wal and -shm files
      cache/xx/N    the block cache (cache/blockcache.py)
      lock          held (flock) by the daemon that has DIR mounted; holds its pid

Opening takes the lock first, so nothing else ever touches a mounted filesystem's files.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import uuid

from walrusfs.cache.blockcache import BlockCache
from walrusfs.durable import fsync_dir
from walrusfs.errors import WalrusfsError
from walrusfs.fs import config as fsconfig
from walrusfs.meta.db import DamagedDatabase, Database
from walrusfs.meta.schema import SCHEMA, SCHEMA_VERSION
from walrusfs.meta.tree import Tree, now_ns

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 1 << 20
MIN_BLOCK_SIZE = 4096
MAX_BLOCK_SIZE = 64 << 20


class FilesystemError(WalrusfsError):
    pass


class InUse(FilesystemError):
    pass


def db_path(directory: str) -> str:
    return os.path.join(directory, "meta.db")


def lock_path(directory: str) -> str:
    return os.path.join(directory, "lock")


def cache_path(directory: str) -> str:
    return os.path.join(directory, "cache")


def is_filesystem(directory: str) -> bool:
    return os.path.exists(db_path(directory))


def check_block_size(block_size: int) -> None:
    if block_size < MIN_BLOCK_SIZE or block_size > MAX_BLOCK_SIZE or block_size & (block_size - 1):
        raise FilesystemError(
            f"block size must be a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}"
            f" bytes, not {block_size}"
        )


def create(
    directory: str,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    uid: int | None = None,
    gid: int | None = None,
    root_mode: int = 0o755,
) -> str:
    """Create an empty filesystem in `directory` (which must be absent or empty)."""
    check_block_size(block_size)
    directory = os.path.abspath(directory)
    check_new_directory(directory)
    fs_id = str(uuid.uuid4())
    root = (
        os.getuid() if uid is None else uid,
        os.getgid() if gid is None else gid,
        root_mode,
    )
    initialize(directory, block_size=block_size, fs_uuid=fs_id, root=root)
    return fs_id


def check_new_directory(directory: str) -> None:
    """Refuse a directory a new filesystem cannot go into."""
    if os.path.exists(directory):
        if not os.path.isdir(directory):
            raise FilesystemError(f"{directory} exists and is not a directory")
        if os.listdir(directory):
            if is_filesystem(directory):
                raise FilesystemError(f"{directory} already holds a walrusfs filesystem")
            raise FilesystemError(f"{directory} is not empty")


def initialize(
    directory: str,
    *,
    block_size: int,
    fs_uuid: str,
    root: tuple[int, int, int] | None,
) -> None:
    """Create the metadata database and the cache in `directory`, with a root directory
    (uid, gid, mode) or without one (a restore brings its own)."""
    check_block_size(block_size)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        BlockCache.prepare(cache_path(directory))
        tmp = db_path(directory) + ".new"
        for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        db = Database(tmp, create=True)
        db.script(SCHEMA)
        if root is not None:
            Tree.make_root(db, *root)
        for key, value in (
            ("schema_version", SCHEMA_VERSION),
            ("block_size", block_size),
            ("uuid", fs_uuid),
            ("created_ns", now_ns()),
            ("clean_unmount", 1),
            ("writer_id", str(uuid.uuid4())),
        ):
            db.set_setting(key, value)
        db.close()
        os.chmod(tmp, 0o600)
        os.rename(tmp, db_path(directory))
        fsync_dir(directory)
    except OSError as exc:
        raise FilesystemError(f"cannot create a filesystem in {directory}: {exc.strerror}") from exc


class Lock:
    """The exclusive lock a mount holds on its filesystem directory."""

    def __init__(self, directory: str) -> None:
        path = lock_path(directory)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = read_lock_pid(directory)
            os.close(self.fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                who = f" (pid {holder})" if holder else ""
                raise InUse(f"{directory} is in use by another mount{who}") from None
            raise
        self.write_pid(os.getpid())

    def write_pid(self, pid: int) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read_lock_pid(directory: str) -> int | None:
    try:
        with open(lock_path(directory), "rb") as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


class Filesystem:
    """An open filesystem directory: its lock, database and block cache."""

    def __init__(self, directory: str, *, lock: Lock | None = None) -> None:
        self.directory = os.path.abspath(directory)
        if not os.path.isdir(self.directory):
            raise FilesystemError(f"{self.directory} does not exist")
        if not is_filesystem(self.directory):
            raise FilesystemError(
                f"{self.directory} is not a walrusfs filesystem (create one with mkfs.walrusfs)"
            )
        self.lock = lock or Lock(self.directory)
        try:
            self.db = Database(db_path(self.directory))
            self._check()
        except DamagedDatabase as exc:
            self.lock.release()
            raise FilesystemError(
                f"the metadata database {db_path(self.directory)} is damaged ({exc}); nothing"
                " was changed. Restore the directory from a backup, or salvage what is"
                f" readable with: sqlite3 {db_path(self.directory)} .recover"
            ) from None
        except Exception:
            self.lock.release()
            raise
        self.block_size = int(self.db.get_setting("block_size"))
        self.uuid = str(self.db.get_setting("uuid"))
        self.config = fsconfig.load(self.directory)
        self.cache = BlockCache(self.db, cache_path(self.directory), self.block_size)

    def _check(self) -> None:
        try:
            self.db.check()
            version = self.db.get_setting("schema_version")
        except sqlite3.DatabaseError as exc:
            raise DamagedDatabase(str(exc)) from exc
        if version != SCHEMA_VERSION:
            raise FilesystemError(
                f"{self.directory} has metadata version {version}; this walrusfs reads"
                f" version {SCHEMA_VERSION}"
            )

    @property
    def was_clean(self) -> bool:
        return bool(self.db.get_setting("clean_unmount", 1))

    def recover(self) -> dict[str, int]:
        """Repair what an unclean end of the last mount left (see BlockCache.recover)."""
        report = self.cache.recover()
        orphans = 0
        tree = Tree(self.db)
        for ino in list(tree.orphans()):
            self.cache.delete(ino)
            tree.delete_inode(ino)
            orphans += 1
        report["orphans"] = orphans
        self.db.commit()
        return report

    async def mark_mounted(self) -> None:
        self.db.set_setting("clean_unmount", 0)
        await self.db.durable()

    def close(self, *, clean: bool) -> None:
        if clean:
            self.db.set_setting("clean_unmount", 1)
        self.db.close()
        self.lock.release()

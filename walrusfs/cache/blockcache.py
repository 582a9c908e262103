"""The write-back block cache: file data on local disk, and the block map that describes it.

Each regular file with data has one sparse cache file, `cache/<xx>/<inode>`, whose bytes are
the file's bytes: the kernel's reads and writes become one pread or pwrite at the same
offset. Holes stay holes. The block map (table `blocks`, see meta/schema.py) records which
block-sized pieces hold data and whether they still have to be uploaded.

Invariants, between operations:
- While mounted, a cache file is exactly as long as its file (writes extend both, truncate
  cuts both), so bytes past the end never reappear when a file grows again.
- Every block of the cache file that holds data has a row in `blocks`.
Both can break in a crash (data reached the cache file, the transaction recording it did
not); `recover()` restores them on the next mount. docs/cache.md has the details.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod
from dataclasses import dataclass, field

import trio

from walrusfs.meta.db import Database
from walrusfs.meta.errors import FsError
from walrusfs.meta.schema import BLOCK_DIRTY

log = logging.getLogger(__name__)

SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)


@dataclass(eq=False)
class CacheFile:
    """The cache file of one inode, open while the kernel has the inode open."""

    inode: int
    fd: int
    refs: int = 1
    # Blocks this session has already recorded as dirty in the (open) transaction: a write
    # to one of them needs no statement. Mirrors the database; cleared whenever a block's
    # state changes elsewhere (truncate, upload).
    dirty: set[int] = field(default_factory=set)
    # The cache file was created by this mount: fsync must also make its name durable.
    created: bool = False


class BlockCache:
    def __init__(self, db: Database, directory: str, block_size: int) -> None:
        self.db = db
        self.directory = directory
        self.block_size = block_size
        self.files: dict[int, CacheFile] = {}

    # -- layout ---------------------------------------------------------------------------

    @staticmethod
    def prepare(directory: str) -> None:
        """Create the cache directory tree (mkfs, or a mount on a fresh machine)."""
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for i in range(256):
            os.makedirs(os.path.join(directory, f"{i:02x}"), mode=0o700, exist_ok=True)

    def path(self, ino: int) -> str:
        return os.path.join(self.directory, f"{ino & 0xFF:02x}", str(ino))

    # -- open and close -------------------------------------------------------------------

    def open(self, ino: int, size: int) -> CacheFile:
        cf = self.files.get(ino)
        if cf is not None:
            cf.refs += 1
            return cf
        path = self.path(ino)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            created = False
        except FileNotFoundError:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            created = True
        try:
            if os.fstat(fd).st_size != size:
                # A file restored from the network, or grown by truncate while closed.
                os.ftruncate(fd, size)
        except OSError:
            os.close(fd)
            raise
        cf = CacheFile(ino, fd, created=created)
        self.files[ino] = cf
        return cf

    def close(self, cf: CacheFile) -> None:
        cf.refs -= 1
        if cf.refs == 0:
            del self.files[cf.inode]
            os.close(cf.fd)

    # -- data -----------------------------------------------------------------------------

    def write(self, cf: CacheFile, offset: int, data: bytes) -> int:
        """Write into the cache file and record the blocks it touched. Returns new blocks."""
        end = offset + len(data)
        try:
            written = os.pwrite(cf.fd, data, offset)
        except OSError as exc:
            raise FsError(exc.errno or errno.EIO) from exc
        if written != len(data):
            raise FsError(errno.ENOSPC)
        bs = self.block_size
        new = 0
        for blockno in range(offset // bs, (end - 1) // bs + 1 if end > offset else offset // bs):
            if blockno in cf.dirty:
                continue
            state = self.db.value(
                "SELECT state FROM blocks WHERE inode = ? AND blockno = ?", (cf.inode, blockno)
            )
            if state is None:
                self.db.execute(
                    "INSERT INTO blocks (inode, blockno, state) VALUES (?, ?, ?)",
                    (cf.inode, blockno, BLOCK_DIRTY),
                )
                new += 1
            elif state != BLOCK_DIRTY:
                self.db.execute(
                    "UPDATE blocks SET state = ? WHERE inode = ? AND blockno = ?",
                    (BLOCK_DIRTY, cf.inode, blockno),
                )
            cf.dirty.add(blockno)
        return new

    def read(self, cf: CacheFile, offset: int, size: int) -> bytes:
        try:
            return os.pread(cf.fd, size, offset)
        except OSError as exc:
            raise FsError(exc.errno or errno.EIO) from exc

    def truncate(self, ino: int, old_size: int, new_size: int) -> int:
        """Cut or extend a file's cache data. Returns the change in its number of blocks."""
        cf = self.files.get(ino)
        path = self.path(ino)
        try:
            if cf is not None:
                os.ftruncate(cf.fd, new_size)
            elif new_size == 0:
                try:
                    os.truncate(path, 0)
                except FileNotFoundError:
                    pass
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    os.ftruncate(fd, new_size)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise FsError(exc.errno or errno.EIO) from exc
        if new_size >= old_size:
            return 0
        first_gone = -(-new_size // self.block_size)
        cur = self.db.execute(
            "DELETE FROM blocks WHERE inode = ? AND blockno >= ?", (ino, first_gone)
        )
        if cf is not None:
            cf.dirty = {b for b in cf.dirty if b < first_gone}
        return -cur.rowcount

    async def fsync(self, cf: CacheFile) -> None:
        """Make the cache file's data (and its name, if new) durable on the local disk."""
        fd = cf.fd
        sync_dir = cf.created
        path = self.path(cf.inode)

        def work() -> None:
            os.fsync(fd)
            if sync_dir:
                dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)

        try:
            await trio.to_thread.run_sync(work)
        except OSError as exc:
            raise FsError(exc.errno or errno.EIO) from exc
        cf.created = False

    def delete(self, ino: int) -> None:
        """Drop an inode's data: its cache file and its block map."""
        self.db.execute("DELETE FROM blocks WHERE inode = ?", (ino,))
        try:
            os.unlink(self.path(ino))
        except FileNotFoundError:
            pass

    # -- accounting -----------------------------------------------------------------------

    def disk_usage(self) -> os.statvfs_result:
        return os.statvfs(self.directory)

    # -- crash recovery -------------------------------------------------------------------

    def recover(self) -> dict[str, int]:
        """Restore the invariants after a mount that did not end cleanly.

        Cache files of inodes that no longer exist are removed; cache files longer than
        their file are cut; data that reached a cache file without its block being recorded
        is recorded as dirty, so it is uploaded rather than silently shadowed.
        """
        report = {"removed": 0, "truncated": 0, "recorded": 0}
        sizes = {
            ino: (mode, size)
            for ino, mode, size in self.db.rows("SELECT id, mode, size FROM inodes")
        }
        bs = self.block_size
        for sub in sorted(os.listdir(self.directory)):
            subdir = os.path.join(self.directory, sub)
            if not os.path.isdir(subdir):
                continue
            for name in os.listdir(subdir):
                path = os.path.join(subdir, name)
                try:
                    ino = int(name)
                except ValueError:
                    continue
                entry = sizes.get(ino)
                if entry is None or not stat_mod.S_ISREG(entry[0]):
                    os.unlink(path)
                    report["removed"] += 1
                    continue
                size = entry[1]
                fd = os.open(path, os.O_RDWR)
                try:
                    if os.fstat(fd).st_size > size:
                        os.ftruncate(fd, size)
                        report["truncated"] += 1
                    known = {
                        r[0]
                        for r in self.db.rows("SELECT blockno FROM blocks WHERE inode = ?", (ino,))
                    }
                    missing = sorted(b for b in _data_blocks(fd, size, bs) if b not in known)
                    if missing:
                        self.db.executemany(
                            "INSERT INTO blocks (inode, blockno, state) VALUES (?, ?, ?)",
                            [(ino, b, BLOCK_DIRTY) for b in missing],
                        )
                        self.db.execute(
                            "UPDATE inodes SET nblocks = nblocks + ? WHERE id = ?",
                            (len(missing), ino),
                        )
                        report["recorded"] += len(missing)
                finally:
                    os.close(fd)
        return report


def _data_blocks(fd: int, size: int, block_size: int) -> set[int]:
    """Block numbers of a sparse file that hold data, from SEEK_DATA/SEEK_HOLE."""
    blocks: set[int] = set()
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break
            raise
        if start >= size:
            break
        end = min(os.lseek(fd, start, SEEK_HOLE), size)
        blocks.update(range(start // block_size, (end - 1) // block_size + 1))
        pos = end
    return blocks

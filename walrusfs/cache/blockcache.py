"""The write-back block cache: file data on local disk, and the block map that describes it.

A regular file's data lives in one of two places:
- inline, in the `inline_data` table, while the file is small (up to `inline_max`): creating
  a file on the cache disk costs more than the rest of a small file's write path together,
  and inline data is made durable by the same WAL barrier as the metadata;
- otherwise in one sparse cache file, `cache/<xx>/<inode>`, whose bytes are the file's bytes:
  the kernel's reads and writes become one pread or pwrite at the same offset, holes stay
  holes.
New files start inline and move to a cache file, once and for good, when they outgrow the
limit. The block map (table `blocks`, see meta/schema.py) records which block-sized pieces
hold data and whether they still have to be uploaded.

Invariants, between operations:
- Inline data is exactly as long as its file.
- While mounted, a cache file is exactly as long as its file (writes extend both, truncate
  cuts both), so bytes past the end never reappear when a file grows again.
- Every block of a file that holds written data has a row in `blocks`.
A crash can break the last two for cache files (data reached the cache file, the transaction
recording it did not); `recover()` restores them on the next mount. docs/cache.md has the
details.
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

# Files up to this size keep their data inline. Chosen from the size distribution of real
# trees (Python's stdlib: 99% of files, 67% of bytes) against the cost of creating a cache
# file, which on this machine's ext4 can exceed half a millisecond.
INLINE_MAX = 256 * 1024
# Writes at least this large are copied into their cache file by a worker thread.
THREADED_WRITE_MIN = 256 * 1024


@dataclass(eq=False)
class CacheFile:
    """The cached data of one inode, open while the kernel has the inode open."""

    inode: int
    # The cache file's descriptor, or -1 while the file's data is inline.
    fd: int
    refs: int = 1
    # Blocks this session has already recorded as dirty in the (open) transaction: a write
    # to one of them needs no statement. Mirrors the database; cleared whenever a block's
    # state changes elsewhere (truncate, upload).
    dirty: set[int] = field(default_factory=set)
    # The cache file was created by this mount: fsync must also make its name durable.
    created: bool = False

    @property
    def inline(self) -> bool:
        return self.fd < 0


def _os_error(exc: OSError) -> FsError:
    return FsError(exc.errno or errno.EIO)


class BlockCache:
    def __init__(self, db: Database, directory: str, block_size: int) -> None:
        self.db = db
        self.directory = directory
        self.block_size = block_size
        self.inline_max = min(INLINE_MAX, block_size)
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

    def new_file(self, ino: int) -> None:
        """Give a newly created regular file its (empty) inline data."""
        self.db.execute("INSERT INTO inline_data (inode, data) VALUES (?, x'')", (ino,))

    def _is_inline(self, ino: int) -> bool:
        return self.db.row("SELECT 1 FROM inline_data WHERE inode = ?", (ino,)) is not None

    def _open_fd(self, ino: int, size: int) -> tuple[int, bool]:
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
        return fd, created

    def open(self, ino: int, size: int) -> CacheFile:
        cf = self.files.get(ino)
        if cf is not None:
            cf.refs += 1
            return cf
        if self._is_inline(ino):
            cf = CacheFile(ino, -1)
        else:
            try:
                fd, created = self._open_fd(ino, size)
            except OSError as exc:
                raise _os_error(exc) from exc
            cf = CacheFile(ino, fd, created=created)
        self.files[ino] = cf
        return cf

    def close(self, cf: CacheFile) -> None:
        cf.refs -= 1
        if cf.refs == 0:
            del self.files[cf.inode]
            if not cf.inline:
                os.close(cf.fd)

    def _to_file(self, cf: CacheFile) -> None:
        """Move an inline file's data into a cache file of its own."""
        data = self.db.value("SELECT data FROM inline_data WHERE inode = ?", (cf.inode,), b"")
        try:
            fd, created = self._open_fd(cf.inode, 0)
            try:
                if data:
                    os.pwrite(fd, data, 0)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise _os_error(exc) from exc
        self.db.execute("DELETE FROM inline_data WHERE inode = ?", (cf.inode,))
        cf.fd = fd
        cf.created = created

    # -- data -----------------------------------------------------------------------------

    def write(self, cf: CacheFile, offset: int, data: bytes) -> int:
        """Write into the cache and record the blocks touched. Returns how many are new."""
        end = offset + len(data)
        if cf.inline and end > self.inline_max:
            self._to_file(cf)
        if cf.inline:
            # The usual case, a write from the start that covers all there was, needs no
            # read of the old data.
            replaced = (
                offset == 0
                and self.db.execute(
                    "UPDATE inline_data SET data = ? WHERE inode = ? AND length(data) <= ?",
                    (data, cf.inode, end),
                ).rowcount
            )
            if not replaced:
                cur: bytes = self.db.value(
                    "SELECT data FROM inline_data WHERE inode = ?", (cf.inode,), b""
                )
                if offset > len(cur):
                    cur += bytes(offset - len(cur))
                self.db.execute(
                    "UPDATE inline_data SET data = ? WHERE inode = ?",
                    (cur[:offset] + data + cur[end:], cf.inode),
                )
        else:
            try:
                written = os.pwrite(cf.fd, data, offset)
            except OSError as exc:
                raise _os_error(exc) from exc
            if written != len(data):
                raise FsError(errno.ENOSPC)
        return self._mark_dirty(cf, offset, end)

    async def store_large(self, cf: CacheFile, offset: int, data: bytes) -> bool:
        """Write a large piece of data into a cache file in a worker thread, so that copying
        it does not hold up other requests. Returns False, having done nothing, when the
        write is small or inline: then `write` does it all. After True the caller records
        the write with `record`.

        No database work happens here: callers hold no savepoint across the await. The
        kernel sends nothing that conflicts with a write of this inode meanwhile."""
        if cf.inline or len(data) < THREADED_WRITE_MIN:
            return False
        try:
            written = await trio.to_thread.run_sync(os.pwrite, cf.fd, data, offset)
        except OSError as exc:
            raise _os_error(exc) from exc
        if written != len(data):
            raise FsError(errno.ENOSPC)
        return True

    def record(self, cf: CacheFile, offset: int, end: int) -> int:
        """Record a write done by store_large. Returns how many blocks are new."""
        return self._mark_dirty(cf, offset, end)

    def _mark_dirty(self, cf: CacheFile, offset: int, end: int) -> int:
        if end <= offset:
            return 0
        bs = self.block_size
        new = 0
        for blockno in range(offset // bs, (end - 1) // bs + 1):
            if blockno in cf.dirty:
                continue
            if self.db.execute(
                "INSERT OR IGNORE INTO blocks (inode, blockno, state) VALUES (?, ?, ?)",
                (cf.inode, blockno, BLOCK_DIRTY),
            ).rowcount:
                new += 1
            else:
                self.db.execute(
                    "UPDATE blocks SET state = ? WHERE inode = ? AND blockno = ? AND state != ?",
                    (BLOCK_DIRTY, cf.inode, blockno, BLOCK_DIRTY),
                )
            cf.dirty.add(blockno)
        return new

    def read(self, cf: CacheFile, offset: int, size: int) -> bytes:
        """Read up to `size` bytes; the caller has clamped the range to the file's size."""
        if cf.inline:
            return self.db.value(  # type: ignore[no-any-return]
                "SELECT substr(data, ?, ?) FROM inline_data WHERE inode = ?",
                (offset + 1, size, cf.inode),
                b"",
            )
        try:
            return os.pread(cf.fd, size, offset)
        except OSError as exc:
            raise _os_error(exc) from exc

    def truncate(self, ino: int, old_size: int, new_size: int) -> int:
        """Cut or extend a file's cached data. Returns the change in its number of blocks."""
        cf = self.files.get(ino)
        inline = cf.inline if cf is not None else self._is_inline(ino)
        if inline and new_size > self.inline_max:
            if cf is None:
                cf = CacheFile(ino, -1, refs=0)
                self._to_file(cf)
                os.close(cf.fd)
                cf = None
            else:
                self._to_file(cf)
            inline = False
        try:
            if inline:
                cur: bytes = self.db.value(
                    "SELECT data FROM inline_data WHERE inode = ?", (ino,), b""
                )
                cur = cur[:new_size] + bytes(max(0, new_size - len(cur)))
                self.db.execute("UPDATE inline_data SET data = ? WHERE inode = ?", (cur, ino))
            elif cf is not None:
                os.ftruncate(cf.fd, new_size)
            elif new_size == 0:
                try:
                    os.truncate(self.path(ino), 0)
                except FileNotFoundError:
                    pass
            else:
                fd = os.open(self.path(ino), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    os.ftruncate(fd, new_size)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise _os_error(exc) from exc
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
        """Make a cache file's data (and its name, if new) durable on the local disk.

        Inline data needs nothing here: it is made durable with the metadata."""
        if cf.inline:
            return
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
            raise _os_error(exc) from exc
        cf.created = False

    def delete(self, ino: int) -> None:
        """Drop an inode's data: its inline data or cache file, and its block map."""
        self.db.execute("DELETE FROM blocks WHERE inode = ?", (ino,))
        cur = self.db.execute("DELETE FROM inline_data WHERE inode = ?", (ino,))
        if cur.rowcount:
            return
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

        Cache files of inodes that no longer exist (or are inline again) are removed; cache
        files longer than their file are cut; data that reached a cache file without its
        block being recorded is recorded as dirty, so it is uploaded rather than silently
        shadowed.
        """
        report = {"removed": 0, "truncated": 0, "recorded": 0}
        sizes = {
            ino: (mode, size)
            for ino, mode, size in self.db.rows(
                "SELECT id, mode, size FROM inodes WHERE id NOT IN (SELECT inode FROM inline_data)"
            )
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

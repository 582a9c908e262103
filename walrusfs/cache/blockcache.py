"""The write-back block cache: file data on local disk, and the block map that describes it.

A regular file's data lives in one of two places:
- inline, in the `inline_data` table, while the file is small (up to `inline_max`): creating
  a file on the cache disk costs more than the rest of a small file's write path together,
  and inline data is made durable by the same WAL barrier as the metadata;
- otherwise in one sparse cache file, `cache/<xx>/<inode>`, whose bytes are the file's bytes:
  the kernel's reads and writes become one pread or pwrite at the same offset, holes stay
  holes.
New files start inline and move to a cache file, once and for good, when they outgrow the
limit, or grow past a smaller one (`INLINE_PIECEWISE_MAX`) by small writes after the first.
The block map (table `blocks`, see meta/schema.py) records which block-sized pieces hold
data and whether the local copy is newer than (DIRTY), equal to (CLEAN) or missing from
(REMOTE) the chunk last uploaded for it.

Remote blocks are brought back by `ensure_local` before anything reads them or writes part
of them; `fetcher` (set when the filesystem has a network) fetches and authenticates their
chunks. A file whose inline data was evicted keeps no row in `inline_data`; while it has no
cache file either it is still served inline, its row re-created on the first fetch.

Invariants, between operations:
- Inline data is exactly as long as its file.
- While mounted, a cache file is exactly as long as its file (writes extend both, truncate
  cuts both), so bytes past the end never reappear when a file grows again.
- Every block of a file that holds written data has a row in `blocks`; a DIRTY or CLEAN
  block's bytes are in the cache, a REMOTE block's are not (its range is a hole there).
A crash can break the last two for cache files (data reached the cache file, the
transaction recording it did not); `recover()` restores them on the next mount.
docs/cache.md has the details.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import stat as stat_mod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import trio

from walrusfs.durable import fsync_dir
from walrusfs.meta.db import Database
from walrusfs.meta.errors import FsError
from walrusfs.meta.schema import BLOCK_CLEAN, BLOCK_DIRTY, BLOCK_REMOTE

log = logging.getLogger(__name__)

SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)

# Files up to this size keep their data inline. Chosen from the size distribution of real
# trees (Python's stdlib: 99% of files, 67% of bytes) against the cost of creating a cache
# file, which on this machine's ext4 can exceed half a millisecond.
INLINE_MAX = 256 * 1024
# An inline file that is written in pieces rather than in one go moves to a cache file once
# it grows past this: every piece rewrites the whole inline row, so a file the kernel writes
# back a page at a time (it does after a truncate that extends a file with dirty pages, as
# rsync -S does) would cost time and WAL quadratic in its size.
INLINE_PIECEWISE_MAX = 16 * 1024
# Pieces this large are few before a file reaches inline_max: they do not count as pieces.
INLINE_PIECE_SMALL = 64 * 1024
# Blocks whose last use is remembered, for eviction (least recently used first).
LRU_MAX = 262144
# After a read of at least READAHEAD_MIN from a cache file, ask the kernel to read the next
# READAHEAD of it in the background: the FUSE readahead asks for 1 MiB at a time and the
# cache disk's own readahead is smaller, so without it every read waits for the disk.
READAHEAD_MIN = 128 * 1024
READAHEAD = 8 << 20
# Writes at least this large are copied into their cache file by a worker thread.
THREADED_WRITE_MIN = 256 * 1024

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02

Key = tuple[int, int]
# Fetches the plaintext of the chunk with the given row id (store + crypto, set at mount),
# and maybe of chunks after it in its pack: {chunk row id: plaintext}.
Fetcher = Callable[[int], Awaitable[dict[int, bytes]]]


def punch_hole(fd: int, offset: int, length: int) -> None:
    """Free a range of a file without changing its size; it reads as zeros afterwards."""
    res = _libc.fallocate(
        fd,
        _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE,
        ctypes.c_longlong(offset),
        ctypes.c_longlong(length),
    )
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@dataclass(eq=False)
class CacheFile:
    """The cached data of one inode, open while the kernel has the inode open."""

    inode: int
    # The cache file's descriptor, or -1 while the file's data is inline.
    fd: int
    refs: int = 1
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
        self.fetcher: Fetcher | None = None
        # Blocks of open files known to be DIRTY in the database, by inode: a write to one
        # needs no statement. Mirrors the database; whoever changes a block's state keeps it
        # in step. Dropped when the file's last handle closes, so it stays small.
        self.known_dirty: dict[int, set[int]] = {}
        # Set when an uploader runs: it needs the bookkeeping below, a filesystem without a
        # network does not (and would grow it without bound).
        self.tracking = False
        # The write sequence number of each dirty block's last write this session. The
        # uploader compares it before and after sealing a block to know whether the block
        # changed meanwhile. Global and increasing, so a value is never reused; an entry
        # goes when its block is clean.
        self.last_write: dict[Key, int] = {}
        self._write_seq = 0
        # Blocks with I/O in flight (a threaded write, a fetch, a seal): not to be
        # evicted. A count, as I/O on one block can overlap; see `holding`.
        self.busy: collections.Counter[Key] = collections.Counter()
        # Fetches in flight, so that concurrent readers of a block fetch it once.
        self._fetching: dict[Key, trio.Event] = {}
        # When blocks were last read or written (for eviction and the upload delay), the
        # LRU_MAX most recent only: anything older counts as long unused.
        self.last_used: collections.OrderedDict[Key, float] = collections.OrderedDict()

    # -- layout ---------------------------------------------------------------------------

    @staticmethod
    def prepare(directory: str) -> None:
        """Create the cache directory tree (mkfs, or a mount on a fresh machine)."""
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for i in range(256):
            os.makedirs(os.path.join(directory, f"{i:02x}"), mode=0o700, exist_ok=True)

    def path(self, ino: int) -> str:
        return os.path.join(self.directory, f"{ino & 0xFF:02x}", str(ino))

    def block_range(self, offset: int, end: int) -> range:
        bs = self.block_size
        return range(offset // bs, (end - 1) // bs + 1) if end > offset else range(0)

    # -- open and close -------------------------------------------------------------------

    def new_file(self, ino: int) -> None:
        """Give a newly created regular file its (empty) inline data."""
        self.db.execute("INSERT INTO inline_data (inode, data) VALUES (?, x'')", (ino,))

    def _has_inline_row(self, ino: int) -> bool:
        return self.db.row("SELECT 1 FROM inline_data WHERE inode = ?", (ino,)) is not None

    def _open_fd(self, ino: int, size: int, *, create: bool = True) -> tuple[int, bool]:
        path = self.path(ino)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            created = False
        except FileNotFoundError:
            if not create:
                raise
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
        try:
            if self._has_inline_row(ino):
                cf = CacheFile(ino, -1)
            elif size <= self.inline_max:
                # Small and without inline data: evicted, or restored from the network. It
                # stays inline unless it already has a cache file.
                try:
                    fd, _ = self._open_fd(ino, size, create=False)
                    cf = CacheFile(ino, fd)
                except FileNotFoundError:
                    cf = CacheFile(ino, -1)
            else:
                fd, created = self._open_fd(ino, size)
                cf = CacheFile(ino, fd, created=created)
        except OSError as exc:
            raise _os_error(exc) from exc
        self.files[ino] = cf
        return cf

    def close(self, cf: CacheFile) -> None:
        cf.refs -= 1
        if cf.refs == 0:
            del self.files[cf.inode]
            self.known_dirty.pop(cf.inode, None)
            if not cf.inline:
                os.close(cf.fd)

    def _inline_bytes(self, ino: int, size: int) -> bytes:
        """An inline file's data; a missing row (all holes or all remote) reads as zeros."""
        data = self.db.value("SELECT data FROM inline_data WHERE inode = ?", (ino,))
        return bytes(size) if data is None else data

    def _to_file(self, cf: CacheFile, size: int) -> None:
        """Move an inline file's data into a cache file of its own."""
        data = self.db.value("SELECT data FROM inline_data WHERE inode = ?", (cf.inode,))
        try:
            fd, created = self._open_fd(cf.inode, 0)
            try:
                if data:
                    os.pwrite(fd, data, 0)
                os.ftruncate(fd, size)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise _os_error(exc) from exc
        self.db.execute("DELETE FROM inline_data WHERE inode = ?", (cf.inode,))
        cf.fd = fd
        cf.created = created

    @contextlib.contextmanager
    def holding(self, keys: Sequence[Key]) -> Iterator[None]:
        """Mark blocks busy while I/O on them is in flight (eviction leaves them alone)."""
        self.busy.update(keys)
        try:
            yield
        finally:
            for key in keys:
                self.busy[key] -= 1
                if not self.busy[key]:
                    del self.busy[key]

    # -- remote blocks --------------------------------------------------------------------

    async def ensure_local(self, cf: CacheFile, offset: int, end: int) -> None:
        """Bring the remote blocks overlapping [offset, end) into the cache."""
        if end <= offset:
            return
        blocks = self.block_range(offset, end)
        rows = list(
            self.db.rows(
                "SELECT blockno FROM blocks WHERE inode = ? AND blockno BETWEEN ? AND ?"
                " AND state = ?",
                (cf.inode, blocks.start, blocks.stop - 1, BLOCK_REMOTE),
            )
        )
        for (blockno,) in rows:
            await self._fetch_block(cf, blockno)

    async def _fetch_block(self, cf: CacheFile, blockno: int) -> None:
        key = (cf.inode, blockno)
        while (event := self._fetching.get(key)) is not None:
            await event.wait()
        row = self.db.row("SELECT state, chunk FROM blocks WHERE inode = ? AND blockno = ?", key)
        if row is None or row[0] != BLOCK_REMOTE:
            return  # fetched meanwhile, or gone
        if self.fetcher is None:
            raise FsError(errno.EIO, "a block is remote but this filesystem has no network")
        event = self._fetching[key] = trio.Event()
        try:
            with self.holding([key]):
                try:
                    got = await self.fetcher(row[1])
                except Exception as exc:
                    log.error("cannot fetch block %d of inode %d: %s", blockno, cf.inode, exc)
                    raise FsError(errno.EIO) from exc
                # The block may have changed while we waited: then what we fetched is stale.
                now = self.db.row(
                    "SELECT state, chunk FROM blocks WHERE inode = ? AND blockno = ?", key
                )
                if now is not None and now[0] == BLOCK_REMOTE and now[1] == row[1]:
                    self._store_fetched(cf.inode, blockno, got.pop(row[1]), cf)
        finally:
            del self._fetching[key]
            event.set()
        for chunk, data in got.items():
            self._adopt(chunk, data)

    def _adopt(self, chunk: int, data: bytes) -> None:
        """Put a chunk that was fetched ahead into the remote blocks that name it."""
        for ino, blockno in list(
            self.db.rows(
                "SELECT inode, blockno FROM blocks WHERE chunk = ? AND state = ?",
                (chunk, BLOCK_REMOTE),
            )
        ):
            key = (ino, blockno)
            if key in self.busy or key in self._fetching:
                continue
            try:
                self._store_fetched(ino, blockno, data, self.files.get(ino))
            except FsError as exc:
                log.warning("cannot keep a chunk fetched ahead: %s", exc)

    def _store_fetched(self, ino: int, blockno: int, data: bytes, cf: CacheFile | None) -> None:
        """Write a fetched block into the cache and mark it clean."""
        size = self.db.value("SELECT size FROM inodes WHERE id = ?", (ino,), 0)
        start = blockno * self.block_size
        data = data[: max(0, size - start)]
        if cf is not None:
            inline = cf.inline
        else:
            inline = self._has_inline_row(ino) or (
                size <= self.inline_max and not os.path.exists(self.path(ino))
            )
        with self.db.operation():
            if inline:
                cur = self._inline_bytes(ino, size)
                new = cur[:start] + data + cur[start + len(data) :]
                self.db.execute(
                    "INSERT OR REPLACE INTO inline_data (inode, data) VALUES (?, ?)",
                    (ino, new[:size]),
                )
            else:
                try:
                    fd = cf.fd if cf is not None else self._open_fd(ino, size)[0]
                    try:
                        written = os.pwrite(fd, data, start)
                    finally:
                        if cf is None:
                            os.close(fd)
                except OSError as exc:
                    raise _os_error(exc) from exc
                if written != len(data):
                    raise FsError(errno.ENOSPC)
            self.db.execute(
                "UPDATE blocks SET state = ? WHERE inode = ? AND blockno = ? AND state = ?",
                (BLOCK_CLEAN, ino, blockno, BLOCK_REMOTE),
            )

    # -- data -----------------------------------------------------------------------------

    def _touch(self, blocks: range, ino: int) -> None:
        if not self.tracking:
            return
        now = trio.current_time()
        lru = self.last_used
        for b in blocks:
            key = (ino, b)
            lru[key] = now
            lru.move_to_end(key)
        while len(lru) > LRU_MAX:
            lru.popitem(last=False)

    def write(self, cf: CacheFile, offset: int, data: bytes, size: int) -> int:
        """Write into the cache and record the blocks touched. `size` is the file's size
        before the write (used only for inline data). The caller has made partly
        overwritten remote blocks local. Returns how many blocks are new."""
        end = offset + len(data)
        if cf.inline and (
            end > self.inline_max
            or (offset and end > INLINE_PIECEWISE_MAX and len(data) < INLINE_PIECE_SMALL)
        ):
            self._to_file(cf, size)
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
                cur = self._inline_bytes(cf.inode, size)
                if offset > len(cur):
                    cur += bytes(offset - len(cur))
                self.db.execute(
                    "INSERT OR REPLACE INTO inline_data (inode, data) VALUES (?, ?)",
                    (cf.inode, cur[:offset] + data + cur[end:]),
                )
        else:
            try:
                written = os.pwrite(cf.fd, data, offset)
            except OSError as exc:
                raise _os_error(exc) from exc
            if written != len(data):
                raise FsError(errno.ENOSPC)
        return self._mark_dirty(cf.inode, offset, end)

    async def store_large(self, cf: CacheFile, offset: int, data: bytes) -> bool:
        """Write a large piece of data into a cache file in a worker thread, so that copying
        it does not hold up other requests. Returns False, having done nothing, when the
        write is small or inline: then `write` does it all. After True the caller records
        the write with `record`.

        No database work happens here: callers hold no savepoint across the await. The
        kernel sends nothing that conflicts with a write of this inode meanwhile; the
        blocks are busy, so neither eviction nor upload touches them."""
        if cf.inline or len(data) < THREADED_WRITE_MIN:
            return False
        keys = [(cf.inode, b) for b in self.block_range(offset, offset + len(data))]
        with self.holding(keys):
            try:
                written = await trio.to_thread.run_sync(os.pwrite, cf.fd, data, offset)
            except OSError as exc:
                raise _os_error(exc) from exc
        if written != len(data):
            raise FsError(errno.ENOSPC)
        return True

    def record(self, cf: CacheFile, offset: int, end: int) -> int:
        """Record a write done by store_large. Returns how many blocks are new."""
        return self._mark_dirty(cf.inode, offset, end)

    def _mark_dirty(self, ino: int, offset: int, end: int) -> int:
        new = 0
        self._write_seq += 1
        seq = self._write_seq
        blocks = self.block_range(offset, end)
        if self.tracking:
            self._touch(blocks, ino)
            for blockno in blocks:
                self.last_write[(ino, blockno)] = seq
        known = self.known_dirty.setdefault(ino, set())
        for blockno in blocks:
            if blockno in known:
                continue
            if self.db.execute(
                "INSERT OR IGNORE INTO blocks (inode, blockno, state) VALUES (?, ?, ?)",
                (ino, blockno, BLOCK_DIRTY),
            ).rowcount:
                new += 1
            else:
                self.db.execute(
                    "UPDATE blocks SET state = ? WHERE inode = ? AND blockno = ? AND state != ?",
                    (BLOCK_DIRTY, ino, blockno, BLOCK_DIRTY),
                )
            known.add(blockno)
        return new

    def read(self, cf: CacheFile, offset: int, size: int) -> bytes:
        """Read up to `size` bytes; the caller has clamped the range to the file's size and
        made the blocks local."""
        self._touch(self.block_range(offset, offset + size), cf.inode)
        if cf.inline:
            data = self.db.value(
                "SELECT substr(data, ?, ?) FROM inline_data WHERE inode = ?",
                (offset + 1, size, cf.inode),
            )
            return bytes(size) if data is None else data
        try:
            data = os.pread(cf.fd, size, offset)
            if size >= READAHEAD_MIN:
                os.posix_fadvise(cf.fd, offset + size, READAHEAD, os.POSIX_FADV_WILLNEED)
            return data
        except OSError as exc:
            raise _os_error(exc) from exc

    def truncate(self, ino: int, old_size: int, new_size: int) -> int:
        """Cut or extend a file's cached data. Returns the change in its number of blocks.

        Cutting inside a block changes that block: it becomes dirty. The caller has made
        that block local."""
        cf = self.files.get(ino)
        inline = cf.inline if cf is not None else self._has_inline_row(ino)
        if inline and new_size > self.inline_max:
            if cf is None:
                tmp = CacheFile(ino, -1, refs=0)
                self._to_file(tmp, old_size)
                os.close(tmp.fd)
            else:
                self._to_file(cf, old_size)
            inline = False
        try:
            if inline:
                cur = self._inline_bytes(ino, old_size)
                cur = cur[:new_size] + bytes(max(0, new_size - len(cur)))
                self.db.execute(
                    "INSERT OR REPLACE INTO inline_data (inode, data) VALUES (?, ?)", (ino, cur)
                )
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
        bs = self.block_size
        first_gone = -(-new_size // bs)
        gone = self.db.execute(
            "DELETE FROM blocks WHERE inode = ? AND blockno >= ?", (ino, first_gone)
        ).rowcount
        known = self.known_dirty.get(ino)
        if known:
            known.difference_update([b for b in known if b >= first_gone])
        if self.tracking:
            for key in [k for k in self.last_write if k[0] == ino and k[1] >= first_gone]:
                del self.last_write[key]
        last = (new_size - 1) // bs
        if new_size % bs:
            # The last block lost its tail: its chunk no longer matches. (A hole stays one.)
            self._write_seq += 1
            if self.db.execute(
                "UPDATE blocks SET state = ? WHERE inode = ? AND blockno = ?",
                (BLOCK_DIRTY, ino, last),
            ).rowcount:
                self.known_dirty.setdefault(ino, set()).add(last)
                if self.tracking:
                    self.last_write[(ino, last)] = self._write_seq
        return -gone

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
                fsync_dir(os.path.dirname(path))

        try:
            await trio.to_thread.run_sync(work)
        except OSError as exc:
            raise _os_error(exc) from exc
        cf.created = False

    def delete(self, ino: int) -> None:
        """Drop an inode's data: its inline data or cache file, and its block map."""
        self.db.execute("DELETE FROM blocks WHERE inode = ?", (ino,))
        self.known_dirty.pop(ino, None)
        if self.db.execute("DELETE FROM inline_data WHERE inode = ?", (ino,)).rowcount:
            return  # an inline file has no cache file
        try:
            os.unlink(self.path(ino))
        except FileNotFoundError:
            pass

    # -- for the uploader and the evictor -------------------------------------------------

    async def read_block(self, ino: int, blockno: int) -> tuple[bytes, int] | None:
        """A dirty block's bytes and its write sequence number, or None if it is not dirty
        (any more). The data is read as of the returned sequence number."""
        key = (ino, blockno)
        row = self.db.row(
            "SELECT b.state, i.size FROM blocks b JOIN inodes i ON i.id = b.inode"
            " WHERE b.inode = ? AND b.blockno = ?",
            key,
        )
        if row is None or row[0] != BLOCK_DIRTY:
            return None
        size = row[1]
        start = blockno * self.block_size
        length = max(0, min(self.block_size, size - start))
        seq = self.last_write.get(key, 0)
        cf = self.files.get(ino)
        if (cf is not None and cf.inline) or (cf is None and self._has_inline_row(ino)):
            data = self._inline_bytes(ino, size)[start : start + length]
            return data, seq
        path = self.path(ino)

        def work() -> bytes:
            with open(path, "rb") as f:
                return os.pread(f.fileno(), length, start)

        with self.holding([key]):
            try:
                data = await trio.to_thread.run_sync(work)
            except FileNotFoundError:
                # The cache file of a dirty block is gone (removed by hand?): its data is lost.
                log.error(
                    "the cache file of inode %d is missing; block %d reads as zeros", ino, blockno
                )
                data = b""
        if self.last_write.get(key, 0) != seq:
            return None  # written while we read: the next round takes the new data
        return data.ljust(length, b"\0"), seq

    def mark_clean(self, ino: int, blockno: int, seq: int, chunk: int | None) -> bool:
        """Record that a dirty block's data, as of write `seq`, is chunk `chunk` (None: the
        block is all zeros, a hole). False if the block changed meanwhile: it stays dirty."""
        key = (ino, blockno)
        if self.last_write.get(key, 0) != seq:
            return False
        if chunk is None:
            cur = self.db.execute(
                "DELETE FROM blocks WHERE inode = ? AND blockno = ? AND state = ?",
                (ino, blockno, BLOCK_DIRTY),
            )
            if cur.rowcount:
                self.db.execute("UPDATE inodes SET nblocks = nblocks - 1 WHERE id = ?", (ino,))
        else:
            cur = self.db.execute(
                "UPDATE blocks SET state = ?, chunk = ? WHERE inode = ? AND blockno = ?"
                " AND state = ?",
                (BLOCK_CLEAN, chunk, ino, blockno, BLOCK_DIRTY),
            )
        known = self.known_dirty.get(ino)
        if known is not None:
            known.discard(blockno)
        self.last_write.pop(key, None)
        return bool(cur.rowcount)

    def evict(self, ino: int, blockno: int) -> bool:
        """Drop a clean block from the cache: it becomes remote. False if it cannot go now
        (busy, open inline file, or not clean)."""
        key = (ino, blockno)
        if key in self.busy:
            return False
        cf = self.files.get(ino)
        inline = cf.inline if cf is not None else self._has_inline_row(ino)
        if inline:
            if cf is not None:
                return False  # an open inline file keeps its data
            blocks = self.db.value("SELECT COUNT(*) FROM blocks WHERE inode = ?", (ino,))
            if blocks != 1:
                return False
        with self.db.operation():
            cur = self.db.execute(
                "UPDATE blocks SET state = ? WHERE inode = ? AND blockno = ? AND state = ?",
                (BLOCK_REMOTE, ino, blockno, BLOCK_CLEAN),
            )
            if not cur.rowcount:
                return False
            if inline:
                self.db.execute("DELETE FROM inline_data WHERE inode = ?", key[:1])
            else:
                try:
                    fd = cf.fd if cf is not None else os.open(self.path(ino), os.O_RDWR)
                except FileNotFoundError:
                    return True
                try:
                    punch_hole(fd, blockno * self.block_size, self.block_size)
                finally:
                    if cf is None:
                        os.close(fd)
        self.last_used.pop(key, None)
        return True

    # -- accounting -----------------------------------------------------------------------

    def disk_usage(self) -> os.statvfs_result:
        return os.statvfs(self.directory)

    def local_bytes(self, state: int | None = None) -> int:
        """Bytes of the blocks held in the cache (DIRTY and CLEAN), or of one state."""
        states = (state,) if state is not None else (BLOCK_DIRTY, BLOCK_CLEAN)
        marks = ",".join("?" * len(states))
        return int(
            self.db.value(
                "SELECT COALESCE(SUM(MAX(0, MIN(?, i.size - b.blockno * ?))), 0)"
                f" FROM blocks b JOIN inodes i ON i.id = b.inode WHERE b.state IN ({marks})",
                (self.block_size, self.block_size, *states),
            )
        )

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

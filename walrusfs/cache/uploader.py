"""Background work on the cache: upload dirty blocks, evict clean ones, fetch remote ones.

The uploader turns dirty blocks into chunks (store/chunks.py), collects new chunks into packs
and stores each pack as one Walrus blob; once a pack is certified it records, in one
transaction, the pack, its chunks and the blocks that are now clean. Two tasks under one
nursery, joined by a channel of capacity one, so the next pack is sealed while the last one
uploads, and a slow network slows the sealing instead of filling memory:

    pack loop:   wait (delay, or a flush) → eligible dirty blocks → read → name → dedup
                 → seal (worker threads) → PackBuilder → channel
    upload loop: channel → BlobStore.put (retried until certified) → record

A block is clean only as of the write it was read at (BlockCache.last_write): rewritten
while it was sealed or uploaded, it stays dirty and goes in a later pack. A chunk already
stored, or already on its way in a pack, is not stored again (dedup). Blocks of zeros become
holes. The evictor keeps the cache within its size by dropping clean blocks, least recently
used first. docs/uploader.md has the protocol.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import trio

from walrusfs.cache.blockcache import BlockCache, Key
from walrusfs.cache.gate import WriteGate
from walrusfs.crypto import Keys, Tampered
from walrusfs.meta.db import Database
from walrusfs.meta.schema import BLOCK_CLEAN, BLOCK_DIRTY, BLOCK_REMOTE
from walrusfs.store import chunks
from walrusfs.store.blobs import BlobStore, StoredBlob
from walrusfs.store.packs import DEFAULT_PACK_SIZE, PackBuilder
from walrusfs.walrus.errors import WalrusError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachePolicy:
    # Seconds a block stays dirty before it is uploaded, unless a flush asks sooner: a file
    # being written is not uploaded block by block as it grows.
    upload_delay: float = 5.0
    # A pack that is not full waits this long for more chunks before it is stored anyway (not at
    # all when a flush asks, or when writers wait at the dirty limit).
    pack_max_wait: float = 60.0
    pack_size: int = DEFAULT_PACK_SIZE
    # Writers wait when this much data is dirty (not yet on Walrus).
    dirty_limit: int = 4 << 30
    # Clean blocks are evicted when the cache holds more than this.
    cache_size: int = 16 << 30
    scan_interval: float = 1.0


@dataclass
class _Pack(PackBuilder):
    # Blocks to record as clean when the pack is stored: (inode, blockno, write seq, chunk id).
    refs: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    opened: float = field(default_factory=time.monotonic)


class ChunkFetcher:
    """Fetches chunks from their packs, only the byte ranges needed, and opens them.

    Reads that look sequential (this fetch follows the previous one in the same pack) fetch
    ahead: the chunks after this one in the pack that remote blocks still need, up to
    READAHEAD bytes, in the same range request. Chunks of files written together sit
    together in packs, so a restored tree read in order costs a request per few MiB, not
    per file. Every chunk is authenticated; one that fails is reported if it was asked for,
    and dropped if it was fetched ahead."""

    READAHEAD = 2 << 20

    def __init__(self, db: Database, blobs: BlobStore, keys: Keys) -> None:
        self.db = db
        self.blobs = blobs
        self.keys = keys
        self._last: tuple[int, int] | None = None  # (pack, end offset) of the last fetch

    def _plan(self, chunk: int) -> tuple[str, list[tuple[int, bytes, int, int, int]]]:
        row = self.db.row(
            "SELECT c.pack, c.hash, c.offset, c.length, c.size, p.blob_id FROM chunks c"
            " JOIN packs p ON p.id = c.pack WHERE c.id = ?",
            (chunk,),
        )
        if row is None:
            raise LookupError(f"chunk {chunk} is not in the metadata")
        pack, cid, offset, length, size, blob_id = row
        wanted = [(chunk, cid, offset, length, size)]
        last = self._last
        sequential = last is not None and last[0] == pack and 0 <= offset - last[1] <= (1 << 20)
        if sequential:
            wanted += self.db.rows(
                "SELECT c.id, c.hash, c.offset, c.length, c.size FROM chunks c"
                " WHERE c.pack = ? AND c.offset > ? AND c.offset + c.length <= ? AND EXISTS"
                " (SELECT 1 FROM blocks b WHERE b.chunk = c.id AND b.state = ?)"
                " ORDER BY c.offset",
                (pack, offset, offset + self.READAHEAD, BLOCK_REMOTE),
            )
        end = max(o + n for _, _, o, n, _ in wanted)
        self._last = (pack, end)
        return blob_id, wanted

    async def __call__(self, chunk: int) -> dict[int, bytes]:
        blob_id, wanted = self._plan(chunk)
        start = wanted[0][2]
        end = max(o + n for _, _, o, n, _ in wanted)
        data = await self.blobs.get(blob_id, start, end - start)

        def open_all() -> dict[int, bytes]:
            out = {}
            for row_id, cid, offset, length, size in wanted:
                sealed = data[offset - start : offset - start + length]
                try:
                    out[row_id] = chunks.open_chunk(self.keys, cid, sealed, size)
                except Tampered:
                    if row_id == chunk:
                        raise
                    log.warning("a chunk fetched ahead failed authentication; dropped")
            return out

        return await trio.to_thread.run_sync(open_all)


class Uploader:
    def __init__(
        self,
        db: Database,
        cache: BlockCache,
        blobs: BlobStore,
        keys: Keys,
        gate: WriteGate,
        policy: CachePolicy,
    ) -> None:
        self.db = db
        self.cache = cache
        self.blobs = blobs
        self.keys = keys
        self.gate = gate
        self.policy = policy
        self._wakeup = trio.Event()
        self._progress = trio.Event()
        self._flushing = 0
        # Chunks sealed into a pack that is not recorded yet, and the blocks waiting on them.
        self._pending: dict[bytes, _Pack] = {}
        self._in_flight: set[Key] = set()
        self._builder = _Pack(target=policy.pack_size)
        self.stored_bytes = 0
        self.stored_packs = 0
        self.cost = 0
        # Why uploads fail right now, if they do (for status reports).
        self.failing: str | None = None

    # -- control --------------------------------------------------------------------------

    def wake(self) -> None:
        self._wakeup.set()

    def _made_progress(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    def dirty_blocks(self) -> int:
        return int(self.db.value("SELECT COUNT(*) FROM blocks WHERE state = ?", (BLOCK_DIRTY,)))

    async def flush(self) -> None:
        """Upload every dirty block now; return when none is left. Call with writes frozen
        to be sure of the end: otherwise writers can keep making more."""
        self._flushing += 1
        try:
            while self.dirty_blocks():
                self.wake()
                await self._progress.wait()
        finally:
            self._flushing -= 1

    def measure(self) -> None:
        self.gate.measured(self.cache.local_bytes(BLOCK_DIRTY))

    # -- the tasks ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, recv = trio.open_memory_channel[_Pack](1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._upload_loop, recv)
            nursery.start_soon(self._evict_loop)
            self.measure()
            task_status.started()
            async with send:
                await self._pack_loop(send)

    def _eligible(self) -> list[Key]:
        now = trio.current_time()
        delay = 0.0 if self._flushing or self.gate.pressed else self.policy.upload_delay
        found = []
        for ino, blockno in self.db.rows(
            "SELECT inode, blockno FROM blocks WHERE state = ? LIMIT 20000", (BLOCK_DIRTY,)
        ):
            key = (ino, blockno)
            if key in self._in_flight or key in self.cache.busy:
                continue
            if delay and now - self.cache.last_used.get(key, -math.inf) < delay:
                continue
            found.append(key)
        return found

    async def _pack_loop(self, send: trio.MemorySendChannel[_Pack]) -> None:
        while True:
            with trio.move_on_after(self.policy.scan_interval):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            for key in self._eligible():
                await self._take(key, send)
            builder = self._builder
            if builder and (
                self._flushing
                or builder.full
                or self.gate.pressed
                or time.monotonic() - builder.opened >= self.policy.pack_max_wait
            ):
                self._builder = _Pack(target=self.policy.pack_size)
                await send.send(builder)
            self.measure()
            if self._flushing and not self._in_flight:
                self._made_progress()

    async def _take(self, key: Key, send: trio.MemorySendChannel[_Pack]) -> None:
        ino, blockno = key
        got = await self.cache.read_block(ino, blockno)
        if got is None:
            return
        data, seq = got
        if chunks.is_zero(data):
            with self.db.operation():
                self.cache.mark_clean(ino, blockno, seq, None)
            self._made_progress()
            return
        cid = await trio.to_thread.run_sync(chunks.name, self.keys, data)
        known = self.db.value("SELECT id FROM chunks WHERE hash = ?", (cid,))
        if known is not None:
            with self.db.operation():
                self.cache.mark_clean(ino, blockno, seq, known)
            self._made_progress()
            return
        waiting = self._pending.get(cid)
        if waiting is not None:
            waiting.refs.append((ino, blockno, seq, cid))
            self._in_flight.add(key)
            return
        sealed = await trio.to_thread.run_sync(chunks.seal_chunk, self.keys, cid, data)
        if cid in self._pending:  # sealed twice meanwhile: take the first
            self._pending[cid].refs.append((ino, blockno, seq, cid))
            self._in_flight.add(key)
            return
        if not self._builder.fits(sealed):
            full, self._builder = self._builder, _Pack(target=self.policy.pack_size)
            await send.send(full)
        self._builder.add(sealed)
        self._builder.refs.append((ino, blockno, seq, cid))
        self._pending[cid] = self._builder
        self._in_flight.add(key)

    async def _upload_loop(self, recv: trio.MemoryReceiveChannel[_Pack]) -> None:
        async with recv:
            async for pack in recv:
                data = pack.data()
                while True:
                    try:
                        stored = await self.blobs.put(data)
                        break
                    except WalrusError as exc:
                        # Something no retry mends (a publisher limit below our pack size,
                        # say): the data stays dirty here; say so, and try again later.
                        self.failing = str(exc)
                        log.error("cannot store a pack, will try again in a minute: %s", exc)
                        await trio.sleep(60)
                self.failing = None
                self._record(pack, stored)

    def _record(self, pack: _Pack, stored: StoredBlob | None) -> None:
        ids: dict[bytes, int] = {}
        with self.db.operation():
            if stored is not None:
                pack_id = self.db.execute(
                    "INSERT INTO packs (blob_id, object_id, size, end_epoch, kind, created_ns)"
                    " VALUES (?, ?, ?, ?, 'data', ?)",
                    (stored.blob_id, stored.object_id, stored.size, stored.end_epoch,
                     time.time_ns()),
                ).lastrowid  # fmt: skip
                for placed in pack.placed:
                    ids[placed.chunk.id] = self.db.execute(  # type: ignore[assignment]
                        "INSERT INTO chunks (hash, pack, offset, length, size, refcount)"
                        " VALUES (?, ?, ?, ?, ?, 0)",
                        (placed.chunk.id, pack_id, placed.offset, placed.length,
                         placed.chunk.size),
                    ).lastrowid  # fmt: skip
            for ino, blockno, seq, cid in pack.refs:
                chunk = ids.get(cid)
                if chunk is None:
                    chunk = self.db.value("SELECT id FROM chunks WHERE hash = ?", (cid,))
                self.cache.mark_clean(ino, blockno, seq, chunk)
                self._in_flight.discard((ino, blockno))
        for cid in ids:
            self._pending.pop(cid, None)
        if stored is not None:
            self.stored_bytes += stored.size
            self.stored_packs += 1
            self.cost += stored.cost
            log.debug("stored pack %s: %d chunks, %d bytes", stored.blob_id, len(ids), stored.size)
        self.measure()
        self._made_progress()

    # -- eviction -------------------------------------------------------------------------

    async def _evict_loop(self) -> None:
        while True:
            await trio.sleep(self.policy.scan_interval * 5)
            self.evict()

    def evict(self) -> int:
        """Drop clean blocks, least recently used first, until the cache is within 90% of
        its size. Returns the bytes freed."""
        used = self.cache.local_bytes()
        if used <= self.policy.cache_size:
            return 0
        target = int(self.policy.cache_size * 0.9)
        bs = self.cache.block_size
        rows = list(
            self.db.rows(
                "SELECT b.inode, b.blockno, MAX(0, MIN(?, i.size - b.blockno * ?))"
                " FROM blocks b JOIN inodes i ON i.id = b.inode WHERE b.state = ?",
                (bs, bs, BLOCK_CLEAN),
            )
        )
        rows.sort(key=lambda r: self.cache.last_used.get((r[0], r[1]), -math.inf))
        freed = 0
        for ino, blockno, length in rows:
            if used - freed <= target:
                break
            if self.cache.evict(ino, blockno):
                freed += length
        if freed:
            log.info("evicted %d bytes from the cache", freed)
        return freed

"""A storage node's shares, with their metadata, in append-only segment files.

A node used to keep a file per share (and a metadata file or row beside it): every confirmed
share cost a file creation, a temp-file rename and three fsyncs (share, directory, metadata).
On this project's 2-core machines that was 0.5-1.1 ms of kernel CPU per share, most of it
ext4 allocating an inode, and three rounds of journal commits before a node could confirm.
Here a share and everything the node knows about it are one record appended to the node's
current segment file, made durable by one fdatasync, which concurrent appends share (group
commit): one sync round per batch, no file created per share.

Layout: `DIR/NNNNNNNN.seg`, numbered from 1. A new segment starts (created, its directory
fsynced once) when the current one would pass `segment_size`. A record starts at a multiple of
4096 bytes (shares are written with O_DIRECT straight from the page-aligned buffers they were
received in):

    header (header_len bytes, a multiple of 4096):
        magic b"WFSNODE1" | kind u8 | 3 zero bytes | header_len u32 | data_len u64 |
        blob id (32 bytes) | stored_epoch u64 | stored_at f64 | metadata_len u32 | metadata |
        zeros | Blake2b-256 of everything before it (the header's last 32 bytes)
    data (data_len bytes, zero-padded to a multiple of 4096): the share

Kinds: LIVE (1), a share the node holds; DEAD (2), a record dropped later (expired, deleted,
replaced or found corrupt), marked by rewriting its header block in place with the kind
changed. A DEAD mark is not synced: lost in a crash, the share comes back and is dropped again
(maintenance drops what the chain no longer pays for; a corrupt share fails its hash again).

Replay at start reads every header in segment order; for a blob id the last LIVE record wins.
A header that fails its checksum (a write torn by a crash, never confirmed) is skipped by
looking for the next valid header at the following 4096-byte boundaries.

Corruption behind the node's back: the node hashes a share when it stores it, and afterwards
only when the segment holding it changed in a way its own writes do not explain: after each of
its writes it notes the segment file's size, mtime and inode, and a read that finds them
different bumps the segment's generation, which invalidates every verification made in it.
`verified.json` keeps, across restarts, the stat of segments whose shares were all verified
(a cache: without it shares are hashed again before they are served).

Space: records of dropped shares are garbage; a segment without LIVE records is removed, and
one mostly garbage has its LIVE records copied to the current segment first (`compact`).

Calls block (disk I/O): run them in a worker thread. Thread-safe.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from walrusfs.devnet.blobid import blake2b256, blob_id_from_text, blob_id_to_text
from walrusfs.devnet.buffers import IOV_MAX, POOL, round_up
from walrusfs.devnet.durable import fsync_dir

log = logging.getLogger(__name__)

ALIGN = 4096
MAGIC = b"WFSNODE1"
KIND_LIVE = 1
KIND_DEAD = 2
SEGMENT_SIZE = 256 << 20
_FIXED = struct.Struct("<8sB3xIQ32sQdI")
_SUFFIX = ".seg"
_VERIFIED = "verified.json"

StatSig = tuple[int, int, int]


@dataclass(frozen=True)
class Record:
    """Where a LIVE record is, and what it says."""

    segment: int
    offset: int
    header_len: int
    data_len: int
    blob_id: str
    metadata: bytes
    stored_epoch: int
    stored_at: float

    @property
    def size(self) -> int:
        return self.header_len + round_up(self.data_len, ALIGN)


def encode_header(
    kind: int, blob_id: str, metadata: bytes, stored_epoch: int, stored_at: float, data_len: int
) -> bytes:
    header_len = round_up(_FIXED.size + len(metadata) + 32, ALIGN)
    fixed = _FIXED.pack(
        MAGIC,
        kind,
        header_len,
        data_len,
        blob_id_from_text(blob_id),
        stored_epoch,
        stored_at,
        len(metadata),
    )
    body = fixed + metadata + bytes(header_len - 32 - len(fixed) - len(metadata))
    return body + blake2b256(body)


def decode_header(block: bytes | memoryview) -> tuple[int, int, int, str, int, float, bytes] | None:
    """(kind, header_len, data_len, blob id, stored_epoch, stored_at, metadata) of a header
    starting at `block` (which holds at least its first 4096 bytes, all of it if longer), or
    None if it is not a valid header."""
    if len(block) < ALIGN or bytes(block[:8]) != MAGIC:
        return None
    _magic, kind, header_len, data_len, raw_id, epoch, at, meta_len = _FIXED.unpack_from(block)
    if header_len % ALIGN or header_len > len(block) or _FIXED.size + meta_len + 32 > header_len:
        return None
    if blake2b256(block[: header_len - 32]) != bytes(block[header_len - 32 : header_len]):
        return None
    if kind not in (KIND_LIVE, KIND_DEAD):
        return None
    metadata = bytes(block[_FIXED.size : _FIXED.size + meta_len])
    return kind, header_len, data_len, blob_id_to_text(bytes(raw_id)), epoch, at, metadata


def _aligned(size: int) -> mmap.mmap:
    return mmap.mmap(-1, max(round_up(size, ALIGN), ALIGN))


def _direct_works(directory: Path) -> bool:
    """Whether files in `directory` take O_DIRECT writes of 4096-aligned buffers (tmpfs and
    some others refuse the flag, or the alignment)."""
    probe = directory / ".direct-probe"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        buf = _aligned(ALIGN)
        os.pwritev(fd, [memoryview(buf)], 0)
        os.preadv(fd, [memoryview(buf)], 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def _scan(path: Path, number: int) -> Iterator[Record]:
    """The LIVE records of a segment file, in order."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        while offset + ALIGN <= size:
            f.seek(offset)
            block = f.read(ALIGN)
            header = decode_header(block)
            if header is None and block[:8] == MAGIC:
                (header_len,) = struct.unpack_from("<I", block, 12)
                if ALIGN < header_len <= 1 << 24:
                    f.seek(offset)
                    header = decode_header(f.read(header_len))
            if header is None:
                offset += ALIGN  # torn by a crash (never confirmed): find the next header
                continue
            kind, header_len, data_len, blob_id, epoch, at, metadata = header
            if offset + header_len + data_len > size:
                log.warning("%s: the record at %d is cut short; skipped", path, offset)
                offset += ALIGN
                continue
            if kind == KIND_LIVE:
                yield Record(number, offset, header_len, data_len, blob_id, metadata, epoch, at)
            offset += header_len + round_up(data_len, ALIGN)


class _Segment:
    def __init__(self, number: int, path: Path, fd: int, direct: bool, size: int) -> None:
        self.number = number
        self.path = path
        self.fd = fd
        self.direct = direct
        self.size = size
        """Where the next record goes."""
        self.live_bytes = 0
        self.written = 0
        """Appends completed (pwrite returned), counted."""
        self.synced = 0
        """Appends known durable: an fdatasync began after they completed."""
        self.generation = 0
        """Bumped when the file changed in a way our own writes do not explain."""
        self.trusted: StatSig | None = None
        """The file's stat after our last write (or as last accepted)."""
        self.writing = 0
        """Our writes in progress: while any is, the file's stat cannot be judged."""
        self.readers = 0
        """Pins: reads and appends under way; a pinned segment is not removed."""


def _sig(st: os.stat_result) -> StatSig:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class NewRecord:
    """A share to append, with what its record says (see `ShareLog.append`)."""

    blob_id: str
    metadata: bytes
    stored_epoch: int
    stored_at: float
    share: bytes | bytearray | memoryview
    aligned: memoryview | None = None


class PendingRecord:
    """A record `ShareLog.append` wrote; `commit` makes it durable (exactly once)."""

    def __init__(self, log: ShareLog, segment: _Segment, record: Record) -> None:
        self._log = log
        self._segment = segment
        self.record = record

    def commit(self) -> Record:
        segment = self._segment
        try:
            self._log._sync(segment)
            with self._log._lock:
                segment.live_bytes += self.record.size
        finally:
            self._log._unpin(segment)
        return self.record


class ShareLog:
    """The shares of one node, in `directory` (created if missing)."""

    def __init__(self, directory: Path, *, segment_size: int = SEGMENT_SIZE) -> None:
        self.directory = directory
        self._segment_size = segment_size
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._active: _Segment | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._direct = _direct_works(directory)

    def _open(self, path: Path, flags: int) -> tuple[int, bool]:
        if self._direct:
            return os.open(path, flags | os.O_DIRECT, 0o600), True
        return os.open(path, flags, 0o600), False

    # -- start

    def replay(self) -> tuple[dict[str, Record], set[str]]:
        """Open the segments and return (the LIVE record of every blob held, the blob ids
        whose shares were verified in a segment unchanged since)."""
        live: dict[str, Record] = {}
        paths = sorted(
            (int(p.stem), p)
            for p in self.directory.iterdir()
            if p.suffix == _SUFFIX and p.stem.isdigit()
        )
        for number, path in paths:
            fd, direct = self._open(path, os.O_RDWR)
            segment = _Segment(number, path, fd, direct, 0)
            segment.size = round_up(os.fstat(fd).st_size, ALIGN)
            self._segments[number] = segment
            for record in _scan(path, number):
                old = live.get(record.blob_id)
                if old is not None:  # replaced (a re-upload, or a copy made by compact)
                    self._mark_dead(old, account=False)
                live[record.blob_id] = record
        for record in live.values():
            self._segments[record.segment].live_bytes += record.size
        if paths:
            self._active = self._segments[paths[-1][0]]
        for segment in self._segments.values():
            segment.trusted = _sig(os.fstat(segment.fd))
        verified = self._load_verified(live)
        return live, verified

    def _load_verified(self, live: dict[str, Record]) -> set[str]:
        try:
            saved = json.loads((self.directory / _VERIFIED).read_text())
        except (OSError, ValueError):
            return set()
        good = set()
        for number_text, sig in saved.items():
            segment = self._segments.get(int(number_text))
            if segment is not None and tuple(sig) == segment.trusted:
                good.add(segment.number)
        return {b for b, r in live.items() if r.segment in good}

    def save_verified(self, verified: dict[int, bool]) -> None:
        """Remember, for the next start, which segments held only verified shares
        (`verified`: segment number -> all its LIVE shares are verified). A cache: no fsync."""
        with self._lock:
            sigs = {
                str(n): list(s.trusted)
                for n, s in self._segments.items()
                if s.trusted is not None and verified.get(n, s.live_bytes == 0)
            }
        tmp = self.directory / (_VERIFIED + ".tmp")
        tmp.write_text(json.dumps(sigs))
        os.replace(tmp, self.directory / _VERIFIED)

    # -- writing

    def append(
        self,
        blob_id: str,
        metadata: bytes,
        stored_epoch: int,
        stored_at: float,
        share: bytes | bytearray | memoryview,
        aligned: memoryview | None = None,
    ) -> PendingRecord:
        """Append a LIVE record for the share; it is durable once its `commit` returns.

        `commit` must follow (the segment stays pinned until then). Writing several records
        before committing any lets one fdatasync cover them all. `aligned`: a page-aligned
        view starting with the share, its length rounded up to 4096 (a pool lease's), so the
        share goes to disk without a copy."""
        new = NewRecord(blob_id, metadata, stored_epoch, stored_at, share, aligned)
        return self.append_many([new])[0]

    def append_many(self, records: Sequence[NewRecord]) -> list[PendingRecord]:
        """`append` for several records at once: they go to consecutive places in one
        segment, written by one system call (a node stores the shares of a batch request
        together; a thread writing them one by one gave up and took back the GIL around
        each write, which cost the node's event loop a thread switch each time)."""
        headers = [
            encode_header(
                KIND_LIVE,
                new.blob_id,
                new.metadata,
                new.stored_epoch,
                new.stored_at,
                len(new.share),
            )
            for new in records
        ]
        # Every header in one pooled buffer: a mapping per header cost two system calls.
        header_lease = POOL.get(sum(len(h) for h in headers))
        leases = [header_lease]
        try:
            views: list[memoryview] = []
            sizes = []
            at = 0
            for new, header in zip(records, headers, strict=True):
                data_len = len(new.share)
                padded = round_up(data_len, ALIGN)
                aligned = new.aligned
                if aligned is None or len(aligned) < padded:
                    lease = POOL.get(max(data_len, 1))
                    leases.append(lease)
                    lease.view[:data_len] = new.share
                    aligned = lease.aligned
                header_view = header_lease.view[at : at + len(header)]
                header_view[:] = header
                at += len(header)
                views.append(header_view)
                if padded:
                    views.append(aligned[:padded])
                sizes.append((len(header), data_len))
            total = sum(h + round_up(d, ALIGN) for h, d in sizes)
            segment, offset = self._reserve(total, pins=len(records))
            try:
                self._write(segment, views, offset)
            except BaseException:
                self._unpin(segment, len(records))
                raise
        finally:
            for lease in leases:
                lease.release()
        pending = []
        for new, (header_len, data_len) in zip(records, sizes, strict=True):
            record = Record(
                segment.number,
                offset,
                header_len,
                data_len,
                new.blob_id,
                new.metadata,
                new.stored_epoch,
                new.stored_at,
            )
            pending.append(PendingRecord(self, segment, record))
            offset += record.size
        return pending

    def _reserve(self, size: int, pins: int = 1) -> tuple[_Segment, int]:
        """Room for `size` bytes at the end of the current segment (starting a new one if it
        is full); the segment is pinned `pins` times, each undone by `_unpin`."""
        with self._lock:
            active = self._active
            if active is None or (active.size and active.size + size > self._segment_size):
                number = max(self._segments, default=0) + 1
                path = self.directory / f"{number:08d}{_SUFFIX}"
                fd, direct = self._open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
                fsync_dir(self.directory)  # the new segment's name is durable
                active = self._active = self._segments[number] = _Segment(
                    number, path, fd, direct, 0
                )
                # Trusted from birth: a scrub that looks at it before the first write lands
                # must not take the empty file for a change behind the node's back.
                active.trusted = _sig(os.fstat(fd))
            offset = active.size
            active.size += size
            active.readers += pins
            return active, offset

    def _unpin(self, segment: _Segment, pins: int = 1) -> None:
        with self._lock:
            segment.readers -= pins

    def _write(self, segment: _Segment, views: list[memoryview], offset: int) -> None:
        with self._lock:
            segment.writing += 1
        try:
            for first in range(0, len(views), IOV_MAX):
                chunk = views[first : first + IOV_MAX]
                total = sum(len(v) for v in chunk)
                written = os.pwritev(segment.fd, chunk, offset)
                if written != total:
                    raise OSError(f"short write to {segment.path}: {written} of {total} bytes")
                offset += written
        finally:
            with self._lock:
                segment.writing -= 1
                segment.trusted = _sig(os.fstat(segment.fd))
        with self._lock:
            segment.written += 1

    def _sync(self, segment: _Segment) -> None:
        """Durable: every append to `segment` completed so far. Concurrent callers share one
        fdatasync (group commit)."""
        with self._lock:
            mine = segment.written
        with self._sync_lock:
            if segment.synced >= mine:
                return  # an fdatasync that began after our write already covered it
            with self._lock:
                covering = segment.written
            os.fdatasync(segment.fd)
            segment.synced = covering

    def mark_dead(self, record: Record) -> None:
        """The record's share is no longer held (not synced, see the module docstring)."""
        self._mark_dead(record)

    def _mark_dead(self, record: Record, *, account: bool = True) -> None:
        segment = self._pin(record.segment)
        if segment is None:
            return
        try:
            header = encode_header(
                KIND_DEAD,
                record.blob_id,
                record.metadata,
                record.stored_epoch,
                record.stored_at,
                record.data_len,
            )
            buf = _aligned(len(header))
            buf[: len(header)] = header
            self._write(segment, [memoryview(buf)], record.offset)
            if account:
                with self._lock:
                    segment.live_bytes -= record.size
        finally:
            self._unpin(segment)

    # -- reading

    def _pin(self, number: int) -> _Segment | None:
        with self._lock:
            segment = self._segments.get(number)
            if segment is None or segment.fd < 0:
                return None
            segment.readers += 1
            return segment

    def generation(self, number: int) -> int:
        """The segment's generation, after checking that it has not changed behind our back."""
        segment = self._pin(number)
        if segment is None:
            return -1
        try:
            with self._lock:
                if segment.writing:
                    # Our own append is under way and will set `trusted` when it returns; a
                    # change by someone else now is caught at the next check after it.
                    return segment.generation
                sig = _sig(os.fstat(segment.fd))
                if sig != segment.trusted:
                    log.warning("%s changed behind the node's back", segment.path)
                    segment.generation += 1
                    segment.trusted = sig
                return segment.generation
        finally:
            self._unpin(segment)

    def read(self, record: Record, into: memoryview) -> bool:
        """Read the share into `into` (page-aligned, at least the share's length rounded up to
        4096); False if its segment is gone."""
        segment = self._pin(record.segment)
        if segment is None:
            return False
        try:
            # O_DIRECT reads whole aligned blocks; a buffered fd reads just the share.
            want = round_up(record.data_len, ALIGN) if segment.direct else record.data_len
            offset = record.offset + record.header_len
            got = 0
            while got < want:
                n = os.preadv(segment.fd, [into[got:want]], offset + got)
                if n <= 0:
                    return False
                got += n
            return True
        finally:
            self._unpin(segment)

    # -- space

    def segments(self) -> dict[int, tuple[int, int]]:
        """Segment number -> (its size, the bytes of LIVE records in it)."""
        with self._lock:
            return {n: (s.size, s.live_bytes) for n, s in self._segments.items()}

    def active_segment(self) -> int | None:
        with self._lock:
            return None if self._active is None else self._active.number

    def remove_segment(self, number: int) -> bool:
        """Remove a segment without LIVE records (durably). False, and nothing done, while
        anything has it pinned: a read, or an append that reserved room in it before a
        newer segment took over and has not counted its record yet (removing the file then
        would lose a share the node is about to confirm)."""
        with self._lock:
            segment = self._segments.get(number)
            if segment is None:
                return True
            if segment.readers > 0:
                return False
            assert segment.live_bytes <= 0, "a segment with live records"
            del self._segments[number]
            if self._active is segment:
                self._active = None
            os.close(segment.fd)
            segment.fd = -1
        segment.path.unlink(missing_ok=True)
        fsync_dir(self.directory)
        return True

    def copy(self, record: Record) -> Record | None:
        """Append a durable copy of a LIVE record (to empty its segment) and mark the old one
        dead; None if its segment is gone."""
        lease = POOL.get(max(record.data_len, 1))
        try:
            if not self.read(record, lease.aligned):
                return None
            moved = self.append(
                record.blob_id,
                record.metadata,
                record.stored_epoch,
                record.stored_at,
                lease.view,
                lease.aligned,
            ).commit()
        finally:
            lease.release()
        self._mark_dead(record)
        return moved

    def close(self) -> None:
        with self._lock:
            for segment in self._segments.values():
                if segment.fd >= 0:
                    os.close(segment.fd)
                    segment.fd = -1
            self._segments.clear()
            self._active = None


def scan(directory: Path) -> dict[str, tuple[Path, int, int]]:
    """The shares a node's log holds, read-only (for tests and tools): blob id -> (segment
    file, offset of the share's first byte, its length)."""
    out: dict[str, tuple[Path, int, int]] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob(f"*{_SUFFIX}")):
        if path.stem.isdigit():
            for record in _scan(path, int(path.stem)):
                out[record.blob_id] = (path, record.offset + record.header_len, record.data_len)
    return out

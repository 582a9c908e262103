"""A storage node's index of the blobs it knows: one SQLite database per node.

A node keeps each share as a raw file (`blobs/<blobId>.share`) and everything else about the
blob in this index, as a Walrus storage node keeps its metadata in a database next to its
slivers. One row per blob; a row is written (and committed durably, WAL with synchronous=FULL)
only after the blob's share file, if it has one, is durable under its final name, so at every
instant of a crash a row's share is either complete or absent. A share file without a row was
never confirmed and is dropped at start.

Before this index a node wrote a JSON `blobs/<blobId>.meta` file per blob, temp + fsync +
rename + fsync dir, which cost a second file creation per share (expensive on ext4 under
churn) and two more fsyncs; such files are imported at start and then removed.

Calls block (disk I/O, fsync): run them in a worker thread. Thread-safe.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    blob_id TEXT PRIMARY KEY,       -- the blob id, text form; its share is blobs/<blob_id>.share
    metadata BLOB NOT NULL,         -- BlobMetadata wire form (encoding, length, n share hashes);
                                    -- it hashes to blob_id (checked when it arrived and at load)
    stored_epoch INTEGER NOT NULL,  -- epoch of the last upload of the metadata: a copy uploaded
                                    -- before an end epoch or deletion belongs to that old blob
    stored_at REAL NOT NULL,        -- unix time of that upload (uncertified uploads expire)
    share_size INTEGER,             -- the share file's size, mtime (ns) and inode when its hash
    share_mtime_ns INTEGER,         -- was last checked against metadata; NULL: never checked,
    share_ino INTEGER               -- so it is re-hashed before it is served
) WITHOUT ROWID;
"""

StatSig = tuple[int, int, int]


@dataclass(frozen=True)
class IndexRecord:
    blob_id: str
    metadata: bytes
    stored_epoch: int
    stored_at: float
    share_stat: StatSig | None


class NodeIndex:
    """The blobs a node knows, in `path` (created if missing)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def records(self) -> list[IndexRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT blob_id, metadata, stored_epoch, stored_at, share_size, "
                "share_mtime_ns, share_ino FROM blobs"
            ).fetchall()
        return [
            IndexRecord(
                str(b),
                bytes(m),
                int(e),
                float(t),
                None if size is None else (int(size), int(mtime), int(ino)),
            )
            for b, m, e, t, size, mtime, ino in rows
        ]

    def put(self, records: Iterable[IndexRecord]) -> None:
        """Insert or replace rows, durably, in one transaction."""
        rows = [
            (r.blob_id, r.metadata, r.stored_epoch, r.stored_at, *(r.share_stat or (None,) * 3))
            for r in records
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO blobs(blob_id, metadata, stored_epoch, stored_at, "
                    "share_size, share_mtime_ns, share_ino) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def remove(self, blob_ids: Iterable[str]) -> None:
        """Delete rows, durably, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "DELETE FROM blobs WHERE blob_id = ?", [(b,) for b in blob_ids]
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

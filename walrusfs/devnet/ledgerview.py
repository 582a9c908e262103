"""A read-only view of the devnet's ledger from another process, for storage nodes.

Storage nodes run in a process of their own (devnet.nodehost), away from the ledger, which
only its owner's process writes. What a node asks of the chain is read-only and small: the
epoch, the committee, until when a blob is paid for and which blobs are live. `LedgerView`
answers those from the ledger's SQLite database (WAL mode, so reading from another process
never blocks its writer and sees every committed transaction), implementing the part of the
`BlobRegistry` seam that `StorageNode` uses.

The blob queries are the ledger's own (devnet.blobqueries); the committee query mirrors
`walrusfs.devnet.ledger.store.Store`'s, and tests check that both agree. The epoch follows
the ledger's clock formula (base epoch + elapsed time // epoch length, from the `meta` rows
the ledger writes at creation and when its epoch length changes), which is what the ledger's
own epoch changes follow, so the view never needs to write. It imports nothing of the ledger
package, so the node process starts quickly.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from walrusfs.devnet.blobid import blob_id_from_text, blob_id_to_text
from walrusfs.devnet.blobqueries import blob_lifetimes, live_blob_ids
from walrusfs.devnet.registry import BlobStatus, Committee, CommitteeMember, SystemParams


class LedgerView:
    """Read-only chain state for storage nodes; thread-safe."""

    def __init__(
        self,
        database: Path,
        params: SystemParams,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._params = params
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            f"file:{database}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        # The ledger writes these at genesis and when the epoch length changes, which happens
        # only when the ledger is opened, before any node process starts.
        self._base_epoch = int(meta.get("clock_base_epoch", 1))
        self._base_time = float(meta.get("clock_base_time", 0.0))
        self._epoch_seconds = float(meta.get("clock_epoch_seconds", params.epoch_seconds))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def params(self) -> SystemParams:
        return self._params

    def current_epoch(self) -> int:
        elapsed = self._clock() - self._base_time
        return self._base_epoch + max(0, int(elapsed // self._epoch_seconds))

    def committee(self) -> Committee:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, public_key, url FROM committee ORDER BY idx"
            ).fetchall()
        return Committee(tuple(CommitteeMember(int(i), bytes(k), str(u)) for i, k, u in rows))

    def blob_status(self, blob_id: str) -> BlobStatus:
        return self.blob_statuses([blob_id])[blob_id]

    def blob_statuses(self, blob_ids: Sequence[str]) -> dict[str, BlobStatus]:
        raw = {b: blob_id_from_text(b) for b in blob_ids}
        with self._lock:
            lifetimes = blob_lifetimes(self._db, list(raw.values()))
        return {b: BlobStatus(*lifetimes[r]) for b, r in raw.items()}

    def live_blob_ids(self) -> tuple[str, ...]:
        epoch = self.current_epoch()
        with self._lock:
            ids = live_blob_ids(self._db, epoch)
        return tuple(blob_id_to_text(b) for b in ids)

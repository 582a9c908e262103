"""The ledger database's answers about blob ids, for the ledger and for its read-only view.

The ledger (devnet.ledger.store) and the storage nodes' view of it from another process
(devnet.ledgerview) ask the same SQLite database the same questions; both ask them here. Only
the standard library is imported, so the node process starts quickly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

Lifetime = tuple[int | None, float | None]
"""(the latest end epoch over a blob id's Blob objects, expired ones included, and the paid
storage of burned ones, or None if there is neither; the unix time one of its objects was last
deleted, or None)."""

_CHUNK = 500  # blob ids per statement, well under SQLite's limit on bound variables


def blob_lifetimes(db: sqlite3.Connection, blob_ids: Sequence[bytes]) -> dict[bytes, Lifetime]:
    """The `Lifetime` of each of `blob_ids` (32-byte ids), in a few statements however many
    there are: a storage node's maintenance asks about every blob it received lately."""
    found: dict[bytes, Lifetime] = dict.fromkeys(blob_ids, (None, None))
    unique = list(found)
    for first in range(0, len(unique), _CHUNK):
        chunk = unique[first : first + _CHUNK]
        marks = ",".join("?" * len(chunk))
        ends = db.execute(
            "SELECT blob_id, max(e) FROM ("
            f"SELECT blob_id, max(blob_end_epoch) AS e FROM objects WHERE blob_id IN ({marks}) "
            "GROUP BY blob_id UNION ALL "
            f"SELECT blob_id, max(end_epoch) FROM burned_blobs WHERE blob_id IN ({marks}) "
            "GROUP BY blob_id) GROUP BY blob_id",
            (*chunk, *chunk),
        ).fetchall()
        deleted = dict(
            db.execute(
                f"SELECT blob_id, deleted_at FROM deleted_blobs WHERE blob_id IN ({marks})", chunk
            ).fetchall()
        )
        for blob_id, end in ends:
            found[bytes(blob_id)] = (None if end is None else int(end), None)
        for blob_id, at in deleted.items():
            end = found[bytes(blob_id)][0]
            found[bytes(blob_id)] = (end, float(at))
    return found


def live_blob_ids(db: sqlite3.Connection, epoch: int) -> list[bytes]:
    """Blob ids with a Blob object (or a burned one's paid storage) ending after `epoch`."""
    rows = db.execute(
        "SELECT blob_id FROM objects WHERE blob_id IS NOT NULL AND blob_end_epoch > ? "
        "UNION SELECT blob_id FROM burned_blobs WHERE end_epoch > ? ORDER BY 1",
        (epoch, epoch),
    )
    return [bytes(r[0]) for r in rows]

"""Commits: making the tree durable on Walrus and anchored on Sui.

A commit (every `commit_interval` seconds when something changed, on `walrusfs flush`, and
at unmount) captures one consistent state:

1. upload the dirty blocks, writers still running (bounded in time);
2. freeze writers (cache/gate.py) and upload what they dirtied meanwhile: now no block is
   dirty, and
3. without a trio checkpoint, capture the changed rows (or every row, for a snapshot) from
   the metadata (meta/delta.py): a state in which every block is on Walrus;
4. thaw the writers, store the manifest blob and compare-and-swap the head on the anchor
   (manifest/anchor.py);
5. record the commit and forget the rows it carried.

A crash anywhere before 5 leaves the captured rows in the change log; the next mount makes
them pending again (or, if the head did move, records the commit). A compare-and-swap that
loses means another mount moved the head: this mount stops writing and keeps what it has.
docs/manifest.md has the details.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from walrusfs.cache.gate import WriteGate
from walrusfs.cache.uploader import Uploader
from walrusfs.crypto import Keys
from walrusfs.manifest.anchor import AnchorOps, AnchorView, HeadMoved
from walrusfs.manifest.format import KIND_DELTA, KIND_SNAPSHOT, Head
from walrusfs.meta import delta
from walrusfs.meta.db import Database

log = logging.getLogger(__name__)

# A snapshot every this many commits bounds the chain a restore has to walk.
SNAPSHOT_EVERY = 16
# How long a commit lets writers run while it uploads, before it freezes them.
UNFROZEN_UPLOAD = 30.0


@dataclass(frozen=True)
class CommitResult:
    head: Head
    kind: str
    rows: int
    size: int


def pending_changes(db: Database) -> int:
    """Changed rows that call for a commit. The record of the last commit itself (its
    `commits` row and its manifest's `packs` row) travels with the next commit but does not
    make one: otherwise every commit would call for another, forever, each costing a blob
    and a transaction."""
    return int(
        db.value(
            "SELECT COUNT(*) FROM changes c WHERE c.seq IS NULL AND NOT (c.tbl = 'commits'"
            " OR (c.tbl = 'packs' AND EXISTS (SELECT 1 FROM packs p WHERE p.id = c.k1"
            " AND p.kind = 'manifest')))",
            default=0,
        )
    )


def last_snapshot(db: Database) -> int:
    return int(db.value("SELECT COALESCE(MAX(seq), 0) FROM commits WHERE kind = 'snapshot'"))


def capture(
    db: Database, view: AnchorView, tmpdir: str, *, uuid: str, snapshot: bool
) -> tuple[int, delta.Captured]:
    """Capture the next commit's rows. Synchronous: the caller has made sure no block is
    dirty and that nothing runs in between."""
    seq = (view.head.seq if view.head else 0) + 1
    header = {"uuid": uuid, "seq": seq}
    if snapshot or view.head is None:
        return seq, delta.capture_snapshot(db, seq, header, tmpdir)
    return seq, delta.capture_delta(db, seq, header, tmpdir)


async def publish(
    db: Database,
    anchor: AnchorOps,
    keys: Keys,
    view: AnchorView,
    seq: int,
    captured: delta.Captured,
) -> tuple[AnchorView, CommitResult]:
    """Store a captured commit, advance the head to it and record it."""
    created = time.time_ns()
    view, head, stored = await anchor.publish(
        view,
        keys,
        seq=seq,
        kind=KIND_SNAPSHOT if captured.kind == "snapshot" else KIND_DELTA,
        created_ns=created,
        payload=captured.data,
    )
    record_commit(db, head, stored.object_id, stored.end_epoch, captured.kind, stored.size,
                  captured.rows, created)  # fmt: skip
    await db.durable()
    return view, CommitResult(head, captured.kind, captured.rows, stored.size)


def record_commit(
    db: Database,
    head: Head,
    object_id: str | None,
    end_epoch: int,
    kind: str,
    size: int,
    rows: int,
    created_ns: int,
) -> None:
    with db.operation():
        db.execute(
            "INSERT INTO packs (blob_id, object_id, size, end_epoch, kind, created_ns)"
            " VALUES (?, ?, ?, ?, 'manifest', ?)",
            (head.blob_id, object_id, size, end_epoch, created_ns),
        )
        db.execute(
            "INSERT OR REPLACE INTO commits (seq, blob_id, hash, kind, size, rows, created_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (head.seq, head.blob_id, head.digest, kind, size, rows, created_ns),
        )
        delta.forget_captured(db, head.seq)


class Committer:
    def __init__(
        self,
        db: Database,
        uploader: Uploader,
        gate: WriteGate,
        anchor: AnchorOps,
        keys: Keys,
        view: AnchorView,
        *,
        uuid: str,
        tmpdir: str,
        on_lost: Callable[[str], None],
    ) -> None:
        self.db = db
        self.uploader = uploader
        self.gate = gate
        self.anchor = anchor
        self.keys = keys
        self.view = view
        self.uuid = uuid
        self.tmpdir = tmpdir
        self.on_lost = on_lost
        self.lost: str | None = None
        # Held while a commit (or anything else that moves the anchor) is under way.
        self.lock = trio.Lock()

    @property
    def head(self) -> Head | None:
        return self.view.head

    async def commit(self, *, force: bool = False) -> CommitResult | None:
        """Commit what changed; None when nothing did (and not `force`)."""
        async with self.lock:
            if self.lost is not None:
                raise HeadMoved(self.lost)
            with trio.move_on_after(UNFROZEN_UPLOAD):
                await self.uploader.flush()
            self.gate.freeze()
            try:
                await self.uploader.flush()
                if not force and not pending_changes(self.db):
                    return None
                # No checkpoint from the end of the flush to the end of the capture.
                seq = (self.view.head.seq if self.view.head else 0) + 1
                snapshot = seq - last_snapshot(self.db) >= SNAPSHOT_EVERY
                seq, captured = capture(
                    self.db, self.view, self.tmpdir, uuid=self.uuid, snapshot=snapshot
                )
            finally:
                self.gate.thaw()
            try:
                self.view, result = await publish(
                    self.db, self.anchor, self.keys, self.view, seq, captured
                )
            except HeadMoved as exc:
                self.lost = str(exc)
                log.error("%s; this mount stops writing and keeps its data", exc)
                self.on_lost(str(exc))
                raise
            log.info(
                "commit %d (%s, %d rows, %d bytes) anchored",
                result.head.seq, result.kind, result.rows, result.size,
            )  # fmt: skip
            return result

    async def run(self, interval: float) -> None:
        """Commit every `interval` seconds while there is something to commit."""
        while True:
            await trio.sleep(interval)
            if self.lost is not None:
                return
            if pending_changes(self.db) or self.uploader.dirty_blocks():
                try:
                    await self.commit()
                except HeadMoved:
                    return

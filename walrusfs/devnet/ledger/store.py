"""The ledger's state in SQLite (WAL mode, synchronous=FULL): objects, their history,
executed transactions, and a few chain-wide values.

Every state change of the ledger — a user transaction, a faucet payment, an epoch change, a
Blob the devnet publisher certifies — is one SQLite transaction (`Store.write()`), so a crash
leaves either all of it or none of it. Callers serialize access (the Ledger holds a lock).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from walrusfs.devnet import blobqueries

from .suitypes import (
    ObjectRef,
    Owner,
    StructTag,
    encode_object,
    format_type,
    parse_type,
    type_digest,
)

SCHEMA = """
-- Every live object at its current version. A row is a whole Sui Object: the Move value
-- (type, contents) and its envelope (owner, version, previous transaction, storage rebate).
CREATE TABLE IF NOT EXISTS objects (
    id BLOB PRIMARY KEY,             -- 32-byte object id
    version INTEGER NOT NULL,        -- SequenceNumber: the Lamport version of its last write
    digest BLOB NOT NULL,            -- Blake2b-256("Object::" || BCS(Object)); 32 bytes
    owner_kind INTEGER NOT NULL,     -- 0 address, 1 object (a dynamic field's parent), 2 shared, 3 immutable
    owner BLOB,                      -- owner address or parent object id; NULL if shared/immutable
    initial_shared_version INTEGER,  -- shared objects only; NULL otherwise
    type TEXT NOT NULL,              -- canonical Move type, full-width addresses
    type_base TEXT NOT NULL,         -- the type without its type parameters, for type filters
    has_public_transfer INTEGER NOT NULL,  -- 1 if the type has `store` (public transfer allowed)
    contents BLOB NOT NULL,          -- BCS of the Move struct value
    previous_transaction BLOB NOT NULL,    -- digest of the transaction that wrote this version
    storage_rebate INTEGER NOT NULL, -- MIST the next writer or deleter gets back (less 1%)
    blob_id BLOB,                    -- Walrus Blob objects: the blob id (32 bytes, u256 LE); else NULL
    blob_end_epoch INTEGER           -- Walrus Blob objects: the end epoch of its Storage; else NULL
);
CREATE INDEX IF NOT EXISTS objects_by_owner ON objects(owner_kind, owner, type_base, id);
CREATE INDEX IF NOT EXISTS objects_by_blob_id ON objects(blob_id) WHERE blob_id IS NOT NULL;

-- Every version ever written (the current one included), so an object can be read at a past
-- version and a past transaction's object changes can be shown. Rows are never updated.
CREATE TABLE IF NOT EXISTS object_versions (
    id BLOB NOT NULL,
    version INTEGER NOT NULL,
    digest BLOB NOT NULL,
    owner_kind INTEGER NOT NULL,
    owner BLOB,
    initial_shared_version INTEGER,
    type TEXT NOT NULL,
    has_public_transfer INTEGER NOT NULL,
    contents BLOB NOT NULL,
    previous_transaction BLOB NOT NULL,
    storage_rebate INTEGER NOT NULL,
    PRIMARY KEY (id, version)
);

-- Executed transactions in order. `seq` is also the checkpoint sequence number: the devnet
-- puts each transaction in a checkpoint of its own.
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,     -- transaction digest (32 bytes)
    kind TEXT NOT NULL,              -- 'user' (signed), or a devnet system change: 'genesis',
                                     -- 'faucet', 'epoch', 'walrus' (a Blob from the publisher API)
    tx_bcs BLOB,                     -- TransactionData BCS (user transactions only)
    signatures TEXT,                 -- JSON list of base64 user signatures (user transactions only)
    effects_bcs BLOB NOT NULL,       -- TransactionEffects (V2) BCS
    record TEXT NOT NULL,            -- JSON: effects, events and object changes, for rendering
    timestamp_ms INTEGER NOT NULL,
    epoch INTEGER NOT NULL
);

-- Where each Blob object was last certified (registration or extension), for the publisher's
-- `alreadyCertified` answers. Rows go when the Blob object is deleted.
CREATE TABLE IF NOT EXISTS blob_certifications (
    object_id BLOB PRIMARY KEY,
    tx_digest BLOB NOT NULL,
    event_seq INTEGER NOT NULL
);

-- Blob objects that were burned (blob::burn): the object is gone but, as on Walrus, the data
-- stays stored until the end epoch that was paid for. Storage nodes keep such blobs.
CREATE TABLE IF NOT EXISTS burned_blobs (
    object_id BLOB PRIMARY KEY,
    blob_id BLOB NOT NULL,           -- 32 bytes
    end_epoch INTEGER NOT NULL
);

-- When a blob id last lost a Blob object to system::delete_blob. Storage nodes drop their
-- copies of a blob id that has no object left (nor a burned one's paid storage) if they
-- received them before this time; a copy uploaded later is a new upload, kept while it awaits
-- certification.
CREATE TABLE IF NOT EXISTS deleted_blobs (
    blob_id BLOB PRIMARY KEY,        -- 32 bytes
    deleted_at REAL NOT NULL         -- unix seconds of the latest deletion
);

-- The devnet's storage committee (devnet-only state, not a Sui object): node i holds shard i.
CREATE TABLE IF NOT EXISTS committee (
    idx INTEGER PRIMARY KEY,         -- shard index, 0..n_shards-1
    public_key BLOB NOT NULL,        -- Ed25519 verify key (32 bytes) the node signs with
    url TEXT NOT NULL                -- base URL of the node's storage API
);

-- When each epoch started (unix seconds), recorded as the clock passes into it, so past epochs
-- keep their times when the epoch length is changed later.
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY,
    start_time REAL NOT NULL
);

-- Chain-wide values: chain identifier, genesis digest, the epoch clock's base, config.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredObject:
    """One version of a Move object with its envelope."""

    id: bytes
    version: int
    owner: Owner
    type_: StructTag
    has_public_transfer: bool
    contents: bytes
    previous_transaction: bytes
    storage_rebate: int

    # The encodings are derived once per version: a transaction asks for an object's digest
    # several times (its input refs, its effects, its row).

    def bcs(self) -> bytes:
        return self._bcs

    @cached_property
    def _bcs(self) -> bytes:
        return encode_object(
            self.type_,
            self.has_public_transfer,
            self.version,
            self.contents,
            self.owner,
            self.previous_transaction,
            self.storage_rebate,
        )

    @cached_property
    def digest(self) -> bytes:
        return type_digest("Object::", self._bcs)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.id, self.version, self.digest)

    @cached_property
    def type_str(self) -> str:
        return format_type(self.type_)


def _row_to_object(row: sqlite3.Row) -> StoredObject:
    owner = Owner(row["owner_kind"], row["owner"], row["initial_shared_version"])
    tag = parse_type(row["type"])
    assert isinstance(tag, StructTag)
    return StoredObject(
        row["id"],
        row["version"],
        owner,
        tag,
        bool(row["has_public_transfer"]),
        row["contents"],
        row["previous_transaction"],
        row["storage_rebate"],
    )


class Store:
    """SQLite access for the ledger; not thread-safe on its own (the Ledger serializes)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._in_tx = False

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic change of state: everything inside commits together or not at all."""
        assert not self._in_tx, "nested ledger write"
        self._db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._in_tx = False

    # --- meta ---

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- objects ---

    def get(self, object_id: bytes) -> StoredObject | None:
        row = self._db.execute("SELECT * FROM objects WHERE id = ?", (object_id,)).fetchone()
        return None if row is None else _row_to_object(row)

    def get_version(self, object_id: bytes, version: int) -> StoredObject | None:
        row = self._db.execute(
            "SELECT * FROM object_versions WHERE id = ? AND version = ?", (object_id, version)
        ).fetchone()
        return None if row is None else _row_to_object(row)

    def put(self, obj: StoredObject, blob: tuple[bytes, int] | None = None) -> None:
        """Write an object version; `blob` is (blob id, end epoch) for Walrus Blob objects."""
        assert self._in_tx
        digest = obj.digest
        values = (
            obj.id,
            obj.version,
            digest,
            obj.owner.kind,
            obj.owner.address,
            obj.owner.initial_shared_version,
            obj.type_str,
            obj.has_public_transfer,
            obj.contents,
            obj.previous_transaction,
            obj.storage_rebate,
        )
        self._db.execute(
            "INSERT OR REPLACE INTO objects(id, version, digest, owner_kind, owner, "
            "initial_shared_version, type, has_public_transfer, contents, previous_transaction, "
            "storage_rebate, type_base, blob_id, blob_end_epoch) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*values, format_type(obj.type_.base()), *(blob or (None, None))),
        )
        self._db.execute(
            "INSERT OR REPLACE INTO object_versions(id, version, digest, owner_kind, owner, "
            "initial_shared_version, type, has_public_transfer, contents, previous_transaction, "
            "storage_rebate) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            values,
        )

    def delete(
        self, object_id: bytes, burned: tuple[bytes, int] | None = None, at: float = 0.0
    ) -> None:
        """Delete an object at unix time `at`; `burned` is (blob id, end epoch) for a burned
        Blob object (any other Blob object deleted counts as deleted by system::delete_blob)."""
        assert self._in_tx
        if burned is None:
            row = self._db.execute(
                "SELECT blob_id FROM objects WHERE id = ? AND blob_id IS NOT NULL", (object_id,)
            ).fetchone()
            if row is not None:
                self._db.execute(
                    "INSERT INTO deleted_blobs(blob_id, deleted_at) VALUES(?, ?) "
                    "ON CONFLICT(blob_id) DO UPDATE SET "
                    "deleted_at = max(deleted_at, excluded.deleted_at)",
                    (row[0], at),
                )
        self._db.execute("DELETE FROM objects WHERE id = ?", (object_id,))
        if burned is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO burned_blobs(object_id, blob_id, end_epoch) VALUES(?,?,?)",
                (object_id, *burned),
            )
        self._db.execute("DELETE FROM blob_certifications WHERE object_id = ?", (object_id,))

    def owned(
        self,
        owner_kind: int,
        owner: bytes | None,
        type_base: str | None,
        type_exact: str | None,
        type_prefix: str | None,
        after: bytes | None,
        limit: int,
    ) -> list[StoredObject]:
        """Objects of an owner in object-id order, optionally of a type, after a cursor."""
        if type_exact is not None and type_base is None:
            # An exact type implies its base: filtering on it too keeps the lookup inside the
            # owner index's range for that base, instead of scanning everything the owner has
            # (the publisher owns a Blob object per blob it stored, and pays from its coins).
            type_base = type_exact.split("<", 1)[0]
        sql = "SELECT * FROM objects WHERE owner_kind = ?"
        args: list[Any] = [owner_kind]
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        if type_base is not None:
            sql += " AND type_base = ?"
            args.append(type_base)
        if type_exact is not None:
            sql += " AND type = ?"
            args.append(type_exact)
        if type_prefix is not None:
            sql += " AND substr(type_base, 1, ?) = ?"
            args += [len(type_prefix), type_prefix]
        if after is not None:
            sql += " AND id > ?"
            args.append(after)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [_row_to_object(r) for r in self._db.execute(sql, args)]

    def blobs_by_blob_id(self, blob_id: bytes) -> list[StoredObject]:
        rows = self._db.execute("SELECT * FROM objects WHERE blob_id = ? ORDER BY id", (blob_id,))
        return [_row_to_object(r) for r in rows]

    def live_blob_ids(self, epoch: int) -> list[bytes]:
        """Blob ids with a Blob object (or a burned one's paid storage) ending after `epoch`."""
        return blobqueries.live_blob_ids(self._db, epoch)

    def blob_lifetimes(self, blob_ids: Sequence[bytes]) -> dict[bytes, blobqueries.Lifetime]:
        """(the latest end epoch over each blob id's Blob objects and burned ones' storage, or
        None; when one of its objects was last deleted, or None)."""
        return blobqueries.blob_lifetimes(self._db, blob_ids)

    # --- epochs ---

    def record_epoch_start(self, epoch: int, start: float) -> None:
        assert self._in_tx
        self._db.execute(
            "INSERT OR IGNORE INTO epochs(epoch, start_time) VALUES(?, ?)", (epoch, start)
        )

    def epoch_start(self, epoch: int) -> float | None:
        row = self._db.execute("SELECT start_time FROM epochs WHERE epoch = ?", (epoch,)).fetchone()
        return None if row is None else float(row[0])

    def epoch_checkpoints(self, epoch: int) -> tuple[int, int] | None:
        """The first and last checkpoint (transaction) sequence numbers of an epoch."""
        row = self._db.execute(
            "SELECT MIN(seq), MAX(seq) FROM transactions WHERE epoch = ?", (epoch,)
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    # --- committee ---

    def committee(self) -> list[tuple[int, bytes, str]]:
        rows = self._db.execute("SELECT idx, public_key, url FROM committee ORDER BY idx")
        return [(int(i), bytes(k), str(u)) for i, k, u in rows]

    def set_committee(self, members: list[tuple[int, bytes, str]]) -> None:
        assert self._in_tx
        self._db.execute("DELETE FROM committee")
        self._db.executemany("INSERT INTO committee(idx, public_key, url) VALUES(?,?,?)", members)

    # --- transactions ---

    def next_seq(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM transactions").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def last_transaction(self) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM transactions ORDER BY seq DESC LIMIT 1").fetchone()

    def add_transaction(
        self,
        seq: int,
        digest: bytes,
        kind: str,
        tx_bcs: bytes | None,
        signatures: list[str] | None,
        effects_bcs: bytes,
        record: dict[str, Any],
        timestamp_ms: int,
        epoch: int,
    ) -> None:
        assert self._in_tx
        self._db.execute(
            "INSERT INTO transactions(seq, digest, kind, tx_bcs, signatures, effects_bcs, "
            "record, timestamp_ms, epoch) VALUES(?,?,?,?,?,?,?,?,?)",
            (
                seq,
                digest,
                kind,
                tx_bcs,
                None if signatures is None else json.dumps(signatures),
                effects_bcs,
                json.dumps(record, separators=(",", ":")),
                timestamp_ms,
                epoch,
            ),
        )

    def transaction(self, digest: bytes) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM transactions WHERE digest = ?", (digest,)).fetchone()

    def transaction_by_seq(self, seq: int) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM transactions WHERE seq = ?", (seq,)).fetchone()

    # --- Walrus certification events ---

    def set_certification(self, object_id: bytes, tx_digest: bytes, event_seq: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO blob_certifications(object_id, tx_digest, event_seq) "
            "VALUES(?,?,?)",
            (object_id, tx_digest, event_seq),
        )

    def certification(self, object_id: bytes) -> tuple[bytes, int] | None:
        row = self._db.execute(
            "SELECT tx_digest, event_seq FROM blob_certifications WHERE object_id = ?",
            (object_id,),
        ).fetchone()
        return None if row is None else (row[0], int(row[1]))

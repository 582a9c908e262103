"""The interim `BlobRegistry`: chain state in one SQLite file, until the Sui ledger takes over.

It implements walrusfs.devnet.registry.BlobRegistry and nothing else; see that module for the
contract. One connection guarded by a lock serves every thread; each method is one
transaction, committed with synchronous=FULL in WAL mode, so a certified blob or a charge
survives a crash once the method returned.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from walrusfs.devnet.blobid import blob_id_from_text
from walrusfs.devnet.confirm import check_certificate
from walrusfs.devnet.errors import DevnetConfigError, EpochsOutOfRange, InsufficientFunds
from walrusfs.devnet.registry import (
    BlobObject,
    Certification,
    CertifyRequest,
    Committee,
    CommitteeMember,
    EventId,
    StorageResource,
    SystemParams,
    normalize_address,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# The schema is the documentation of the data model.
SCHEMA = """
-- Key/value settings: the system parameters and the epoch clock's anchor.
--   schema_version        integer, SCHEMA_VERSION
--   n_shards              committee size; fixed for the life of the devnet
--   storage_price         FROST per MiB unit per epoch
--   write_price           FROST per MiB unit, once per registration
--   max_epochs_ahead      how far ahead a blob may be stored
--   epoch_seconds         wall-clock length of an epoch
--   anchor_epoch          the epoch that started at anchor_time ...
--   anchor_time           ... (unix seconds); current epoch = anchor_epoch +
--                         floor((now - anchor_time) / epoch_seconds), never less than anchor_epoch
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The storage committee: one row per shard; the node at idx holds shard idx.
CREATE TABLE IF NOT EXISTS committee (
    idx        INTEGER PRIMARY KEY,   -- shard index, 0..n_shards-1
    public_key BLOB NOT NULL,         -- Ed25519 verify key (32 bytes) the node signs with
    url        TEXT NOT NULL          -- base URL of the node's storage API
);

-- WAL balances. An address absent here holds 0.
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY,                          -- 0x + 64 lowercase hex digits
    balance INTEGER NOT NULL CHECK (balance >= 0)      -- FROST
);

-- Blob objects (Move `Blob` with its `Storage`). Rows are only ever inserted certified; a row
-- whose end_epoch has passed is an expired object that still exists, as on chain.
CREATE TABLE IF NOT EXISTS blobs (
    object_id        TEXT PRIMARY KEY,    -- 0x + 64 hex; the Blob object's id
    blob_id          TEXT NOT NULL,       -- text form (unpadded URL-safe base64)
    size             INTEGER NOT NULL,    -- unencoded length in bytes
    encoding_type    INTEGER NOT NULL,    -- u8; 0x5A for the devnet's zfec encoding
    registered_epoch INTEGER NOT NULL,
    certified_epoch  INTEGER NOT NULL,    -- equal to registered_epoch: the devnet does both at once
    storage_id       TEXT NOT NULL,       -- 0x + 64 hex; the Storage resource's id
    start_epoch      INTEGER NOT NULL,    -- inclusive
    end_epoch        INTEGER NOT NULL,    -- exclusive: the blob expires when this epoch starts
    storage_size     INTEGER NOT NULL,    -- encoded length reserved, bytes
    deletable        INTEGER NOT NULL,    -- 0 permanent, 1 deletable
    owner            TEXT NOT NULL,       -- address that owns the object and paid for it
    tx_digest        TEXT NOT NULL,       -- base58 digest of the certifying transaction
    event_seq        INTEGER NOT NULL     -- the BlobCertified event's index in that transaction
);
CREATE INDEX IF NOT EXISTS blobs_by_blob_id ON blobs (blob_id);
CREATE INDEX IF NOT EXISTS blobs_by_end_epoch ON blobs (end_epoch);
"""

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _new_object_id() -> str:
    return "0x" + secrets.token_hex(32)


class SqliteRegistry:
    """A BlobRegistry in SQLite. Thread-safe; every method is one transaction."""

    def __init__(
        self,
        path: Path,
        params: SystemParams | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
        except sqlite3.Error as exc:
            raise DevnetConfigError(f"cannot open the registry {path}: {exc}") from None
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._lock, self._db:
            self._db.executescript(SCHEMA)
            self._setup(params)

    # -- settings and clock

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: object) -> None:
        self._db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _setup(self, params: SystemParams | None) -> None:
        stored = self._get("n_shards")
        if stored is None:
            if params is None:
                raise DevnetConfigError(f"{self._path} is a new registry and needs parameters")
            self._set("schema_version", SCHEMA_VERSION)
            self._set("n_shards", params.n_shards)
            self._set("anchor_epoch", 1)
            self._set("anchor_time", repr(self._clock()))
            self._set("epoch_seconds", repr(params.epoch_seconds))
        else:
            version = int(self._get("schema_version") or 0)
            if version != SCHEMA_VERSION:
                raise DevnetConfigError(
                    f"{self._path} has registry schema {version}, this walrusfs knows "
                    f"{SCHEMA_VERSION}"
                )
            if params is not None and int(stored) != params.n_shards:
                raise DevnetConfigError(
                    f"this devnet has {stored} storage nodes, not {params.n_shards}"
                )
        if params is not None:
            old_seconds = float(self._get("epoch_seconds") or params.epoch_seconds)
            if old_seconds != params.epoch_seconds:
                # Re-anchor so the new length applies from now and the epoch never goes back.
                epoch = self._epoch_locked()
                self._set("anchor_epoch", epoch)
                self._set("anchor_time", repr(self._clock()))
                self._set("epoch_seconds", repr(params.epoch_seconds))
            self._set("storage_price", params.storage_price_per_unit)
            self._set("write_price", params.write_price_per_unit)
            self._set("max_epochs_ahead", params.max_epochs_ahead)
        self._params = SystemParams(
            n_shards=int(self._get("n_shards") or 0),
            storage_price_per_unit=int(self._get("storage_price") or 0),
            write_price_per_unit=int(self._get("write_price") or 0),
            epoch_seconds=float(self._get("epoch_seconds") or 1),
            max_epochs_ahead=int(self._get("max_epochs_ahead") or 53),
        )
        self._anchor_epoch = int(self._get("anchor_epoch") or 1)
        self._anchor_time = float(self._get("anchor_time") or 0)

    def _epoch_locked(self) -> int:
        seconds = float(self._get("epoch_seconds") or 1)
        anchor_epoch = int(self._get("anchor_epoch") or 1)
        anchor_time = float(self._get("anchor_time") or 0)
        elapsed = max(0.0, self._clock() - anchor_time)
        return anchor_epoch + int(elapsed // seconds)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- BlobRegistry

    def params(self) -> SystemParams:
        return self._params

    def current_epoch(self) -> int:
        elapsed = max(0.0, self._clock() - self._anchor_time)
        return self._anchor_epoch + int(elapsed // self._params.epoch_seconds)

    def epoch_start_time(self, epoch: int) -> float:
        """Unix time at which `epoch` starts (not part of the protocol; for tests and logs)."""
        return self._anchor_time + (epoch - self._anchor_epoch) * self._params.epoch_seconds

    def committee(self) -> Committee:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, public_key, url FROM committee ORDER BY idx"
            ).fetchall()
        return Committee(tuple(CommitteeMember(int(i), bytes(k), str(u)) for i, k, u in rows))

    def set_committee(self, committee: Committee) -> None:
        n = self._params.n_shards
        if [m.index for m in committee.members] != list(range(n)):
            raise ValueError(f"a committee needs members 0..{n - 1} in order")
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM committee")
            self._db.executemany(
                "INSERT INTO committee (idx, public_key, url) VALUES (?, ?, ?)",
                [(m.index, m.public_key, m.url) for m in committee.members],
            )

    def balance(self, address: str) -> int:
        address = normalize_address(address)
        with self._lock:
            row = self._db.execute(
                "SELECT balance FROM accounts WHERE address = ?", (address,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def faucet(self, address: str, amount: int) -> int:
        address = normalize_address(address)
        if amount < 0:
            raise ValueError("a faucet gives, it does not take")
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO accounts (address, balance) VALUES (?, ?) "
                "ON CONFLICT (address) DO UPDATE SET balance = balance + excluded.balance",
                (address, amount),
            )
            row = self._db.execute(
                "SELECT balance FROM accounts WHERE address = ?", (address,)
            ).fetchone()
        return int(row[0])

    def certify_blob(self, request: CertifyRequest) -> Certification:
        params = self._params
        owner = normalize_address(request.owner)
        if not 1 <= request.epochs_ahead <= params.max_epochs_ahead:
            raise EpochsOutOfRange(
                f"a blob is stored for 1 to {params.max_epochs_ahead} epochs, "
                f"not {request.epochs_ahead}"
            )
        raw_blob_id = blob_id_from_text(request.blob_id)
        encoded = params.encoded_length(request.size)
        cost = params.cost(request.size, request.epochs_ahead)
        committee = self.committee()
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            epoch = self.current_epoch()
            check_certificate(
                committee, params.quorum, raw_blob_id, request.epoch, epoch, request.confirmations
            )
            row = self._db.execute(
                "SELECT balance FROM accounts WHERE address = ?", (owner,)
            ).fetchone()
            balance = 0 if row is None else int(row[0])
            if balance < cost:
                raise InsufficientFunds(owner, cost, balance)
            self._db.execute(
                "UPDATE accounts SET balance = balance - ? WHERE address = ?", (cost, owner)
            )
            blob = BlobObject(
                object_id=_new_object_id(),
                blob_id=request.blob_id,
                size=request.size,
                encoding_type=request.encoding_type,
                registered_epoch=epoch,
                certified_epoch=epoch,
                storage=StorageResource(
                    _new_object_id(), epoch, epoch + request.epochs_ahead, encoded
                ),
                deletable=request.deletable,
                owner=owner,
                certify_event=EventId(_base58(secrets.token_bytes(32)), 0),
            )
            self._insert(blob)
        log.debug("certified %s as %s until epoch %d", blob.blob_id, blob.object_id, blob.end_epoch)
        return Certification(blob, encoded, cost)

    def _insert(self, blob: BlobObject) -> None:
        assert blob.certify_event is not None
        self._db.execute(
            "INSERT INTO blobs (object_id, blob_id, size, encoding_type, registered_epoch, "
            "certified_epoch, storage_id, start_epoch, end_epoch, storage_size, deletable, "
            "owner, tx_digest, event_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                blob.object_id,
                blob.blob_id,
                blob.size,
                blob.encoding_type,
                blob.registered_epoch,
                blob.certified_epoch,
                blob.storage.object_id,
                blob.storage.start_epoch,
                blob.storage.end_epoch,
                blob.storage.storage_size,
                int(blob.deletable),
                blob.owner,
                blob.certify_event.tx_digest,
                blob.certify_event.event_seq,
            ),
        )

    _COLUMNS = (
        "object_id, blob_id, size, encoding_type, registered_epoch, certified_epoch, "
        "storage_id, start_epoch, end_epoch, storage_size, deletable, owner, tx_digest, event_seq"
    )

    @staticmethod
    def _row_to_blob(row: Any) -> BlobObject:
        (
            object_id,
            blob_id,
            size,
            encoding_type,
            registered,
            certified,
            storage_id,
            start,
            end,
            storage_size,
            deletable,
            owner,
            tx_digest,
            event_seq,
        ) = row
        return BlobObject(
            object_id=str(object_id),
            blob_id=str(blob_id),
            size=int(size),
            encoding_type=int(encoding_type),
            registered_epoch=int(registered),
            certified_epoch=None if certified is None else int(certified),
            storage=StorageResource(
                str(storage_id),
                int(start),
                int(end),
                int(storage_size),
            ),
            deletable=bool(deletable),
            owner=str(owner),
            certify_event=EventId(str(tx_digest), int(event_seq)),
        )

    def get_blob_object(self, object_id: str) -> BlobObject | None:
        try:
            object_id = normalize_address(object_id)
        except ValueError:
            return None
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._COLUMNS} FROM blobs WHERE object_id = ?", (object_id,)
            ).fetchone()
        return None if row is None else self._row_to_blob(row)

    def blob_objects(self, blob_id: str) -> tuple[BlobObject, ...]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._COLUMNS} FROM blobs WHERE blob_id = ? ORDER BY end_epoch",
                (blob_id,),
            ).fetchall()
        return tuple(self._row_to_blob(r) for r in rows)

    def live_blob_ids(self) -> tuple[str, ...]:
        epoch = self.current_epoch()
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT blob_id FROM blobs WHERE end_epoch > ? ORDER BY blob_id",
                (epoch,),
            ).fetchall()
        return tuple(str(r[0]) for r in rows)

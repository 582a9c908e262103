"""The devnet's Sui ledger: state, epoch clock, transaction execution, faucet, and the Python API
the devnet publisher uses to create certified Walrus Blob objects.

All methods are synchronous and thread-safe (one lock; SQLite work is short). From trio, call
them through `trio.to_thread.run_sync`. Every state change — a user transaction, a faucet
payment, an epoch change, a Blob created for the publisher — is one SQLite transaction and is
recorded as a transaction of its own with effects, so versions, digests and previous-transaction
links stay consistent for clients reading the chain.

The epoch clock: epoch = base_epoch + floor((now - base_time) / epoch_seconds), with the base
persisted, so it survives restarts (time keeps running while the devnet is down, as on a real
network). When the clock passes into a new epoch, the next call to the ledger first applies an
epoch change to the Walrus System object (committee epoch, accounting ring buffer).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import move
from .errors import (
    InsufficientFunds,
    InvalidSignature,
    InvalidTransaction,
    LedgerError,
    UnknownObject,
)
from .execute import (
    COMPUTATION_UNITS,
    MAX_GAS_BUDGET,
    ChainView,
    EventOut,
    Execution,
    Outcome,
    new_version,
    storage_units,
)
from .store import Store, StoredObject
from .suitypes import (
    ADDRESS_OWNER,
    Effects,
    Event,
    GasData,
    ObjectChange,
    Owner,
    TransactionData,
    blake2b256,
    decode_transaction_data,
    derive_dynamic_field_id,
    derive_object_id,
    digest_str,
    encode_events,
    event_bcs,
    fmt_address,
    format_type,
    parse_address,
    transaction_json,
    type_digest,
    verify_signature,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SYSTEM_VERSION = 3  # the Walrus System object's `version` (the inner state's dynamic field key)
RS2 = 1  # Walrus's RedStuff/Reed-Solomon encoding type
DEFAULT_EPOCH_SECONDS = 3600.0
MIST_PER_SUI = 1_000_000_000
FROST_PER_WAL = 1_000_000_000


@dataclass(frozen=True)
class LedgerConfig:
    """Parameters of a devnet ledger. The ids must match the chain client's devnet network.

    Shards, prices, capacity and max epochs ahead are used when the ledger is created; after
    that the Walrus System object holds them (`Ledger.set_prices` changes prices). The epoch
    length may change at any start (None keeps the stored one); the epoch count stays
    continuous.
    """

    directory: Path
    epoch_seconds: float | None = None  # None: keep the stored length (3600 s for a new ledger)
    start_epoch: int = 1
    n_shards: int = 10
    storage_price_per_unit: int = 1_000  # FROST per MiB unit per epoch
    write_price_per_unit: int = 2_000  # FROST per MiB unit, once
    max_epochs_ahead: int = 53
    total_capacity: int = 1 << 50
    reference_gas_price: int = 1_000  # MIST per gas unit
    walrus_package_id: str = "0x7e84871781f47a3a5df037c88731176c8b31938b45f28adb3e689aa3ffd7bd3a"
    wal_package_id: str = "0xe38db9d2e30f67645313a48fa4dd22559727c8a6e2032c9ae35ab794f5a4a738"
    system_object_id: str = "0x425967d18cc8d5a92d5698563964b391c71e9431cca758a260df19ecbabf9bcd"
    faucet_sui: int = 10 * MIST_PER_SUI
    faucet_wal: int = 10 * FROST_PER_WAL
    protocol_version: int = 99
    clock: Callable[[], float] = time.time

    @property
    def database(self) -> Path:
        return self.directory / "ledger.sqlite3"


@dataclass(frozen=True)
class SystemState:
    """The Walrus system parameters and the epoch clock."""

    epoch: int
    n_shards: int
    storage_price_per_unit: int
    write_price_per_unit: int
    max_epochs_ahead: int
    total_capacity: int
    used_capacity: int
    epoch_start: float  # unix time the current epoch started
    epoch_seconds: float
    reference_gas_price: int


@dataclass(frozen=True)
class BlobRecord:
    """A Walrus Blob object on the ledger."""

    object_id: str
    version: int
    digest: str
    owner: str
    blob_id: bytes  # the 32 raw bytes (text form: unpadded URL-safe base64)
    size: int
    encoding_type: int
    registered_epoch: int
    certified_epoch: int | None
    start_epoch: int
    end_epoch: int
    storage_size: int  # the encoded length the Storage reserves
    storage_id: str  # the (wrapped) Storage object's id
    deletable: bool
    certified_tx_digest: str | None  # transaction of the last BlobCertified event
    certified_event_seq: int | None

    @property
    def blob_id_text(self) -> str:
        return blob_id_to_text(self.blob_id)


@dataclass(frozen=True)
class CertifiedBlob:
    """The result of creating a certified Blob for the publisher."""

    blob: BlobRecord
    cost: int  # FROST charged: storage + write fee
    tx_digest: str


@dataclass(frozen=True)
class BlobSpec:
    """A blob to register and certify (see `Ledger.create_certified_blob`)."""

    owner: str
    blob_id: bytes | str
    size: int
    encoded_length: int
    epochs: int
    deletable: bool
    payer: str | None = None
    encoding_type: int = RS2
    precheck: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Coin:
    object_id: str
    balance: int


@dataclass(frozen=True)
class FaucetGrant:
    tx_digest: str
    coins: tuple[Coin, ...]


def blob_id_to_text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def blob_id_from_text(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 32:
        raise LedgerError(f"not a Walrus blob id: {text!r}")
    return raw


def _iso(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}Z"


@dataclass
class _SystemChange:
    """A devnet-internal state change, recorded like a transaction with effects."""

    kind: str
    digest: bytes
    inputs: dict[bytes, StoredObject] = field(default_factory=dict)
    writes: dict[bytes, tuple[move.Struct, Any, Owner]] = field(default_factory=dict)
    created: set[bytes] = field(default_factory=set)
    wrapped_created: set[bytes] = field(default_factory=set)
    events: list[EventOut] = field(default_factory=list)
    count: int = 0

    def new_id(self) -> bytes:
        oid = derive_object_id(self.digest, self.count)
        self.count += 1
        return oid


class Ledger:
    """The devnet Sui ledger (see the module docstring)."""

    def __init__(self, config: LedgerConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self.types = move.WalrusTypes(
            parse_address(config.walrus_package_id), parse_address(config.wal_package_id)
        )
        self.functions = move.walrus_functions(self.types)
        self.system_id = parse_address(config.system_object_id)
        config.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(config.directory, 0o700)
        self.store = Store(config.database)
        # Caches of what every call reads (the clock's base, the System object's decoded
        # state); `_commit` drops the state cache whenever a change writes the System object.
        self._clock_base: tuple[int, float, float] | None = None
        self._state_cache: SystemState | None = None
        # The System object, its inner-state field and that field's decoded value, as last
        # written: a certification changes them and the next one starts from them. Changes
        # mutate the decoded value in place, so a change that fails drops it (`_locked`).
        self._system_cache: tuple[StoredObject, StoredObject, Any] | None = None
        self._genesis_digest: bytes | None = None
        self._committee_cache: tuple[tuple[int, bytes, str], ...] | None = None
        with self._lock:
            if self.store.meta("chain_identifier") is None:
                self._genesis()
            self._check_config()
            self._rebase_clock()

    def close(self) -> None:
        with self._lock:
            self.store.close()

    def _locked(self, fn: Callable[[], T]) -> T:
        with self._lock:
            try:
                self._tick()
                return fn()
            except BaseException:
                self._system_cache = None  # perhaps changed in place by what failed
                raise

    # ==== chain-wide facts =========================================================

    @property
    def chain_identifier(self) -> str:
        value = self.store.meta("chain_identifier")
        assert value is not None
        return value

    @property
    def wal_type(self) -> str:
        return format_type(self.types.wal)

    @property
    def sui_type(self) -> str:
        return format_type(self.types.sui)

    def now_ms(self) -> int:
        return int(self.config.clock() * 1000)

    def _check_config(self) -> None:
        stored = self.store.meta("ids")
        cfg = self.config
        if stored != f"{cfg.walrus_package_id} {cfg.wal_package_id} {cfg.system_object_id}":
            raise LedgerError(
                f"the ledger in {self.config.directory} was created with other package/system ids"
            )

    # ==== epoch clock ================================================================

    def _rebase_clock(self) -> None:
        """Keep the epoch count continuous if the configured epoch length changed."""
        wanted = self.config.epoch_seconds
        seconds = float(self.store.meta("clock_epoch_seconds") or DEFAULT_EPOCH_SECONDS)
        if wanted is None or seconds == wanted:
            return
        now = self.config.clock()
        epoch = self._clock_epoch(now)
        start = self._epoch_start(epoch)
        try:
            with self.store.write():
                self.store.record_epoch_start(epoch, start)
                self.store.set_meta("clock_base_epoch", str(epoch))
                self.store.set_meta("clock_base_time", repr(now))
                self.store.set_meta("clock_epoch_seconds", repr(wanted))
        finally:
            self._clock_base = None
            self._state_cache = None

    def _clock(self) -> tuple[int, float, float]:
        """(base epoch, base time, epoch length): epoch = base + (now - base time) // length."""
        if self._clock_base is None:
            self._clock_base = (
                int(self.store.meta("clock_base_epoch") or self.config.start_epoch),
                float(self.store.meta("clock_base_time") or 0.0),
                float(self.store.meta("clock_epoch_seconds") or DEFAULT_EPOCH_SECONDS),
            )
        return self._clock_base

    def _clock_epoch(self, now: float) -> int:
        base_epoch, base_time, seconds = self._clock()
        return base_epoch + max(0, int((now - base_time) // seconds))

    def _epoch_start(self, epoch: int) -> float:
        recorded = self.store.epoch_start(epoch)
        if recorded is not None:
            return recorded
        base_epoch, base_time, seconds = self._clock()
        return base_time + (epoch - base_epoch) * seconds

    def _tick(self) -> None:
        """Apply the epoch change(s) the clock has moved past."""
        target = self._clock_epoch(self.config.clock())
        if target <= self._current_epoch():
            return  # the common case, answered from the cached state
        system, inner_obj, inner = self._system()
        current = inner["value"]["committee"]["epoch"]
        if target <= current:
            return
        change = self._begin("epoch", f"{current}->{target}".encode())
        value = inner["value"]
        ring = value["future_accounting"]
        for _ in range(current, target):
            idx = ring["current_index"]
            old = ring["ring_buffer"][idx]
            ring["ring_buffer"][idx] = {
                "epoch": old["epoch"] + ring["length"],
                "used_capacity": 0,
                "rewards_to_distribute": 0,
            }
            ring["current_index"] = (idx + 1) % ring["length"]
        value["committee"]["epoch"] = target
        value["used_capacity_size"] = ring["ring_buffer"][ring["current_index"]]["used_capacity"]
        self._mutate(change, system, move.decode(self.types.system, system.contents))
        self._mutate(change, inner_obj, inner)
        starts = [(e, self._epoch_start(e)) for e in range(current + 1, target + 1)]

        def record_starts() -> None:
            for e, t in starts:
                self.store.record_epoch_start(e, t)

        self._commit_system(change, also=record_starts)
        log.info("devnet ledger: epoch %d -> %d", current, target)

    # ==== genesis =====================================================================

    def _genesis(self) -> None:
        cfg = self.config
        salt = os.urandom(16)
        genesis = blake2b256(b"walrusfs devnet genesis", salt)
        now = cfg.clock()
        t = self.types
        with self.store.write():
            self.store.set_meta("chain_identifier", genesis[:4].hex())
            self.store.set_meta("genesis", genesis.hex())
            self.store.set_meta(
                "ids", f"{cfg.walrus_package_id} {cfg.wal_package_id} {cfg.system_object_id}"
            )
            self.store.set_meta("clock_base_epoch", str(cfg.start_epoch))
            self.store.set_meta("clock_base_time", repr(now))
            self.store.record_epoch_start(cfg.start_epoch, now)
            self.store.set_meta(
                "clock_epoch_seconds", repr(cfg.epoch_seconds or DEFAULT_EPOCH_SECONDS)
            )
        change = _SystemChange("genesis", genesis)
        system_value = {
            "id": self.system_id,
            "version": SYSTEM_VERSION,
            "package_id": t.pkg,
            "new_package_id": None,
        }
        inner_id = derive_dynamic_field_id(
            self.system_id, "u64", SYSTEM_VERSION.to_bytes(8, "little")
        )
        inner_value = {
            "id": inner_id,
            "name": SYSTEM_VERSION,
            "value": {
                "committee": {
                    "members": [],
                    "n_shards": cfg.n_shards,
                    "epoch": cfg.start_epoch,
                    "total_aggregated_key": {"bytes": bytes(48)},
                },
                "total_capacity_size": cfg.total_capacity,
                "used_capacity_size": 0,
                "storage_price_per_unit_size": cfg.storage_price_per_unit,
                "write_price_per_unit_size": cfg.write_price_per_unit,
                "future_accounting": {
                    "current_index": 0,
                    "length": cfg.max_epochs_ahead,
                    "ring_buffer": [
                        {
                            "epoch": cfg.start_epoch + i,
                            "used_capacity": 0,
                            "rewards_to_distribute": 0,
                        }
                        for i in range(cfg.max_epochs_ahead)
                    ],
                },
                "event_blob_certification_state": {
                    "latest_certified_blob": None,
                    "aggregate_weight_per_blob": {"contents": []},
                },
                "deny_list_sizes": {"id": change.new_id()},
            },
        }
        change.writes[self.system_id] = (t.system, system_value, Owner.shared(1))
        change.writes[inner_id] = (
            t.system_inner_field,
            inner_value,
            Owner.object_owner(self.system_id),
        )
        change.created |= {self.system_id, inner_id}
        self._commit_system(change, version=1)

    # ==== system changes ==============================================================

    def _begin(self, kind: str, label: bytes) -> _SystemChange:
        seq = self.store.next_seq()
        genesis = self._genesis_digest
        if genesis is None:
            genesis = bytes.fromhex(self.store.meta("genesis") or "")
            if genesis:
                self._genesis_digest = genesis  # fixed once written
        digest = blake2b256(
            b"walrusfs devnet ", kind.encode(), b":", genesis, seq.to_bytes(8, "little"), label
        )
        return _SystemChange(kind, digest)

    def _mutate(
        self, change: _SystemChange, obj: StoredObject, value: Any, owner: Owner | None = None
    ) -> None:
        layout = self.types.layout_of(obj.type_)
        assert isinstance(layout, move.Struct)
        change.inputs.setdefault(obj.id, obj)
        change.writes[obj.id] = (layout, value, owner or obj.owner)

    def _commit_system(
        self,
        change: _SystemChange,
        version: int | None = None,
        also: Callable[[], None] | None = None,
    ) -> Outcome:
        lamport = version or (max((o.version for o in change.inputs.values()), default=0) + 1)
        outputs: dict[bytes, StoredObject] = {}
        for oid, (layout, value, owner) in change.writes.items():
            outputs[oid] = new_version(
                oid,
                lamport,
                owner,
                layout.tag,
                self._public(layout),
                move.encode(layout, value),
                change.digest,
            )
        changes = [
            ObjectChange(
                oid,
                None
                if oid not in change.inputs
                else (
                    change.inputs[oid].version,
                    change.inputs[oid].digest,
                    change.inputs[oid].owner,
                ),
                (obj.digest, obj.owner),
                1 if oid in change.created else 0,
                obj.type_str,
            )
            for oid, obj in outputs.items()
        ]
        events_digest = None
        if change.events:
            events_digest = type_digest(
                "TransactionEvents::", encode_events([e.event for e in change.events])
            )
        effects = Effects(
            success=True,
            failure=None,
            epoch=self._epoch_for_effects(outputs),
            computation_cost=0,
            storage_cost=0,
            storage_rebate=0,
            non_refundable_storage_fee=0,
            transaction_digest=change.digest,
            gas_object=None,
            events_digest=events_digest,
            dependencies=sorted({o.previous_transaction for o in change.inputs.values()}),
            lamport_version=lamport,
            changes=changes,
        )
        blob_index = {
            oid: (
                int(value["blob_id"]).to_bytes(32, "little"),
                int(value["storage"]["end_epoch"]),
            )
            for oid, (layout, value, _) in change.writes.items()
            if layout.tag == self.types.blob.tag
        }
        outcome = Outcome(
            change.digest,
            effects,
            change.events,
            dict(change.inputs),
            outputs,
            [],
            [],
            [],
            blob_index,
        )
        self._commit(outcome, change.kind, None, None, also)
        inner_tag = self.types.system_inner_field.tag
        for oid, (layout, value, _owner) in change.writes.items():
            if layout.tag == inner_tag:
                # The state just written, without decoding it back (a certification changes
                # it every time, and the publisher reads it for every store).
                self._state_cache = self._state_of(value["value"])
                system = outputs.get(self.system_id)
                if system is not None:
                    self._system_cache = (system, outputs[oid], value)
        return outcome

    def _epoch_for_effects(self, outputs: dict[bytes, StoredObject]) -> int:
        if self._system_cache is None and self.store.get(self.system_id) is None:
            return self.config.start_epoch
        return self._current_epoch()

    def _public(self, layout: move.Struct) -> bool:
        t = layout.tag
        return t != self.types.system.tag and not (
            t.module == "dynamic_field" and t.name == "Field"
        )

    def _commit(
        self,
        outcome: Outcome,
        kind: str,
        tx: TransactionData | None,
        signatures: list[str] | None,
        also: Callable[[], None] | None = None,
    ) -> None:
        """Write an outcome: objects, deletions, the transaction record — in one SQLite tx."""
        seq = self.store.next_seq()
        ts = self.now_ms()
        record = self.record(outcome, tx, kind, seq, ts)
        if self.system_id in outcome.outputs or any(
            o.type_ == self.types.system_inner_field.tag for o in outcome.outputs.values()
        ):
            self._state_cache = None
            self._system_cache = None
        with self.store.write():
            for oid, obj in outcome.outputs.items():
                self.store.put(obj, outcome.blob_index.get(oid))
            for oid in outcome.deleted:
                self.store.delete(oid, outcome.burned.get(oid), ts / 1000)
            for i, ev in enumerate(outcome.events):
                if ev.event.type_ == self.types.blob_certified.tag:
                    oid = parse_address(ev.json["object_id"])
                    if oid in outcome.outputs:
                        self.store.set_certification(oid, outcome.digest, i)
            if also is not None:
                also()
            self.store.add_transaction(
                seq,
                outcome.digest,
                kind,
                None if tx is None else tx.raw,
                signatures,
                outcome.effects.to_bcs(),
                record,
                ts,
                outcome.effects.epoch,
            )

    def record(
        self,
        outcome: Outcome,
        tx: TransactionData | None,
        kind: str,
        seq: int | None,
        timestamp_ms: int,
    ) -> dict[str, Any]:
        """The JSON record GraphQL renders a transaction's effects from."""
        eff = outcome.effects
        error: dict[str, str | None] | None = None
        if eff.failure is not None:
            f = eff.failure
            error = {"message": f.description, "kind": f.kind}
            if f.abort is not None:
                loc, code = f.abort
                error.update(
                    abort_code=str(code),
                    package=fmt_address(loc.package),
                    module=loc.module,
                    function=loc.function_name,
                )
        changes = []
        for c in sorted(eff.changes, key=lambda c: c.object_id):
            changes.append(
                [
                    fmt_address(c.object_id),
                    None if c.input is None else c.input[0],
                    None if c.output is None else eff.lamport_version,
                    c.id_operation == 1,
                    c.id_operation == 2,
                ]
            )
        gas_input = None
        if tx is not None and tx.gas is not None:
            gas_input = {
                "budget": tx.gas.budget,
                "price": tx.gas.price,
                "owner": fmt_address(tx.gas.owner),
                "payment": [
                    [fmt_address(r.object_id), r.version, digest_str(r.digest)]
                    for r in tx.gas.payment
                ],
            }
        return {
            "digest": digest_str(outcome.digest),
            "kind": kind,
            "seq": seq,
            "timestamp_ms": timestamp_ms,
            "epoch": eff.epoch,
            "lamport": eff.lamport_version,
            "status": "SUCCESS" if eff.success else "FAILURE",
            "error": error,
            "effects": eff.to_json(),
            "effects_bcs": base64.b64encode(eff.to_bcs()).decode(),
            "effects_digest": digest_str(eff.digest()),
            "gas": {
                "computation": eff.computation_cost,
                "storage": eff.storage_cost,
                "rebate": eff.storage_rebate,
                "non_refundable": eff.non_refundable_storage_fee,
                "object": None if eff.gas_object is None else fmt_address(eff.gas_object),
            },
            "changes": changes,
            "events": [
                {
                    "package": fmt_address(e.event.package),
                    "module": e.event.module,
                    "sender": fmt_address(e.event.sender),
                    "type": format_type(e.event.type_),
                    "json": e.json,
                    "contents": base64.b64encode(e.event.contents).decode(),
                    "bcs": base64.b64encode(event_bcs(e.event)).decode(),
                }
                for e in outcome.events
            ],
            "balance_changes": [
                {"address": fmt_address(a), "coinType": ct, "amount": str(amt)}
                for a, ct, amt in outcome.balance_changes
            ],
            "dependencies": [digest_str(d) for d in eff.dependencies],
            "tx_json": None if tx is None else transaction_json(tx, outcome.digest),
            "sender": None if tx is None else fmt_address(tx.sender),
            "gas_input": gas_input,
            "outputs": [
                {
                    "returnValues": [
                        [o.type_, base64.b64encode(o.bcs).decode(), o.json] for o in rets
                    ],
                    "mutatedReferences": [
                        [o.type_, base64.b64encode(o.bcs).decode(), o.json] for o in muts
                    ],
                }
                for rets, muts in outcome.command_results
            ],
        }

    # ==== reading state ===============================================================

    def _system(self) -> tuple[StoredObject, StoredObject, Any]:
        """The System object, its inner-state field and the field's decoded value, which the
        caller may change in place only to write it (callers hold the lock)."""
        if self._system_cache is None:
            self._system_cache = self._load_system()
        return self._system_cache

    def _load_system(self) -> tuple[StoredObject, StoredObject, Any]:
        system = self.store.get(self.system_id)
        if system is None:
            raise LedgerError("the Walrus System object is missing")
        version = int(move.decode(self.types.system, system.contents)["version"])
        inner_id = derive_dynamic_field_id(self.system_id, "u64", version.to_bytes(8, "little"))
        inner_obj = self.store.get(inner_id)
        if inner_obj is None:
            raise LedgerError("the Walrus System object's inner state is missing")
        return system, inner_obj, move.decode(self.types.system_inner_field, inner_obj.contents)

    def _state(self) -> SystemState:
        """The System object's state, decoded once per change of it (callers hold the lock)."""
        if self._state_cache is None:
            self._state_cache = self._state_of(self._system()[2]["value"])
        return self._state_cache

    def _state_of(self, inner: Any) -> SystemState:
        """The state in the System object's decoded inner value (callers hold the lock)."""
        epoch = int(inner["committee"]["epoch"])
        return SystemState(
            epoch=epoch,
            n_shards=int(inner["committee"]["n_shards"]),
            storage_price_per_unit=int(inner["storage_price_per_unit_size"]),
            write_price_per_unit=int(inner["write_price_per_unit_size"]),
            max_epochs_ahead=int(inner["future_accounting"]["length"]),
            total_capacity=int(inner["total_capacity_size"]),
            used_capacity=int(inner["used_capacity_size"]),
            epoch_start=self._epoch_start(epoch),
            epoch_seconds=self._clock()[2],
            reference_gas_price=self.config.reference_gas_price,
        )

    def _current_epoch(self) -> int:
        return self._state().epoch

    def current_epoch(self) -> int:
        return self._locked(self._current_epoch)

    def system_state(self) -> SystemState:
        return self._locked(self._state)

    def storage_cost(self, encoded_length: int, epochs: int) -> tuple[int, int]:
        """(storage cost, write fee) in FROST for a blob of this encoded length and lifetime."""
        state = self.system_state()
        units = storage_units(encoded_length)
        return state.storage_price_per_unit * units * epochs, state.write_price_per_unit * units

    def get_object(self, object_id: bytes) -> StoredObject | None:
        return self._locked(lambda: self.store.get(object_id))

    def run_locked(self, fn: Callable[[], T]) -> T:
        """Run a read of the store under the ledger lock (the GraphQL layer uses it)."""
        return self._locked(fn)

    # ==== transactions =================================================================

    def _view(self) -> ChainView:
        return ChainView(
            self.store,
            self.types,
            self.functions,
            self.system_id,
            self.config.reference_gas_price,
            self._current_epoch(),
        )

    def execute(self, tx_bytes: bytes, signatures: list[bytes]) -> dict[str, Any]:
        """Verify, check and execute a signed transaction; return its record.

        Raises TransactionRejected (nothing applied) for input errors. A transaction that was
        already executed returns its stored record again, as Sui does.
        """
        with self._lock:
            self._tick()
            tx = decode_transaction_data(tx_bytes)
            digest = tx.digest()
            previous = self.store.transaction(digest)
            if previous is None:
                assert tx.gas is not None
                signers = [verify_signature(sig, tx_bytes) for sig in signatures]
                for needed in {tx.sender, tx.gas.owner}:
                    if needed not in signers:
                        raise InvalidSignature(
                            f"no valid signature of {fmt_address(needed)} on the transaction"
                        )
                if len(set(signers)) != len(signers) or set(signers) - {tx.sender, tx.gas.owner}:
                    raise InvalidSignature(
                        "the transaction carries an unrelated or repeated signature"
                    )
                outcome = Execution(self._view(), tx, digest).run()
                sigs = [base64.b64encode(s).decode() for s in signatures]
                self._commit(outcome, "user", tx, sigs)
                previous = self.store.transaction(digest)
                assert previous is not None
            record: dict[str, Any] = json.loads(previous["record"])
            record["signatures"] = json.loads(previous["signatures"] or "[]")
            record["tx_bcs"] = base64.b64encode(previous["tx_bcs"] or b"").decode()
            return record

    def simulate(
        self, tx: TransactionData, *, gas_selection: bool = True
    ) -> tuple[dict[str, Any], dict[tuple[bytes, int], StoredObject]]:
        """Run a transaction without committing; no signature is needed.

        Without a gas payment the ledger selects the sender's SUI coins (doGasSelection) or, if
        it has none, uses a mock gas coin holding the maximum budget, like Sui's dry run.
        """
        with self._lock:
            self._tick()
            mock = None
            if tx.gas is None:
                price = self.config.reference_gas_price
                coins = self._coins(tx.sender, self.types.sui_coin.tag) if gas_selection else []
                used = {a.ref.object_id for a in tx.inputs if hasattr(a, "ref")}
                coins = [c for c in coins if c.id not in used]
                balance = sum(
                    move.decode(self.types.sui_coin, c.contents)["balance"] for c in coins
                )
                if coins and balance >= COMPUTATION_UNITS * price:
                    budget = min(balance, MAX_GAS_BUDGET)
                    gas = GasData(tuple(c.ref for c in coins), tx.sender, price, budget)
                else:
                    gas = GasData((), tx.sender, price, MAX_GAS_BUDGET)
                    mock = MAX_GAS_BUDGET
                tx = TransactionData(
                    tx.inputs, tx.commands, tx.sender, gas, tx.expiration_epoch, None
                )
            digest = (
                tx.digest()
                if tx.raw is not None
                else blake2b256(b"walrusfs devnet simulation", os.urandom(16))
            )
            outcome = Execution(self._view(), tx, digest, mock_gas_balance=mock).run()
            record = self.record(outcome, tx, "simulation", None, self.now_ms())
            record["signatures"] = []
            record["tx_bcs"] = base64.b64encode(tx.raw).decode() if tx.raw is not None else None
            overlay = {(o.id, o.version): o for o in outcome.outputs.values()}
            return record, overlay

    # ==== coins and the faucet ==========================================================

    def _coins(self, owner: bytes, coin_tag: Any) -> list[StoredObject]:
        out: list[StoredObject] = []
        after = None
        while True:
            page = self.store.owned(
                ADDRESS_OWNER, owner, None, format_type(coin_tag), None, after, 500
            )
            out += page
            if len(page) < 500:
                return out
            after = page[-1].id

    def coins(self, owner: str, coin: str = "SUI") -> list[Coin]:
        """The SUI or WAL coins of an address."""
        layout = self.types.sui_coin if coin == "SUI" else self.types.wal_coin

        def read() -> list[Coin]:
            return [
                Coin(fmt_address(c.id), int(move.decode(layout, c.contents)["balance"]))
                for c in self._coins(parse_address(owner), layout.tag)
            ]

        return self._locked(read)

    def balance(self, owner: str, coin: str = "SUI") -> int:
        return sum(c.balance for c in self.coins(owner, coin))

    def fund(self, address: str, *, sui: int | None = None, wal: int | None = None) -> FaucetGrant:
        """The faucet: new SUI and WAL coins for an address (defaults from the config)."""
        sui = self.config.faucet_sui if sui is None else sui
        wal = self.config.faucet_wal if wal is None else wal
        owner = parse_address(address)

        def run() -> FaucetGrant:
            change = self._begin("faucet", owner)
            out = []
            for layout, amount in ((self.types.sui_coin, sui), (self.types.wal_coin, wal)):
                if amount <= 0:
                    continue
                oid = change.new_id()
                change.writes[oid] = (
                    layout,
                    {"id": oid, "balance": amount},
                    Owner.address_owner(owner),
                )
                change.created.add(oid)
                out.append(Coin(fmt_address(oid), amount))
            if out:
                self._commit_system(change)
            return FaucetGrant(digest_str(change.digest), tuple(out))

        return self._locked(run)

    # ==== the publisher's Blob objects =================================================

    def create_certified_blob(
        self,
        *,
        owner: str,
        blob_id: bytes | str,
        size: int,
        encoded_length: int,
        epochs: int,
        deletable: bool,
        payer: str | None = None,
        encoding_type: int = RS2,
        precheck: Callable[[int], None] | None = None,
    ) -> CertifiedBlob:
        """Register and certify a Blob owned by `owner`, charging `payer` (default: the owner).

        Does what Walrus's reserve_space + register_blob + certify_blob do: a Storage resource
        for `encoded_length` bytes from now for `epochs` epochs, paid storage_price * units *
        epochs plus the write fee write_price * units from the payer's WAL coins; a Blob with
        that Storage, certified in the current epoch; BlobRegistered and BlobCertified events.
        Raises InsufficientFunds (nothing applied) if the payer's WAL does not cover the cost.
        `precheck(current_epoch)` runs first under the ledger lock; whatever it raises aborts
        the operation (the registry adapter checks storage certificates with it).
        """
        spec = BlobSpec(
            owner=owner,
            blob_id=blob_id,
            size=size,
            encoded_length=encoded_length,
            epochs=epochs,
            deletable=deletable,
            payer=payer,
            encoding_type=encoding_type,
            precheck=precheck,
        )
        (result,) = self.create_certified_blobs([spec])
        if isinstance(result, Exception):
            raise result
        return result

    def create_certified_blobs(self, specs: Sequence[BlobSpec]) -> list[CertifiedBlob | Exception]:
        """`create_certified_blob` for several blobs in one transaction, as a programmable
        transaction of several calls would: one change of the System object, one record, one
        commit for all. Each blob that cannot be certified (its precheck raised, its payer
        cannot pay what the blobs before it left, the epochs or capacity are wrong) gets its
        exception in its place and changes nothing; the others are certified. The publisher
        certifies the blobs of overlapping stores together, which costs a little more than
        certifying one, not as much per blob."""
        t = self.types
        parsed = []
        for spec in specs:
            raw_id = (
                blob_id_from_text(spec.blob_id)
                if isinstance(spec.blob_id, str)
                else bytes(spec.blob_id)
            )
            owner_b = parse_address(spec.owner)
            payer_b = parse_address(spec.payer) if spec.payer else owner_b
            parsed.append((spec, raw_id, owner_b, payer_b))

        def run() -> list[CertifiedBlob | Exception]:
            system, inner_obj, inner = self._system()
            value = inner["value"]
            epoch = int(value["committee"]["epoch"])
            ring = value["future_accounting"]
            results: list[CertifiedBlob | Exception | None] = []  # None: certified below
            wallets: dict[bytes, list[tuple[StoredObject, Any]]] = {}
            change: _SystemChange | None = None
            made: list[tuple[int, bytes, int]] = []  # (place in results, blob object, cost)
            for spec, raw_id, owner_b, payer_b in parsed:
                try:
                    if len(raw_id) != 32:
                        raise LedgerError("a blob id is 32 bytes")
                    if spec.precheck is not None:
                        spec.precheck(epoch)
                    if not 0 < spec.epochs <= ring["length"]:
                        raise LedgerError(
                            f"epochs must be between 1 and {ring['length']}, not {spec.epochs}"
                        )
                    if spec.encoded_length <= 0:
                        raise LedgerError("the encoded length must be positive")
                    units = storage_units(spec.encoded_length)
                    per_epoch = value["storage_price_per_unit_size"] * units
                    write_fee = value["write_price_per_unit_size"] * units
                    cost = per_epoch * spec.epochs + write_fee
                    slots = [
                        ring["ring_buffer"][(i + ring["current_index"]) % ring["length"]]
                        for i in range(spec.epochs)
                    ]
                    if any(
                        slot["used_capacity"] + spec.encoded_length > value["total_capacity_size"]
                        for slot in slots
                    ):
                        raise LedgerError("the devnet's storage capacity is exhausted")
                    wallet = wallets.get(payer_b)
                    if wallet is None:
                        coins = self._coins(payer_b, t.wal_coin.tag)
                        wallet = wallets[payer_b] = sorted(
                            ((c, move.decode(t.wal_coin, c.contents)) for c in coins),
                            key=lambda cv: -int(cv[1]["balance"]),
                        )
                    available = sum(int(cv["balance"]) for _c, cv in wallet)
                    if available < cost:
                        raise InsufficientFunds(fmt_address(payer_b), cost, available)
                except Exception as exc:  # this blob's alone
                    results.append(exc)
                    continue
                if change is None:
                    change = self._begin("walrus", raw_id)
                due = cost
                for c, cv in wallet:
                    if due == 0:
                        break
                    take = min(due, cv["balance"])
                    if take:
                        cv["balance"] -= take
                        due -= take
                        self._mutate(change, c, cv)
                for slot in slots:
                    slot["rewards_to_distribute"] += per_epoch
                    slot["used_capacity"] += spec.encoded_length
                ring["ring_buffer"][ring["current_index"]]["rewards_to_distribute"] += write_fee
                value["used_capacity_size"] = ring["ring_buffer"][ring["current_index"]][
                    "used_capacity"
                ]
                blob_obj_id = self._add_certified_blob(
                    change, spec, raw_id, owner_b, payer_b, epoch
                )
                made.append((len(results), blob_obj_id, cost))
                results.append(None)
            if change is None:
                return [r for r in results if r is not None]  # every one failed
            self._mutate(change, system, move.decode(t.system, system.contents))
            self._mutate(change, inner_obj, inner)
            outcome = self._commit_system(change)
            digest = digest_str(outcome.digest)
            for place, blob_obj_id, cost in made:
                record = self._blob_record(self.store.get(blob_obj_id))
                assert record is not None
                results[place] = CertifiedBlob(record, cost, digest)
            return [r for r in results if r is not None]

        return self._locked(run)

    def _add_certified_blob(
        self,
        change: _SystemChange,
        spec: BlobSpec,
        raw_id: bytes,
        owner_b: bytes,
        payer_b: bytes,
        epoch: int,
    ) -> bytes:
        """A new certified Blob object, its Storage and its two events, in `change`."""
        t = self.types
        storage_id = change.new_id()
        blob_obj_id = change.new_id()
        end_epoch = epoch + spec.epochs
        blob_value = {
            "id": blob_obj_id,
            "registered_epoch": epoch,
            "blob_id": int.from_bytes(raw_id, "little"),
            "size": spec.size,
            "encoding_type": spec.encoding_type,
            "certified_epoch": epoch,
            "storage": {
                "id": storage_id,
                "start_epoch": epoch,
                "end_epoch": end_epoch,
                "storage_size": spec.encoded_length,
            },
            "deletable": spec.deletable,
        }
        change.writes[blob_obj_id] = (t.blob, blob_value, Owner.address_owner(owner_b))
        change.created.add(blob_obj_id)
        for layout, ev in (
            (
                t.blob_registered,
                {
                    "epoch": epoch,
                    "blob_id": blob_value["blob_id"],
                    "size": spec.size,
                    "encoding_type": spec.encoding_type,
                    "end_epoch": end_epoch,
                    "deletable": spec.deletable,
                    "object_id": blob_obj_id,
                },
            ),
            (
                t.blob_certified,
                {
                    "epoch": epoch,
                    "blob_id": blob_value["blob_id"],
                    "end_epoch": end_epoch,
                    "deletable": spec.deletable,
                    "object_id": blob_obj_id,
                    "is_extension": False,
                },
            ),
        ):
            event = Event(t.pkg, "system", payer_b, layout.tag, move.encode(layout, ev))
            change.events.append(EventOut(event, move.to_json(layout, ev)))
        return blob_obj_id

    def _blob_record(self, obj: StoredObject | None) -> BlobRecord | None:
        if obj is None or obj.type_ != self.types.blob.tag:
            return None
        v = move.decode(self.types.blob, obj.contents)
        cert = self.store.certification(obj.id)
        assert obj.owner.address is not None or obj.owner.kind != ADDRESS_OWNER
        return BlobRecord(
            object_id=fmt_address(obj.id),
            version=obj.version,
            digest=digest_str(obj.digest),
            owner=fmt_address(obj.owner.address) if obj.owner.address else "",
            blob_id=int(v["blob_id"]).to_bytes(32, "little"),
            size=int(v["size"]),
            encoding_type=int(v["encoding_type"]),
            registered_epoch=int(v["registered_epoch"]),
            certified_epoch=v["certified_epoch"],
            start_epoch=int(v["storage"]["start_epoch"]),
            end_epoch=int(v["storage"]["end_epoch"]),
            storage_size=int(v["storage"]["storage_size"]),
            storage_id=fmt_address(v["storage"]["id"]),
            deletable=bool(v["deletable"]),
            certified_tx_digest=None if cert is None else digest_str(cert[0]),
            certified_event_seq=None if cert is None else cert[1],
        )

    def get_blob(self, object_id: str) -> BlobRecord | None:
        """A Blob object by its object id, live or expired; None if it does not exist."""
        oid = parse_address(object_id)
        return self._locked(lambda: self._blob_record(self.store.get(oid)))

    def find_blobs(
        self, blob_id: bytes | str, *, include_expired: bool = False
    ) -> list[BlobRecord]:
        """The certified Blob objects for a blob id that are still live (end epoch not reached)."""
        raw = blob_id_from_text(blob_id) if isinstance(blob_id, str) else bytes(blob_id)

        def read() -> list[BlobRecord]:
            epoch = self._current_epoch()
            out = []
            for obj in self.store.blobs_by_blob_id(raw):
                rec = self._blob_record(obj)
                if rec is None or rec.certified_epoch is None:
                    continue
                if include_expired or rec.end_epoch > epoch:
                    out.append(rec)
            return out

        return self._locked(read)

    def blob_lifetimes(
        self, blob_ids: Sequence[bytes | str]
    ) -> dict[bytes, tuple[int | None, float | None]]:
        """How long each blob id's data must be kept, by raw id: (the latest end epoch over its
        Blob objects, expired ones included, and the paid storage of burned ones, or None if
        there is neither; the unix time one of its objects was last deleted with
        system::delete_blob, or None)."""
        raw = [blob_id_from_text(b) if isinstance(b, str) else bytes(b) for b in blob_ids]
        return self._locked(lambda: self.store.blob_lifetimes(raw))

    def live_blob_ids(self) -> list[bytes]:
        """Blob ids still paid for: a Blob object (or a burned one) whose end epoch is ahead."""
        return self._locked(lambda: self.store.live_blob_ids(self._current_epoch()))

    def committee(self) -> list[tuple[int, bytes, str]]:
        """The devnet's storage nodes: (shard index, Ed25519 key, URL) in shard order."""

        def read() -> tuple[tuple[int, bytes, str], ...]:
            if self._committee_cache is None:
                self._committee_cache = tuple(self.store.committee())
            return self._committee_cache

        return list(self._locked(read))

    def set_committee(self, members: list[tuple[int, bytes, str]]) -> None:
        n = self.system_state().n_shards
        if [m[0] for m in members] != list(range(n)):
            raise LedgerError(f"a committee needs members 0..{n - 1} in order")

        def write() -> None:
            self._committee_cache = None
            with self.store.write():
                self.store.set_committee(members)

        self._locked(write)

    def set_prices(self, storage_price_per_unit: int, write_price_per_unit: int) -> None:
        """Change the Walrus prices (as a price vote would), emitting PricesUpdated."""
        t = self.types

        def run() -> None:
            system, inner_obj, inner = self._system()
            value = inner["value"]
            if (value["storage_price_per_unit_size"], value["write_price_per_unit_size"]) == (
                storage_price_per_unit,
                write_price_per_unit,
            ):
                return
            value["storage_price_per_unit_size"] = storage_price_per_unit
            value["write_price_per_unit_size"] = write_price_per_unit
            change = self._begin("prices", b"")
            self._mutate(change, system, move.decode(t.system, system.contents))
            self._mutate(change, inner_obj, inner)
            ev = {
                "epoch": value["committee"]["epoch"],
                "storage_price": storage_price_per_unit,
                "write_price": write_price_per_unit,
            }
            event = Event(
                t.pkg, "system", bytes(32), t.prices_updated.tag, move.encode(t.prices_updated, ev)
            )
            change.events.append(EventOut(event, move.to_json(t.prices_updated, ev)))
            self._commit_system(change)

        self._locked(run)

    def require_blob(self, object_id: str) -> BlobRecord:
        rec = self.get_blob(object_id)
        if rec is None:
            raise UnknownObject(f"no Blob object {object_id}")
        return rec


def timestamp_text(ms: int) -> str:
    return _iso(ms)


__all__ = [
    "BlobRecord",
    "CertifiedBlob",
    "Coin",
    "FaucetGrant",
    "InvalidTransaction",
    "Ledger",
    "LedgerConfig",
    "SystemState",
    "blob_id_from_text",
    "blob_id_to_text",
]

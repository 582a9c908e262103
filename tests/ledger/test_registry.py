"""The ledger behind the devnet's BlobRegistry protocol: what the publisher, the aggregator and
the storage nodes see of chain state, including what Sui clients did to Blob objects."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from ledger.ledger_helpers import (
    EPOCH,
    Account,
    FakeClock,
    address,
    build,
    call,
    inp,
    owned,
    res,
    shared,
    transfer,
    u32,
)
from nacl.signing import SigningKey

from walrusfs.devnet.blobid import blob_id_to_text
from walrusfs.devnet.confirm import sign_confirmation
from walrusfs.devnet.errors import (
    EpochsOutOfRange,
    InsufficientFunds,
    InvalidCertificate,
    StaleCertificate,
)
from walrusfs.devnet.ledger import LedgerError
from walrusfs.devnet.ledger.registry import LedgerRegistry
from walrusfs.devnet.ledger.suitypes import ADDRESS_OWNER, format_type, parse_address
from walrusfs.devnet.registry import (
    BlobRegistry,
    BlobStatus,
    Certification,
    CertifyRequest,
    Committee,
    CommitteeMember,
    StorageConfirmation,
    SystemParams,
    normalize_address,
)

PARAMS = SystemParams(
    n_shards=4, storage_price_per_unit=100, write_price_per_unit=50, epoch_seconds=EPOCH
)
OWNER = "0x" + "0a" * 32


@pytest.fixture
def keys() -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(PARAMS.n_shards)]


def _set_committee(reg: LedgerRegistry, keys: list[SigningKey]) -> None:
    reg.set_committee(
        Committee(
            tuple(
                CommitteeMember(i, bytes(k.verify_key), f"http://127.0.0.1:{4000 + i}")
                for i, k in enumerate(keys)
            )
        )
    )


def _assert_reopened_state(tmp_path: Path, clock: FakeClock, state: object) -> None:
    """The ledger in tmp_path/ledger, opened afresh, holds this System state."""
    reopened = LedgerRegistry.open(tmp_path / "ledger", PARAMS, clock=clock)
    try:
        assert reopened.ledger.system_state() == state
    finally:
        reopened.close()


@pytest.fixture
def registry(tmp_path: Path, clock: FakeClock, keys: list[SigningKey]) -> LedgerRegistry:
    reg = LedgerRegistry.open(tmp_path / "ledger", PARAMS, clock=clock)
    _set_committee(reg, keys)
    return reg


def request(
    keys: list[SigningKey],
    blob_id: bytes,
    epoch: int,
    signers: int,
    *,
    epochs: int = 3,
    size: int = 1000,
    deletable: bool = True,
    owner: str = OWNER,
) -> CertifyRequest:
    return CertifyRequest(
        blob_id=blob_id_to_text(blob_id),
        size=size,
        encoding_type=0x5A,
        epochs_ahead=epochs,
        deletable=deletable,
        owner=owner,
        epoch=epoch,
        confirmations=tuple(
            sign_confirmation(k, i, epoch, blob_id) for i, k in enumerate(keys[:signers])
        ),
    )


def test_it_is_a_blob_registry(registry: LedgerRegistry, keys: list[SigningKey]):
    assert isinstance(registry, BlobRegistry)
    assert registry.params() == PARAMS
    assert registry.current_epoch() == 1
    assert [m.public_key for m in registry.committee().members] == [
        bytes(k.verify_key) for k in keys
    ]


def test_certify_charges_the_owner_and_creates_the_blob(
    registry: LedgerRegistry, keys: list[SigningKey], clock: FakeClock
):
    assert registry.balance(OWNER) == 0
    assert registry.faucet(OWNER, 10**6) == 10**6
    blob_id = os.urandom(32)
    cert = registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum))
    assert cert.cost == PARAMS.cost(1000, 3) and cert.encoded_length == PARAMS.encoded_length(1000)
    assert registry.balance(OWNER) == 10**6 - cert.cost
    blob = cert.blob
    assert (blob.owner, blob.end_epoch, blob.encoding_type, blob.certified_epoch) == (
        OWNER,
        4,
        0x5A,
        1,
    )
    assert blob.certify_event is not None
    assert registry.get_blob_object(blob.object_id) == blob
    assert registry.blob_objects(blob.blob_id) == (blob,)
    assert registry.live_blob_ids() == (blob.blob_id,)
    # the object is a real Blob on the ledger, with its Storage
    rec = registry.ledger.get_blob(blob.object_id)
    assert rec is not None and rec.storage_id == blob.storage.object_id
    clock.advance(3 * EPOCH)
    assert registry.live_blob_ids() == ()
    assert registry.blob_objects(blob.blob_id) == (blob,)  # expired objects still exist


def test_certify_refusals_change_nothing(
    registry: LedgerRegistry, keys: list[SigningKey], clock: FakeClock
):
    blob_id = os.urandom(32)
    with pytest.raises(InsufficientFunds):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum))
    registry.faucet(OWNER, 10**6)
    with pytest.raises(InvalidCertificate):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum - 1))
    with pytest.raises(EpochsOutOfRange):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum, epochs=54))
    with pytest.raises(EpochsOutOfRange):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum, epochs=0))
    one = request(keys, blob_id, 1, 1)
    with pytest.raises(InvalidCertificate):  # the same node three times is one node
        registry.certify_blob(replace(one, confirmations=one.confirmations * 3))
    honest = request(keys, blob_id, 1, PARAMS.quorum).confirmations
    last = honest[-1]
    forged = (*honest[:-1], StorageConfirmation(last.node_index, last.message, honest[0].signature))
    with pytest.raises(InvalidCertificate):  # a signature that is not the node's
        registry.certify_blob(replace(one, confirmations=forged))
    clock.advance(EPOCH)
    with pytest.raises(StaleCertificate):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum))
    assert registry.balance(OWNER) == 10**6
    assert registry.blob_objects(blob_id_to_text(blob_id)) == ()
    assert registry.get_blob_object("0x1234") is None
    assert registry.get_blob_object("not an id") is None


def test_several_certified_at_once_each_as_alone(registry: LedgerRegistry, keys: list[SigningKey]):
    registry.faucet(OWNER, PARAMS.cost(1000, 3) * 2)
    poor = "0x" + "0b" * 32
    good, weak, broke, long, second = (os.urandom(32) for _ in range(5))
    requests = [
        request(keys, good, 1, PARAMS.quorum),
        request(keys, weak, 1, PARAMS.quorum - 1),
        request(keys, broke, 1, PARAMS.quorum, owner=poor),
        request(keys, long, 1, PARAMS.quorum, epochs=54),
        request(keys, second, 1, PARAMS.quorum),
    ]
    results = registry.certify_blobs(requests)
    assert isinstance(results[1], InvalidCertificate)
    assert isinstance(results[2], InsufficientFunds)
    assert isinstance(results[3], EpochsOutOfRange)
    certified = [results[0], results[4]]
    for cert, raw in zip(certified, (good, second), strict=True):
        assert isinstance(cert, Certification)
        assert cert.blob.blob_id == blob_id_to_text(raw)
        assert registry.blob_objects(cert.blob.blob_id) == (cert.blob,)
    events = [c.blob.certify_event for c in certified if isinstance(c, Certification)]
    assert len({e.tx_digest for e in events if e is not None}) == 1
    assert registry.balance(OWNER) == 0 and registry.balance(poor) == 0
    for raw in (weak, broke, long):
        assert registry.blob_objects(blob_id_to_text(raw)) == ()


def test_reopening_keeps_state_and_updates_prices(
    tmp_path: Path, clock: FakeClock, keys: list[SigningKey]
):
    reg = LedgerRegistry.open(tmp_path, PARAMS, clock=clock)
    reg.faucet(OWNER, 500)
    reg.close()
    reg = LedgerRegistry.open(tmp_path, clock=clock)
    assert reg.params() == PARAMS and reg.balance(OWNER) == 500
    reg.close()
    cheaper = SystemParams(4, 10, 5, EPOCH)
    reg = LedgerRegistry.open(tmp_path, cheaper, clock=clock)
    assert reg.params() == cheaper
    reg.close()
    with pytest.raises(LedgerError, match="shards"):
        LedgerRegistry.open(tmp_path, SystemParams(7, 10, 5, EPOCH), clock=clock)
    with pytest.raises(ValueError):
        LedgerRegistry.open(tmp_path, clock=clock).set_committee(Committee(()))


def test_the_epoch_clock_survives_and_follows_a_new_length(tmp_path: Path, clock: FakeClock):
    reg = LedgerRegistry.open(tmp_path, PARAMS, clock=clock)
    assert reg.current_epoch() == 1
    clock.advance(2.5 * EPOCH)
    assert reg.current_epoch() == 3
    reg.close()
    clock.advance(EPOCH)  # time runs while the devnet is down
    reg = LedgerRegistry.open(tmp_path, PARAMS, clock=clock)
    assert reg.current_epoch() == 4
    reg.close()
    # A new epoch length applies from now on; the epoch never goes back.
    faster = SystemParams(4, 100, 50, epoch_seconds=1.0)
    reg = LedgerRegistry.open(tmp_path, faster, clock=clock)
    assert reg.current_epoch() == 4 and reg.params().epoch_seconds == 1.0
    clock.advance(2.5)
    assert reg.current_epoch() == 6
    reg.close()


# --- what Sui clients do to Blob objects, as the Walrus services see it ----------------------


def _coins(registry: LedgerRegistry, owner: str) -> list:
    ledger = registry.ledger
    return ledger.store.owned(
        ADDRESS_OWNER,
        parse_address(owner),
        None,
        format_type(ledger.types.sui_coin.tag),
        None,
        None,
        10,
    )


def _run(registry: LedgerRegistry, who: Account, inputs: list, commands: list) -> dict:
    tx = build(who, inputs, commands, _coins(registry, who.address)[:1])
    record = registry.ledger.execute(tx, [who.sign(tx)])
    assert record["status"] == "SUCCESS", record["error"]
    return record


def _blob_arg(registry: LedgerRegistry, object_id: str) -> object:
    obj = registry.ledger.store.get(parse_address(object_id))
    assert obj is not None
    return owned(obj)


def _certified(
    registry: LedgerRegistry, keys: list[SigningKey], who: Account, **kw: object
) -> tuple[str, str]:
    blob_id = os.urandom(32)
    epoch = registry.current_epoch()
    req = request(keys, blob_id, epoch, PARAMS.quorum, owner=who.address, **kw)  # type: ignore[arg-type]
    blob = registry.certify_blob(req).blob
    return blob.object_id, blob.blob_id


def test_blob_status_follows_extension_deletion_and_burning(
    registry: LedgerRegistry, keys: list[SigningKey], clock: FakeClock
):
    who = Account.new()
    registry.ledger.fund(who.address, sui=10**10, wal=10**10)
    pkg = registry.ledger.config.walrus_package_id
    system = registry.ledger.config.system_object_id
    assert registry.blob_status(blob_id_to_text(os.urandom(32))) == BlobStatus(None, None)

    # extended: the storage lasts longer
    extended, extended_id = _certified(registry, keys, who, epochs=2)
    assert registry.blob_status(extended_id) == BlobStatus(3, None)
    wal = registry.ledger.coins(who.address, "WAL")[0]
    wal_obj = registry.ledger.store.get(parse_address(wal.object_id))
    assert wal_obj is not None
    _run(
        registry,
        who,
        [shared(system, 1, True), _blob_arg(registry, extended), u32(4), owned(wal_obj)],
        [call(pkg, "system", "extend_blob", inp(0), inp(1), inp(2), inp(3))],
    )
    assert registry.blob_status(extended_id) == BlobStatus(7, None)

    # deleted: no storage left, and the time it went
    deleted, deleted_id = _certified(registry, keys, who)
    clock.advance(1.0)
    _run(
        registry,
        who,
        [shared(system, 1, False), _blob_arg(registry, deleted), address(who.address)],
        [call(pkg, "system", "delete_blob", inp(0), inp(1)), transfer([res(0)], inp(2))],
    )
    status = status_deleted = registry.blob_status(deleted_id)
    assert status == BlobStatus(None, clock.now) and not status.is_live(1)
    assert deleted_id not in registry.live_blob_ids()

    # burned: the object is gone, its paid storage is not (as on Walrus)
    burned, burned_id = _certified(registry, keys, who, epochs=3, deletable=False)
    _run(registry, who, [_blob_arg(registry, burned)], [call(pkg, "blob", "burn", inp(0))])
    assert registry.get_blob_object(burned) is None and registry.blob_objects(burned_id) == ()
    status = registry.blob_status(burned_id)
    assert status == BlobStatus(4, None) and status.is_live(3) and not status.is_live(4)
    assert burned_id in registry.live_blob_ids()
    clock.advance(3 * EPOCH)
    assert registry.live_blob_ids() == (extended_id,)
    assert not registry.blob_status(burned_id).is_live(registry.current_epoch())

    # many at once (in chunks of a few hundred), each as asked alone
    unknown = [blob_id_to_text(os.urandom(32)) for _ in range(1200)]
    asked = [*unknown[:700], extended_id, deleted_id, *unknown[700:], burned_id, extended_id]
    statuses = registry.blob_statuses(asked)
    assert set(statuses) == set(asked)
    assert statuses[extended_id] == BlobStatus(7, None)
    assert statuses[deleted_id] == BlobStatus(None, status_deleted.deleted_at)
    assert statuses[burned_id] == BlobStatus(4, None)
    assert all(statuses[b] == BlobStatus(None, None) for b in unknown)


def test_addresses() -> None:
    assert normalize_address("0x1") == "0x" + "0" * 63 + "1"
    assert normalize_address("0X" + "AB" * 32) == "0x" + "ab" * 32
    for bad in ["1", "0x", "0xg1", "0x" + "1" * 65]:
        with pytest.raises(ValueError):
            normalize_address(bad)


def test_the_cached_system_state_is_what_the_ledger_holds(
    registry: LedgerRegistry, keys: list[SigningKey], clock: FakeClock, tmp_path: Path
) -> None:
    """Certifications and epoch changes keep the System state they wrote as the cached state;
    it must match the state decoded from the database."""
    assert registry.faucet(OWNER, 10**6) == 10**6
    used = []
    for _ in range(3):
        registry.certify_blob(request(keys, os.urandom(32), registry.current_epoch(), 7))
        used.append(registry.ledger.system_state().used_capacity)
        clock.advance(PARAMS.epoch_seconds)
        assert registry.current_epoch() == registry.ledger.system_state().epoch
    assert used[0] < used[1] < used[2]
    cached = registry.ledger.system_state()
    registry.close()
    _assert_reopened_state(tmp_path, clock, cached)


def test_a_certification_that_fails_halfway_leaves_no_trace(
    tmp_path: Path, clock: FakeClock, keys: list[SigningKey]
) -> None:
    """A certification changes the System state in place as it goes and fails on the first
    epoch without room: nothing of it may reach the next certification, nor the database."""
    small, large = PARAMS.encoded_length(1000), PARAMS.encoded_length(10**6)
    registry = LedgerRegistry.open(
        tmp_path / "ledger", PARAMS, clock=clock, total_capacity=2 * small + large // 2
    )
    try:
        _set_committee(registry, keys)
        registry.faucet(OWNER, 10**12)
        epoch = registry.current_epoch()
        registry.certify_blob(request(keys, os.urandom(32), epoch, PARAMS.quorum, epochs=1))
        with pytest.raises(LedgerError, match="capacity"):
            registry.certify_blob(
                request(keys, os.urandom(32), epoch, PARAMS.quorum, epochs=1, size=10**6)
            )
        assert registry.ledger.system_state().used_capacity == small
        # Room for this one only if the failed attempt left nothing behind.
        registry.certify_blob(request(keys, os.urandom(32), epoch, PARAMS.quorum, epochs=1))
        state = registry.ledger.system_state()
        assert state.used_capacity == 2 * small
    finally:
        registry.close()
    _assert_reopened_state(tmp_path, clock, state)

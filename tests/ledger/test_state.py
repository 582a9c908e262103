"""The ledger's state outside transactions: epoch clock, restarts, faucet, the publisher's
Blob objects, and the System object's accounting."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledger.ledger_helpers import EPOCH, Account, FakeClock, new_ledger, random_blob_id

from walrusfs.devnet.ledger import InsufficientFunds, Ledger, LedgerConfig, LedgerError
from walrusfs.devnet.ledger import move as mv
from walrusfs.devnet.ledger.ledger import (
    BlobSpec,
    CertifiedBlob,
    blob_id_from_text,
    blob_id_to_text,
)
from walrusfs.devnet.ledger.suitypes import parse_address

MIB = 1024 * 1024


def inner(ledger: Ledger) -> dict:
    return ledger._system()[2]["value"]  # type: ignore[no-any-return]


def test_epochs_follow_the_clock_and_move_the_system_object(ledger: Ledger, clock: FakeClock):
    system = ledger.store.get(parse_address(ledger.config.system_object_id))
    assert system is not None
    assert ledger.current_epoch() == 1
    clock.advance(EPOCH * 0.99)
    assert ledger.current_epoch() == 1
    clock.advance(EPOCH * 2.5)
    assert ledger.current_epoch() == 4
    after = ledger.store.get(system.id)
    assert after is not None and after.version > system.version
    ring = inner(ledger)["future_accounting"]
    assert ring["current_index"] == 3
    assert [ring["ring_buffer"][(i + 3) % 53]["epoch"] for i in range(53)] == list(range(4, 57))
    state = ledger.system_state()
    assert state.epoch == 4 and state.epoch_start == pytest.approx(clock.now - EPOCH * 0.49)


def test_state_and_clock_survive_a_restart(tmp_path: Path, clock: FakeClock):
    led = new_ledger(tmp_path, clock)
    alice = Account.new()
    led.fund(alice.address)
    blob = led.create_certified_blob(
        owner=alice.address,
        blob_id=random_blob_id(),
        size=5,
        encoded_length=MIB,
        epochs=4,
        deletable=True,
    ).blob
    chain = led.chain_identifier
    clock.advance(EPOCH * 1.5)
    assert led.current_epoch() == 2
    led.close()
    clock.advance(EPOCH)  # time runs on while the devnet is down
    led = Ledger(LedgerConfig(directory=tmp_path, clock=clock))  # epoch length from the state
    try:
        assert led.chain_identifier == chain
        assert led.current_epoch() == 3
        assert led.get_blob(blob.object_id) == led.get_blob(blob.object_id) is not None
        assert led.balance(alice.address, "WAL") == led.config.faucet_wal - (
            led.config.storage_price_per_unit * 4 + led.config.write_price_per_unit
        )
    finally:
        led.close()
    # a new epoch length applies from now on; the count never goes back or jumps, and past
    # epochs keep their start times
    led = new_ledger(tmp_path, clock, epoch_seconds=EPOCH / 10)
    try:
        start2 = led._epoch_start(2)
        assert led.current_epoch() == 3
        clock.advance(EPOCH / 10)
        assert led.current_epoch() == 4
        assert led._epoch_start(2) == start2 == led._epoch_start(1) + EPOCH
        assert led.system_state().epoch_start == clock.now
    finally:
        led.close()


def test_a_ledger_keeps_its_ids(tmp_path: Path, clock: FakeClock):
    new_ledger(tmp_path, clock).close()
    with pytest.raises(LedgerError, match="other package"):
        new_ledger(tmp_path, clock, system_object_id="0x5")


def test_faucet_mints_coins(ledger: Ledger):
    a = Account.new()
    grant = ledger.fund(a.address, sui=7, wal=9)
    assert [c.balance for c in grant.coins] == [7, 9]
    assert ledger.balance(a.address) == 7 and ledger.balance(a.address, "WAL") == 9
    ledger.fund(a.address, sui=0, wal=1)
    assert ledger.balance(a.address, "WAL") == 10 and len(ledger.coins(a.address, "WAL")) == 2


def test_certified_blob_for_the_publisher(ledger: Ledger, clock: FakeClock):
    owner, payer = Account.new(), Account.new()
    ledger.fund(payer.address, sui=0, wal=10**6)
    raw = random_blob_id()
    encoded = 3 * MIB + 1  # 4 units
    made = ledger.create_certified_blob(
        owner=owner.address,
        blob_id=blob_id_to_text(raw),
        size=1234,
        encoded_length=encoded,
        epochs=5,
        deletable=False,
        payer=payer.address,
    )
    cfg = ledger.config
    assert made.cost == cfg.storage_price_per_unit * 4 * 5 + cfg.write_price_per_unit * 4
    assert ledger.balance(payer.address, "WAL") == 10**6 - made.cost
    b = made.blob
    assert (b.owner, b.blob_id, b.size, b.storage_size, b.deletable) == (
        owner.address,
        raw,
        1234,
        encoded,
        False,
    )
    assert (b.registered_epoch, b.certified_epoch, b.start_epoch, b.end_epoch) == (1, 1, 1, 6)
    assert b.certified_tx_digest == made.tx_digest and b.certified_event_seq == 1
    assert ledger.find_blobs(raw) == [b] and ledger.find_blobs(blob_id_to_text(raw)) == [b]
    assert ledger.get_blob(b.object_id) == b and raw in ledger.live_blob_ids()
    # the storage bought is accounted in the System object for each of its epochs
    ring = inner(ledger)["future_accounting"]
    assert [ring["ring_buffer"][i]["used_capacity"] for i in range(6)] == [encoded] * 5 + [0]
    clock.advance(EPOCH * 5)
    assert ledger.find_blobs(raw) == [] and ledger.find_blobs(raw, include_expired=True)
    assert raw not in ledger.live_blob_ids()
    assert blob_id_from_text(blob_id_to_text(raw)) == raw


def test_several_blobs_certified_in_one_transaction(ledger: Ledger):
    """Good blobs are certified together; each bad one fails alone and changes nothing."""
    rich, poor = Account.new(), Account.new()
    ledger.fund(rich.address, sui=0, wal=10**6)
    ledger.fund(poor.address, sui=0, wal=3000)  # one 1-MiB blob for one epoch, not two
    refused: list[int] = []

    def refuse(epoch: int) -> None:
        refused.append(epoch)
        raise ValueError("a bad certificate")

    def spec(owner: Account, **kw: object) -> BlobSpec:
        settings: dict = {"size": 10, "encoded_length": MIB, "epochs": 1, "deletable": True}
        settings.update(kw)
        return BlobSpec(owner=owner.address, blob_id=random_blob_id(), **settings)

    specs = [
        spec(rich, epochs=3),
        spec(poor),
        spec(rich, precheck=refuse),
        spec(poor),  # the first of poor's blobs took all it had
        spec(rich, epochs=54),
        spec(rich, deletable=False),
    ]
    wal = ledger.balance(rich.address, "WAL")
    seq = ledger.store.next_seq()
    results = ledger.create_certified_blobs(specs)
    assert [type(r).__name__ for r in results] == [
        "CertifiedBlob",
        "CertifiedBlob",
        "ValueError",
        "InsufficientFunds",
        "LedgerError",
        "CertifiedBlob",
    ]
    assert refused == [1]
    made = [r for r in results if isinstance(r, CertifiedBlob)]
    assert ledger.store.next_seq() == seq + 1  # one transaction
    assert len({m.tx_digest for m in made}) == 1
    assert [m.blob.certified_event_seq for m in made] == [1, 3, 5]  # registered, certified, ...
    for m, s in zip(made, [specs[0], specs[1], specs[5]], strict=True):
        assert m.blob.blob_id == s.blob_id and m.blob.end_epoch == 1 + s.epochs
        assert ledger.find_blobs(s.blob_id) == [m.blob]
    for s in (specs[2], specs[3], specs[4]):
        assert ledger.find_blobs(s.blob_id, include_expired=True) == []
    assert ledger.balance(poor.address, "WAL") == 0
    assert ledger.balance(rich.address, "WAL") == wal - made[0].cost - made[2].cost
    ring = inner(ledger)["future_accounting"]
    assert [ring["ring_buffer"][i]["used_capacity"] for i in range(4)] == [
        3 * MIB,
        MIB,
        MIB,
        0,
    ]
    # Nothing certifiable: no transaction at all.
    assert isinstance(ledger.create_certified_blobs([spec(poor)])[0], InsufficientFunds)
    assert ledger.store.next_seq() == seq + 1


def test_certifying_checks_funds_and_epochs(ledger: Ledger):
    owner = Account.new()
    ledger.fund(owner.address, sui=0, wal=100)
    seq = ledger.store.next_seq()
    with pytest.raises(InsufficientFunds) as err:
        ledger.create_certified_blob(
            owner=owner.address,
            blob_id=random_blob_id(),
            size=1,
            encoded_length=MIB,
            epochs=1,
            deletable=True,
        )
    assert (err.value.needed, err.value.balance) == (3000, 100)
    for epochs in (0, 54):
        with pytest.raises(LedgerError, match="epochs"):
            ledger.create_certified_blob(
                owner=owner.address,
                blob_id=random_blob_id(),
                size=1,
                encoded_length=MIB,
                epochs=epochs,
                deletable=True,
            )
    assert ledger.store.next_seq() == seq and ledger.balance(owner.address, "WAL") == 100


def test_prices_can_change(ledger: Ledger):
    ledger.set_prices(5, 7)
    state = ledger.system_state()
    assert (state.storage_price_per_unit, state.write_price_per_unit) == (5, 7)
    assert ledger.storage_cost(MIB, 2) == (10, 7)
    value = inner(ledger)
    assert value["storage_price_per_unit_size"] == 5
    row = ledger.store.last_transaction()
    assert row is not None and "PricesUpdated" in row["record"]


def test_the_system_object_has_walrus_layout(ledger: Ledger):
    system = ledger.store.get(parse_address(ledger.config.system_object_id))
    assert system is not None and system.owner.kind == 2  # shared
    value = mv.decode(ledger.types.system, system.contents)
    assert value["version"] == 3 and value["package_id"] == parse_address(
        ledger.config.walrus_package_id
    )
    v = inner(ledger)
    assert v["committee"]["n_shards"] == 10 and v["future_accounting"]["length"] == 53


def _vm_steps(ledger: Ledger, action) -> int:
    """SQLite virtual-machine steps `action` takes on the ledger's database."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db = ledger.store._db
    db.set_progress_handler(count, 1)
    try:
        action()
    finally:
        db.set_progress_handler(None, 1)
    return steps


def test_finding_coins_does_not_scan_the_owners_blobs(ledger: Ledger):
    """The publisher pays for every blob from its coins and owns every blob it stored: finding
    its coins must not cost more as its blobs accumulate."""
    owner = Account.new()
    ledger.fund(owner.address, sui=0, wal=10**9)

    def certify() -> None:
        ledger.create_certified_blob(
            owner=owner.address,
            blob_id=blob_id_to_text(random_blob_id()),
            size=1,
            encoded_length=MIB,
            epochs=1,
            deletable=False,
        )

    certify()
    before = _vm_steps(ledger, lambda: ledger.coins(owner.address, "WAL"))
    for _ in range(100):
        certify()
    after = _vm_steps(ledger, lambda: ledger.coins(owner.address, "WAL"))
    assert after <= before + 50, f"{before} steps with 1 blob, {after} with 101"

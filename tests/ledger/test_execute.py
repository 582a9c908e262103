"""Executing transactions on the ledger: the Walrus calls and their checks, coins, gas,
versions, and every way a transaction is refused with nothing applied."""

from __future__ import annotations

import pytest
from ledger.ledger_helpers import (
    EPOCH,
    GAS,
    Account,
    FakeClock,
    address,
    build,
    call,
    inp,
    merge,
    nested,
    owned,
    pure,
    random_blob_id,
    res,
    shared,
    split,
    string,
    transfer,
    u32,
    u64,
)
from pysui.sui.sui_bcs.bcs_txne import TransactionEffects

from walrusfs.devnet.ledger import (
    InvalidSignature,
    Ledger,
    StaleObjects,
    TransactionRejected,
    Unsupported,
)
from walrusfs.devnet.ledger import move as mv
from walrusfs.devnet.ledger.errors import GasError
from walrusfs.devnet.ledger.execute import METADATA_KEY, METADATA_KEY_TYPE
from walrusfs.devnet.ledger.store import StoredObject
from walrusfs.devnet.ledger.suitypes import (
    ADDRESS_OWNER,
    derive_dynamic_field_id,
    digest_str,
    fmt_address,
    format_type,
    parse_address,
    parse_digest,
    type_digest,
)

MIB = 1024 * 1024


def coins(ledger: Ledger, owner: str, coin: str = "SUI") -> list[StoredObject]:
    layout = ledger.types.sui_coin if coin == "SUI" else ledger.types.wal_coin
    return ledger.store.owned(
        ADDRESS_OWNER, parse_address(owner), None, format_type(layout.tag), None, None, 100
    )


def coin_value(ledger: Ledger, obj: StoredObject) -> int:
    layout = ledger.types.coin_layout(obj.type_)
    assert layout is not None
    return int(mv.decode(layout, obj.contents)["balance"])


def obj(ledger: Ledger, object_id: str) -> StoredObject:
    o = ledger.store.get(parse_address(object_id))
    assert o is not None, object_id
    return o


def blob_value(ledger: Ledger, object_id: str) -> dict:
    return mv.decode(ledger.types.blob, obj(ledger, object_id).contents)  # type: ignore[no-any-return]


def new_blob(
    ledger: Ledger,
    owner: Account,
    *,
    epochs: int = 3,
    deletable: bool = True,
    encoded: int = 5 * MIB,
) -> str:
    return ledger.create_certified_blob(
        owner=owner.address,
        blob_id=random_blob_id(),
        size=1000,
        encoded_length=encoded,
        epochs=epochs,
        deletable=deletable,
    ).blob.object_id


def system_arg(ledger: Ledger, mutable: bool) -> object:
    return shared(ledger.config.system_object_id, 1, mutable)


def pkg(ledger: Ledger) -> str:
    return ledger.config.walrus_package_id


def run(ledger: Ledger, who: Account, inputs: list, commands: list, **kw: object) -> dict:
    gas = coins(ledger, who.address)[:1]
    tx = build(who, inputs, commands, gas, **kw)  # type: ignore[arg-type]
    return ledger.execute(tx, [who.sign(tx)])


def metadata(ledger: Ledger, blob_id: str) -> list[tuple[str, str]] | None:
    fid = derive_dynamic_field_id(parse_address(blob_id), METADATA_KEY_TYPE, b"\x08" + METADATA_KEY)
    o = ledger.store.get(fid)
    if o is None:
        return None
    v = mv.decode(ledger.types.metadata_field, o.contents)
    return [(e["key"], e["value"]) for e in v["value"]["metadata"]["contents"]]


def set_pair(ledger: Ledger, who: Account, blob: str, key: str, value: str) -> dict:
    return run(
        ledger,
        who,
        [owned(obj(ledger, blob)), string(key), string(value)],
        [call(pkg(ledger), "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
    )


# --- the Walrus functions -----------------------------------------------------------------


def test_metadata_pairs_create_the_field_then_update_and_remove(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    assert metadata(ledger, blob) is None
    rec = set_pair(ledger, alice, blob, "head", "1")
    assert rec["status"] == "SUCCESS"
    created = [c for c in rec["changes"] if c[3]]
    assert len(created) == 1  # the Metadata dynamic field, on first insert
    assert metadata(ledger, blob) == [("head", "1")]
    set_pair(ledger, alice, blob, "writer", "a")
    set_pair(ledger, alice, blob, "head", "2")
    assert metadata(ledger, blob) == [("writer", "a"), ("head", "2")]
    rec = run(
        ledger,
        alice,
        [owned(obj(ledger, blob)), string("writer")],
        [call(pkg(ledger), "blob", "remove_metadata_pair", inp(0), inp(1))],
    )
    assert rec["status"] == "SUCCESS"
    assert metadata(ledger, blob) == [("head", "2")]


def test_removing_a_missing_pair_aborts(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    rec = run(
        ledger,
        alice,
        [owned(obj(ledger, blob)), string("k")],
        [call(pkg(ledger), "blob", "remove_metadata_pair", inp(0), inp(1))],
    )
    assert rec["status"] == "FAILURE"
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("blob", "8")
    set_pair(ledger, alice, blob, "a", "b")
    rec = run(
        ledger,
        alice,
        [owned(obj(ledger, blob)), string("k")],
        [call(pkg(ledger), "blob", "remove_metadata_pair", inp(0), inp(1))],
    )
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("vec_map", "1")
    assert metadata(ledger, blob) == [("a", "b")]


def extend_tx(ledger: Ledger, who: Account, blob: str, epochs: int, wal: StoredObject) -> dict:
    return run(
        ledger,
        who,
        [system_arg(ledger, True), owned(obj(ledger, blob)), u32(epochs), owned(wal)],
        [call(pkg(ledger), "system", "extend_blob", inp(0), inp(1), inp(2), inp(3))],
    )


def test_extend_blob_charges_wal_and_moves_the_end_epoch(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice, epochs=3, encoded=5 * MIB + 1)  # 6 units
    end = blob_value(ledger, blob)["storage"]["end_epoch"]
    wal = coins(ledger, alice.address, "WAL")[0]
    before = coin_value(ledger, wal)
    rec = extend_tx(ledger, alice, blob, 4, wal)
    assert rec["status"] == "SUCCESS", rec["error"]
    assert blob_value(ledger, blob)["storage"]["end_epoch"] == end + 4
    price = ledger.config.storage_price_per_unit * 6 * 4
    assert coin_value(ledger, obj(ledger, fmt_address(wal.id))) == before - price
    [event] = rec["events"]
    assert event["type"].endswith("::events::BlobCertified")
    assert event["json"]["is_extension"] is True
    assert event["json"]["end_epoch"] == end + 4
    assert {"address": alice.address, "coinType": ledger.wal_type, "amount": str(-price)} in rec[
        "balance_changes"
    ]


def test_extend_needs_enough_wal(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    poor = Account.new()
    wal = coins(ledger, alice.address, "WAL")[0]
    rec = run(
        ledger,
        alice,
        [owned(wal), u64(coin_value(ledger, wal) - 5), address(poor.address)],
        [split(inp(0), inp(1)), transfer([nested(0, 0)], inp(2))],
    )
    assert rec["status"] == "SUCCESS"
    small = coins(ledger, alice.address, "WAL")[0]
    assert coin_value(ledger, small) == 5
    blob_before = obj(ledger, blob)
    rec = extend_tx(ledger, alice, blob, 1, small)
    assert rec["status"] == "FAILURE"
    assert (rec["error"]["module"], rec["error"]["function"], rec["error"]["abort_code"]) == (
        "balance",
        "split",
        "2",
    )
    after = obj(ledger, blob)
    # an aborted transaction changes nothing but versions and the gas coin
    assert after.contents == blob_before.contents and after.version > blob_before.version
    assert coin_value(ledger, obj(ledger, fmt_address(small.id))) == 5
    assert rec["gas"]["computation"] > 0


def test_extend_refuses_expired_blobs(ledger: Ledger, alice: Account, clock: FakeClock):
    blob = new_blob(ledger, alice, epochs=2)
    clock.advance(2 * EPOCH)
    assert ledger.current_epoch() == blob_value(ledger, blob)["storage"]["end_epoch"]
    rec = extend_tx(ledger, alice, blob, 1, coins(ledger, alice.address, "WAL")[0])
    assert rec["status"] == "FAILURE"
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("blob", "2")


def test_extend_refuses_more_than_max_epochs_ahead(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice, epochs=3)
    wal = coins(ledger, alice.address, "WAL")[0]
    rec = extend_tx(ledger, alice, blob, 51, wal)  # ends 54 epochs ahead
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("system_state_inner", "2")
    rec = extend_tx(ledger, alice, blob, 0, coins(ledger, alice.address, "WAL")[0])
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("system_state_inner", "2")
    rec = extend_tx(ledger, alice, blob, 50, coins(ledger, alice.address, "WAL")[0])
    assert rec["status"] == "SUCCESS"
    assert blob_value(ledger, blob)["storage"]["end_epoch"] == ledger.current_epoch() + 53


def test_extend_refuses_uncertified_blobs(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    # make the blob uncertified behind the ledger's back (the devnet only creates certified ones)
    o = obj(ledger, blob)
    value = mv.decode(ledger.types.blob, o.contents)
    value["certified_epoch"] = None
    with ledger.store.write():
        ledger.store.put(
            StoredObject(
                o.id,
                o.version,
                o.owner,
                o.type_,
                True,
                mv.encode(ledger.types.blob, value),
                o.previous_transaction,
                o.storage_rebate,
            )
        )
    rec = extend_tx(ledger, alice, blob, 1, coins(ledger, alice.address, "WAL")[0])
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("blob", "0")


def delete_tx(ledger: Ledger, who: Account, blob: str, *, keep_storage: bool = True) -> dict:
    commands = [call(pkg(ledger), "system", "delete_blob", inp(0), inp(1))]
    if keep_storage:
        commands.append(transfer([res(0)], inp(2)))
    return run(
        ledger,
        who,
        [system_arg(ledger, False), owned(obj(ledger, blob)), address(who.address)],
        commands,
    )


def test_delete_blob_returns_its_storage(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    set_pair(ledger, alice, blob, "k", "v")
    storage_id = blob_value(ledger, blob)["storage"]["id"]
    blob_id = int(blob_value(ledger, blob)["blob_id"]).to_bytes(32, "little")
    assert len(ledger.find_blobs(blob_id)) == 1
    rec = delete_tx(ledger, alice, blob)
    assert rec["status"] == "SUCCESS", rec["error"]
    assert ledger.store.get(parse_address(blob)) is None
    assert metadata(ledger, blob) is None
    storage = ledger.store.get(storage_id)
    assert storage is not None and storage.type_ == ledger.types.storage.tag
    assert storage.owner.address == parse_address(alice.address)
    ops = {c[0]: (c[1], c[2], c[3], c[4]) for c in rec["changes"]}
    assert ops[blob][3] is True  # deleted
    assert ops[fmt_address(storage_id)][:3] == (None, rec["lamport"], False)  # unwrapped
    [event] = rec["events"]
    assert event["type"].endswith("::events::BlobDeleted") and event["json"]["was_certified"]
    # unchanged read-only System object
    assert (
        rec["effects"]["unchangedConsensusObjects"][0]["objectId"] == ledger.config.system_object_id
    )
    assert ledger.find_blobs(blob_id) == [] and blob_id not in ledger.live_blob_ids()


def test_delete_refuses_permanent_and_expired_blobs(
    ledger: Ledger, alice: Account, clock: FakeClock
):
    permanent = new_blob(ledger, alice, deletable=False)
    rec = delete_tx(ledger, alice, permanent)
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("blob", "1")
    assert ledger.store.get(parse_address(permanent)) is not None
    short = new_blob(ledger, alice, epochs=1)
    clock.advance(EPOCH)
    rec = delete_tx(ledger, alice, short)
    assert (rec["error"]["module"], rec["error"]["abort_code"]) == ("blob", "2")


def test_an_unused_storage_is_an_error(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    rec = delete_tx(ledger, alice, blob, keep_storage=False)
    assert rec["status"] == "FAILURE"
    assert rec["error"]["kind"] == "UNUSED_VALUE_WITHOUT_DROP"
    assert ledger.store.get(parse_address(blob)) is not None


def test_burn_deletes_blob_storage_and_metadata(ledger: Ledger, alice: Account):
    rec0 = ledger.create_certified_blob(
        owner=alice.address,
        blob_id=random_blob_id(),
        size=10,
        encoded_length=MIB,
        epochs=5,
        deletable=False,
    )
    blob = rec0.blob.object_id
    set_pair(ledger, alice, blob, "k", "v")
    storage_id = fmt_address(blob_value(ledger, blob)["storage"]["id"])
    rec = run(
        ledger, alice, [owned(obj(ledger, blob))], [call(pkg(ledger), "blob", "burn", inp(0))]
    )
    assert rec["status"] == "SUCCESS", rec["error"]
    ops = {c[0]: c for c in rec["changes"]}
    assert ops[blob][4] and ops[storage_id][1] is None and ops[storage_id][4]
    assert ledger.store.get(parse_address(blob)) is None and metadata(ledger, blob) is None
    # the object is gone, the paid storage is not: the blob stays live for the storage nodes
    assert rec0.blob.blob_id in ledger.live_blob_ids()
    assert ledger.find_blobs(rec0.blob.blob_id) == []


# --- coins ----------------------------------------------------------------------------------


def test_split_merge_and_transfer_coins(ledger: Ledger, alice: Account, bob: Account):
    gas = coins(ledger, alice.address)[0]
    start = coin_value(ledger, gas)
    rec = run(
        ledger,
        alice,
        [u64(1000), u64(2000), address(bob.address)],
        [split(GAS, inp(0), inp(1)), transfer([nested(0, 0)], inp(2)), merge(GAS, nested(0, 1))],
    )
    assert rec["status"] == "SUCCESS", rec["error"]
    g = rec["gas"]
    net = g["computation"] + g["storage"] - g["rebate"]
    assert coin_value(ledger, obj(ledger, fmt_address(gas.id))) == start - 1000 - net
    bob_coins = sorted(coin_value(ledger, c) for c in coins(ledger, bob.address))
    assert 1000 in bob_coins
    assert {"address": bob.address, "coinType": ledger.sui_type, "amount": "1000"} in rec[
        "balance_changes"
    ]


def test_split_beyond_the_balance_fails(ledger: Ledger, alice: Account):
    wal = coins(ledger, alice.address, "WAL")[0]
    rec = run(
        ledger,
        alice,
        [owned(wal), u64(coin_value(ledger, wal) + 1), address(alice.address)],
        [split(inp(0), inp(1)), transfer([nested(0, 0)], inp(2))],
    )
    assert rec["status"] == "FAILURE" and rec["error"]["kind"] == "INSUFFICIENT_COIN_BALANCE"


def test_merging_coins_of_different_types_fails(ledger: Ledger, alice: Account):
    wal = coins(ledger, alice.address, "WAL")[0]
    rec = run(ledger, alice, [owned(wal)], [merge(GAS, inp(0))])
    assert rec["status"] == "FAILURE" and rec["error"]["kind"] == "COMMAND_ARGUMENT_ERROR"


def test_gas_coins_are_smashed_into_the_first(ledger: Ledger, alice: Account):
    ledger.fund(alice.address, wal=0)
    g1, g2 = coins(ledger, alice.address)[:2]
    total = coin_value(ledger, g1) + coin_value(ledger, g2)
    tx = build(alice, [u64(1)], [split(GAS, inp(0)), merge(GAS, nested(0, 0))], [g1, g2])
    rec = ledger.execute(tx, [alice.sign(tx)])
    assert rec["status"] == "SUCCESS"
    assert ledger.store.get(g2.id) is None
    g = rec["gas"]
    assert coin_value(ledger, obj(ledger, fmt_address(g1.id))) == total - (
        g["computation"] + g["storage"] - g["rebate"]
    )


# --- versions, effects, atomicity -----------------------------------------------------------


def test_lamport_versions(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    wal = coins(ledger, alice.address, "WAL")[0]
    gas = coins(ledger, alice.address)[0]
    system = ledger.store.get(parse_address(ledger.config.system_object_id))
    assert system is not None
    versions = [obj(ledger, blob).version, wal.version, gas.version, system.version]
    rec = extend_tx(ledger, alice, blob, 1, wal)
    lamport = max(versions) + 1
    assert rec["lamport"] == lamport
    for oid, _in, out, _c, _d in rec["changes"]:
        assert out == lamport
        assert obj(ledger, oid).version == lamport


def test_effects_bcs_decodes_with_pysui_and_matches_the_json(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    rec = set_pair(ledger, alice, blob, "k", "v")
    row = ledger.store.transaction(parse_digest(rec["digest"]))
    assert row is not None
    raw = row["effects_bcs"]
    decoded = TransactionEffects.deserialize(raw).value
    assert decoded.lamportVersion == rec["lamport"]
    assert decoded.gasUsed.computationCost == rec["gas"]["computation"]
    changed = {c[0].to_address_str() for c in decoded.changedObjects}
    assert changed == {c[0] for c in rec["changes"]}
    assert rec["effects_digest"] == digest_str(type_digest("TransactionEffects::", raw))
    # object digests are Blake2b("Object::" || BCS(Object))
    o = obj(ledger, blob)
    assert o.digest == type_digest("Object::", o.bcs())


def test_stale_object_is_rejected_and_nothing_applied(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    old = obj(ledger, blob)
    gas = coins(ledger, alice.address)[0]
    stale_tx = build(
        alice,
        [owned(old), string("k"), string("old")],
        [call(pkg(ledger), "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
        [gas],
    )
    set_pair(ledger, alice, blob, "k", "new")  # moves the blob and the gas coin
    snapshot = {o.id: o.version for o in [obj(ledger, blob), *coins(ledger, alice.address)]}
    seq = ledger.store.next_seq()
    with pytest.raises(StaleObjects) as err:
        ledger.execute(stale_tx, [alice.sign(stale_tx)])
    stale = {s[0] for s in err.value.stale}
    assert stale == {blob, fmt_address(gas.id)}  # every stale input is reported
    assert "is not available for consumption" in str(err.value)
    assert ledger.store.next_seq() == seq
    assert {o.id: o.version for o in [obj(ledger, blob), *coins(ledger, alice.address)]} == snapshot
    assert metadata(ledger, blob) == [("k", "new")]


def test_bad_signatures_are_rejected(ledger: Ledger, alice: Account, bob: Account):
    blob = new_blob(ledger, alice)
    tx = build(
        alice,
        [owned(obj(ledger, blob)), string("k"), string("v")],
        [call(pkg(ledger), "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
        coins(ledger, alice.address)[:1],
    )
    seq = ledger.store.next_seq()
    sig = bytearray(alice.sign(tx))
    sig[10] ^= 1
    with pytest.raises(InvalidSignature):
        ledger.execute(tx, [bytes(sig)])
    with pytest.raises(InvalidSignature):
        ledger.execute(tx, [bob.sign(tx)])  # a valid signature, but not the sender's
    with pytest.raises(InvalidSignature):
        ledger.execute(tx, [])
    with pytest.raises(InvalidSignature):
        ledger.execute(tx, [b"\x01" + bytes(sig[1:])])  # a scheme the devnet does not verify
    assert ledger.store.next_seq() == seq and metadata(ledger, blob) is None
    assert ledger.execute(tx, [alice.sign(tx)])["status"] == "SUCCESS"


def test_unknown_and_unsupported_functions_are_refused(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    seq = ledger.store.next_seq()
    for package, module, function in [
        (pkg(ledger), "system", "no_such_function"),
        (pkg(ledger), "system", "reserve_space"),
        (pkg(ledger), "nomodule", "f"),
        ("0x2", "coin", "split"),
        ("0x" + "99" * 32, "m", "f"),
    ]:
        tx = build(
            alice,
            [owned(obj(ledger, blob))],
            [call(package, module, function, inp(0))],
            coins(ledger, alice.address)[:1],
        )
        with pytest.raises(Unsupported, match=function):
            ledger.execute(tx, [alice.sign(tx)])
    assert ledger.store.next_seq() == seq


def test_gas_checks(ledger: Ledger, alice: Account, bob: Account):
    blob = new_blob(ledger, alice)
    args = (
        [owned(obj(ledger, blob)), string("k"), string("v")],
        [call(pkg(ledger), "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
    )
    gas = coins(ledger, alice.address)[:1]
    for kw, pattern in [
        ({"price": 999}, "reference gas price"),
        ({"budget": 10}, "lower than min"),
        ({"budget": 10**11}, "higher than max"),
    ]:
        tx = build(alice, *args, gas, **kw)  # type: ignore[arg-type]
        with pytest.raises(GasError, match=pattern):
            ledger.execute(tx, [alice.sign(tx)])
    poor = Account.new()
    ledger.fund(poor.address, sui=10_000, wal=0)
    tx = build(
        poor,
        [u64(1), address(poor.address)],
        [split(GAS, inp(0)), transfer([res(0)], inp(1))],
        coins(ledger, poor.address),
    )
    with pytest.raises(GasError, match="lower than the needed amount"):
        ledger.execute(tx, [poor.sign(tx)])
    # someone else's object as an input
    tx = build(bob, *args, coins(ledger, bob.address)[:1])
    with pytest.raises(TransactionRejected, match="not signed by the correct sender"):
        ledger.execute(tx, [bob.sign(tx)])


def test_expired_transactions_are_refused(ledger: Ledger, alice: Account, clock: FakeClock):
    tx = build(
        alice,
        [u64(1), address(alice.address)],
        [split(GAS, inp(0)), transfer([res(0)], inp(1))],
        coins(ledger, alice.address)[:1],
        expiration=ledger.current_epoch(),
    )
    clock.advance(EPOCH)
    with pytest.raises(TransactionRejected, match="expired"):
        ledger.execute(tx, [alice.sign(tx)])


def test_executing_twice_returns_the_first_result(ledger: Ledger, alice: Account):
    blob = new_blob(ledger, alice)
    tx = build(
        alice,
        [owned(obj(ledger, blob)), string("k"), string("v")],
        [call(pkg(ledger), "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
        coins(ledger, alice.address)[:1],
    )
    first = ledger.execute(tx, [alice.sign(tx)])
    seq = ledger.store.next_seq()
    again = ledger.execute(tx, [alice.sign(tx)])
    assert again["digest"] == first["digest"] and again["effects_digest"] == first["effects_digest"]
    assert ledger.store.next_seq() == seq


def test_simulation_commits_nothing(ledger: Ledger, alice: Account):
    from walrusfs.devnet.ledger.suitypes import decode_transaction_data

    blob = new_blob(ledger, alice)
    tx = build(
        alice,
        [owned(obj(ledger, blob)), string("k"), string("v")],
        [call(pkg(ledger), "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
        coins(ledger, alice.address)[:1],
    )
    seq = ledger.store.next_seq()
    record, overlay = ledger.simulate(decode_transaction_data(tx))
    assert record["status"] == "SUCCESS" and overlay
    assert ledger.store.next_seq() == seq and metadata(ledger, blob) is None
    assert ledger.execute(tx, [alice.sign(tx)])["effects_digest"] == record["effects_digest"]


def test_protocol_limits_are_enforced(ledger: Ledger, alice: Account):
    gas = coins(ledger, alice.address)[:1]
    tx = build(alice, [pure(b"x" * (16 * 1024 + 1))], [split(GAS, inp(0))], gas)
    with pytest.raises(TransactionRejected, match="pure argument"):
        ledger.execute(tx, [alice.sign(tx)])
    tx = build(alice, [u64(1)], [split(GAS, inp(0))] * 1025, gas)
    with pytest.raises(TransactionRejected, match="too many commands"):
        ledger.execute(tx, [alice.sign(tx)])
    tx = build(alice, [u64(1)], [split(GAS, inp(0))], gas, price=100_001, budget=200_000_000)
    with pytest.raises(GasError, match="higher than max"):
        ledger.execute(tx, [alice.sign(tx)])

"""walrusfs's Sui client (pysui on its asyncio bridge) against the devnet ledger: every
operation, and the errors walrusfs acts on."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from chain.conftest import EPOCH, MIB, Devnet, Wallet

from walrusfs.chain import (
    AnchorConflict,
    BlobExpired,
    BlobNotDeletable,
    ChainError,
    ChainUnavailable,
    EpochsOutOfRange,
    InsufficientWal,
    MissingMetadata,
    SuiChainClient,
    network,
)
from walrusfs.devnet.ledger.suitypes import parse_address


async def open_client(devnet: Devnet, wallet: Wallet, **kw: object) -> SuiChainClient:
    return await SuiChainClient.open(devnet.net, wallet.directory, **kw)  # type: ignore[arg-type]


async def test_walrus_state(devnet: Devnet, wallet: Wallet):
    async with await open_client(devnet, wallet) as client:
        state = await client.walrus_state()
    expected = devnet.ledger.system_state()
    assert (state.epoch, state.n_shards, state.max_epochs_ahead) == (
        expected.epoch,
        expected.n_shards,
        expected.max_epochs_ahead,
    )
    assert (state.storage_price_per_unit, state.write_price_per_unit) == (
        expected.storage_price_per_unit,
        expected.write_price_per_unit,
    )
    assert state.package_id == devnet.ledger.config.walrus_package_id
    assert state.reference_gas_price == devnet.ledger.config.reference_gas_price


async def test_blobs_are_listed_in_pages_with_their_metadata(devnet: Devnet, wallet: Wallet):
    ids = {devnet.blob(wallet.address) for _ in range(25)}
    async with await open_client(devnet, wallet) as client:
        first = await client.list_blobs()
        assert len(first.blobs) == 20 and first.cursor is not None
        second = await client.list_blobs(first.cursor)
        assert len(second.blobs) == 5 and second.cursor is None
        assert {b.object_id for b in first.blobs + second.blobs} == ids
        one = sorted(ids)[0]
        anchor = await client.read_anchor(one)
        await client.compare_and_swap_anchor(anchor, {"head": "7", "writer": "w"})
        blobs = {b.object_id: b for b in await client.all_blobs()}
    assert blobs[one].metadata == (("head", "7"), ("writer", "w"))
    assert all(blobs[i].metadata == () for i in ids - {one})
    b = blobs[one]
    rec = devnet.ledger.get_blob(one)
    assert rec is not None
    assert (b.size, b.end_epoch, b.storage_size, b.deletable, b.blob_id) == (
        rec.size,
        rec.end_epoch,
        rec.storage_size,
        rec.deletable,
        rec.blob_id_text,
    )


async def test_extend_many_blobs_in_one_transaction(devnet: Devnet, wallet: Wallet):
    ids = [devnet.blob(wallet.address, encoded=e) for e in (MIB, 3 * MIB + 1, 10 * MIB)]
    price = devnet.ledger.config.storage_price_per_unit
    async with await open_client(devnet, wallet) as client:
        before = await client.balances()
        quote = await client.extension_price(ids, 4)
        assert quote.total == price * 4 * (1 + 4 + 10)
        ends = {b.object_id: b.end_epoch for b in await client.get_blobs(ids)}
        result = await client.extend_blobs(ids, 4, max_price=quote.total)
        after = await client.balances()
        blobs = await client.get_blobs(ids)
    assert {b.object_id: b.end_epoch for b in blobs} == {i: ends[i] + 4 for i in ids}
    assert dict(result.end_epochs) == {i: ends[i] + 4 for i in ids}
    assert before.wal - after.wal == quote.total == result.wal_spent
    assert before.sui - after.sui == result.gas.net > 0
    row = devnet.ledger.store.last_transaction()
    assert row is not None and row["kind"] == "user"  # one transaction for all three


async def test_extend_pays_from_several_wal_coins(devnet: Devnet, wallet: Wallet):
    for _ in range(2):
        devnet.ledger.fund(wallet.address, sui=0, wal=10**6)
    blob = devnet.blob(wallet.address, encoded=MIB)
    async with await open_client(devnet, wallet) as client:
        before = await client.balances()
        await client.extend_blobs([blob], 1)  # fits in one coin
        await client.extend_blobs([blob], 2, max_price=10**9)
        assert before.wal - (await client.balances()).wal == (
            devnet.ledger.config.storage_price_per_unit * 3
        )


async def test_too_little_wal(devnet: Devnet, wallet: Wallet, tmp_path: Path):
    from walrusfs.chain import generate_key, write_wallet

    poor_dir = tmp_path / "poor"
    poor = write_wallet(poor_dir, devnet.net, generate_key())
    devnet.ledger.fund(poor, wal=5)
    blob = devnet.blob(poor)
    version = devnet.ledger.get_blob(blob).version  # type: ignore[union-attr]
    async with await SuiChainClient.open(devnet.net, poor_dir) as client:
        with pytest.raises(InsufficientWal):
            await client.extend_blobs([blob], 1)
        with pytest.raises(InsufficientWal):
            await client.extend_blobs([blob], 1, max_price=1)
        with pytest.raises(InsufficientWal) as err:  # the chain's own check, found by simulation
            await client.extend_blobs([blob], 1, check=False)
        assert err.value.simulated and err.value.module == "balance"
    assert devnet.ledger.get_blob(blob).version == version  # type: ignore[union-attr]


async def test_expired_blobs_cannot_be_extended_or_deleted(devnet: Devnet, wallet: Wallet):
    blob = devnet.blob(wallet.address, epochs=1)
    devnet.clock.advance(EPOCH)
    async with await open_client(devnet, wallet) as client:
        for check in (True, False):
            with pytest.raises(BlobExpired):
                await client.extend_blobs([blob], 1, check=check)
            with pytest.raises(BlobExpired):
                await client.delete_blobs([blob], check=check)
        fresh = devnet.blob(wallet.address, epochs=2)
        state = await client.walrus_state()
        with pytest.raises(EpochsOutOfRange):
            await client.extend_blobs([fresh], state.max_epochs_ahead)
        with pytest.raises(EpochsOutOfRange):
            await client.extend_blobs([fresh], state.max_epochs_ahead, check=False)


async def test_delete_many_blobs_returns_their_storage(devnet: Devnet, wallet: Wallet):
    ids = [devnet.blob(wallet.address) for _ in range(3)]
    async with await open_client(devnet, wallet) as client:
        result = await client.delete_blobs(ids[:2])
        assert set(result.deleted) == set(ids[:2]) and len(result.storage_ids) == 2
        left = {b.object_id for b in await client.all_blobs()}
    assert ids[2] in left and not left & set(ids[:2])
    for sid in result.storage_ids:
        storage = devnet.ledger.store.get(parse_address(sid))
        assert storage is not None and storage.owner.address == parse_address(wallet.address)


async def test_permanent_blobs_are_not_deletable(devnet: Devnet, wallet: Wallet):
    blob = devnet.blob(wallet.address, deletable=False)
    async with await open_client(devnet, wallet) as client:
        with pytest.raises(BlobNotDeletable):
            await client.delete_blobs([blob])
        with pytest.raises(BlobNotDeletable) as err:
            await client.delete_blobs([blob], check=False)
        assert err.value.module == "blob" and err.value.abort_code == 1
    assert devnet.ledger.get_blob(blob) is not None


async def test_anchor_compare_and_swap(devnet: Devnet, wallet: Wallet):
    blob = devnet.blob(wallet.address)
    async with await open_client(devnet, wallet) as client:
        a0 = await client.read_anchor(blob)
        assert a0.metadata == ()
        a1 = await client.compare_and_swap_anchor(a0, {"seq": "1", "writer": "me"})
        assert a1.version > a0.version and a1.metadata_map == {"seq": "1", "writer": "me"}
        assert await client.read_anchor(blob) == a1
        with pytest.raises(AnchorConflict) as err:
            await client.compare_and_swap_anchor(a0, {"seq": "1b"})
        assert (err.value.version, err.value.current) == (a0.version, a1.version)
        a2 = await client.compare_and_swap_anchor(a1, {"seq": "2"}, removals=["writer"])
        assert a2.metadata == (("seq", "2"),)
        with pytest.raises(MissingMetadata):
            await client.compare_and_swap_anchor(a2, {}, removals=["absent"])
        assert await client.read_anchor(blob) == a2  # the failed attempts changed nothing


async def test_stale_gas_is_rebuilt_and_retried(devnet: Devnet, wallet: Wallet):
    """A second client of the same wallet spends the gas coin between signing and execution:
    the first client's transaction is refused as stale (not an anchor conflict) and retried."""
    blob_a, blob_b = devnet.blob(wallet.address), devnet.blob(wallet.address)
    assert len(devnet.ledger.coins(wallet.address)) == 1  # both must pay with the same coin
    token = trio.lowlevel.current_trio_token()
    seen: list[bytes] = []
    other = await open_client(devnet, wallet)

    def interfere(tx: bytes) -> None:  # runs on the first client's asyncio thread
        seen.append(tx)
        if len(seen) == 1:
            anchor = trio.from_thread.run(other.read_anchor, blob_b, trio_token=token)
            trio.from_thread.run(
                other.compare_and_swap_anchor, anchor, {"x": "y"}, trio_token=token
            )

    try:
        async with await open_client(devnet, wallet, tx_observer=interfere) as client:
            anchor = await client.read_anchor(blob_a)
            new = await client.compare_and_swap_anchor(anchor, {"head": "1"})
        assert len(seen) == 2 and seen[0] != seen[1]  # refused once, then rebuilt
        assert new.metadata_map == {"head": "1"}
    finally:
        await other.aclose()


async def test_unknown_function_is_refused(devnet: Devnet, wallet: Wallet):
    blob = devnet.blob(wallet.address)
    pkg = devnet.ledger.config.walrus_package_id
    async with await open_client(devnet, wallet) as client:

        async def build(txn: object) -> None:
            await txn.move_call(
                target=f"{pkg}::system::no_such_function",  # type: ignore[attr-defined]
                arguments=[blob],
            )

        with pytest.raises(ChainError, match="no_such_function"):
            await client._transact(build)


async def test_an_unreachable_network(tmp_path: Path, wallet: Wallet):
    with trio.socket.socket() as s:
        await s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = network("devnet", graphql_url=f"http://127.0.0.1:{port}/graphql")
    with pytest.raises(ChainUnavailable):
        await SuiChainClient.open(net, wallet.directory, timeout=5)


async def test_a_lost_answer_is_looked_up_not_retried(devnet: Devnet, wallet: Wallet):
    """The CAS lands but its answer is lost: the client finds the transaction by digest and
    returns the new anchor instead of retrying into a conflict with its own write."""
    blob = devnet.blob(wallet.address)
    http = devnet.thread.http
    assert http is not None
    async with await open_client(devnet, wallet) as client:
        a0 = await client.read_anchor(blob)
        http.drop_execute_answers = 1
        try:
            a1 = await client.compare_and_swap_anchor(a0, {"head": "lost"})
        finally:
            http.drop_execute_answers = 0
        assert a1.metadata_map == {"head": "lost"}
        assert await client.read_anchor(blob) == a1


def test_conflict_messages_as_a_real_network_words_them(devnet: Devnet):
    from pysui import SuiRpcResult
    from pysui.sui.sui_pgql.pgql_types import ErrorGQL

    client = object.__new__(SuiChainClient)
    client.network = devnet.net
    anchor, gas = "0x" + "a1" * 32, "0x" + "b2" * 32
    message = (
        "Transaction validator signing failed due to issues with transaction inputs, please "
        f"review the errors and try again:\n- Object ID {gas} Version 0x9 Digest "
        "11111111111111111111111111111111 is not available for consumption, current version: "
        f"0xa\n- Object ID {anchor} Version 0x1f Digest 11111111111111111111111111111111 is not "
        "available for consumption, current version: 0x20"
    )
    result = SuiRpcResult(False, "TransportQueryError", ErrorGQL.from_query([{"message": message}]))
    with pytest.raises(AnchorConflict) as conflict:
        client._raise_refusal(result, {anchor: 31})
    assert (conflict.value.version, conflict.value.current) == (31, 32)
    from walrusfs.chain import StaleObjects

    with pytest.raises(StaleObjects) as stale:
        client._raise_refusal(result, {})
    assert stale.value.object_ids == {anchor, gas}


async def test_no_sui_for_gas(devnet: Devnet, tmp_path: Path):
    from walrusfs.chain import InsufficientGas, generate_key, write_wallet

    directory = tmp_path / "nogas"
    address = write_wallet(directory, devnet.net, generate_key())
    devnet.ledger.fund(address, sui=0)
    blob = devnet.blob(address)
    async with await SuiChainClient.open(devnet.net, directory) as client:
        with pytest.raises(InsufficientGas):
            await client.compare_and_swap_anchor(await client.read_anchor(blob), {"a": "b"})
        assert (await client.balances()).sui == 0

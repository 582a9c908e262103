"""The ledger over HTTP: Sui GraphQL as pysui 1.5.1 uses it, the faucet, and the errors for
everything the devnet does not serve."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledger.ledger_helpers import (
    Account,
    build,
    call,
    inp,
    owned,
    random_blob_id,
    string,
)
from pysui import GqlProtocolClient, PysuiConfiguration
from pysui.sui.sui_common import sui_commands as cmd
from pysui.sui.sui_common.config import confgroup, confmodel

from walrusfs.devnet.ledger import LedgerConfig, LedgerThread
from walrusfs.devnet.ledger.suitypes import parse_address

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerThread]:
    with LedgerThread(LedgerConfig(directory=tmp_path_factory.mktemp("ledger"))) as lt:
        yield lt


def gql(served: LedgerThread, query: str) -> httpx.Response:
    assert served.endpoints is not None
    return httpx.post(served.endpoints.graphql_url, json={"query": query}, timeout=30)


def pysui_client(served: LedgerThread, account: Account, directory: Path) -> GqlProtocolClient:
    assert served.endpoints is not None
    pub = base64.b64encode(account.keypair.public_key.scheme_and_key()).decode()  # type: ignore[union-attr]
    group = confgroup.ProfileGroup(
        "t",
        "devnet",
        account.address,
        [confgroup.ProfileAlias("a", pub)],
        [confgroup.ProfileKey(account.keypair.serialize())],
        [account.address],
        [
            confgroup.Profile(
                "devnet", served.endpoints.graphql_url, None, None, confgroup.NetworkType.LOCAL
            )
        ],
        confgroup.GroupProtocol.GRAPHQL,
    )
    model = confmodel.PysuiConfigModel(confmodel._CURRENT_CONFIG_VERSION, "", "t", [group])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "PysuiConfig.json").write_text(model.to_json())
    return GqlProtocolClient(pysui_config=PysuiConfiguration(from_cfg_path=str(directory)))


def test_every_answer_carries_the_rpc_version(served: LedgerThread):
    r = gql(served, "{ chainIdentifier }")
    assert r.status_code == 200 and r.headers["x-sui-rpc-version"]
    assert served.ledger is not None
    assert r.json() == {"data": {"chainIdentifier": served.ledger.chain_identifier}}
    assert gql(served, "{ nope }").json()["errors"]
    assert served.endpoints is not None
    bad = httpx.post(served.endpoints.graphql_url, content=b"{", timeout=30)
    assert bad.status_code == 400 and bad.headers["x-sui-rpc-version"]
    assert httpx.get(served.endpoints.graphql_url, timeout=30).status_code == 405


def test_introspection_works(served: LedgerThread):
    r = gql(served, "{ __schema { queryType { name } mutationType { name } } }").json()
    assert r["data"]["__schema"] == {
        "queryType": {"name": "Query"},
        "mutationType": {"name": "Mutation"},
    }


@pytest.mark.parametrize(
    "query, field",
    [
        ("{ epoch { systemState { bcs } } }", "Epoch.systemState"),
        ('{ coinMetadata(coinType: "0x2::sui::SUI") { decimals } }', "Query.coinMetadata"),
        ("{ checkpoint { contentBcs } }", "Checkpoint.contentBcs"),
        ('{ address(name: "x.sui") { address } }', "name service"),
    ],
)
def test_what_the_devnet_does_not_serve_is_an_error_not_a_null(
    served: LedgerThread, query: str, field: str
):
    body = gql(served, query).json()
    assert body["errors"] and field in body["errors"][0]["message"]
    assert "not supported by the walrusfs devnet ledger" in body["errors"][0]["message"]


def test_faucet_and_network_info(served: LedgerThread):
    assert served.endpoints is not None and served.ledger is not None
    a = Account.new()
    r = httpx.post(
        served.endpoints.faucet_url,
        json={"FixedAmountRequest": {"recipient": a.address}},
        timeout=30,
    )
    assert r.status_code == 201 and r.json()["status"] == "Success"
    [sent] = r.json()["coins_sent"]
    assert sent["amount"] == served.ledger.config.faucet_sui
    r = httpx.post(
        served.endpoints.url + "/v2/wal",
        json={"FixedAmountRequest": {"recipient": a.address}},
        timeout=30,
    )
    assert r.json()["coins_sent"][0]["amount"] == served.ledger.config.faucet_wal
    assert httpx.post(served.endpoints.faucet_url, json={}, timeout=30).status_code == 400
    info = httpx.get(served.endpoints.url + "/v1/network", timeout=30).json()
    assert info["systemObjectId"] == served.ledger.config.system_object_id
    assert info["walCoinType"].endswith("::wal::WAL")


def test_pysui_reads(served: LedgerThread, tmp_path: Path):
    ledger = served.ledger
    assert ledger is not None
    alice = Account.new()
    ledger.fund(alice.address)
    blobs = [
        ledger.create_certified_blob(
            owner=alice.address,
            blob_id=random_blob_id(),
            size=9,
            encoded_length=MIB,
            epochs=2,
            deletable=True,
        ).blob
        for _ in range(23)
    ]
    pkg = ledger.config.walrus_package_id

    async def main() -> None:
        client = pysui_client(served, alice, tmp_path)
        try:
            # owned objects by type, paged
            seen: list[str] = []
            token = None
            pages = 0
            while True:
                r = await client.execute(
                    command=cmd.GetObjectsForType(
                        owner=alice.address, object_type=f"{pkg}::blob::Blob", next_page_token=token
                    )
                )
                assert r.is_ok(), r.result_string
                seen += [o.object_id for o in r.result_data.objects]
                pages += 1
                token = r.result_data.next_page_token
                if token is None:
                    break
            assert pages == 2 and sorted(seen) == sorted(b.object_id for b in blobs)
            # a full object: BCS, owner, type, JSON contents
            r = await client.execute(command=cmd.GetObject(object_id=blobs[0].object_id))
            o = r.result_data
            assert o.object_type == f"{pkg}::blob::Blob" and o.version == blobs[0].version
            assert o.owner.address == alice.address and o.json.to_dict()["size"] == "9"
            # coins and balances
            r = await client.execute(command=cmd.GetGas(owner=alice.address))
            assert [g.balance for g in r.result_data.objects] == [ledger.config.faucet_sui]
            r = await client.execute(command=cmd.GetAddressCoinBalance(owner=alice.address))
            assert r.is_ok(), r.result_data
            # Move function signatures for the transaction builder
            r = await client.execute(
                command=cmd.GetFunction(
                    package=pkg, module_name="system", function_name="extend_blob"
                )
            )
            params = r.result_data.function.parameters
            assert [
                p.body.type_name.split("::")[-1] if p.body.type_name else p.body.type.name
                for p in params
            ] == ["System", "Blob", "U32", "Coin"]
            r = await client.execute(
                command=cmd.GetFunction(
                    package=pkg, module_name="system", function_name="register_blob"
                )
            )
            assert not r.is_ok()
            # protocol config and epoch
            r = await client.execute(command=cmd.GetProtocolConfig())
            assert r.is_ok(), r.result_data
            r = await client.execute(command=cmd.GetBasicCurrentEpochInfo())
            assert r.result_data.epoch == 1 and r.result_data.reference_gas_price == 1000
        finally:
            await client.close()

    asyncio.run(main())


def test_pysui_transactions(served: LedgerThread, tmp_path: Path):
    ledger = served.ledger
    assert ledger is not None
    alice = Account.new()
    ledger.fund(alice.address)
    blob = ledger.create_certified_blob(
        owner=alice.address,
        blob_id=random_blob_id(),
        size=9,
        encoded_length=MIB,
        epochs=2,
        deletable=True,
    ).blob
    pkg = ledger.config.walrus_package_id
    target = f"{pkg}::blob::insert_or_update_metadata_pair"

    async def main() -> None:
        client = pysui_client(served, alice, tmp_path)
        try:
            txn = await client.transaction()
            await txn.move_call(target=target, arguments=[blob.object_id, "head", "1"])
            signed = await txn.build_and_sign()  # simulates the kind JSON for the budget
            r = await client.execute(command=cmd.ExecuteTransaction(**signed))
            assert r.is_ok(), r.result_data
            executed = r.result_data
            assert executed.effects.status.success
            changed = {c.object_id: c for c in executed.effects.changed_objects}
            assert changed[blob.object_id].output_version == executed.effects.lamport_version
            assert {o.object_id for o in executed.objects.objects} >= set(changed)
            # the transaction can be read back by digest
            r = await client.execute(command=cmd.GetTransaction(digest=executed.digest))
            assert r.is_ok(), r.result_data
            assert r.result_data.effects.status.success
            # dynamic fields: the metadata field, name and value
            r = await client.execute(command=cmd.GetDynamicFields(object_id=blob.object_id))
            assert r.is_ok(), r.result_data
            [field] = r.result_data.dynamic_fields
            assert bytes(field.name.value)[1:] == b"metadata"
            # simulating a full TransactionData (BCS form)
            again = await client.transaction()
            await again.move_call(target=target, arguments=[blob.object_id, "head", "2"])
            tx_b64 = await again.build()
            r = await client.execute(command=cmd.SimulateTransaction(tx_bytestr=tx_b64))
            assert r.is_ok() and r.result_data.transaction.effects.status.success
            # a signature by the wrong key: a GraphQL error, nothing executed
            gas = ledger.store.get(parse_address(ledger.coins(alice.address)[0].object_id))
            current = ledger.store.get(parse_address(blob.object_id))
            assert gas is not None and current is not None
            tx = build(
                alice,
                [owned(current), string("head"), string("3")],
                [call(pkg, "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
                [gas],
            )
            r = await client.execute(
                command=cmd.ExecuteTransaction(
                    tx_bytestr=base64.b64encode(tx).decode(),
                    sig_array=[base64.b64encode(Account.new().sign(tx)).decode()],
                )
            )
            assert not r.is_ok()
            assert "signature" in json.dumps(r.result_data.errors)
            moved = ledger.store.get(parse_address(blob.object_id))
            assert moved is not None and moved.version == current.version
        finally:
            await client.close()

    asyncio.run(main())


def test_stale_execution_is_a_graphql_error(served: LedgerThread):
    ledger = served.ledger
    assert ledger is not None and served.endpoints is not None
    alice = Account.new()
    ledger.fund(alice.address)
    blob = ledger.create_certified_blob(
        owner=alice.address,
        blob_id=random_blob_id(),
        size=9,
        encoded_length=MIB,
        epochs=2,
        deletable=True,
    ).blob
    pkg = ledger.config.walrus_package_id
    old = ledger.store.get(parse_address(blob.object_id))
    assert old is not None

    def tx_for(value: str) -> bytes:
        gas = ledger.coins(alice.address)[0]
        g = ledger.store.get(parse_address(gas.object_id))
        assert g is not None
        return build(
            alice,
            [owned(old), string("k"), string(value)],  # type: ignore[arg-type]
            [call(pkg, "blob", "insert_or_update_metadata_pair", inp(0), inp(1), inp(2))],
            [g],
        )

    def execute(tx: bytes) -> dict[str, Any]:
        sig = base64.b64encode(alice.sign(tx)).decode()
        q = (
            f'mutation {{ executeTransaction(transactionDataBcs: "{base64.b64encode(tx).decode()}",'
            f' signatures: ["{sig}"]) {{ effects {{ status lamportVersion }} }} }}'
        )
        return gql(served, q).json()  # type: ignore[no-any-return]

    first = execute(tx_for("a"))
    assert first["data"]["executeTransaction"]["effects"]["status"] == "SUCCESS"
    second = execute(tx_for("b"))
    assert second["data"] is None
    assert "is not available for consumption" in second["errors"][0]["message"]
    assert blob.object_id in second["errors"][0]["message"]


def test_query_limits_are_enforced(served: LedgerThread):
    deep = (
        "{ epoch { "
        + "checkpoints(first: 1) { nodes { epoch { " * 7
        + "epochId"
        + " } } }" * 7
        + " } }"
    )
    body = gql(served, deep).json()
    assert body["data"] is None and "query too large" in body["errors"][0]["message"]
    wide = "{ " + " ".join(f"a{i}: chainIdentifier" for i in range(301)) + " }"
    assert "query too large" in gql(served, wide).json()["errors"][0]["message"]
    config = gql(served, "{ serviceConfig { maxQueryDepth maxQueryNodes } }").json()
    assert config["data"]["serviceConfig"] == {"maxQueryDepth": 20, "maxQueryNodes": 300}


def test_epoch_checkpoints(served: LedgerThread):
    assert served.ledger is not None
    served.ledger.fund(Account.new().address)
    q = (
        "{ epoch { epochId startTimestamp endTimestamp "
        "first: checkpoints(first: 1) { nodes { sequenceNumber } } "
        "last: checkpoints(last: 1) { nodes { sequenceNumber } } } }"
    )
    epoch = gql(served, q).json()["data"]["epoch"]
    last = served.ledger.store.last_transaction()
    assert last is not None
    assert epoch["first"]["nodes"] == [{"sequenceNumber": 0}]  # genesis is in epoch 1
    assert epoch["last"]["nodes"] == [{"sequenceNumber": last["seq"]}]
    assert epoch["epochId"] == 1 and epoch["endTimestamp"] is None

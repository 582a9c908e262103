"""The devnet's chain is its Sui ledger: Blob objects the publisher certifies, seen and changed
through walrusfs's pysui-based Sui client, and the Walrus services honouring those changes."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from devnet.devnet_helpers import assert_error, make_config, poll, store
from ledger.ledger_helpers import Account, address, build, call, inp, owned, res, shared, transfer

from walrusfs.chain import NetworkConfig, SuiChainClient, generate_key, network, write_wallet
from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.blobid import ENCODING_ZFEC
from walrusfs.devnet.info import probe_devnet
from walrusfs.devnet.ledger.suitypes import parse_address
from walrusfs.devnet.registry import FROST_PER_WAL

EPOCH = 3.0  # short epochs: expiry and extension are watched happening
NODES = 4


@pytest.fixture(scope="module")
def chain_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundDevnet]:
    config = make_config(tmp_path_factory.mktemp("chain"), nodes=NODES, epoch_seconds=EPOCH)
    with BackgroundDevnet(config) as running:
        yield running


@dataclass
class Wallet:
    directory: Path
    address: str
    net: NetworkConfig


def new_wallet(devnet: BackgroundDevnet, directory: Path, *, funded: bool = True) -> Wallet:
    net = network("devnet", None, **devnet.info.chain_settings())
    address = write_wallet(directory, net, generate_key())
    if funded:
        devnet.fund(address)
    return Wallet(directory, address, net)


@pytest.fixture
def wallet(chain_devnet: BackgroundDevnet, tmp_path: Path) -> Wallet:
    return new_wallet(chain_devnet, tmp_path / "wallet")


def read(http: httpx.Client, devnet: BackgroundDevnet, blob_id: str) -> httpx.Response:
    return http.get(f"{devnet.info.aggregator_url}/v1/blobs/{blob_id}")


def shares(devnet: BackgroundDevnet, blob_id: str) -> list[bool]:
    return [devnet.share_location(i, blob_id) is not None for i in range(devnet.info.n_shards)]


def stored(http: httpx.Client, devnet: BackgroundDevnet, data: bytes, query: str) -> Any:
    return store(http, devnet.info.publisher_url, data, query)["newlyCreated"]


def test_info_names_the_ledger_and_probing_finds_it(chain_devnet: BackgroundDevnet) -> None:
    info = chain_devnet.info
    assert info.graphql_url == info.ledger_url + "/graphql"
    assert info.faucet_url == info.ledger_url + "/v2/gas"
    assert info.wal_faucet_url == info.ledger_url + "/v2/wal"
    assert info.chain_identifier == chain_devnet.ledger.chain_identifier
    assert info.pid == os.getpid() and info.epoch_seconds == EPOCH
    # The devnet's ids are the ones walrusfs.chain's devnet network is configured with.
    packaged = network("devnet")
    configured = network("devnet", None, **info.chain_settings())
    assert configured.walrus_package_id == packaged.walrus_package_id
    assert configured.system_object_id == packaged.system_object_id
    assert configured.wal_coin_type == packaged.wal_coin_type
    # Either port tells another process what runs there.
    for url in (info.publisher_url, info.ledger_url):
        assert probe_devnet(int(url.rsplit(":", 1)[1])) == info
    ledger_only = httpx.get(info.ledger_url + "/v1/network", timeout=10).json()
    assert ledger_only["systemObjectId"] == info.system_object_id
    assert ledger_only["graphqlUrl"] == info.graphql_url


async def test_a_stored_blob_is_an_object_of_its_owner_on_chain(
    chain_devnet: BackgroundDevnet, wallet: Wallet, http: httpx.Client
) -> None:
    data = os.urandom(20_000)
    async with await SuiChainClient.open(wallet.net, wallet.directory) as client:
        before = await client.balances()
        created = stored(http, chain_devnet, data, f"?epochs=5&send_object_to={wallet.address}")
        after = await client.balances()
        blob = created["blobObject"]
        [seen] = (await client.list_blobs()).blobs
        [by_id] = await client.get_blobs([blob["id"]])
        state = await client.walrus_state()
    assert seen == by_id
    assert (seen.object_id, seen.blob_id, seen.size, seen.deletable) == (
        blob["id"],
        blob["blobId"],
        len(data),
        True,
    )
    assert (seen.registered_epoch, seen.certified_epoch) == (blob["registeredEpoch"],) * 2
    assert (seen.start_epoch, seen.end_epoch) == (
        blob["storage"]["startEpoch"],
        blob["storage"]["endEpoch"],
    )
    assert seen.end_epoch == seen.start_epoch + 5
    assert seen.storage_size == created["resourceOperation"]["registerFromScratch"]["encodedLength"]
    assert seen.encoding_type == ENCODING_ZFEC
    # The cost came out of the owner's WAL coins, priced as the chain prices storage.
    assert before.wal - after.wal == created["cost"] > 0
    assert created["cost"] == state.write_price_per_unit * state.storage_units(
        seen.storage_size
    ) + 5 * state.extension_price(seen.storage_size, 1)
    assert before.sui == after.sui  # certification costs the owner no gas
    rec = chain_devnet.ledger.get_blob(blob["id"])
    assert rec is not None and rec.owner == wallet.address


def test_an_unfunded_owner_is_refused_until_funded(
    chain_devnet: BackgroundDevnet, http: httpx.Client
) -> None:
    owner = "0x" + os.urandom(32).hex()
    url = chain_devnet.info.publisher_url
    data = os.urandom(1000)
    response = http.put(f"{url}/v1/blobs?send_object_to={owner}", content=data)
    assert_error(response, 400, "INSUFFICIENT_FUNDS", "FAILED_PRECONDITION")
    message = response.json()["error"]["message"]
    assert owner in message and "faucet" in message
    # The HTTP faucet (Sui's format) pays WAL on /v2/wal; one request pays for small blobs.
    granted = http.post(
        chain_devnet.info.wal_faucet_url, json={"FixedAmountRequest": {"recipient": owner}}
    )
    assert granted.status_code == 201 and granted.json()["status"] == "Success"
    created = store(http, url, data, f"?send_object_to={owner}")["newlyCreated"]
    assert chain_devnet.registry.balance(owner) == 10 * FROST_PER_WAL - created["cost"]


async def test_an_extended_blob_outlives_its_old_end_epoch(
    chain_devnet: BackgroundDevnet, wallet: Wallet, http: httpx.Client
) -> None:
    data, canary_data = os.urandom(30_000), os.urandom(30_001)
    query = f"?epochs=2&send_object_to={wallet.address}"
    blob = stored(http, chain_devnet, data, query)["blobObject"]
    canary = stored(http, chain_devnet, canary_data, query)["blobObject"]
    old_end = blob["storage"]["endEpoch"]
    assert canary["storage"]["endEpoch"] == old_end
    async with await SuiChainClient.open(wallet.net, wallet.directory) as client:
        result = await client.extend_blobs([blob["id"]], 2)  # at least one epoch to spare
        [after] = await client.get_blobs([blob["id"]])
    assert dict(result.end_epochs) == {blob["id"]: old_end + 2} and after.end_epoch == old_end + 2
    poll(lambda: chain_devnet.current_epoch() >= old_end, timeout=3 * EPOCH)
    # The canary, not extended, expired: 404, and every node dropped it in a pass that also
    # looked at the extended blob, which is still served and kept.
    assert_error(read(http, chain_devnet, canary["blobId"]), 404, "BLOB_NOT_FOUND", "NOT_FOUND")
    poll(lambda: not any(shares(chain_devnet, canary["blobId"])))
    assert read(http, chain_devnet, blob["blobId"]).content == data
    assert all(shares(chain_devnet, blob["blobId"]))
    assert chain_devnet.current_epoch() < old_end + 2


async def test_a_deleted_blob_is_gone(
    chain_devnet: BackgroundDevnet, wallet: Wallet, http: httpx.Client
) -> None:
    data = os.urandom(40_000)
    blob = stored(http, chain_devnet, data, f"?epochs=20&send_object_to={wallet.address}")
    blob = blob["blobObject"]
    assert all(shares(chain_devnet, blob["blobId"]))
    async with await SuiChainClient.open(wallet.net, wallet.directory) as client:
        deleted = await client.delete_blobs([blob["id"]])
        assert (await client.list_blobs()).blobs == ()
    assert deleted.deleted == (blob["id"],) and len(deleted.storage_ids) == 1
    url = chain_devnet.info.aggregator_url
    assert_error(read(http, chain_devnet, blob["blobId"]), 404, "BLOB_NOT_FOUND", "NOT_FOUND")
    assert_error(
        http.get(f"{url}/v1/blobs/by-object-id/{blob['id']}"), 404, "BLOB_NOT_FOUND", "NOT_FOUND"
    )
    poll(lambda: not any(shares(chain_devnet, blob["blobId"])))
    # Stored again, the same bytes are a new blob object, served and kept again.
    again = stored(http, chain_devnet, data, f"?epochs=20&send_object_to={wallet.address}")
    assert again["blobObject"]["blobId"] == blob["blobId"]
    assert read(http, chain_devnet, blob["blobId"]).content == data
    assert all(shares(chain_devnet, blob["blobId"]))


def _execute(devnet: BackgroundDevnet, who: Account, inputs: list, commands: list) -> None:
    """Sign a transaction with `who` and execute it through the devnet's Sui GraphQL."""
    ledger = devnet.ledger
    gas = ledger.get_object(parse_address(ledger.coins(who.address)[0].object_id))
    assert gas is not None
    tx = build(who, inputs, commands, [gas])
    tx_b64 = base64.b64encode(tx).decode()
    sig = base64.b64encode(who.sign(tx)).decode()
    query = (
        f'mutation {{ executeTransaction(transactionDataBcs: "{tx_b64}", signatures: ["{sig}"]) '
        "{ effects { status } } }"
    )
    body = httpx.post(devnet.info.graphql_url, json={"query": query}, timeout=30).json()
    assert body["data"]["executeTransaction"]["effects"]["status"] == "SUCCESS", body


def _owned(devnet: BackgroundDevnet, object_id: str) -> object:
    obj = devnet.ledger.get_object(parse_address(object_id))
    assert obj is not None
    return owned(obj)


def test_a_burned_blob_stays_until_its_storage_ends(
    chain_devnet: BackgroundDevnet, http: httpx.Client
) -> None:
    """blob::burn drops the object but not the paid storage (as on Walrus): the aggregator
    serves the blob and nodes keep it until its end epoch, then both let it go."""
    who = Account.new()
    chain_devnet.fund(who.address)
    pkg = chain_devnet.info.walrus_package_id
    data = os.urandom(25_000)
    # Three epochs: at least two full ones (6 s) to watch the burned blob being kept.
    query = f"?epochs=3&send_object_to={who.address}"
    blob = stored(http, chain_devnet, data, query)["blobObject"]
    canary = stored(http, chain_devnet, os.urandom(99), query)["blobObject"]
    _execute(
        chain_devnet, who, [_owned(chain_devnet, blob["id"])], [call(pkg, "blob", "burn", inp(0))]
    )
    assert chain_devnet.ledger.get_blob(blob["id"]) is None
    assert_error(
        http.get(f"{chain_devnet.info.aggregator_url}/v1/blobs/by-object-id/{blob['id']}"),
        404,
        "BLOB_NOT_FOUND",
        "NOT_FOUND",
    )
    assert read(http, chain_devnet, blob["blobId"]).content == data
    # A blob deleted after the burn is dropped by a full maintenance pass, in which every node
    # looked at the burned blob too, and kept it.
    _execute(
        chain_devnet,
        who,
        [
            shared(chain_devnet.info.system_object_id, 1, False),
            _owned(chain_devnet, canary["id"]),
            address(who.address),
        ],
        [call(pkg, "system", "delete_blob", inp(0), inp(1)), transfer([res(0)], inp(2))],
    )
    poll(lambda: not any(shares(chain_devnet, canary["blobId"])))
    end = blob["storage"]["endEpoch"]
    assert chain_devnet.current_epoch() < end
    assert all(shares(chain_devnet, blob["blobId"]))
    assert read(http, chain_devnet, blob["blobId"]).content == data
    poll(lambda: chain_devnet.current_epoch() >= end, timeout=4 * EPOCH)
    assert_error(read(http, chain_devnet, blob["blobId"]), 404, "BLOB_NOT_FOUND", "NOT_FOUND")
    poll(lambda: not any(shares(chain_devnet, blob["blobId"])))


async def test_a_restart_keeps_the_chain_and_the_blobs(tmp_path: Path, http: httpx.Client) -> None:
    config = make_config(tmp_path / "dn", nodes=NODES)
    data = {size: os.urandom(size) for size in (1, 5000, 200_000)}
    with BackgroundDevnet(config) as devnet:
        wallet = new_wallet(devnet, tmp_path / "wallet")
        objects = {
            size: stored(http, devnet, body, f"?epochs=3&send_object_to={wallet.address}")[
                "blobObject"
            ]
            for size, body in data.items()
        }
        async with await SuiChainClient.open(wallet.net, wallet.directory) as client:
            await client.extend_blobs([objects[1]["id"]], 10)
            await client.delete_blobs([objects[5000]["id"]])
            before = sorted(await client.all_blobs(), key=lambda b: b.object_id)
            balances = await client.balances()
        identity = devnet.info.chain_identifier
        publisher_funds = devnet.registry.balance(devnet.info.publisher_address)
    with BackgroundDevnet(config) as devnet:
        assert devnet.info.chain_identifier == identity
        assert devnet.registry.balance(devnet.info.publisher_address) == publisher_funds
        net = network("devnet", None, **devnet.info.chain_settings())  # new ports, same chain
        async with await SuiChainClient.open(net, wallet.directory) as client:
            assert sorted(await client.all_blobs(), key=lambda b: b.object_id) == before
            assert await client.balances() == balances
        assert [b.end_epoch for b in before if b.object_id == objects[1]["id"]] == [
            objects[1]["storage"]["endEpoch"] + 10
        ]
        for size, body in data.items():
            response = read(http, devnet, objects[size]["blobId"])
            if size == 5000:
                assert_error(response, 404, "BLOB_NOT_FOUND", "NOT_FOUND")
            else:
                assert response.status_code == 200 and response.content == body

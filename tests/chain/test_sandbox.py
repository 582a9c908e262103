"""Every transaction walrusfs builds decodes with sui-sandbox (Sui's own Rust types) into the
Move calls and arguments it means."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import sui_sandbox
from chain.conftest import MIB, Devnet, Wallet

from walrusfs.chain import SuiChainClient, generate_key, write_wallet


def decode(tx: bytes) -> dict[str, Any]:
    return sui_sandbox.deserialize_transaction(tx)  # type: ignore[no-any-return]


def arg_input(d: dict[str, Any], arg: dict[str, Any]) -> dict[str, Any]:
    assert arg["type"] == "Input", arg
    inp: dict[str, Any] = dict(d["inputs"][arg["index"]])
    if "object_id" in inp:
        # sui-sandbox may print an id without its leading zero digits; compare long forms
        inp["object_id"] = "0x" + inp["object_id"].removeprefix("0x").rjust(64, "0")
    return inp


def pure(inp: dict[str, Any]) -> bytes:
    assert inp["type"] == "Pure", inp
    return base64.b64decode(inp["bytes"])


def move_string(s: str) -> bytes:
    raw = s.encode()
    return bytes([len(raw)]) + raw


async def test_transactions_decode_with_sui_sandbox(devnet: Devnet, tmp_path: Path):
    seen: list[bytes] = []
    directory = tmp_path / "wallet"
    address = write_wallet(directory, devnet.net, generate_key())
    wallet = Wallet(directory, address, "")
    devnet.ledger.fund(address, wal=0)
    price = devnet.ledger.config.storage_price_per_unit
    for _ in range(3):  # no single WAL coin pays for the extension: coins get merged
        devnet.ledger.fund(address, sui=0, wal=price * 8)
    blobs = [devnet.blob(wallet.address, encoded=MIB) for _ in range(3)]
    pkg = devnet.ledger.config.walrus_package_id
    system = devnet.ledger.config.system_object_id
    async with await SuiChainClient.open(
        devnet.net, wallet.directory, tx_observer=seen.append
    ) as client:
        quote = await client.extension_price(blobs[:2], 7)
        assert quote.total == price * 14
        await client.extend_blobs(blobs[:2], 7)
        anchor = await client.read_anchor(blobs[2])
        anchor = await client.compare_and_swap_anchor(anchor, {"head": "é1", "writer": "w"})
        await client.compare_and_swap_anchor(anchor, {"head": "2"}, removals=["writer"])
        await client.delete_blobs(blobs[:2])
    assert len(seen) == 4
    extend, cas1, cas2, delete = (decode(t) for t in seen)
    for d in (extend, cas1, cas2, delete):
        assert d["sender"].removeprefix("0x") == wallet.address.removeprefix("0x")
        assert d["gas_price"] == devnet.ledger.config.reference_gas_price
        assert 0 < d["gas_budget"] <= 50_000_000_000

    # extend: two WAL coins merged, then one extend_blob per blob (System mutable, epochs as
    # u32) paid from the merged coin
    [merge] = [c for c in extend["commands"] if c["type"] == "MergeCoins"]
    assert extend["commands"][0] is merge and len(merge["sources"]) == 1
    merged = arg_input(extend, merge["destination"])["object_id"]
    calls = [c for c in extend["commands"] if c["type"] == "MoveCall"]
    assert [(c["package"], c["module"], c["function"]) for c in calls] == [
        (pkg, "system", "extend_blob")
    ] * 2
    payer = {arg_input(extend, c["arguments"][3])["object_id"] for c in calls}
    assert payer == {merged}
    for c, blob in zip(calls, blobs[:2], strict=True):
        sys_in, blob_in, epochs_in, _ = (arg_input(extend, a) for a in c["arguments"])
        assert sys_in == {
            "type": "SharedObject",
            "object_id": system,
            "initial_shared_version": 1,
            "mutable": True,
        }
        assert blob_in["type"] == "Object" and blob_in["object_id"] == blob
        assert pure(epochs_in) == (7).to_bytes(4, "little")

    # compare-and-swap: the anchor pinned at the version read, pairs as Move Strings
    first_version = None
    for d, pairs, removed in (
        (cas1, [("head", "é1"), ("writer", "w")], []),
        (cas2, [("head", "2")], ["writer"]),
    ):
        calls = d["commands"]
        assert [c["function"] for c in calls] == (
            ["insert_or_update_metadata_pair"] * len(pairs)
            + ["remove_metadata_pair"] * len(removed)
        )
        assert all((c["package"], c["module"]) == (pkg, "blob") for c in calls)
        anchors = {arg_input(d, c["arguments"][0])["object_id"] for c in calls}
        assert anchors == {blobs[2]}
        anchor_in = arg_input(d, calls[0]["arguments"][0])
        assert anchor_in["type"] == "Object"
        if first_version is None:
            first_version = anchor_in["version"]
        else:
            assert anchor_in["version"] > first_version
        for c, (k, v) in zip(calls, pairs, strict=False):
            assert pure(arg_input(d, c["arguments"][1])) == move_string(k)
            assert pure(arg_input(d, c["arguments"][2])) == move_string(v)
        for c, k in zip(calls[len(pairs) :], removed, strict=True):
            assert pure(arg_input(d, c["arguments"][1])) == move_string(k)

    # delete: delete_blob per blob with the System read-only, the Storage sent back to us
    calls = [c for c in delete["commands"] if c["type"] == "MoveCall"]
    assert [(c["module"], c["function"]) for c in calls] == [("system", "delete_blob")] * 2
    for c, blob in zip(calls, blobs[:2], strict=True):
        sys_in, blob_in = (arg_input(delete, a) for a in c["arguments"])
        assert sys_in["mutable"] is False and blob_in["object_id"] == blob
    [transfer] = [c for c in delete["commands"] if c["type"] == "TransferObjects"]
    assert transfer["objects"] == [{"type": "Result", "index": 0}, {"type": "Result", "index": 1}]
    assert pure(arg_input(delete, transfer["address"])) == bytes.fromhex(wallet.address[2:])

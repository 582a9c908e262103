"""Where the storage nodes run: a node-host process (the default) or the devnet's own loop,
and the read-only ledger view the node-host process sees the chain through."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from devnet.devnet_helpers import make_config, poll, store

from walrusfs.devnet import sharebatch
from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.encoding import ShareCoder
from walrusfs.devnet.ledger.registry import LedgerRegistry
from walrusfs.devnet.ledgerview import LedgerView
from walrusfs.devnet.node import NodeFaults
from walrusfs.devnet.nodehost import LocalNodes, NodeHostProcess
from walrusfs.devnet.registry import BlobStatus


def test_nodes_run_in_a_process_of_their_own(devnet: BackgroundDevnet, http: httpx.Client) -> None:
    nodes = devnet.devnet.nodes
    assert isinstance(nodes, NodeHostProcess)
    assert nodes.pid != os.getpid()
    assert Path(f"/proc/{nodes.pid}/cmdline").read_bytes().split(b"\0")[1:3] == [
        b"-m",
        b"walrusfs.devnet.nodehost",
    ]
    url = devnet.info.publisher_url
    data = os.urandom(70_000)
    blob_id = store(http, url, data)["newlyCreated"]["blobObject"]["blobId"]
    assert http.get(f"{url}/v1/blobs/{blob_id}").content == data
    for index in range(devnet.info.n_shards):
        assert devnet.share_location(index, blob_id) is not None


def test_nodes_in_the_devnets_own_loop(tmp_path: Path, http: httpx.Client) -> None:
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4, node_process=False)) as devnet:
        assert isinstance(devnet.devnet.nodes, LocalNodes)
        url = devnet.info.publisher_url
        data = os.urandom(20_000)
        devnet.stop_node(1)
        blob_id = store(http, url, data)["newlyCreated"]["blobObject"]["blobId"]
        devnet.set_faults(0, NodeFaults(corrupt_reads=True))
        assert http.get(f"{url}/v1/blobs/{blob_id}").content == data
        devnet.start_node(1)
        poll(lambda: devnet.share_location(1, blob_id))  # repaired from its peers


def test_the_ledger_view_agrees_with_the_registry(
    devnet: BackgroundDevnet, http: httpx.Client
) -> None:
    registry = devnet.registry
    url = devnet.info.publisher_url
    stored = store(http, url, os.urandom(5000), "?epochs=4")["newlyCreated"]["blobObject"]
    view = LedgerView(devnet.info.directory / "ledger.sqlite3", registry.params())
    try:
        assert view.params() == registry.params()
        assert view.current_epoch() == registry.current_epoch()
        assert view.committee() == registry.committee()
        assert view.live_blob_ids() == registry.live_blob_ids()
        assert stored["blobId"] in view.live_blob_ids()
        for blob_id in (stored["blobId"], "A" * 43):
            assert view.blob_status(blob_id) == registry.blob_status(blob_id)
        many = [stored["blobId"], *registry.live_blob_ids(), "A" * 43, "Q" * 43]
        assert view.blob_statuses(many) == registry.blob_statuses(many)
        assert view.blob_status(stored["blobId"]).end_epoch == stored["storage"]["endEpoch"]
    finally:
        view.close()


def test_maintenance_looks_blobs_up_together(
    tmp_path: Path, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node's maintenance asks the chain about the blobs it received lately (here: uploaded,
    never certified) in one lookup per pass, not one per blob."""
    calls: dict[str, list[int]] = {"single": [], "bulk": []}
    single, bulk = LedgerRegistry.blob_status, LedgerRegistry.blob_statuses

    def count_single(self: LedgerRegistry, blob_id: str) -> BlobStatus:
        calls["single"].append(1)
        return single(self, blob_id)

    def count_bulk(self: LedgerRegistry, blob_ids: Sequence[str]) -> dict[str, BlobStatus]:
        calls["bulk"].append(len(blob_ids))
        return bulk(self, blob_ids)

    monkeypatch.setattr(LedgerRegistry, "blob_status", count_single)
    monkeypatch.setattr(LedgerRegistry, "blob_statuses", count_bulk)
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4, node_process=False)) as devnet:
        coder = ShareCoder(devnet.info.n_shards)
        blobs = [coder.encode(os.urandom(1000 + i)) for i in range(40)]
        items = [(b.blob_id, b.metadata.to_bytes(), bytes(b.shares[0])) for b in blobs]
        body = b"".join(bytes(p) for p in sharebatch.encode(items))
        response = http.post(devnet.info.node_urls[0] + sharebatch.PATH, content=body)
        assert [a["status"] for a in response.json()["success"]["data"]] == [200] * 40
        calls["single"].clear()
        passes = len(calls["bulk"])
        poll(lambda: sum(n >= 40 for n in calls["bulk"][passes:]) >= 3)
        assert calls["single"] == []

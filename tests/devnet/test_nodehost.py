"""Where the storage nodes run: a node-host process (the default) or the devnet's own loop,
and the read-only ledger view the node-host process sees the chain through."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from devnet.devnet_helpers import make_config, poll, store

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.ledgerview import LedgerView
from walrusfs.devnet.node import NodeFaults
from walrusfs.devnet.nodehost import LocalNodes, NodeHostProcess


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
        assert view.blob_status(stored["blobId"]).end_epoch == stored["storage"]["endEpoch"]
    finally:
        view.close()

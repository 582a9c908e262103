"""Faults: nodes down, slow, lying, corrupt on disk, missing a store; and certification quorum.

n = 10 nodes, f = 3, k = 4, quorum n - f = 7.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from devnet.devnet_helpers import assert_error, make_config, poll, store

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.encoding import ShareCoder
from walrusfs.devnet.ledger.registry import LedgerRegistry
from walrusfs.devnet.node import NodeFaults
from walrusfs.devnet.registry import CertifyRequest


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundDevnet]:
    with BackgroundDevnet(make_config(Path(tmp_path_factory.mktemp("faulty")))) as devnet:
        yield devnet


@pytest.fixture
def healthy(faulty: BackgroundDevnet) -> Iterator[BackgroundDevnet]:
    """The faulty devnet, with every node running and honest again after the test."""
    try:
        yield faulty
    finally:
        for index in range(faulty.info.n_shards):
            faulty.set_faults(index, NodeFaults())
            faulty.start_node(index)


def _blob(http: httpx.Client, devnet: BackgroundDevnet, size: int = 200_003) -> tuple[str, bytes]:
    data = os.urandom(size)
    body = store(http, devnet.info.publisher_url, data)
    return body["newlyCreated"]["blobObject"]["blobId"], data


def _read(
    http: httpx.Client, devnet: BackgroundDevnet, blob_id: str, **kw: object
) -> httpx.Response:
    return http.get(f"{devnet.info.publisher_url}/v1/blobs/{blob_id}", **kw)  # type: ignore[arg-type]


def test_reads_survive_n_minus_k_nodes_down(http: httpx.Client, healthy: BackgroundDevnet) -> None:
    info = healthy.info
    blob_id, data = _blob(http, healthy)
    # Stop n - k = 6 nodes, among them primary holders, so reads must decode parity.
    down = [0, 2, 3, 5, 7, 9]
    assert len(down) == info.n_shards - info.k
    for index in down:
        healthy.stop_node(index)
    response = _read(http, healthy, blob_id)
    assert response.status_code == 200 and response.content == data
    response = _read(http, healthy, blob_id, headers={"range": "bytes=1000-180000"})
    assert response.status_code == 206 and response.content == data[1000:180001]
    # One more node down: fewer than k shares are reachable.
    healthy.stop_node(1)
    response = _read(http, healthy, blob_id)
    assert_error(response, 503, "BLOB_UNAVAILABLE", "UNAVAILABLE")
    # One node back: readable again.
    healthy.start_node(9)
    response = _read(http, healthy, blob_id)
    assert response.status_code == 200 and response.content == data


def test_slow_and_lying_nodes_are_routed_around(
    http: httpx.Client, healthy: BackgroundDevnet
) -> None:
    blob_id, data = _blob(http, healthy)
    healthy.set_faults(0, NodeFaults(read_delay=30.0))  # a primary share holder stalls
    healthy.set_faults(1, NodeFaults(corrupt_reads=True))  # another serves corrupt bytes
    healthy.set_faults(2, NodeFaults(corrupt_reads=True))
    started = time.monotonic()
    response = _read(http, healthy, blob_id)
    assert response.status_code == 200 and response.content == data
    assert time.monotonic() - started < 10  # hedged, not waiting out the stalled node
    # A range inside a corrupt node's share is served from good shares too.
    share = ShareCoder(healthy.info.n_shards).share_length(len(data))
    response = _read(http, healthy, blob_id, headers={"range": f"bytes={share}-{share + 99}"})
    assert response.status_code == 206 and response.content == data[share : share + 100]


def test_corrupt_share_on_disk_is_detected_and_repaired(
    http: httpx.Client, healthy: BackgroundDevnet
) -> None:
    blob_id, data = _blob(http, healthy)
    where = healthy.share_location(0, blob_id)  # node 0 holds the first primary share
    assert where is not None
    path, offset, _length = where
    original = healthy.node_share(0, blob_id)
    assert original is not None
    with open(path, "r+b") as f:  # damage it on disk, behind the node's back
        f.seek(offset + 10)
        f.write(bytes(b ^ 0x5A for b in original[10:20]))
    assert healthy.node_share(0, blob_id) != original
    response = _read(http, healthy, blob_id)
    assert response.status_code == 200 and response.content == data
    # The node noticed (on that read or its scrub), dropped the share and rebuilt it.
    poll(lambda: healthy.node_share(0, blob_id) == original)
    healthy.stop_node(1)  # make node 0's share needed again, and check it is served
    healthy.stop_node(2)
    response = _read(http, healthy, blob_id, headers={"range": "bytes=0-99"})
    assert response.status_code == 206 and response.content == data[:100]


def test_node_that_missed_a_store_repairs_itself(
    http: httpx.Client, healthy: BackgroundDevnet
) -> None:
    healthy.stop_node(4)
    healthy.stop_node(8)
    blob_id, data = _blob(http, healthy)  # 8 of 10 nodes: enough for the quorum of 7
    assert healthy.share_location(4, blob_id) is None
    healthy.start_node(4)
    healthy.start_node(8)
    expected = ShareCoder(healthy.info.n_shards).encode(data).shares
    for index in (4, 8):
        share = poll(lambda index=index: healthy.node_share(index, blob_id))
        assert hashlib.sha256(share).digest() == hashlib.sha256(bytes(expected[index])).digest()


def _store_certifies_nothing(http: httpx.Client, devnet: BackgroundDevnet, data: bytes) -> str:
    """Store `data`, expecting 504 INSUFFICIENT_CONFIRMATIONS with no Blob object created and
    nothing charged; returns the blob id."""
    registry = devnet.registry
    address = devnet.info.publisher_address
    blob_id = ShareCoder(devnet.info.n_shards).encode(data).metadata.blob_id_text()
    before = registry.balance(address)
    response = http.put(f"{devnet.info.publisher_url}/v1/blobs", content=data)
    assert_error(response, 504, "INSUFFICIENT_CONFIRMATIONS", "DEADLINE_EXCEEDED")
    assert registry.blob_objects(blob_id) == ()
    assert registry.balance(address) == before
    return blob_id


def test_too_few_confirmations_certify_nothing(
    http: httpx.Client, healthy: BackgroundDevnet
) -> None:
    for index in (0, 3, 6, 9):  # 6 nodes left, the quorum is 7
        healthy.stop_node(index)
    data = os.urandom(12_345)
    blob_id = _store_certifies_nothing(http, healthy, data)
    assert_error(_read(http, healthy, blob_id), 404, "BLOB_NOT_FOUND", "NOT_FOUND")
    # With the nodes back, the same store succeeds.
    for index in (0, 3, 6, 9):
        healthy.start_node(index)
    assert (
        store(http, healthy.info.publisher_url, data)["newlyCreated"]["blobObject"]["blobId"]
        == blob_id
    )


def test_badly_signed_confirmations_never_count(
    http: httpx.Client, healthy: BackgroundDevnet
) -> None:
    """The publisher leaves signatures to the registry's certificate check: f nodes signing
    with a wrong key still leave a quorum of good confirmations; f + 1 do not, and then
    nothing is certified or charged."""
    for index in (1, 4, 7):
        healthy.set_faults(index, NodeFaults(bad_signatures=True))
    blob_id, data = _blob(http, healthy)
    response = _read(http, healthy, blob_id)
    assert response.status_code == 200 and response.content == data
    healthy.set_faults(8, NodeFaults(bad_signatures=True))
    _store_certifies_nothing(http, healthy, os.urandom(12_345))


def test_bad_signatures_in_the_first_quorum_while_the_ledger_is_slow(
    http: httpx.Client, healthy: BackgroundDevnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store certifies at the first quorum; when that certificate is refused for f bad
    signatures, the stragglers' confirmations (which may all have arrived while the ledger
    was checking it) make a good one."""
    certify_blobs = LedgerRegistry.certify_blobs
    sizes: list[int] = []

    def slow(self: LedgerRegistry, requests: Sequence[CertifyRequest]) -> list[object]:
        sizes.extend(len(r.confirmations) for r in requests)
        time.sleep(0.3)  # every upload is over before the first certificate is refused
        return certify_blobs(self, requests)  # type: ignore[return-value]

    monkeypatch.setattr(LedgerRegistry, "certify_blobs", slow)
    for index in (0, 2, 5):
        healthy.set_faults(index, NodeFaults(bad_signatures=True))
    for _ in range(3):
        sizes.clear()
        blob_id, data = _blob(http, healthy)
        assert _read(http, healthy, blob_id).content == data
        assert sizes[-1] == healthy.info.n_shards  # certified with every confirmation

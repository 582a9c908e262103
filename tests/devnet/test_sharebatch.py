"""Several blobs' shares for a node in one request: the frame, the node's endpoint, and the
publisher sending shares together while stores overlap."""

from __future__ import annotations

import base64
import ctypes
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from devnet.devnet_helpers import make_config, poll

from walrusfs.devnet import sharebatch
from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.buffers import ALIGN
from walrusfs.devnet.confirm import parse_confirmation_message, verify_confirmation
from walrusfs.devnet.encoding import EncodedBlob, ShareCoder
from walrusfs.devnet.ledger.registry import LedgerRegistry
from walrusfs.devnet.node import NodeFaults
from walrusfs.devnet.publisher import Publisher
from walrusfs.devnet.registry import CertifyRequest, Committee, StorageConfirmation


def joined(pieces: list[bytes | bytearray | memoryview]) -> bytes:
    return b"".join(bytes(p) for p in pieces)


def assert_confirms(answer: dict, committee: Committee, index: int, blob_id: bytes) -> None:
    """`answer` (one share's, in a batch's answer) is node `index`'s valid signed
    confirmation that it stores its share of `blob_id`."""
    signed = answer["body"]["success"]["data"]["signed"]
    confirmation = StorageConfirmation(
        index,
        base64.b64decode(signed["serializedMessage"]),
        base64.b64decode(signed["signature"]),
    )
    epoch = parse_confirmation_message(confirmation.message)[2]
    assert verify_confirmation(confirmation, committee, epoch, blob_id)


def test_frame_round_trip_keeps_shares_page_aligned() -> None:
    items = [
        (os.urandom(32), b"m" * 331, os.urandom(262_144)),
        (os.urandom(32), b"", b"x"),
        (os.urandom(32), os.urandom(5000), os.urandom(ALIGN + 1)),
    ]
    body = bytearray(joined(sharebatch.encode(items)))
    assert len(body) == sum(sharebatch.frame_size(len(m), len(s)) for _, m, s in items)
    decoded = sharebatch.decode(body)
    assert [(d.blob_id, d.metadata, bytes(d.share)) for d in decoded] == items
    # Each share starts at a multiple of 4096 bytes into the body, and its aligned view
    # (share and padding) is a whole number of pages.
    base = memoryview(body).cast("B")
    for item, (_, _, share) in zip(decoded, items, strict=True):
        offset = _offset_in(base, item.share)
        assert offset % ALIGN == 0
        assert _offset_in(base, item.aligned) == offset
        assert len(item.aligned) % ALIGN == 0 and len(share) <= len(item.aligned)
        assert len(item.aligned) < len(share) + ALIGN


def _offset_in(base: memoryview, view: memoryview) -> int:
    """Where `view` (a slice of the same writable buffer) starts in `base`."""
    return ctypes.addressof(ctypes.c_char.from_buffer(view)) - ctypes.addressof(
        ctypes.c_char.from_buffer(base)
    )


def test_malformed_frames_are_refused() -> None:
    good = joined(sharebatch.encode([(bytes(32), b"meta", b"share")]))
    for bad in [b"", good[:10], good[:-1], good + good[:20], b"\x01" + good[1:]]:
        with pytest.raises(sharebatch.MalformedBatch):
            sharebatch.decode(bad)
    with pytest.raises(ValueError):
        sharebatch.encode([])
    with pytest.raises(ValueError):
        sharebatch.encode([(bytes(31), b"", b"x")])
    many = joined(sharebatch.encode([(bytes(32), b"", b"x")] * sharebatch.MAX_SHARES))
    with pytest.raises(sharebatch.MalformedBatch):
        sharebatch.decode(many + joined(sharebatch.encode([(bytes(32), b"", b"x")])))


def test_a_node_stores_and_confirms_each_share_of_a_batch(
    devnet: BackgroundDevnet, http: httpx.Client
) -> None:
    info = devnet.info
    index = 3
    coder = ShareCoder(info.n_shards)
    blobs = [coder.encode(os.urandom(size)) for size in (300_000, 5_000, 70_000)]
    bad = bytearray(blobs[2].shares[index])
    bad[0] ^= 1
    items = [
        (blobs[0].blob_id, blobs[0].metadata.to_bytes(), blobs[0].shares[index]),
        (blobs[1].blob_id, blobs[1].metadata.to_bytes(), blobs[1].shares[index]),
        (blobs[2].blob_id, blobs[2].metadata.to_bytes(), bytes(bad)),
        (blobs[1].blob_id, blobs[0].metadata.to_bytes(), blobs[1].shares[index]),
    ]
    url = info.node_urls[index] + sharebatch.PATH
    response = http.post(url, content=joined(sharebatch.encode(items)))
    assert response.status_code == 200, response.text
    answers = response.json()["success"]["data"]
    assert [a["status"] for a in answers] == [200, 200, 400, 400]
    committee = devnet.registry.committee()
    for answer, encoded in zip(answers[:2], blobs, strict=False):
        assert_confirms(answer, committee, index, encoded.blob_id)
    assert answers[2]["body"]["error"]["details"][0]["reason"] == "INVALID_SLIVER"
    assert answers[3]["body"]["error"]["details"][0]["reason"] == "INVALID_METADATA"
    for blob, stored in zip(blobs, [True, True, False], strict=True):
        location = devnet.share_location(index, blob.metadata.blob_id_text())
        assert (location is not None) == stored
    # Not a batch at all: refused as a whole.
    garbage = http.post(url, content=b"\0" * 100)
    assert garbage.status_code == 400
    assert garbage.json()["error"]["details"][0]["reason"] == "INVALID_ARGUMENT"


def test_a_batch_mixing_new_held_repeated_and_bad_shares(
    devnet: BackgroundDevnet, http: httpx.Client
) -> None:
    """New shares are stored together; a share the node holds already, the same blob twice in
    one request and a corrupt share each get the answer a single upload would."""
    info = devnet.info
    index = 5
    coder = ShareCoder(info.n_shards)
    held, new, twice, corrupt = (coder.encode(os.urandom(40_000 + i)) for i in range(4))
    url = info.node_urls[index] + sharebatch.PATH

    def item(blob: EncodedBlob, share: bytes | None = None) -> tuple[bytes, bytes, bytes]:
        return (blob.blob_id, blob.metadata.to_bytes(), share or bytes(blob.shares[index]))

    first = http.post(url, content=joined(sharebatch.encode([item(held)])))
    assert [a["status"] for a in first.json()["success"]["data"]] == [200]
    bad = bytearray(corrupt.shares[index])
    bad[-1] ^= 0x80
    items = [item(held), item(new), item(twice), item(twice), item(corrupt, bytes(bad))]
    response = http.post(url, content=joined(sharebatch.encode(items)))
    assert response.status_code == 200, response.text
    answers = response.json()["success"]["data"]
    assert [a["status"] for a in answers] == [200, 200, 200, 200, 400]
    committee = devnet.registry.committee()
    for answer, blob in zip(answers[:4], [held, new, twice, twice], strict=True):
        assert_confirms(answer, committee, index, blob.blob_id)
    assert answers[4]["body"]["error"]["details"][0]["reason"] == "INVALID_SLIVER"
    for blob in (held, new, twice):
        assert devnet.node_share(index, blob.metadata.blob_id_text()) == bytes(blob.shares[index])
    assert devnet.share_location(index, corrupt.metadata.blob_id_text()) is None


def test_overlapping_stores_share_requests_to_a_slow_node(tmp_path: Path) -> None:
    """While node 0 holds its requests, the shares of the other stores wait for it together."""
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4)) as devnet:
        devnet.set_faults(0, NodeFaults(write_delay=0.3))
        url = devnet.info.publisher_url
        blobs = [os.urandom(10_000 + i) for i in range(8)]
        statuses: list[int] = []

        def put(data: bytes) -> None:
            with httpx.Client(timeout=60) as client:
                statuses.append(client.put(f"{url}/v1/blobs", content=data).status_code)

        threads = [threading.Thread(target=put, args=(data,)) for data in blobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * len(blobs)
        uploads = devnet.devnet.publisher.uploads
        assert uploads.requests < uploads.shares
        with httpx.Client(timeout=60) as client:
            for data in blobs:
                blob_id = client.put(f"{url}/v1/blobs", content=data).json()["alreadyCertified"]
                assert client.get(f"{url}/v1/blobs/{blob_id['blobId']}").content == data


def test_stores_do_not_wait_for_a_hung_node(tmp_path: Path) -> None:
    """Shares queued or in flight to a node that does not answer are abandoned once the
    straggler grace is over: the stores finish long before the node would have."""
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4)) as devnet:
        devnet.set_faults(0, NodeFaults(write_delay=60.0))
        url = devnet.info.publisher_url
        blobs = [os.urandom(20_000 + i) for i in range(5)]
        answers: list[httpx.Response] = []

        def put(data: bytes) -> None:
            with httpx.Client(timeout=60) as client:
                answers.append(client.put(f"{url}/v1/blobs", content=data))

        started = time.monotonic()
        threads = [threading.Thread(target=put, args=(data,)) for data in blobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - started < 30
        assert [a.status_code for a in answers] == [200] * len(blobs)
        devnet.set_faults(0, NodeFaults())
        with httpx.Client(timeout=60) as client:
            for answer in answers:
                blob_id = answer.json()["newlyCreated"]["blobObject"]["blobId"]
                data = client.get(f"{url}/v1/blobs/{blob_id}").content
                assert data in blobs


def test_overlapping_stores_are_certified_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores that want certifying while the ledger is busy are certified together (permanent
    blobs, so that an alreadyCertified answer names the certifying transaction and event)."""
    batches: list[int] = []
    certify_blobs = LedgerRegistry.certify_blobs
    publisher: list[Publisher] = []

    def busy_first(self: LedgerRegistry, requests: Sequence[CertifyRequest]) -> list[object]:
        batches.append(len(requests))
        if len(batches) == 1:  # the ledger is busy until every other store waits for it
            waiting = len(blobs) - len(requests)
            poll(lambda: len(publisher[0]._certifications) == waiting)
        return certify_blobs(self, requests)  # type: ignore[return-value]

    monkeypatch.setattr(LedgerRegistry, "certify_blobs", busy_first)
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4)) as devnet:
        assert devnet.devnet.publisher is not None
        publisher.append(devnet.devnet.publisher)
        url = devnet.info.publisher_url
        blobs = [os.urandom(10_000 + i) for i in range(8)]
        statuses: list[int] = []

        def put(data: bytes) -> None:
            with httpx.Client(timeout=60) as client:
                statuses.append(
                    client.put(f"{url}/v1/blobs?permanent=true", content=data).status_code
                )

        threads = [threading.Thread(target=put, args=(data,)) for data in blobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * len(blobs)
        assert len(batches) == 2 and sum(batches) == len(blobs) and max(batches) > 1
        events = []
        with httpx.Client(timeout=60) as client:
            for data in blobs:
                answer = client.put(f"{url}/v1/blobs?permanent=true", content=data).json()[
                    "alreadyCertified"
                ]
                events.append((answer["event"]["txDigest"], answer["event"]["eventSeq"]))
                assert client.get(f"{url}/v1/blobs/{answer['blobId']}").content == data
        assert len({digest for digest, _seq in events}) == len(batches)
        assert len(set(events)) == len(blobs)  # each blob its own event in its transaction


def test_a_store_answers_without_waiting_for_a_straggler(tmp_path: Path) -> None:
    """Once a quorum confirmed, the store certifies and answers; a slow node still gets its
    share from the publisher within the straggler grace, with no repair (maintenance is off)."""
    config = make_config(
        tmp_path / "dn", nodes=4, straggler_grace=30.0, maintenance_interval=3600.0
    )
    with BackgroundDevnet(config) as devnet, httpx.Client(timeout=60) as client:
        devnet.set_faults(0, NodeFaults(write_delay=5.0))
        url = devnet.info.publisher_url
        data = os.urandom(20_000)
        started = time.monotonic()
        response = client.put(f"{url}/v1/blobs", content=data)
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 5.0  # it did not wait for node 0
        blob_id = response.json()["newlyCreated"]["blobObject"]["blobId"]
        assert devnet.share_location(0, blob_id) is None
        assert client.get(f"{url}/v1/blobs/{blob_id}").content == data
        poll(lambda: devnet.share_location(0, blob_id), timeout=30)

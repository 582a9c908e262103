"""The publisher/aggregator HTTP API on the shared devnet: round trips, ranges, JSON shapes."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest
from devnet.devnet_helpers import assert_error, store

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.blobid import blob_id_from_text
from walrusfs.devnet.encoding import ShareCoder
from walrusfs.devnet.ledger.suitypes import parse_digest
from walrusfs.devnet.registry import FROST_PER_WAL

CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=3600"


@pytest.mark.parametrize(
    "size",
    [0, 1, (1 << 20) - 1, 10 << 20, 100 << 20],
    ids=["0B", "1B", "1MiB-1", "10MiB", "100MiB"],
)
def test_round_trip(http: httpx.Client, url: str, devnet: BackgroundDevnet, size: int) -> None:
    data = os.urandom(size)
    body = store(http, url, data, "?epochs=2")
    created = body["newlyCreated"]
    blob = created["blobObject"]
    params = devnet.registry.params()
    epoch = devnet.current_epoch()
    assert set(body) == {"newlyCreated"}
    assert set(created) == {"blobObject", "resourceOperation", "cost"}
    assert set(blob) == {
        "id",
        "registeredEpoch",
        "blobId",
        "size",
        "encodingType",
        "certifiedEpoch",
        "storage",
        "deletable",
    }
    assert set(blob["storage"]) == {"id", "startEpoch", "endEpoch", "storageSize"}
    assert blob["size"] == size and blob["deletable"] is True
    assert blob["encodingType"] == "ZFEC"
    assert blob["registeredEpoch"] == blob["certifiedEpoch"] == blob["storage"]["startEpoch"]
    assert blob["storage"]["endEpoch"] == blob["storage"]["startEpoch"] + 2
    assert blob["storage"]["startEpoch"] in (epoch, epoch - 1)
    encoded = params.encoded_length(size)
    assert created["resourceOperation"] == {
        "registerFromScratch": {"encodedLength": encoded, "epochsAhead": 2}
    }
    assert blob["storage"]["storageSize"] == encoded
    assert created["cost"] == params.cost(size, 2)
    # The blob id is the devnet's derivation over the zfec share hashes.
    expected = ShareCoder(params.n_shards).encode(data).metadata.blob_id()
    assert blob_id_from_text(blob["blobId"]) == expected

    response = http.get(f"{url}/v1/blobs/{blob['blobId']}")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()
    assert response.headers["etag"] == blob["blobId"]
    assert response.headers["cache-control"] == CACHE_CONTROL
    assert response.headers["x-content-type-options"] == "nosniff"
    assert int(response.headers["content-length"]) == size


@pytest.fixture(scope="module")
def stored(devnet: BackgroundDevnet) -> tuple[str, str, bytes]:
    """A blob that spans several shares: (blob id, object id, data)."""
    data = os.urandom(300_001)
    with httpx.Client(timeout=60) as http:
        blob = store(http, devnet.info.publisher_url, data)["newlyCreated"]["blobObject"]
    return blob["blobId"], blob["id"], data


def test_range_reads_at_edges(
    http: httpx.Client, url: str, stored: tuple[str, str, bytes], devnet: BackgroundDevnet
) -> None:
    blob_id, _, data = stored
    size = len(data)
    share = ShareCoder(devnet.info.n_shards).share_length(size)
    cases = [
        (0, 0),
        (0, size - 1),
        (size - 1, size - 1),
        (share - 1, share),  # across a share boundary
        (share, 2 * share - 1),  # exactly one share
        (5, 3 * share + 7),
    ]
    for start, end in cases:
        response = http.get(f"{url}/v1/blobs/{blob_id}", headers={"range": f"bytes={start}-{end}"})
        assert response.status_code == 206, (start, end)
        assert response.content == data[start : end + 1]
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert response.headers["etag"] == blob_id
        length = end - start + 1
        response = http.get(
            f"{url}/v1/blobs/{blob_id}/byte-range", params={"start": start, "length": length}
        )
        assert response.status_code == 200
        assert response.content == data[start : end + 1]
        assert response.headers["etag"] == f"{blob_id}-{start}-{length}"


def test_range_errors(http: httpx.Client, url: str, stored: tuple[str, str, bytes]) -> None:
    blob_id, _, data = stored
    size = len(data)
    for header in [
        f"bytes={size - 1}-{size}",  # past the end
        "bytes=10-",  # open-ended
        "bytes=-10",  # suffix
        "bytes=0-1,5-6",  # several ranges
        "bytes=9-3",  # backwards
        "items=0-1",
    ]:
        response = http.get(f"{url}/v1/blobs/{blob_id}", headers={"range": header})
        assert_error(response, 416, "INVALID_BYTE_RANGE", "RANGE_NOT_SATISFIABLE")
    base = f"{url}/v1/blobs/{blob_id}/byte-range"
    assert_error(
        http.get(base, params={"start": 0, "length": 0}),
        400,
        "INVALID_BYTE_RANGE",
        "INVALID_ARGUMENT",
    )
    assert_error(
        http.get(base, params={"start": size - 1, "length": 2}),
        400,
        "INVALID_BYTE_RANGE",
        "INVALID_ARGUMENT",
    )
    assert_error(http.get(base, params={"start": 0}), 400, "MALFORMED_REQUEST", "INVALID_ARGUMENT")
    assert_error(
        http.get(base, params={"start": 0, "length": 1, "x": 1}),
        400,
        "MALFORMED_REQUEST",
        "INVALID_ARGUMENT",
    )


def test_same_bytes_same_blob_id(http: httpx.Client, url: str, devnet: BackgroundDevnet) -> None:
    data = os.urandom(5000)
    first = store(http, url, data, "?epochs=3")["newlyCreated"]["blobObject"]
    again = store(http, url, data, "?epochs=2")
    # The publisher owns the deletable object and it lasts long enough: alreadyCertified.
    assert again == {
        "alreadyCertified": {
            "blobId": first["blobId"],
            "object": first["id"],
            "endEpoch": first["storage"]["endEpoch"],
        }
    }
    forced = store(http, url, data, "?epochs=2&force=true")["newlyCreated"]["blobObject"]
    assert forced["blobId"] == first["blobId"] and forced["id"] != first["id"]
    permanent = store(http, url, data, "?epochs=4&permanent=true")["newlyCreated"]["blobObject"]
    assert permanent["blobId"] == first["blobId"] and permanent["deletable"] is False
    # A permanent blob is quoted by the event that certified it: on the ledger, the
    # BlobCertified event of the transaction that created it (BlobRegistered is event 0).
    quoted = store(http, url, data, "?epochs=1&permanent=true")["alreadyCertified"]
    assert set(quoted) == {"blobId", "event", "endEpoch"}
    assert set(quoted["event"]) == {"txDigest", "eventSeq"}
    assert quoted["event"]["eventSeq"] == "1"
    assert quoted["endEpoch"] == permanent["storage"]["endEpoch"]
    row = devnet.ledger.store.transaction(parse_digest(quoted["event"]["txDigest"]))
    assert row is not None
    event = json.loads(row["record"])["events"][1]
    assert event["type"].endswith("::events::BlobCertified")
    assert event["json"]["object_id"] == permanent["id"]


def test_read_by_object_id(http: httpx.Client, url: str, stored: tuple[str, str, bytes]) -> None:
    _, object_id, data = stored
    response = http.get(f"{url}/v1/blobs/by-object-id/{object_id}")
    assert response.status_code == 200 and response.content == data
    response = http.get(
        f"{url}/v1/blobs/by-object-id/{object_id}", headers={"range": "bytes=100-199"}
    )
    assert response.status_code == 206 and response.content == data[100:200]
    assert_error(
        http.get(f"{url}/v1/blobs/by-object-id/0x{'12' * 32}"), 404, "BLOB_NOT_FOUND", "NOT_FOUND"
    )
    assert_error(
        http.get(f"{url}/v1/blobs/by-object-id/nonsense"),
        400,
        "MALFORMED_REQUEST",
        "INVALID_ARGUMENT",
    )


def test_send_object_to_charges_the_owner(
    http: httpx.Client, url: str, devnet: BackgroundDevnet
) -> None:
    owner = "0x" + os.urandom(32).hex()
    data = os.urandom(70_000)
    publisher_before = devnet.registry.balance(devnet.info.publisher_address)
    # An account that cannot pay is refused and nothing is certified or charged.
    response = http.put(f"{url}/v1/blobs?epochs=5&send_object_to={owner}", content=data)
    assert_error(response, 400, "INSUFFICIENT_FUNDS", "FAILED_PRECONDITION")
    assert (
        devnet.registry.live_blob_ids().count(ShareCoder(10).encode(data).metadata.blob_id_text())
        == 0
    )
    devnet.fund(owner, sui=0, wal=5 * FROST_PER_WAL)
    blob = store(http, url, data, f"?epochs=5&send_object_to={owner}")["newlyCreated"]
    cost = devnet.registry.params().cost(len(data), 5)
    assert blob["cost"] == cost
    assert devnet.registry.balance(owner) == 5 * FROST_PER_WAL - cost
    assert devnet.registry.balance(devnet.info.publisher_address) == publisher_before
    on_chain = devnet.registry.get_blob_object(blob["blobObject"]["id"])
    assert on_chain is not None and on_chain.owner == owner


def test_request_errors(http: httpx.Client, url: str) -> None:
    data = b"x" * 10
    cases = [
        ("?colour=blue", "MALFORMED_REQUEST"),
        ("?epochs=0", "MALFORMED_REQUEST"),
        ("?epochs=54", "MALFORMED_REQUEST"),
        ("?epochs=two", "MALFORMED_REQUEST"),
        ("?permanent=yes", "MALFORMED_REQUEST"),
        ("?send_object_to=alice", "MALFORMED_REQUEST"),
        ("?send_object_to=0x1&share=true", "MALFORMED_REQUEST"),
        ("?deletable=true&permanent=true", "INVALID_BLOB_PERSISTENCE"),
    ]
    for query, reason in cases:
        response = http.put(f"{url}/v1/blobs{query}", content=data)
        assert_error(response, 400, reason, "INVALID_ARGUMENT")
    assert_error(http.get(f"{url}/v1/blobs/{'A' * 43}"), 404, "BLOB_NOT_FOUND", "NOT_FOUND")
    assert_error(
        http.get(f"{url}/v1/blobs/not-a-blob-id"), 400, "MALFORMED_REQUEST", "INVALID_ARGUMENT"
    )
    assert_error(
        http.get(f"{url}/v1/blobs/{'A' * 43}?colour=blue"),
        400,
        "MALFORMED_REQUEST",
        "INVALID_ARGUMENT",
    )
    response = http.get(f"{url}/status")
    assert (response.status_code, response.text) == (200, "OK")
    assert http.get(f"{url}/v1/nothing-here").status_code == 404
    assert http.post(f"{url}/v1/blobs", content=b"x").status_code == 405

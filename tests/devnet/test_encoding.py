"""zfec shares, their hashes by encoding type, metadata and the encoding worker processes."""

from __future__ import annotations

import os
import random
from pathlib import Path

import httpx
import pytest
import trio
from devnet.devnet_helpers import make_config, poll, store
from hypothesis import given, settings
from hypothesis import strategies as st

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.blobid import ENCODING_RS2, ENCODING_ZFEC, ENCODING_ZFEC_BLAKE2B, blake2b256
from walrusfs.devnet.encoding import BlobMetadata, ShareCoder, blake3_256, share_hasher
from walrusfs.devnet.errors import InvalidMetadata
from walrusfs.devnet.workers import POOL_MIN, EncodePool


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=5000),
    n=st.sampled_from([1, 4, 7, 10, 13]),
    seed=st.integers(0, 2**32),
)
def test_any_k_shares_rebuild_the_blob(data: bytes, n: int, seed: int) -> None:
    coder = ShareCoder(n)
    encoded = coder.encode(data)
    assert len(encoded.shares) == n
    assert all(len(s) == coder.share_length(len(data)) for s in encoded.shares)
    assert encoded.metadata.share_hashes == tuple(blake3_256(s) for s in encoded.shares)
    chosen = random.Random(seed).sample(range(n), coder.k)
    pieces = coder.decode({i: encoded.shares[i] for i in chosen}, len(data))
    assert b"".join(bytes(p) for p in pieces) == data
    for index in range(n):
        primaries = [bytes(encoded.shares[i]) for i in range(coder.k)]
        assert bytes(coder.share_from_primaries(primaries, index)) == bytes(encoded.shares[index])


def test_the_encoding_type_says_how_shares_are_hashed() -> None:
    data = os.urandom(300_000)
    current = ShareCoder(10).encode(data)
    legacy = ShareCoder(10, encoding_type=ENCODING_ZFEC_BLAKE2B).encode(data)
    assert [bytes(s) for s in current.shares] == [bytes(s) for s in legacy.shares]
    assert current.metadata.encoding_type == ENCODING_ZFEC
    assert current.metadata.share_hashes == tuple(blake3_256(s) for s in current.shares)
    assert legacy.metadata.share_hashes == tuple(blake2b256(s) for s in legacy.shares)
    assert current.blob_id != legacy.blob_id
    for encoded in (current, legacy):
        metadata = BlobMetadata.from_bytes(encoded.metadata.to_bytes())
        metadata.check(encoded.blob_id, 10)
        assert all(metadata.holds(i, s) for i, s in enumerate(encoded.shares))
        assert not metadata.holds(1, encoded.shares[0])
        # The streaming hasher the encoding workers use gives the same hash, in pieces.
        hasher = share_hasher(metadata.encoding_type)
        share = bytes(encoded.shares[5])
        for offset in range(0, len(share), 10_000):
            hasher.update(share[offset : offset + 10_000])
        assert bytes.fromhex(hasher.hexdigest()) == metadata.share_hashes[5]
    # A type the devnet does not write (Walrus's RS2, say) is refused, whatever its hashes.
    foreign = BlobMetadata(ENCODING_RS2, len(data), current.metadata.share_hashes)
    with pytest.raises(InvalidMetadata):
        foreign.check(foreign.blob_id(), 10)


def test_k_and_f() -> None:
    assert (ShareCoder(10).k, ShareCoder(4).k, ShareCoder(1).k, ShareCoder(7).k) == (4, 2, 1, 3)


def test_metadata_round_trip_and_checks() -> None:
    coder = ShareCoder(10)
    metadata = coder.encode(b"hello").metadata
    raw = metadata.to_bytes()
    assert BlobMetadata.from_bytes(raw) == metadata
    blob_id = metadata.blob_id()
    metadata.check(blob_id, 10)
    with pytest.raises(InvalidMetadata):
        metadata.check(blob_id, 7)
    with pytest.raises(InvalidMetadata):
        metadata.check(bytes(32), 10)
    wrong = BlobMetadata(ENCODING_ZFEC, 6, metadata.share_hashes)
    with pytest.raises(InvalidMetadata):
        wrong.check(blob_id, 10)
    for bad in [b"", raw[:-1], raw + b"x", b"\x01" + raw[1:]]:
        with pytest.raises(InvalidMetadata):
            BlobMetadata.from_bytes(bad)


async def test_worker_processes_encode_identically(caplog: pytest.LogCaptureFixture) -> None:
    data = os.urandom(POOL_MIN + 12345)
    expected = ShareCoder(10, isal=False).encode(data)
    pool = EncodePool(10, workers=2)
    try:
        shared = pool.allocate(len(data))
        assert shared is not None
        shared.body[:] = data
        encoded = await pool.encode(shared.body, shared)
        assert encoded.metadata == expected.metadata
        assert [bytes(s) for s in encoded.shares] == [bytes(s) for s in expected.shares]
        del encoded
        pool.release(shared)
        # A reused buffer is laid out afresh: a shorter blob gets zero padding again.
        shorter = data[:-1001]
        again = await pool.encode(shorter)
        assert again.metadata == ShareCoder(10).encode(shorter).metadata
    finally:
        pool.close()
    # The workers did it: had they failed, the pool would have fallen back to threads.
    assert "encoding workers failed" not in caplog.text
    await trio.lowlevel.checkpoint()


def test_blobs_of_the_older_encoding_type_stay_readable_and_repairable(
    tmp_path: Path, http: httpx.Client
) -> None:
    """A devnet directory from before BLAKE3 share hashes, opened by today's devnet."""
    directory = tmp_path / "dn"
    blobs = {}
    legacy = make_config(directory, encoding_type=ENCODING_ZFEC_BLAKE2B)
    with BackgroundDevnet(legacy) as devnet:
        url = devnet.info.publisher_url
        for size in (70_000, POOL_MIN + 3):  # the batch thread's encoding, and the workers'
            data = os.urandom(size)
            blob = store(http, url, data)["newlyCreated"]["blobObject"]
            assert blob["encodingType"] == "ZFEC-BLAKE2B"
            blobs[blob["blobId"]] = data
    with BackgroundDevnet(make_config(directory)) as devnet:
        url = devnet.info.publisher_url
        for blob_id, data in blobs.items():
            where = devnet.share_location(0, blob_id)
            assert where is not None
            path, offset, _length = where
            original = devnet.node_share(0, blob_id)
            assert original is not None
            with open(path, "r+b") as f:  # damage node 0's share behind its back
                f.seek(offset + 10)
                f.write(bytes(b ^ 0x5A for b in original[10:20]))
            devnet.stop_node(1)  # so that reads need node 0's share or a decode
            response = http.get(f"{url}/v1/blobs/{blob_id}")
            assert response.status_code == 200 and response.content == data
            devnet.start_node(1)
            poll(
                lambda blob_id=blob_id, original=original: devnet.node_share(0, blob_id) == original
            )
        # The same bytes stored today are a new blob, of today's type.
        data = next(iter(blobs.values()))
        blob = store(http, url, data)["newlyCreated"]["blobObject"]
        assert blob["encodingType"] == "ZFEC" and blob["blobId"] not in blobs

"""zfec shares, metadata and the encoding worker processes."""

from __future__ import annotations

import os
import random

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from walrusfs.devnet.blobid import ENCODING_ZFEC, blake2b256
from walrusfs.devnet.encoding import BlobMetadata, ShareCoder
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
    assert encoded.metadata.share_hashes == tuple(blake2b256(s) for s in encoded.shares)
    chosen = random.Random(seed).sample(range(n), coder.k)
    pieces = coder.decode({i: encoded.shares[i] for i in chosen}, len(data))
    assert b"".join(bytes(p) for p in pieces) == data
    for index in range(n):
        primaries = [bytes(encoded.shares[i]) for i in range(coder.k)]
        assert bytes(coder.share_from_primaries(primaries, index)) == bytes(encoded.shares[index])


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

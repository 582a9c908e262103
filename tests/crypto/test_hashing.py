"""Chunk ids: deterministic per key, different across keys, and pinned by a known answer."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from walrusfs.crypto import CHUNK_ID_SIZE, chunk_id

KEY = bytes(range(32))


def test_known_answer() -> None:
    # Pinned: changing the construction would break deduplication against existing chunks.
    assert chunk_id(KEY, b"walrusfs").hex() == (
        "56b89469c73a4a7b2c96dba6ab28b1651f6b7dc2521357bb8f26078868eb0890"
    )


@given(st.binary(max_size=4096))
def test_equal_plaintexts_equal_ids(data: bytes) -> None:
    a = chunk_id(KEY, data)
    assert len(a) == CHUNK_ID_SIZE == 32
    assert chunk_id(KEY, bytes(data)) == a
    assert chunk_id(KEY, memoryview(b"pre" + data)[3:]) == a


def test_ids_differ_across_keys_and_plaintexts() -> None:
    block = os.urandom(1 << 20)
    other_key = os.urandom(32)
    assert chunk_id(KEY, block) != chunk_id(other_key, block)
    assert chunk_id(KEY, block) != chunk_id(KEY, block[:-1] + bytes([block[-1] ^ 1]))
    assert chunk_id(KEY, b"") != chunk_id(KEY, b"\0")


def test_not_an_unkeyed_hash() -> None:
    import hashlib

    assert chunk_id(KEY, b"x") != hashlib.blake2b(b"x", digest_size=32).digest()
    assert chunk_id(KEY, b"x") != hashlib.blake2b(b"x", digest_size=32, key=KEY).digest()


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        chunk_id(b"short", b"x")

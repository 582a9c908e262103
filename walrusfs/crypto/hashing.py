"""Keyed hashing: the chunk id of a block.

A chunk id is BLAKE2b-256 of the block's plaintext, keyed with the filesystem's chunk-naming
subkey. Equal blocks anywhere in one filesystem get equal ids, which is what deduplication
needs; without the key an id is a pseudorandom value, so it neither reveals the plaintext nor
lets anyone confirm a guess of it (unlike an unkeyed content hash), and ids of two filesystems
cannot be matched against each other.

`hashlib.blake2b` takes the key and the personalization natively, hashes a memoryview without
copying, and releases the GIL on large inputs, so `chunk_id` runs well in worker threads.
"""

from __future__ import annotations

import hashlib

CHUNK_ID_SIZE = 32
CHUNK_KEY_SIZE = 32

# A personalization of its own, so a chunk id can never equal another keyed BLAKE2b the
# project computes, even if a key were ever reused by mistake.
_PERSON = b"walrusfs:chunkid"


def chunk_id(key: bytes, plaintext: bytes | memoryview) -> bytes:
    """The 32-byte id of a block: keyed BLAKE2b-256 of its plaintext."""
    if not isinstance(key, bytes) or len(key) != CHUNK_KEY_SIZE:
        raise ValueError(f"a chunk-naming key is {CHUNK_KEY_SIZE} bytes")
    return hashlib.blake2b(plaintext, digest_size=CHUNK_ID_SIZE, key=key, person=_PERSON).digest()

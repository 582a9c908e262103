"""Chunks: a block's plaintext named by a keyed hash and sealed for the network.

A chunk's id is `crypto.chunk_id(keys.chunk_naming, plaintext)`: equal blocks anywhere in
the filesystem get one id, so they are stored once, and without the key the id says nothing
about the plaintext. The plaintext is padded (Padmé) inside the AEAD, so the network sees
sizes from a small set, not the sizes of single files, and the chunk id is the associated
data, so a sealed chunk cannot be passed off as another.

Everything here is a pure function, safe to run in worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from walrusfs.crypto import Keys, Tampered, chunk_id, open_sealed, pad, seal, unpad


@dataclass(frozen=True)
class SealedChunk:
    id: bytes
    size: int
    sealed: bytes


def name(keys: Keys, plaintext: bytes | memoryview) -> bytes:
    return chunk_id(keys.chunk_naming, plaintext)


def seal_chunk(keys: Keys, cid: bytes, plaintext: bytes | memoryview) -> SealedChunk:
    return SealedChunk(cid, len(plaintext), seal(keys.data, pad(plaintext), cid))


def open_chunk(keys: Keys, cid: bytes, sealed: bytes | memoryview, size: int) -> bytes:
    """The plaintext of a sealed chunk, checked in full: its authentication tag, its
    padding, its length and its name. Raises Tampered on any mismatch."""
    plaintext = unpad(open_sealed(keys.data, sealed, cid, what="a chunk"))
    if len(plaintext) != size:
        raise Tampered(f"a chunk has {len(plaintext)} bytes where {size} were stored")
    if chunk_id(keys.chunk_naming, plaintext) != cid:
        raise Tampered("a chunk's content does not match its name")
    return plaintext


def is_zero(data: bytes | memoryview) -> bool:
    """True for a block of zeros: stored as a hole, not as a chunk."""
    return not any(memoryview(data).cast("B")) if len(data) < 4096 else data == bytes(len(data))

"""The devnet's erasure code: a blob as n zfec shares, any k of which rebuild it.

With n shards, f = (n - 1) // 3 and k = n - 2f. The blob is zero-padded to k * L bytes, where
L = ceil(max(size, 1) / k) is the share length, and cut into k primary shares; zfec computes
n - k parity shares (or ISA-L computes the same bytes much faster, see devnet.isal). zfec is
systematic, so share i < k is the blob's i-th slice and reading from primary shares needs no
decoding. Each share's hash is a leaf of the blob's Merkle tree (see devnet.blobid), so the
blob id commits to every share.

The encoding type says which hash: BLAKE3 for ENCODING_ZFEC, what the devnet writes, and
Blake2b-256 for ENCODING_ZFEC_BLAKE2B, what it wrote before 2026-11-24. Every share is hashed
twice per store (by the publisher, then by its node), and at 256 KiB BLAKE3 takes 43 us where
Blake2b takes 260: 4 ms of a 1 MiB store's CPU, whose whole budget at 100 MB/s on two cores is
about 20 ms. Blobs of the older type are still verified, served and repaired with Blake2b.

`BlobMetadata` is what a storage node keeps next to its share and what readers fetch first:
encoding type, unencoded length and the n share hashes. Its wire form mirrors Walrus's BCS
`BlobMetadata::V1`: version byte 0, encoding type byte, length u64 LE, ULEB128 hash count,
then the 32-byte hashes.

A parity byte depends only on the bytes at the same offset of the primary shares, so the
encoding workers (devnet.workers) compute large blobs' parity in column stripes and get the
same bytes as one call would.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import blake3
import zfec

from walrusfs.devnet.blobid import (
    DIGEST_LEN,
    ENCODING_ZFEC,
    ENCODING_ZFEC_BLAKE2B,
    blake2b256,
    blob_id_from_leaves,
    blob_id_to_text,
    max_faulty,
)
from walrusfs.devnet.errors import InvalidMetadata
from walrusfs.devnet.isal import parity_coder

_METADATA_VERSION = 0
_MAX_SHARDS = 1 << 16


def blake3_256(data: bytes | bytearray | memoryview) -> bytes:
    """BLAKE3 with a 32-byte output (it releases the GIL for large inputs)."""
    return blake3.blake3(data).digest()


SHARE_HASHES: dict[int, Callable[[bytes | bytearray | memoryview], bytes]] = {
    ENCODING_ZFEC: blake3_256,
    ENCODING_ZFEC_BLAKE2B: blake2b256,
}
"""How each devnet encoding type hashes a share into its Merkle leaf."""


def share_hasher(encoding_type: int) -> Any:
    """A streaming hasher (`update`, `hexdigest`) giving the same hash as SHARE_HASHES, for
    a share hashed in pieces."""
    if encoding_type == ENCODING_ZFEC:
        return blake3.blake3()
    if encoding_type == ENCODING_ZFEC_BLAKE2B:
        return hashlib.blake2b(digest_size=DIGEST_LEN)
    raise ValueError(f"unknown encoding type {encoding_type}")


def _uleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uleb128(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise InvalidMetadata("truncated length in blob metadata")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


@dataclass(frozen=True)
class BlobMetadata:
    """Encoding type, unencoded length and the hash of every share."""

    encoding_type: int
    unencoded_length: int
    share_hashes: tuple[bytes, ...]

    @property
    def n_shards(self) -> int:
        return len(self.share_hashes)

    def blob_id(self) -> bytes:
        return blob_id_from_leaves(self.encoding_type, self.unencoded_length, self.share_hashes)

    def blob_id_text(self) -> str:
        return blob_id_to_text(self.blob_id())

    def share_hash(self, share: Buffer) -> bytes:
        """The hash of `share` as this blob's encoding type computes it (unknown types were
        refused by `check`)."""
        return SHARE_HASHES[self.encoding_type](share)

    def holds(self, index: int, share: Buffer) -> bool:
        """Whether `share` is this blob's share `index`."""
        return self.share_hash(share) == self.share_hashes[index]

    def to_bytes(self) -> bytes:
        return b"".join(
            (
                bytes([_METADATA_VERSION, self.encoding_type]),
                struct.pack("<Q", self.unencoded_length),
                _uleb128(len(self.share_hashes)),
                *self.share_hashes,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> BlobMetadata:
        if len(data) < 11 or data[0] != _METADATA_VERSION:
            raise InvalidMetadata("not devnet blob metadata")
        encoding_type = data[1]
        (length,) = struct.unpack_from("<Q", data, 2)
        count, offset = _read_uleb128(data, 10)
        if not 0 < count < _MAX_SHARDS or len(data) != offset + count * DIGEST_LEN:
            raise InvalidMetadata("blob metadata has the wrong number of share hashes")
        hashes = tuple(
            data[offset + i * DIGEST_LEN : offset + (i + 1) * DIGEST_LEN] for i in range(count)
        )
        return cls(encoding_type, length, hashes)

    def check(self, blob_id: bytes, n_shards: int) -> None:
        """Raise InvalidMetadata unless this metadata is for `blob_id` on `n_shards` shards."""
        if self.encoding_type not in SHARE_HASHES:
            raise InvalidMetadata(f"unsupported encoding type {self.encoding_type}")
        if self.n_shards != n_shards:
            raise InvalidMetadata(f"metadata has {self.n_shards} share hashes, not {n_shards}")
        if self.blob_id() != blob_id:
            raise InvalidMetadata("metadata does not hash to the blob id")


@lru_cache(maxsize=1024)
def checked_metadata(raw: bytes, blob_id: bytes, n_shards: int) -> BlobMetadata:
    """`raw` parsed and checked to be the metadata of `blob_id` on `n_shards` shards; raises
    InvalidMetadata. Memoized (failures are not): it depends on nothing else, and the nodes of
    one process each check the same metadata of every blob they are sent."""
    metadata = BlobMetadata.from_bytes(raw)
    metadata.check(blob_id, n_shards)
    return metadata


@dataclass(frozen=True)
class EncodedBlob:
    metadata: BlobMetadata
    shares: tuple[Buffer, ...]
    """Share i goes to the node holding shard i."""

    @cached_property
    def blob_id(self) -> bytes:
        return self.metadata.blob_id()


Buffer = bytes | bytearray | memoryview


class ShareCoder:
    """zfec k-of-n for one shard count."""

    def __init__(
        self, n_shards: int, *, isal: bool = True, encoding_type: int = ENCODING_ZFEC
    ) -> None:
        """`isal=False` computes parity with zfec even where ISA-L is installed;
        `encoding_type` picks the share hash of the blobs it encodes (see SHARE_HASHES)."""
        if n_shards < 1:
            raise ValueError("a devnet needs at least one storage node")
        self.n = n_shards
        self.k = n_shards - 2 * max_faulty(n_shards)
        self._encoder = zfec.Encoder(self.k, self.n)
        self._decoder = zfec.Decoder(self.k, self.n)
        self._isal = parity_coder(self.k, self.n) if isal else None
        self.encoding_type = encoding_type
        self.share_hash = SHARE_HASHES[encoding_type]

    def share_length(self, size: int) -> int:
        return -(-max(size, 1) // self.k)

    def primaries(self, data: Buffer) -> list[Buffer]:
        """The k primary shares: the blob cut in k slices, the last one zero-padded. Full
        slices are views of `data` (no copy), so they live only as long as `data` does."""
        length = self.share_length(len(data))
        view = memoryview(data).cast("B")
        out: list[Buffer] = []
        for i in range(self.k):
            piece = view[i * length : (i + 1) * length]
            out.append(piece if len(piece) == length else bytes(piece) + bytes(length - len(piece)))
        return out

    def parity(self, primaries: Sequence[Buffer], wanted: Sequence[int]) -> list[Buffer]:
        """Shares with indexes in `wanted` (all >= k), computed in this thread."""
        if not wanted:
            return []
        if self._isal is not None:
            return list(self._isal.encode(primaries, wanted))
        return list(self._encoder.encode(list(primaries), list(wanted)))

    def metadata_for(self, size: int, shares: Sequence[Buffer]) -> BlobMetadata:
        hash_share = self.share_hash
        return BlobMetadata(self.encoding_type, size, tuple(hash_share(s) for s in shares))

    def encode(self, data: Buffer) -> EncodedBlob:
        """Every share and the metadata, in this thread (hashing and zfec included). The
        primary shares may be views of `data`: keep it unchanged while the shares are used."""
        primaries: list[Buffer] = list(self.primaries(data))
        shares = primaries + list(self.parity(primaries, range(self.k, self.n)))
        return EncodedBlob(self.metadata_for(len(data), shares), tuple(shares))

    def decode(self, shares: Mapping[int, Buffer], size: int) -> list[Buffer]:
        """The blob from any k shares (verified by the caller), as pieces to concatenate."""
        if len(shares) < self.k:
            raise ValueError(f"{len(shares)} shares cannot rebuild a blob, {self.k} needed")
        indexes = sorted(shares)
        primary = [i for i in indexes if i < self.k]
        if len(primary) == self.k:
            blocks: list[Buffer] = [shares[i] for i in range(self.k)]
        else:
            chosen = primary + [i for i in indexes if i >= self.k][: self.k - len(primary)]
            blocks = list(self._decoder.decode([shares[i] for i in chosen], chosen))
        return trim(blocks, size)

    def share_from_primaries(self, primaries: Sequence[Buffer], index: int) -> Buffer:
        """Share `index` recomputed from the k primary shares (a node repairing itself)."""
        if index < self.k:
            return primaries[index]
        return self.parity(primaries, [index])[0]


def trim(blocks: Sequence[Buffer], size: int) -> list[Buffer]:
    """Concatenation pieces of `blocks` cut to `size` bytes, without copying."""
    out: list[Buffer] = []
    remaining = size
    for block in blocks:
        if remaining <= 0:
            break
        if len(block) <= remaining:
            out.append(block)
            remaining -= len(block)
        else:
            out.append(memoryview(block)[:remaining])
            remaining = 0
    return out

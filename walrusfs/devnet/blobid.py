"""Walrus's blob-id derivation, Merkle tree and size formulas, for any shard count.

A blob id is Blake2b-256 over one byte of encoding type, the unencoded length as a
little-endian u64 and the root of a Merkle tree over per-shard leaf data. The tree hashes a
leaf as H(0x00 || data) and an inner node as H(0x01 || left || right); a level with an odd
number of nodes is padded with an all-zero node. In Walrus (RS2) a leaf's data is a sliver
pair's primary hash followed by its secondary hash; in the devnet it is the hash of one zfec
share (BLAKE3, or Blake2b-256 for blobs of the older encoding type; see devnet.encoding). The
text form is unpadded URL-safe base64 of the 32 bytes.

The encoded length and storage units follow Walrus's formula (crates/walrus-core, mirrored in
the Move contract's redstuff.move) with the devnet's own shard count; the only difference is
that the devnet lifts RS2's 16-bit limit on the symbol size, because zfec has none, so a
10-shard devnet can hold blobs as large as the publisher accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence

from nacl._sodium import ffi as _ffi  # PyNaCl's own binding of libsodium
from nacl._sodium import lib as _lib

DIGEST_LEN = 32
LEAF_PREFIX = b"\x00"
INNER_PREFIX = b"\x01"
EMPTY_NODE = bytes(DIGEST_LEN)

# Walrus's encoding types: 0 was RedStuff over RaptorQ (retired), 1 is RS2. The devnet encodes
# with zfec, which is a different code, so its blobs carry their own type byte. The type also
# says how a share is hashed into its leaf: 0x5B ("[") with BLAKE3, what the devnet writes;
# 0x5A ("Z") with Blake2b-256, what devnets wrote before 2026-11-24 (still read and repaired).
ENCODING_RS2 = 1
ENCODING_ZFEC_BLAKE2B = 0x5A
ENCODING_ZFEC = 0x5B
ENCODING_NAMES = {
    ENCODING_RS2: "RS2",
    ENCODING_ZFEC: "ZFEC",
    ENCODING_ZFEC_BLAKE2B: "ZFEC-BLAKE2B",
}

# Both RS2 and the devnet align symbols to 2 bytes.
SYMBOL_ALIGNMENT = 2
UNIT_SIZE = 1 << 20  # storage is priced per MiB of encoded length

_BLOB_ID_TEXT = re.compile(r"^[A-Za-z0-9_-]{43}$")


_SODIUM_MIN = 16 * 1024
"""From this size on, libsodium's Blake2b (about a third faster than hashlib's on this
machine's CPUs) is worth its call overhead: for shares of the older encoding type, which the
nodes hash again when they scrub or serve them."""


def blake2b256(data: bytes | bytearray | memoryview) -> bytes:
    if len(data) < _SODIUM_MIN:
        return hashlib.blake2b(data, digest_size=DIGEST_LEN).digest()
    out = _ffi.new("unsigned char[]", DIGEST_LEN)
    # cffi passes the buffer without copying and releases the GIL for the call.
    rc = _lib.crypto_generichash_blake2b_salt_personal(
        out, DIGEST_LEN, _ffi.from_buffer(data), len(data), _ffi.NULL, 0, _ffi.NULL, _ffi.NULL
    )
    if rc != 0:
        raise RuntimeError("libsodium's Blake2b failed")
    return bytes(out)


def leaf_hash(data: bytes) -> bytes:
    return blake2b256(LEAF_PREFIX + data)


def inner_hash(left: bytes, right: bytes) -> bytes:
    return blake2b256(INNER_PREFIX + left + right)


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The root of Walrus's Merkle tree over the given leaf data (not yet hashed)."""
    level = [leaf_hash(leaf) for leaf in leaves]
    if not level:
        return EMPTY_NODE
    while len(level) > 1:
        if len(level) % 2:
            level.append(EMPTY_NODE)
        level = [inner_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def blob_id_from_root(encoding_type: int, unencoded_length: int, root: bytes) -> bytes:
    """Blake2b-256(encoding type u8 || length u64 LE || Merkle root): the 32-byte blob id."""
    if not 0 <= encoding_type <= 0xFF:
        raise ValueError(f"encoding type {encoding_type} does not fit in a byte")
    if not 0 <= unencoded_length < 1 << 64:
        raise ValueError(f"length {unencoded_length} does not fit in a u64")
    return blake2b256(bytes([encoding_type]) + unencoded_length.to_bytes(8, "little") + root)


def blob_id_from_leaves(
    encoding_type: int, unencoded_length: int, leaves: Sequence[bytes]
) -> bytes:
    return blob_id_from_root(encoding_type, unencoded_length, merkle_root(leaves))


def blob_id_to_text(blob_id: bytes) -> str:
    if len(blob_id) != DIGEST_LEN:
        raise ValueError("a blob id is 32 bytes")
    return base64.urlsafe_b64encode(blob_id).rstrip(b"=").decode("ascii")


def blob_id_from_text(text: str) -> bytes:
    """Parse the text form; raises ValueError with a one-line reason."""
    if not _BLOB_ID_TEXT.match(text):
        raise ValueError(f"{text!r} is not a blob id (43 characters of URL-safe base64)")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{text!r} is not a blob id: {exc}") from None
    if blob_id_to_text(raw) != text:  # non-canonical trailing bits
        raise ValueError(f"{text!r} is not a canonical blob id")
    return raw


def max_faulty(n_shards: int) -> int:
    """f: the number of shards that may be faulty, (n - 1) // 3."""
    return (n_shards - 1) // 3


def source_symbols(n_shards: int) -> tuple[int, int]:
    """Walrus's (primary, secondary) source symbol counts: (n - 2f, n - f)."""
    f = max_faulty(n_shards)
    return n_shards - 2 * f, n_shards - f


def symbol_size(n_shards: int, unencoded_length: int) -> int:
    primary, secondary = source_symbols(n_shards)
    length = max(unencoded_length, 1)  # the empty blob is encoded like a 1-byte one
    size = -(-length // (primary * secondary))
    return -(-size // SYMBOL_ALIGNMENT) * SYMBOL_ALIGNMENT


def metadata_length(n_shards: int) -> int:
    """Per-node metadata: two 32-byte hashes per shard plus the 32-byte blob id."""
    return n_shards * DIGEST_LEN * 2 + DIGEST_LEN


def encoded_length(n_shards: int, unencoded_length: int) -> int:
    """n * ((primary + secondary) * symbol_size + metadata_length), as Walrus computes it."""
    primary, secondary = source_symbols(n_shards)
    slivers = n_shards * (primary + secondary) * symbol_size(n_shards, unencoded_length)
    return slivers + n_shards * metadata_length(n_shards)


def storage_units(encoded: int) -> int:
    """Storage is bought in whole MiB units of encoded length."""
    return -(-encoded // UNIT_SIZE)


def storage_cost(
    encoded: int, epochs: int, storage_price_per_unit: int, write_price_per_unit: int
) -> int:
    """FROST for storing `encoded` bytes for `epochs` epochs, write fee included (no gas)."""
    units = storage_units(encoded)
    return storage_price_per_unit * units * epochs + write_price_per_unit * units

"""Several blobs' shares for one storage node in one request (a devnet extension).

Walrus uploads a sliver per request. For a 1 MiB blob on the devnet's 10 nodes, the HTTP
exchange costs more CPU (request and response, both ends, Python and kernel) than the share's
own hashing, and a store's CPU budget at 100 MB/s on two cores is about 20 ms. So while
stores overlap, the publisher sends each node the shares of all the blobs waiting for it in
one `POST /v1/devnet/primary-slivers` (`PATH`, see devnet.node), in this frame, repeated per share:

    u32 LE   header length H, a multiple of 4096
    u64 LE   share length L
    32 bytes blob id
    u32 LE   metadata length M
    M bytes  metadata (the wire form of devnet.encoding.BlobMetadata)
    zeros up to H bytes
    L bytes  the share
    zeros up to a multiple of 4096

Every share starts a multiple of 4096 bytes into the body, so a node that receives the body
into a page-aligned buffer writes each share to its log with O_DIRECT, as it does a share
uploaded alone.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from walrusfs.devnet.buffers import ALIGN, round_up
from walrusfs.devnet.encoding import Buffer

PATH = "/v1/devnet/primary-slivers"
"""Where a storage node takes a batch."""

_HEAD = struct.Struct("<IQ32sI")
_ZEROS = memoryview(bytes(ALIGN))
MAX_SHARES = 64
"""Shares one request may carry."""
MAX_BODY = 8 << 20
"""A batch of several shares is at most this long; a single share's may be longer."""


class MalformedBatch(ValueError):
    pass


@dataclass(frozen=True)
class BatchShare:
    blob_id: bytes
    metadata: bytes
    share: memoryview
    aligned: memoryview
    """The share followed by its padding: a multiple of 4096 bytes long, starting where the
    share does (page-aligned if the body's buffer is)."""


def frame_size(metadata_len: int, share_len: int) -> int:
    """Bytes one share takes in a batch body."""
    return round_up(_HEAD.size + metadata_len) + round_up(share_len)


def body_limit(n_shards: int, max_share: int) -> int:
    """The longest batch body a node of `n_shards` shards that takes shares of up to
    `max_share` bytes may receive."""
    metadata_len = 11 + 3 + 32 * n_shards  # BlobMetadata: fixed part, ULEB128 count, hashes
    return max(MAX_BODY, frame_size(metadata_len, max_share))


def _zeros(count: int) -> list[memoryview]:
    return [_ZEROS[: min(ALIGN, count - done)] for done in range(0, count, ALIGN)]


def encode(shares: Sequence[tuple[bytes, bytes, Buffer]]) -> list[Buffer]:
    """The body for (blob id, metadata, share) triples, as pieces to send in order."""
    if not 0 < len(shares) <= MAX_SHARES:
        raise ValueError(f"a batch holds 1 to {MAX_SHARES} shares, not {len(shares)}")
    pieces: list[Buffer] = []
    for blob_id, metadata, share in shares:
        if len(blob_id) != 32:
            raise ValueError("a blob id is 32 bytes")
        length = len(memoryview(share).cast("B"))
        fixed = _HEAD.size + len(metadata)
        header_len = round_up(fixed)
        head = _HEAD.pack(header_len, length, blob_id, len(metadata)) + metadata
        pieces.append(head + bytes(header_len - fixed))  # one piece: a few KiB to copy
        pieces.append(share)
        pieces += _zeros(round_up(length) - length)
    return pieces


def decode(body: Buffer) -> list[BatchShare]:
    """The shares of a batch body; raises MalformedBatch if it is not one."""
    view = memoryview(body).cast("B")
    out: list[BatchShare] = []
    offset = 0
    while offset < len(view):
        if len(out) == MAX_SHARES:
            raise MalformedBatch(f"a batch holds at most {MAX_SHARES} shares")
        if len(view) - offset < _HEAD.size:
            raise MalformedBatch("truncated share header")
        header_len, length, blob_id, meta_len = _HEAD.unpack_from(view, offset)
        if header_len % ALIGN or header_len < _HEAD.size + meta_len:
            raise MalformedBatch("bad share header length")
        start = offset + header_len
        end = start + round_up(length)
        if end > len(view):
            raise MalformedBatch("truncated share")
        metadata = bytes(view[offset + _HEAD.size : offset + _HEAD.size + meta_len])
        out.append(BatchShare(blob_id, metadata, view[start : start + length], view[start:end]))
        offset = end
    if not out:
        raise MalformedBatch("an empty batch")
    return out

"""Byte formats of the blobs that describe a filesystem on Walrus.

The superblock (one per filesystem, its Sui Blob object is the anchor):

    b"WFSB" ‖ version u8 = 1 ‖ JSON {uuid, block_size, created_ns, wrapped_key (base64)}

The wrapped master key is the only secret in it, and it is protected by the passphrase
(Argon2id): the superblock is public by design, like a LUKS header. The block size and uuid
are not secret.

A manifest blob (one per commit):

    b"WFSM" ‖ version u8 = 1 ‖ kind u8 (1 delta, 2 snapshot) ‖ seq u64 ‖ sealed payload

The sealed body is, padded (Padmé) and sealed with the manifest key:

    created_ns u64 ‖ prev_seq u64 (0: none) ‖ prev SHA-256 (32) ‖ prev blob id length u16
    ‖ prev blob id ‖ zlib(payload)

where the payload is a SQLite file (meta/delta.py). The link to the predecessor makes the
commits a chain, checked link by link, that ends in a snapshot; being sealed, it does not
tell the network which blobs are manifests. The associated data is the 14 header bytes and
the anchor's object id, so a manifest can be replayed neither as another commit nor into
another filesystem.

The head on the anchor: metadata pair `walrusfs.head` = "<seq>:<blob id>:<sha256 hex>". A
reader checks a manifest blob's SHA-256 against it before anything else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from dataclasses import dataclass

from walrusfs.crypto import Keys, Tampered, open_sealed, pad, seal, unpad
from walrusfs.errors import WalrusfsError

SUPERBLOCK_MAGIC = b"WFSB"
MANIFEST_MAGIC = b"WFSM"
VERSION = 1
KIND_DELTA = 1
KIND_SNAPSHOT = 2
KINDS = {KIND_DELTA: "delta", KIND_SNAPSHOT: "snapshot"}
_MANIFEST_HEADER = struct.Struct(">4sBBQ")

HEAD_KEY = "walrusfs.head"
WRITER_KEY = "walrusfs.writer"
# The wrapped master key after a passphrase change (the superblock blob cannot change).
KEY_KEY = "walrusfs.key"


class FormatError(WalrusfsError):
    """A blob is not what walrusfs wrote, or not of this filesystem."""


@dataclass(frozen=True)
class Superblock:
    uuid: str
    block_size: int
    created_ns: int
    wrapped_key: bytes

    def encode(self) -> bytes:
        body = {
            "uuid": self.uuid,
            "block_size": self.block_size,
            "created_ns": self.created_ns,
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
        }
        return SUPERBLOCK_MAGIC + bytes([VERSION]) + json.dumps(body, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Superblock:
        if data[:4] != SUPERBLOCK_MAGIC:
            raise FormatError("the anchor's blob is not a walrusfs superblock")
        if data[4:5] != bytes([VERSION]):
            raise FormatError(f"superblock version {data[4] if len(data) > 4 else '?'} is unknown")
        try:
            body = json.loads(data[5:])
            return cls(
                uuid=str(body["uuid"]),
                block_size=int(body["block_size"]),
                created_ns=int(body["created_ns"]),
                wrapped_key=base64.b64decode(body["wrapped_key"], validate=True),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"the superblock is damaged: {exc}") from None


@dataclass(frozen=True)
class Head:
    seq: int
    blob_id: str
    digest: bytes

    def encode(self) -> str:
        return f"{self.seq}:{self.blob_id}:{self.digest.hex()}"

    @classmethod
    def decode(cls, text: str) -> Head:
        try:
            seq, blob_id, digest = text.split(":")
            return cls(int(seq), blob_id, bytes.fromhex(digest))
        except ValueError:
            raise FormatError(f"the anchor's head {text!r} is malformed") from None


def digest(blob: bytes) -> bytes:
    return hashlib.sha256(blob).digest()


def _ad(header: bytes, anchor_id: str) -> bytes:
    return b"walrusfs manifest|" + header + b"|" + anchor_id.encode()


_LINK = struct.Struct(">QQ32sH")


@dataclass(frozen=True)
class Manifest:
    """An opened manifest blob."""

    seq: int
    kind: int
    created_ns: int
    prev: Head | None
    payload: bytes

    @property
    def kind_name(self) -> str:
        return KINDS[self.kind]


def seal_manifest(
    keys: Keys,
    anchor_id: str,
    seq: int,
    kind: int,
    prev: Head | None,
    created_ns: int,
    payload: bytes,
) -> bytes:
    header = _MANIFEST_HEADER.pack(MANIFEST_MAGIC, VERSION, kind, seq)
    prev_id = prev.blob_id.encode() if prev else b""
    link = _LINK.pack(
        created_ns, prev.seq if prev else 0, prev.digest if prev else bytes(32), len(prev_id)
    )
    body = pad(link + prev_id + zlib.compress(payload, 6))
    return header + seal(keys.manifest, body, _ad(header, anchor_id))


def open_manifest(
    keys: Keys, anchor_id: str, blob: bytes, *, seq: int, expected_digest: bytes
) -> Manifest:
    """Check a manifest blob against the digest that named it, then open it.
    Raises Tampered or FormatError."""
    if digest(blob) != expected_digest:
        raise Tampered(f"manifest {seq} does not match the digest that names it")
    if len(blob) < _MANIFEST_HEADER.size:
        raise FormatError(f"manifest {seq} is truncated")
    magic, version, kind, got_seq = _MANIFEST_HEADER.unpack_from(blob)
    if magic != MANIFEST_MAGIC or version != VERSION or kind not in KINDS:
        raise FormatError(f"manifest {seq} is not a walrusfs manifest of a known version")
    if got_seq != seq:
        raise Tampered(f"manifest {seq} says it is commit {got_seq}")
    header = blob[: _MANIFEST_HEADER.size]
    body = unpad(
        open_sealed(
            keys.manifest,
            blob[_MANIFEST_HEADER.size :],
            _ad(header, anchor_id),
            what=f"manifest {seq}",
        )
    )
    try:
        created_ns, prev_seq, prev_digest, id_len = _LINK.unpack_from(body)
        start = _LINK.size + id_len
        prev_id = body[_LINK.size : start].decode()
        payload = zlib.decompress(body[start:])
    except (struct.error, UnicodeDecodeError, zlib.error) as exc:
        raise FormatError(f"manifest {seq} is malformed: {exc}") from None
    prev = Head(prev_seq, prev_id, prev_digest) if prev_seq else None
    if kind == KIND_DELTA and (prev is None or prev.seq != seq - 1):
        raise FormatError(f"manifest {seq} is a delta without its predecessor {seq - 1}")
    return Manifest(seq, kind, created_ns, prev, payload)

"""Decoding the Walrus objects walrusfs reads (BCS contents) and deriving dynamic field ids.

Layouts follow the Walrus Move contracts: Blob, Storage, the Metadata dynamic field
(`Field<vector<u8>, Metadata>` under the name b"metadata"), System, and the leading fields of
`SystemStateInnerV1` (the System object's dynamic field keyed by its `version`). Only the prefix
of the inner state that walrusfs needs is decoded, so later fields may change freely.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from .errors import ChainError
from .types import BlobInfo

METADATA_KEY = b"metadata"
_TYPE_TAG_U64 = b"\x02"
_TYPE_TAG_VECTOR_U8 = b"\x06\x01"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ChainError("a Walrus object's contents are shorter than its layout")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uleb(self) -> int:
        value, shift = 0, 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def u256(self) -> int:
        return int.from_bytes(self.take(32), "little")

    def address(self) -> str:
        return "0x" + self.take(32).hex()

    def vec_u8(self) -> bytes:
        return self.take(self.uleb())

    def string(self) -> str:
        return self.vec_u8().decode("utf-8")

    def option_u32(self) -> int | None:
        n = self.uleb()
        return self.u32() if n else None


def blob_id_text(blob_id: int) -> str:
    return base64.urlsafe_b64encode(blob_id.to_bytes(32, "little")).rstrip(b"=").decode()


def decode_blob(
    contents: bytes, *, version: int, digest: str, metadata: tuple[tuple[str, str], ...] = ()
) -> BlobInfo:
    r = _Reader(contents)
    object_id = r.address()
    registered = r.u32()
    blob_id = r.u256()
    size = r.u64()
    encoding_type = r.u8()
    certified = r.option_u32()
    r.address()  # the Storage's id
    start, end, storage_size = r.u32(), r.u32(), r.u64()
    deletable = r.u8() == 1
    return BlobInfo(
        object_id=object_id,
        version=version,
        digest=digest,
        blob_id=blob_id_text(blob_id),
        size=size,
        encoding_type=encoding_type,
        registered_epoch=registered,
        certified_epoch=certified,
        start_epoch=start,
        end_epoch=end,
        storage_size=storage_size,
        deletable=deletable,
        metadata=metadata,
    )


def decode_metadata_field(contents: bytes) -> tuple[tuple[str, str], ...]:
    """The pairs of a `Field<vector<u8>, Metadata>`, in the VecMap's order."""
    r = _Reader(contents)
    r.address()  # the field's UID
    name = r.vec_u8()
    if name != METADATA_KEY:
        raise ChainError(f"unexpected dynamic field name {name!r}")
    return tuple((r.string(), r.string()) for _ in range(r.uleb()))


def decode_system(contents: bytes) -> tuple[int, str]:
    """(version, package id) of the System object."""
    r = _Reader(contents)
    r.address()
    version = r.u64()
    package_id = r.address()
    return version, package_id


def decode_system_inner(contents: bytes) -> dict[str, int]:
    """The leading fields of Field<u64, SystemStateInnerV1>."""
    r = _Reader(contents)
    r.address()
    r.u64()  # the field's name: the System version
    for _ in range(r.uleb()):  # committee members: public key, weight, node id
        r.vec_u8()
        r.u16()
        r.address()
    n_shards = r.u16()
    epoch = r.u32()
    r.vec_u8()  # total aggregated key
    total_capacity = r.u64()
    used_capacity = r.u64()
    storage_price = r.u64()
    write_price = r.u64()
    r.u32()  # future accounting: current index
    max_epochs_ahead = r.u32()
    return {
        "n_shards": n_shards,
        "epoch": epoch,
        "total_capacity": total_capacity,
        "used_capacity": used_capacity,
        "storage_price": storage_price,
        "write_price": write_price,
        "max_epochs_ahead": max_epochs_ahead,
    }


def _dynamic_field_id(parent: str, key_bcs: bytes, type_tag: bytes) -> str:
    h = hashlib.blake2b(digest_size=32)
    h.update(b"\xf0")
    h.update(bytes.fromhex(parent[2:].rjust(64, "0")))
    h.update(len(key_bcs).to_bytes(8, "little"))
    h.update(key_bcs)
    h.update(type_tag)
    return "0x" + h.hexdigest()


def metadata_field_id(blob_object_id: str) -> str:
    """The id of a Blob's metadata dynamic field (name b"metadata": vector<u8>)."""
    return _dynamic_field_id(
        blob_object_id, bytes([len(METADATA_KEY)]) + METADATA_KEY, _TYPE_TAG_VECTOR_U8
    )


def system_inner_id(system_object_id: str, version: int) -> str:
    """The id of the System object's inner state (a dynamic field keyed by u64 version)."""
    return _dynamic_field_id(system_object_id, version.to_bytes(8, "little"), _TYPE_TAG_U64)

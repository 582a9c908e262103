"""BCS (Binary Canonical Serialization) reading and writing, as Sui and Move use it.

Only the primitives: fixed-width little-endian integers, ULEB128 lengths, byte vectors,
strings, options. The Sui and Move layouts built from them live in `suitypes` and `move`.
"""

from __future__ import annotations

import builtins
import struct

from .errors import BcsError


class Reader:
    """Reads BCS values from a byte string; every read checks the bounds."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def done(self) -> None:
        """Fail unless every byte was consumed (BCS has exactly one encoding per value)."""
        if self._pos != len(self._data):
            raise BcsError(f"{self.remaining} trailing bytes after the value")

    def fixed(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise BcsError("unexpected end of input")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return self.fixed(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.fixed(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.fixed(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.fixed(8))[0])

    def u128(self) -> int:
        return int.from_bytes(self.fixed(16), "little")

    def u256(self) -> int:
        return int.from_bytes(self.fixed(32), "little")

    def bool(self) -> bool:
        b = self.u8()
        if b > 1:
            raise BcsError(f"invalid bool byte {b}")
        return b == 1

    def uleb128(self) -> int:
        value = 0
        shift = 0
        while True:
            b = self.u8()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if b == 0 and shift > 0:
                    raise BcsError("non-canonical ULEB128")
                break
            shift += 7
            if shift > 28:
                raise BcsError("ULEB128 length too large")
        if value > 0xFFFFFFFF:
            raise BcsError("ULEB128 length too large")
        return value

    def bytes(self) -> bytes:
        return self.fixed(self.uleb128())

    def str(self) -> str:
        raw = self.bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BcsError("string is not valid UTF-8") from exc

    def variant(self, limit: int) -> int:
        """An enum tag; `limit` is the number of variants this reader understands."""
        tag = self.uleb128()
        if tag >= limit:
            raise BcsError(f"unknown enum variant {tag}")
        return tag

    def option_tag(self) -> builtins.bool:
        return self.variant(2) == 1


class Writer:
    """Accumulates a BCS encoding."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def finish(self) -> bytes:
        return b"".join(self._parts)

    def fixed(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def u8(self, v: int) -> Writer:
        return self.fixed(struct.pack("<B", v))

    def u16(self, v: int) -> Writer:
        return self.fixed(struct.pack("<H", v))

    def u32(self, v: int) -> Writer:
        return self.fixed(struct.pack("<I", v))

    def u64(self, v: int) -> Writer:
        return self.fixed(struct.pack("<Q", v))

    def u128(self, v: int) -> Writer:
        return self.fixed(v.to_bytes(16, "little"))

    def u256(self, v: int) -> Writer:
        return self.fixed(v.to_bytes(32, "little"))

    def bool(self, v: bool) -> Writer:
        return self.u8(1 if v else 0)

    def uleb128(self, v: int) -> Writer:
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                break
        return self.fixed(bytes(out))

    def bytes(self, data: bytes) -> Writer:
        self.uleb128(len(data))
        return self.fixed(data)

    def str(self, s: str) -> Writer:
        return self.bytes(s.encode("utf-8"))

    def variant(self, tag: int) -> Writer:
        return self.uleb128(tag)


def uleb128(v: int) -> bytes:
    return Writer().uleb128(v).finish()

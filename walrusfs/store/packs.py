"""Packs: many sealed chunks back to back in one Walrus blob.

A Walrus blob costs a fixed share of metadata and a write fee whatever its size, so small
chunks travel together. A pack is nothing but the concatenation of its sealed chunks; where
each chunk sits is recorded in the metadata (table `chunks`), and a read fetches only that
byte range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from walrusfs.store.chunks import SealedChunk

# Fits the 10 MiB body limit of a default publisher with room to spare.
DEFAULT_PACK_SIZE = 8 << 20


@dataclass(frozen=True)
class Placed:
    """A chunk's place in its pack."""

    chunk: SealedChunk
    offset: int

    @property
    def length(self) -> int:
        return len(self.chunk.sealed)


@dataclass
class PackBuilder:
    target: int = DEFAULT_PACK_SIZE
    placed: list[Placed] = field(default_factory=list)
    size: int = 0
    _ids: set[bytes] = field(default_factory=set)

    def __contains__(self, cid: bytes) -> bool:
        return cid in self._ids

    def add(self, chunk: SealedChunk) -> Placed:
        p = Placed(chunk, self.size)
        self.placed.append(p)
        self._ids.add(chunk.id)
        self.size += len(chunk.sealed)
        return p

    @property
    def full(self) -> bool:
        return self.size >= self.target

    def fits(self, chunk: SealedChunk) -> bool:
        """An empty pack takes any chunk; others only what keeps them within the target."""
        return not self.placed or self.size + len(chunk.sealed) <= self.target

    def __len__(self) -> int:
        return len(self.placed)

    def data(self) -> bytes:
        return b"".join(p.chunk.sealed for p in self.placed)

"""The anchor: the superblock's Sui Blob object, whose metadata holds the filesystem's head.

Everything that changes the anchor is a compare-and-swap against the version last read
(chain.SuiChainClient.compare_and_swap_anchor), so two writers can never both advance the
head: the loser gets AnchorConflict and must stop writing.

Metadata pairs (see format.py): `walrusfs.head` (the last commit), `walrusfs.writer` (who
may commit: "<writer id> <host>", empty when no read-write mount holds it), and
`walrusfs.key` (the wrapped master key after a passphrase change).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from walrusfs.chain import Anchor, SuiChainClient
from walrusfs.chain.errors import AnchorConflict
from walrusfs.crypto import Keys
from walrusfs.errors import WalrusfsError
from walrusfs.manifest.format import (
    HEAD_KEY,
    KEY_KEY,
    KIND_SNAPSHOT,
    WRITER_KEY,
    FormatError,
    Head,
    Manifest,
    Superblock,
    digest,
    open_manifest,
    seal_manifest,
)
from walrusfs.store.blobs import BlobStore, StoredBlob

log = logging.getLogger(__name__)


class AnchorError(WalrusfsError):
    pass


class WriterElsewhere(AnchorError):
    """Another read-write mount holds the filesystem."""


class HeadMoved(AnchorError):
    """The head moved under this mount: someone else committed."""


@dataclass(frozen=True)
class AnchorView:
    anchor: Anchor
    head: Head | None
    writer: str
    superblock_blob_id: str
    wrapped_key: bytes | None

    @property
    def version(self) -> int:
        return self.anchor.version


class AnchorOps:
    def __init__(self, chain: SuiChainClient, blobs: BlobStore, anchor_id: str) -> None:
        self.chain = chain
        self.blobs = blobs
        self.anchor_id = anchor_id

    @staticmethod
    def _view(anchor: Anchor) -> AnchorView:
        meta = anchor.metadata_map
        head = Head.decode(meta[HEAD_KEY]) if meta.get(HEAD_KEY) else None
        key = base64.b64decode(meta[KEY_KEY]) if meta.get(KEY_KEY) else None
        return AnchorView(anchor, head, meta.get(WRITER_KEY, ""), anchor.blob.blob_id, key)

    async def read(self) -> AnchorView:
        return self._view(await self.chain.read_anchor(self.anchor_id))

    async def superblock(self, view: AnchorView) -> Superblock:
        return Superblock.decode(await self.blobs.get(view.superblock_blob_id))

    async def _cas(self, view: AnchorView, updates: dict[str, str]) -> AnchorView:
        try:
            anchor = await self.chain.compare_and_swap_anchor(view.anchor, updates)
        except AnchorConflict:
            raise HeadMoved(
                "the filesystem's anchor moved under this mount: another mount changed it"
            ) from None
        return self._view(anchor)

    async def claim(self, view: AnchorView, writer: str, *, takeover: bool = False) -> AnchorView:
        """Become the filesystem's writer. Refused while another writer holds it, unless
        `takeover` (for a mount known to be gone for good)."""
        holder = view.writer
        if holder and holder.split()[0] != writer.split()[0] and not takeover:
            raise WriterElsewhere(
                f"the filesystem is mounted read-write elsewhere ({holder}); mount it"
                " read-only, or if that mount is gone for good, mount with -o takeover"
            )
        if holder == writer:
            return view
        return await self._cas(view, {WRITER_KEY: writer})

    async def release(self, view: AnchorView) -> AnchorView:
        return await self._cas(view, {WRITER_KEY: ""})

    async def set_wrapped_key(self, view: AnchorView, wrapped: bytes) -> AnchorView:
        return await self._cas(view, {KEY_KEY: base64.b64encode(wrapped).decode()})

    async def publish(
        self,
        view: AnchorView,
        keys: Keys,
        *,
        seq: int,
        kind: int,
        created_ns: int,
        payload: bytes,
    ) -> tuple[AnchorView, Head, StoredBlob]:
        """Store a manifest blob and advance the head to it."""
        if (view.head.seq if view.head else 0) != seq - 1:
            raise HeadMoved(f"commit {seq} does not follow the head {view.head}")
        blob = seal_manifest(keys, self.anchor_id, seq, kind, view.head, created_ns, payload)
        stored = await self.blobs.put(blob)
        head = Head(seq, stored.blob_id, digest(blob))
        view = await self._cas(view, {HEAD_KEY: head.encode()})
        return view, head, stored

    async def fetch(self, keys: Keys, head: Head) -> Manifest:
        blob = await self.blobs.get(head.blob_id)
        return open_manifest(keys, self.anchor_id, blob, seq=head.seq, expected_digest=head.digest)

    async def load(self, keys: Keys, head: Head) -> list[Manifest]:
        """The commits needed to rebuild the state at `head`: back to the nearest snapshot,
        oldest first. Every link is checked against the digest its successor names."""
        chain: list[Manifest] = []
        cur: Head | None = head
        while cur is not None:
            m = await self.fetch(keys, cur)
            chain.append(m)
            if m.kind == KIND_SNAPSHOT:
                break
            cur = m.prev
        else:
            raise FormatError(f"the commits before {head.seq} end without a snapshot")
        chain.reverse()
        return chain

    async def find(self, keys: Keys, head: Head, seq: int) -> Head:
        """The head of commit `seq`, walking back from `head`."""
        cur: Head | None = head
        while cur is not None and cur.seq > seq:
            cur = (await self.fetch(keys, cur)).prev
        if cur is None or cur.seq != seq:
            raise AnchorError(f"there is no commit {seq} (the newest is {head.seq})")
        return cur

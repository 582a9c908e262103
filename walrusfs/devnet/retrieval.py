"""Fetching verified metadata and shares from the storage nodes.

Used by the aggregator to read blobs and by a storage node to repair its own share. Nothing a
node returns is trusted: metadata must hash to the blob id, a share must hash to its entry in
the metadata. Requests run concurrently, each bounded by a timeout; a node that fails, times
out or returns a bad share is replaced by the next candidate, and a node that is merely slow is
hedged: after `hedge_after` seconds without an answer another candidate is asked too, and the
first k good shares win.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from walrusfs.devnet.blobid import blob_id_to_text
from walrusfs.devnet.buffers import Lease
from walrusfs.devnet.encoding import BlobMetadata, Buffer
from walrusfs.devnet.errors import InvalidMetadata
from walrusfs.devnet.httpclient import HTTPClient, HTTPClientError
from walrusfs.devnet.registry import Committee

log = logging.getLogger(__name__)

# Hash shares in a worker thread from this size on; below, a thread costs more than it saves.
THREAD_HASH_MIN = 1 << 20


@dataclass(frozen=True)
class FetchPolicy:
    request_timeout: float = 30.0
    """Bound on one request to one node."""
    hedge_after: float = 1.0
    """Ask one more node when no answer arrived for this long."""


async def share_matches(metadata: BlobMetadata, index: int, data: Buffer) -> bool:
    """Whether `data` is the blob's share `index` (hashed in a thread when large)."""
    if len(data) < THREAD_HASH_MIN:
        return metadata.holds(index, data)
    return await trio.to_thread.run_sync(metadata.holds, index, data)


def _metadata_url(base: str, blob_id: bytes) -> str:
    return f"{base}/v1/blobs/{blob_id_to_text(blob_id)}/metadata"


def share_url(base: str, blob_id: bytes, index: int) -> str:
    return f"{base}/v1/blobs/{blob_id_to_text(blob_id)}/slivers/{index}/primary"


async def fetch_metadata(
    client: HTTPClient,
    committee: Committee,
    blob_id: bytes,
    n_shards: int,
    policy: FetchPolicy,
    *,
    exclude: Sequence[int] = (),
) -> BlobMetadata | None:
    """Verified metadata from the first node that has it, or None if none does."""
    order = [m for m in committee.members if m.index not in exclude]
    result: list[BlobMetadata] = []

    async def ask(url: str, wave: trio.CancelScope) -> None:
        try:
            with trio.fail_after(policy.request_timeout):
                response = await client.request("GET", url, max_response=1 << 24)
        except (HTTPClientError, trio.TooSlowError):
            return
        if response.status != 200:
            return
        try:
            metadata = BlobMetadata.from_bytes(bytes(response.body))
            metadata.check(blob_id, n_shards)
        except InvalidMetadata as exc:
            log.warning("%s served bad metadata: %s", url, exc)
            return
        result.append(metadata)
        wave.cancel()

    # Metadata is small: ask a few nodes at once and take the first good answer.
    batch = 3
    for start in range(0, len(order), batch):
        async with trio.open_nursery() as wave:
            for member in order[start : start + batch]:
                wave.start_soon(ask, _metadata_url(member.url, blob_id), wave.cancel_scope)
        if result:
            return result[0]
    return None


class ShareCollector:
    """Collects verified shares of one blob from the committee."""

    def __init__(
        self,
        client: HTTPClient,
        committee: Committee,
        blob_id: bytes,
        metadata: BlobMetadata,
        policy: FetchPolicy,
    ) -> None:
        self._client = client
        self._committee = committee
        self._blob_id = blob_id
        self._metadata = metadata
        self._policy = policy
        self.shares: dict[int, Buffer] = {}
        self.failed: set[int] = set()
        self._leases: list[Lease] = []

    def release(self) -> None:
        """Give the pooled buffers of every share collected back; the shares become invalid."""
        leases, self._leases = self._leases, []
        self.shares = {}
        for lease in leases:
            lease.release()

    async def _fetch_one(self, index: int) -> Buffer | None:
        url = share_url(self._committee.member(index).url, self._blob_id, index)
        try:
            with trio.fail_after(self._policy.request_timeout):
                response = await self._client.request("GET", url)
        except (HTTPClientError, trio.TooSlowError) as exc:
            log.debug("share %d unavailable: %s", index, exc)
            return None
        if response.status != 200:
            response.release()
            log.debug("share %d: node answered %d", index, response.status)
            return None
        try:
            good = await share_matches(self._metadata, index, response.body)
        except BaseException:
            response.release()
            raise
        if not good:
            response.release()
            log.warning(
                "node %d served a corrupt share of %s", index, blob_id_to_text(self._blob_id)
            )
            return None
        if response.lease is not None:
            self._leases.append(response.lease)
        return response.body

    def complete(self, needed: int, prefer: Sequence[int] = ()) -> bool:
        """Every preferred share is held, or at least `needed` shares are."""
        return len(self.shares) >= needed or bool(prefer and all(i in self.shares for i in prefer))

    def _still_needed(self, needed: int, prefer: Sequence[int]) -> int:
        if self.complete(needed, prefer):
            return 0
        if prefer and not any(i in self.failed for i in prefer):
            return sum(1 for i in prefer if i not in self.shares)
        return needed - len(self.shares)

    async def collect(
        self, candidates: Sequence[int], needed: int, *, prefer: Sequence[int] = ()
    ) -> bool:
        """Fetch from `candidates` (in order) until every share in `prefer` is held or, once
        one of those failed, any `needed` shares are; True if that was reached.

        `prefer` lets a reader ask only the nodes whose shares it wants (primary shares need
        no decoding) and widen to any k only when one of them fails. Shares already held
        count; candidates already held or failed are skipped. A node that has not answered
        after `hedge_after` seconds gets one more candidate asked alongside it.
        """
        queue = [i for i in candidates if i not in self.shares and i not in self.failed]
        progress = trio.Event()
        in_flight = 0

        async def worker(index: int) -> None:
            nonlocal in_flight
            try:
                share = await self._fetch_one(index)
            finally:
                in_flight -= 1
            if share is None:
                self.failed.add(index)
            else:
                self.shares[index] = share
            progress.set()

        async with trio.open_nursery() as nursery:
            while (missing := self._still_needed(needed, prefer)) > 0:
                while queue and in_flight < missing:
                    in_flight += 1
                    nursery.start_soon(worker, queue.pop(0))
                if in_flight == 0:
                    break  # nothing left to ask
                progress = trio.Event()
                with trio.move_on_after(self._policy.hedge_after):
                    await progress.wait()
                if not progress.is_set() and queue:
                    # Someone is slow: ask one more node on top of those in flight.
                    in_flight += 1
                    nursery.start_soon(worker, queue.pop(0))
            nursery.cancel_scope.cancel()
        return self.complete(needed, prefer)

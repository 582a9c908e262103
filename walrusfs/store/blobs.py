"""Blobs on Walrus as the filesystem uses them: owned by its address, leased for its policy.

`BlobStore.put` keeps trying through network failures, with backoff, until the blob is
certified: the filesystem keeps working from its cache meanwhile, and the data is not lost
(it is still dirty in the cache). `get` authenticates nothing itself; its callers do.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import trio

from walrusfs.walrus import WalrusClient
from walrusfs.walrus.errors import BlobTooLarge, InvalidRequest, MalformedRequest, WalrusError

# Errors no retry can mend: a bug or a configuration to fix.
_PERMANENT = (InvalidRequest, BlobTooLarge, MalformedRequest)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredBlob:
    blob_id: str
    object_id: str | None
    size: int
    end_epoch: int
    cost: int


@dataclass(frozen=True)
class LeasePolicy:
    """How long new blobs are paid for, in Walrus epochs ahead of the current one."""

    epochs: int = 53


class BlobStore:
    def __init__(
        self,
        walrus: WalrusClient,
        owner: str,
        lease: LeasePolicy,
        *,
        retry_initial: float = 0.5,
        retry_max: float = 60.0,
    ) -> None:
        self.walrus = walrus
        self.owner = owner
        self.lease = lease
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        # True while the last attempt failed: the network is away (for status reports).
        self.offline = False

    async def put(self, data: bytes, *, permanent: bool = False) -> StoredBlob:
        """Store `data`, retrying until it is certified. Cancel the caller to give up."""
        delay = self.retry_initial
        warned: type[BaseException] | None = None
        while True:
            try:
                result = await self.walrus.store(
                    data,
                    epochs=self.lease.epochs,
                    permanent=permanent,
                    send_object_to=self.owner,
                )
            except WalrusError as exc:
                if isinstance(exc, _PERMANENT):
                    raise
                self.offline = True
                if warned is not type(exc):
                    log.warning("storing a %d-byte blob failed, will retry: %s", len(data), exc)
                    warned = type(exc)
                await trio.sleep(random.uniform(delay / 2, delay))
                delay = min(self.retry_max, delay * 2)
                continue
            if warned is not None:
                log.info("storing works again")
            self.offline = False
            return StoredBlob(
                blob_id=result.blob_id,
                object_id=result.object_id,
                size=len(data),
                end_epoch=result.end_epoch,
                cost=result.cost,
            )

    async def get(self, blob_id: str, start: int = 0, length: int | None = None) -> bytes:
        """Bytes of a blob. A blob just stored may be unknown to an aggregator for a moment,
        so a 404 is retried within the client's deadline."""
        return await self.walrus.read(blob_id, start=start, length=length, retry_not_found=True)

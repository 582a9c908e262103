"""The publisher's uploads to storage nodes, batched per node while stores overlap.

Each node has a queue and `SENDERS` sender tasks. A sender takes every share waiting in its
node's queue (up to `sharebatch.MAX_SHARES` shares and `sharebatch.MAX_BODY` bytes) and sends
them in one request (devnet.sharebatch); each share gets its own answer. With one store at a
time, every request carries one share, as before; with several, a node's requests carry the
shares of all the blobs that arrived while its senders were busy, so the per-request cost
(HTTP on both ends, a batch-thread hand-off and an fdatasync on the node) is paid once for
all of them. Queues are per node URL; a node keeps its port for as long as the devnet runs.

A store that stops waiting for a node (a straggler past the grace period) abandons its share:
a share still queued is dropped. A share already in a request stays readable until that
request ends, because it is a view of the store's body buffer, which is recycled once the
store returns; so the abandoning store waits for the request, and cancels it once every
share in it is abandoned.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import trio

from walrusfs.devnet import sharebatch
from walrusfs.devnet.blobid import blob_id_to_text
from walrusfs.devnet.encoding import Buffer
from walrusfs.devnet.httpclient import HTTPClient, HTTPClientError

log = logging.getLogger(__name__)

SENDERS = 2
"""Requests in flight to one node at a time."""


@dataclass(eq=False)
class _Upload:
    blob_id: bytes
    metadata: bytes
    share: Buffer
    done: trio.Event = field(default_factory=trio.Event)
    answer: dict[str, Any] | None = None
    """{"status": code, "body": the node's JSON answer for this share}; None if it failed."""
    abandoned: bool = False
    batch: _Batch | None = None

    def frame_size(self) -> int:
        return sharebatch.frame_size(len(self.metadata), len(self.share))


@dataclass(eq=False)
class _Batch:
    uploads: list[_Upload]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class ShareUploads:
    """Sends shares to storage nodes for the publisher; `run` serves until cancelled."""

    def __init__(self, client: HTTPClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._queues: dict[str, trio.MemorySendChannel[_Upload]] = {}
        self._nursery: trio.Nursery | None = None
        self.requests = 0
        """Requests sent so far (for tests and statistics)."""
        self.shares = 0
        """Shares they carried."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._queues.clear()

    async def upload(
        self, node_url: str, blob_id: bytes, metadata: bytes, share: Buffer
    ) -> dict[str, Any] | None:
        """Store `share` with its metadata on the node at `node_url`, and return the node's
        answer for it, {"status": code, "body": JSON}, or None if the request failed."""
        upload = _Upload(blob_id, metadata, share)
        self._queue(node_url).send_nowait(upload)
        try:
            await upload.done.wait()
        except trio.Cancelled:
            upload.abandoned = True
            batch = upload.batch
            if batch is not None and not upload.done.is_set():
                if all(u.abandoned for u in batch.uploads):
                    batch.scope.cancel()
                with trio.CancelScope(shield=True):
                    await upload.done.wait()  # the request still reads the share
            raise
        return upload.answer

    def _queue(self, node_url: str) -> trio.MemorySendChannel[_Upload]:
        queue = self._queues.get(node_url)
        if queue is None:
            if self._nursery is None:
                raise RuntimeError("ShareUploads.run is not running")
            # Unbounded: the publisher's store slots bound what is queued.
            queue, receive = trio.open_memory_channel[_Upload](math.inf)
            self._queues[node_url] = queue
            for _ in range(SENDERS):
                self._nursery.start_soon(self._sender, node_url, receive.clone())
            receive.close()
        return queue

    async def _sender(self, node_url: str, receive: trio.MemoryReceiveChannel[_Upload]) -> None:
        carried: _Upload | None = None  # taken from the queue, but did not fit the last batch
        async with receive:
            while True:
                if carried is not None:
                    first, carried = carried, None
                else:
                    try:
                        first = await receive.receive()
                    except trio.EndOfChannel:
                        return
                uploads = [first]
                size = first.frame_size()
                while len(uploads) < sharebatch.MAX_SHARES:
                    try:
                        upload = receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                    if size + upload.frame_size() > sharebatch.MAX_BODY:
                        carried = upload
                        break
                    uploads.append(upload)
                    size += upload.frame_size()
                for upload in uploads:
                    if upload.abandoned:
                        upload.done.set()
                live = [u for u in uploads if not u.abandoned]
                if live:
                    await self._send(node_url, _Batch(live))

    async def _send(self, node_url: str, batch: _Batch) -> None:
        uploads = batch.uploads
        for upload in uploads:
            upload.batch = batch
        self.requests += 1
        self.shares += len(uploads)
        answers: list[dict[str, Any]] | None = None
        try:
            with batch.scope, trio.fail_after(self._timeout):
                body = sharebatch.encode([(u.blob_id, u.metadata, u.share) for u in uploads])
                r = await self._client.request(
                    "POST", node_url + sharebatch.PATH, body, max_response=1 << 20
                )
                if r.status != 200:
                    raise ValueError(f"answered {r.status} {bytes(r.body[:200])!r}")
                answers = json.loads(bytes(r.body))["success"]["data"]
                if not isinstance(answers, list) or len(answers) != len(uploads):
                    raise ValueError("answered for the wrong number of shares")
        except (HTTPClientError, trio.TooSlowError, ValueError, KeyError, TypeError) as exc:
            blobs = ", ".join(blob_id_to_text(u.blob_id) for u in uploads)
            log.info("node %s did not take shares of %s: %s", node_url, blobs, exc)
            answers = None
        finally:
            for i, upload in enumerate(uploads):
                if answers is not None and isinstance(answers[i], dict):
                    upload.answer = answers[i]
                upload.done.set()

"""A devnet storage node: one shard of every blob, on disk, behind Walrus's storage API.

Node i holds share i of every blob. It serves a subset of the real storage node API
(storage_openapi.yaml) over HTTP on 127.0.0.1:

| method | path | what |
|---|---|---|
| PUT | /v1/blobs/{blobId}/metadata | metadata (share hashes); kept only if it hashes to blobId |
| GET | /v1/blobs/{blobId}/metadata | the metadata, for readers and repairing peers |
| PUT | /v1/blobs/{blobId}/slivers/{i}/primary | share i; kept only if its hash matches the metadata |
|  |  | (devnet extension: metadata in X-Walrus-Metadata, confirmation back with X-Walrus-Confirm) |
| GET | /v1/blobs/{blobId}/slivers/{i}/primary | share i, re-verified if its file changed |
| GET | /v1/blobs/{blobId}/confirmation/permanent | Ed25519-signed storage confirmation (devnet.confirm) |
| POST | /v1/devnet/primary-slivers | devnet extension: shares of several blobs with their metadata (devnet.sharebatch); answers each one's confirmation or error |
| GET | /v1/health | index, public key, epoch, blob count |

On disk, in its own directory: `key` (the Ed25519 seed) and `shares/` (devnet.sharelog: every
share it holds, with the blob's metadata and the epoch and time of the last upload, as records
appended to segment files). Before it confirms, a node appends the share's record and
fdatasyncs it, a sync shared by concurrent uploads; metadata that arrives without its share
stays in memory until the share comes. Nodes of older devnets kept `blobs/<blobId>.share`
files; they are moved into the share log at start.

A maintenance loop, every `maintenance_interval` seconds and whenever a read finds damage:
- drops blobs whose end epoch has passed (uploaded before that epoch), blobs deleted on chain
  (uploaded before the deletion), and uploads that were never certified once `pending_grace`
  seconds passed. A burned Blob object's storage still counts until its end epoch, as on
  Walrus: the aggregator serves such a blob and nodes keep it until then;
- re-hashes shares whose segment changed since they were verified (up to SCRUB_BYTES per
  pass), and drops corrupt ones;
- repairs: for every live blob (from the registry) without a good share here, fetches the
  metadata and k verified shares from its peers, rebuilds its own share, checks its hash and
  stores it.
A blob deleted on chain before its end epoch is dropped by the next full pass (every
REPAIR_SCAN_EVERY passes), which also repairs what is missing.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import trio
from nacl.signing import SigningKey

from walrusfs.devnet import sharebatch
from walrusfs.devnet.apierror import STORAGE_DOMAIN, error_response, json_response
from walrusfs.devnet.batchthread import BatchThread, batch_thread
from walrusfs.devnet.blobid import blob_id_from_text, blob_id_to_text
from walrusfs.devnet.buffers import POOL, Lease
from walrusfs.devnet.confirm import load_or_create_key, sign_confirmation
from walrusfs.devnet.durable import remove_durably
from walrusfs.devnet.encoding import BlobMetadata, Buffer, ShareCoder, checked_metadata
from walrusfs.devnet.errors import InvalidMetadata
from walrusfs.devnet.httpclient import HTTPClient
from walrusfs.devnet.httpserver import (
    Request,
    Response,
    ServerConfig,
    serve,
)
from walrusfs.devnet.registry import BlobStatus, NodeChainView
from walrusfs.devnet.retrieval import FetchPolicy, ShareCollector, fetch_metadata, share_matches
from walrusfs.devnet.sharelog import SEGMENT_SIZE, NewRecord, Record, ShareLog

log = logging.getLogger(__name__)

BATCH_SHARE_MAX = 1 << 20
"""Shares below this size are stored through a batch thread (devnet.batchthread)."""
IO_THREADS = 2
"""Batch threads that store the shares of the nodes of one process (node i uses thread
i % IO_THREADS): a thread waits for the disk (O_DIRECT writes, fdatasync) while another hashes."""

SCRUB_BYTES = 32 << 20
"""Bytes of shares a scrub pass may re-hash (those not verified since their segment changed)."""
REPAIR_SCAN_EVERY = 10
STATUS_CHUNK = 500
"""Blobs looked up on chain at once by a maintenance pass."""


@dataclass
class NodeFaults:
    """Misbehaviour to inject in tests; the default is an honest, prompt node."""

    read_delay: float = 0.0
    """Seconds to wait before answering a share GET (a slow node)."""
    corrupt_reads: bool = False
    """Flip a byte of every share served (a lying node); the on-disk copy stays intact."""
    write_delay: float = 0.0
    """Seconds to wait before storing an uploaded share (a slow node)."""
    bad_signatures: bool = False
    """Sign storage confirmations with a key that is not the node's (a lying node)."""


@dataclass
class NodeSettings:
    maintenance_interval: float = 2.0
    pending_grace: float = 600.0
    """Seconds an uncertified upload is kept before it is dropped."""
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    max_share: int = 1 << 30
    """Largest share accepted."""
    segment_size: int = SEGMENT_SIZE
    """A node's share log starts a new segment file past this size (devnet.sharelog)."""


@dataclass
class _Entry:
    metadata: BlobMetadata
    stored_epoch: int
    """Epoch of the last metadata upload; shares uploaded after an expiry are a new upload."""
    stored_at: float
    has_share: bool = False
    live_until: int = 0
    """The blob was certified until this epoch when last looked up (0: not known live)."""
    record: Record | None = None
    """Where the share is in the node's share log (None while it has none)."""
    verified: int | None = None
    """The generation of the share's segment when its hash was last checked (None: never)."""
    lock: trio.Lock = field(default_factory=trio.Lock)


@dataclass(frozen=True)
class _Append:
    """A share to append to the share log for an entry (`share` None: the one it holds)."""

    blob_id: str
    entry: _Entry
    share: Buffer | None
    aligned: memoryview | None = None


class StorageNode:
    """One storage node; `run` serves it until cancelled. State survives restarts."""

    def __init__(
        self,
        index: int,
        directory: Path,
        registry: NodeChainView,
        settings: NodeSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self.directory = directory
        self.registry = registry
        self.settings = settings or NodeSettings()
        self.faults = NodeFaults()
        self._clock = clock
        directory.mkdir(parents=True, exist_ok=True)
        self._blobs_dir = directory / "blobs"  # where nodes before the share log kept shares
        self._key = load_or_create_key(directory / "key")
        self.public_key = bytes(self._key.verify_key)
        n = registry.params().n_shards
        self._coder = ShareCoder(n)
        self._entries: dict[str, _Entry] = {}
        self._client = HTTPClient()
        self._wake = trio.Event()
        self._scan_now = False
        self._scrub_queue: list[str] = []
        self._repair_after: dict[str, float] = {}
        self._shares = ShareLog(directory / "shares", segment_size=self.settings.segment_size)
        try:
            self._load()
        except BaseException:
            self._shares.close()
            raise

    # -- files

    def stored_blob_ids(self) -> list[str]:
        """Blobs whose share this node holds (for tests and status)."""
        return sorted(b for b, e in self._entries.items() if e.has_share)

    def _load(self) -> None:
        live, verified = self._shares.replay()
        for blob_id, record in live.items():
            try:
                metadata = BlobMetadata.from_bytes(record.metadata)
                metadata.check(blob_id_from_text(blob_id), self._coder.n)
            except (ValueError, InvalidMetadata) as exc:
                log.warning(
                    "node %d: dropping unreadable record of %s: %s", self.index, blob_id, exc
                )
                self._shares.mark_dead(record)
                continue
            self._entries[blob_id] = _Entry(
                metadata,
                record.stored_epoch,
                record.stored_at,
                has_share=True,
                record=record,
                verified=self._shares.generation(record.segment) if blob_id in verified else None,
            )
        self._import_share_files()
        log.debug("node %d: %d blobs on disk", self.index, len(self._entries))

    def _import_share_files(self) -> None:
        """Nodes used to keep a file per share, `blobs/<blobId>.share`, with its metadata in a
        `<blobId>.meta` JSON file or a row of `blobs.sqlite3`: move them into the share log
        (each share checked against its hash), then remove them."""
        old = self._blobs_dir
        if not old.is_dir():
            return
        records: dict[str, tuple[bytes, int, float]] = {}
        index = self.directory / "blobs.sqlite3"
        if index.exists():
            import sqlite3

            db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT blob_id, metadata, stored_epoch, stored_at FROM blobs")
                for blob_id, metadata, epoch, at in rows:
                    records[str(blob_id)] = (bytes(metadata), int(epoch), float(at))
            except sqlite3.Error as exc:
                log.warning("node %d: cannot read %s: %s", self.index, index, exc)
            finally:
                db.close()
        for path in old.glob("*.meta"):
            try:
                raw = json.loads(path.read_text())
                records.setdefault(
                    path.stem,
                    (
                        base64.b64decode(raw["metadata"]),
                        int(raw.get("storedEpoch", 0)),
                        float(raw.get("storedAt", 0.0)),
                    ),
                )
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("node %d: dropping unreadable %s: %s", self.index, path.name, exc)
        for blob_id, (raw_metadata, epoch, at) in records.items():
            share_path = old / f"{blob_id}.share"
            try:
                metadata = BlobMetadata.from_bytes(raw_metadata)
                metadata.check(blob_id_from_text(blob_id), self._coder.n)
                share = share_path.read_bytes()
            except (ValueError, InvalidMetadata, OSError):
                continue  # metadata without its share, or unreadable: repair will see to it
            if not metadata.holds(self.index, share) or blob_id in self._entries:
                continue
            entry = _Entry(metadata, epoch, at)
            self._write_blob(blob_id, entry, share)
            entry.has_share = True
            self._entries[blob_id] = entry
        leftovers = [*old.iterdir(), *self.directory.glob("blobs.sqlite3*")]
        remove_durably(leftovers)
        old.rmdir()
        if records:
            log.info("node %d: moved %d shares into its share log", self.index, len(records))

    def _write_blob(
        self, blob_id: str, entry: _Entry, share: Buffer | None, aligned: memoryview | None = None
    ) -> None:
        """Append the share with the entry's metadata and stamps to the share log, durably
        (with `share` None: the share it holds already, under new stamps). Blocks: call it
        from a worker thread.

        `aligned` (from a pool lease holding the share) lets the share go out with O_DIRECT.
        """
        self._append_blob(blob_id, entry, share, aligned)()

    def _append_blob(
        self, blob_id: str, entry: _Entry, share: Buffer | None, aligned: memoryview | None = None
    ) -> Callable[[], None]:
        """`_write_blob` in two halves (see devnet.batchthread): this one writes the record,
        the one it returns makes it durable and points the entry at it."""
        return self._append_blobs([_Append(blob_id, entry, share, aligned)])

    def _append_blobs(self, appends: Sequence[_Append]) -> Callable[[], None]:
        """`_append_blob` for several shares: one write for all their records."""
        leases: list[Lease] = []
        records = []
        try:
            for a in appends:
                share, aligned = a.share, a.aligned
                if share is None:
                    old = a.entry.record
                    assert old is not None, "new stamps for a share the node does not hold"
                    lease = POOL.get(old.data_len)
                    leases.append(lease)
                    if not self._shares.read(old, lease.aligned):
                        raise OSError(f"the share of {a.blob_id} is gone from the share log")
                    share, aligned = lease.view, lease.aligned
                entry = a.entry
                records.append(
                    NewRecord(
                        a.blob_id,
                        entry.metadata.to_bytes(),
                        entry.stored_epoch,
                        entry.stored_at,
                        share,
                        aligned,
                    )
                )
            pending = self._shares.append_many(records)
        finally:
            for lease in leases:
                lease.release()
        olds = [a.entry.record for a in appends]

        def finish() -> None:
            failed: OSError | None = None
            generations: dict[int, int] = {}  # a stat per segment, not per share
            for a, written, old in zip(appends, pending, olds, strict=True):
                entry = a.entry
                try:
                    record = written.commit()  # each one, even after a failure: it unpins
                except OSError as exc:
                    failed = failed or exc
                    continue
                entry.record = record
                if a.share is not None or entry.verified is not None:
                    if record.segment not in generations:
                        generations[record.segment] = self._shares.generation(record.segment)
                    entry.verified = generations[record.segment]
                if old is not None:
                    self._shares.mark_dead(old)
            if failed is not None:
                raise failed

        return finish

    def _forget_blob(self, entry: _Entry) -> None:
        """The share is no longer held (its record marked dead). Blocks."""
        record, entry.record = entry.record, None
        entry.verified = None
        if record is not None:
            self._shares.mark_dead(record)

    # -- HTTP

    async def run(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        committee_ready: trio.Event | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the node and run its maintenance until cancelled; reports the bound port.

        Maintenance (and so repair) waits for `committee_ready` when given: a devnet that is
        starting up publishes its nodes' addresses only once every node listens.
        """
        max_share = self.settings.max_share
        batch_limit = sharebatch.body_limit(self._coder.n, max_share)
        config = ServerConfig(
            max_body=max_share,
            body_limit=lambda r: batch_limit if r.path == sharebatch.PATH else max_share,
            too_large=lambda _r: error_response(
                413, "SLIVER_TOO_LARGE", "the share is too large", domain=STORAGE_DOMAIN
            ),
            body_buffer=self._body_buffer,
        )
        try:
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(
                    lambda task_status: serve(
                        self.handle, host=host, port=port, config=config, task_status=task_status
                    )
                )
                nursery.start_soon(self._maintenance, committee_ready)
                task_status.started(bound)
        finally:
            with trio.CancelScope(shield=True):
                await self._client.aclose()
                # Writes in threads are done (trio waits for them); remember what is verified.
                await trio.to_thread.run_sync(self._close_shares)

    def _close_shares(self) -> None:
        try:
            self._save_verified()
        except OSError as exc:
            log.warning("node %d: cannot save what is verified: %s", self.index, exc)
        self._shares.close()

    def _save_verified(self) -> None:
        generations = {n: self._shares.generation(n) for n in self._shares.segments()}
        verified = dict.fromkeys(generations, True)
        for entry in self._entries.values():
            record = entry.record
            if record is not None and entry.verified != generations.get(record.segment):
                verified[record.segment] = False
        self._shares.save_verified(verified)

    def _body_buffer(self, request: Request, length: int) -> memoryview | None:
        """Shares are received into pooled buffers that can be written with O_DIRECT."""
        if not (
            (request.method == "PUT" and request.path.endswith("/primary"))
            or (request.method == "POST" and request.path == sharebatch.PATH)
        ):
            return None
        lease = POOL.get(length)
        request.buffer_owner = lease
        return lease.view

    async def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        method = request.method
        if parts == ["v1", "health"] and method in ("GET", "HEAD"):
            return json_response(
                {
                    "success": {
                        "code": 200,
                        "data": {
                            "nodeIndex": self.index,
                            "publicKey": base64.b64encode(self.public_key).decode(),
                            "epoch": self.registry.current_epoch(),
                            "blobs": len(self.stored_blob_ids()),
                        },
                    }
                }
            )
        if request.path == sharebatch.PATH and method == "POST":
            return await self._put_share_batch(request)
        if len(parts) < 4 or parts[:2] != ["v1", "blobs"]:
            return _error(404, "NOT_FOUND", f"no route for {request.path}")
        blob_text = parts[2]
        try:
            blob_id = blob_id_from_text(blob_text)
        except ValueError as exc:
            return _error(400, "INVALID_BLOB_ID", str(exc))
        rest = parts[3:]
        if rest == ["metadata"]:
            if method == "PUT":
                return await self._put_metadata(blob_text, blob_id, request.body)
            if method in ("GET", "HEAD"):
                return self._get_metadata(blob_text)
        elif len(rest) == 3 and rest[0] == "slivers":
            try:
                index = int(rest[1])
            except ValueError:
                return _error(400, "INVALID_ARGUMENT", f"{rest[1]!r} is not a sliver pair index")
            if rest[2] != "primary":
                return _error(400, "INVALID_ARGUMENT", "the devnet stores primary slivers only")
            if not 0 <= index < self._coder.n:
                return _error(400, "INDEX_OUT_OF_RANGE", f"index {index} is out of range")
            if index != self.index:
                return _error(
                    400,
                    "SHARD_NOT_ASSIGNED",
                    f"this node holds shard {self.index}, not {index}",
                    status="FAILED_PRECONDITION",
                )
            if method == "PUT":
                return await self._put_share_request(request, blob_text, blob_id)
            if method in ("GET", "HEAD"):
                return await self._get_share(blob_text)
        elif rest == ["confirmation", "permanent"] and method == "GET":
            return self._confirm(blob_text, blob_id)
        return _error(404, "NOT_FOUND", f"no route for {method} {request.path}")

    async def _put_share_request(
        self, request: Request, blob_text: str, blob_id: bytes
    ) -> Response:
        """A share upload, with the devnet's one-request extension: metadata may ride along
        in an `X-Walrus-Metadata` header (base64), and `X-Walrus-Confirm: permanent` answers
        with the signed confirmation instead of a status message."""
        inline = request.header("x-walrus-metadata")
        raw = None
        if inline is not None:
            try:
                raw = base64.b64decode(inline, validate=True)
            except ValueError:
                return _error(400, "INVALID_METADATA", "X-Walrus-Metadata is not base64")
        lease = request.buffer_owner
        return await self._store_share(
            blob_text,
            blob_id,
            raw,
            request.payload(),
            lease.aligned if isinstance(lease, Lease) else None,
            confirm=request.header("x-walrus-confirm") == "permanent",
        )

    async def _put_share_batch(self, request: Request) -> Response:
        """Several blobs' shares in one request (devnet.sharebatch), each stored as if
        uploaded alone with its metadata; the answer lists each one's response, in order,
        as {"status": code, "body": the response's JSON}.

        The usual case, a share this node does not hold yet of a blob whose entry nobody
        else is busy with, takes a fast path: all such shares of the request are checked,
        written with one write and made durable with one fdatasync in one batch-thread job.
        The others (a share held already, one being stored by another request, a large
        share, a node told to be slow) go the way of a single upload, alongside."""
        try:
            shares = sharebatch.decode(request.payload())
        except sharebatch.MalformedBatch as exc:
            return _error(400, "INVALID_ARGUMENT", f"not a batch of shares: {exc}")
        in_lease = isinstance(request.buffer_owner, Lease)  # page-aligned: O_DIRECT works
        results = [_error(500, "INTERNAL", "not stored")] * len(shares)
        fast: list[tuple[int, bytes, _Append]] = []
        slow: list[tuple[int, sharebatch.BatchShare]] = []
        for slot, item in enumerate(shares):
            blob_text = blob_id_to_text(item.blob_id)
            entry = self._entries.get(blob_text)
            if (
                self.faults.write_delay
                or len(item.share) >= BATCH_SHARE_MAX
                or (entry is not None and (entry.has_share or entry.lock.locked()))
            ):
                slow.append((slot, item))
                continue
            metadata = self._checked_metadata(item.metadata, item.blob_id)
            if isinstance(metadata, Response):
                results[slot] = metadata
                continue
            entry = self._stamp(blob_text, metadata, entry)
            entry.lock.acquire_nowait()  # free (checked above, no checkpoint since)
            aligned = item.aligned if in_lease else None
            fast.append((slot, item.blob_id, _Append(blob_text, entry, item.share, aligned)))

        async def one(slot: int, item: sharebatch.BatchShare) -> None:
            results[slot] = await self._store_share(
                blob_id_to_text(item.blob_id),
                item.blob_id,
                item.metadata,
                item.share,
                item.aligned if in_lease else None,
                confirm=True,
            )

        async with trio.open_nursery() as nursery:
            for slot, item in slow:
                nursery.start_soon(one, slot, item)
            if fast:
                await self._store_fast(fast, results)
        items = b",".join(b'{"status":%d,"body":%b}' % (r.status, r.body) for r in results)
        return Response(
            200,
            b'{"success":{"code":200,"data":[' + items + b"]}}",
            content_type="application/json",
        )

    async def _store_fast(
        self, fast: list[tuple[int, bytes, _Append]], results: list[Response]
    ) -> None:
        """The fast path of `_put_share_batch`: the entries' locks are held on entry, and
        released here."""
        appends = [a for _slot, _blob_id, a in fast]
        try:
            stored = await self._io_thread().run(partial(self._verify_and_append, appends))
            for (slot, blob_id, a), ok in zip(fast, stored, strict=True):
                if ok:
                    a.entry.has_share = True
                    results[slot] = self._confirm(a.blob_id, blob_id)
                else:
                    results[slot] = _invalid_sliver()
        finally:
            for a in appends:
                a.entry.lock.release()

    def _io_thread(self) -> BatchThread:
        return batch_thread(f"node-io-{self.index % IO_THREADS}")

    async def _store_share(
        self,
        blob_text: str,
        blob_id: bytes,
        metadata: bytes | None,
        share: Buffer,
        aligned: memoryview | None,
        *,
        confirm: bool,
    ) -> Response:
        """Metadata (if given), then the share; with `confirm`, the signed confirmation."""
        if metadata is not None:
            response = await self._put_metadata(blob_text, blob_id, metadata)
            if response.status not in (200, 201):
                return response
        response = await self._put_share(blob_text, share, aligned)
        if confirm and response.status in (200, 201):
            return self._confirm(blob_text, blob_id)
        return response

    def _checked_metadata(self, body: Buffer, blob_id: bytes) -> BlobMetadata | Response:
        """The metadata, if it hashes to the blob id; else the answer refusing it."""
        try:
            return checked_metadata(bytes(body), blob_id, self._coder.n)
        except InvalidMetadata as exc:
            return _error(400, "INVALID_METADATA", str(exc))

    def _stamp(self, blob_text: str, metadata: BlobMetadata, entry: _Entry | None) -> _Entry:
        """An upload of the blob's metadata: its entry, created, or stamped with this upload's
        epoch and time (callers hold an existing entry's lock)."""
        if entry is None:
            entry = self._entries[blob_text] = _Entry(
                metadata, self.registry.current_epoch(), self._clock()
            )
        else:
            entry.stored_epoch = self.registry.current_epoch()
            entry.stored_at = self._clock()
        return entry

    async def _put_metadata(self, blob_text: str, blob_id: bytes, body: bytes) -> Response:
        metadata = self._checked_metadata(body, blob_id)
        if isinstance(metadata, Response):
            return metadata
        entry = self._entries.get(blob_text)
        if entry is None:
            self._stamp(blob_text, metadata, None)
            return _ok(201, "metadata successfully stored")
        async with entry.lock:
            self._stamp(blob_text, metadata, entry)
            if entry.has_share:
                # A re-upload (perhaps after expiry): persist the new stamp.
                await trio.to_thread.run_sync(self._write_blob, blob_text, entry, None)
        return _ok(200, "metadata already stored")

    def _get_metadata(self, blob_text: str) -> Response:
        entry = self._entries.get(blob_text)
        if entry is None:
            return _error(404, "METADATA_NOT_FOUND", "no metadata for this blob")
        return Response(200, entry.metadata.to_bytes(), content_type="application/octet-stream")

    async def _put_share(
        self, blob_text: str, body: Buffer, aligned: memoryview | None = None
    ) -> Response:
        entry = self._entries.get(blob_text)
        if entry is None:
            return _error(
                400,
                "METADATA_NOT_FOUND",
                "upload the metadata before the sliver",
                status="FAILED_PRECONDITION",
            )
        if self.faults.write_delay:
            await trio.sleep(self.faults.write_delay)
        async with entry.lock:
            if self._entries.get(blob_text) is not entry:
                return _error(409, "CONFLICT", "the blob was dropped while uploading; retry")
            if entry.has_share:
                return _ok(200, "sliver already stored")
            # Check the hash, append, then fdatasync (shared with the other shares appended
            # in the same batch). Small shares go through the batch thread, whose single
            # hand-off costs less than their work; large ones are hashed and written in
            # threads of their own, in parallel.
            job = partial(self._verify_and_append, [_Append(blob_text, entry, body, aligned)])
            if len(body) < BATCH_SHARE_MAX:
                (stored,) = await self._io_thread().run(job)
            else:
                (stored,) = await trio.to_thread.run_sync(lambda: job()())
            if not stored:
                return _invalid_sliver()
            entry.has_share = True
        return _ok(201, "sliver successfully stored")

    def _verify_and_append(self, appends: Sequence[_Append]) -> Callable[[], list[bool]]:
        """A batch-thread job: the shares that match their hashes are appended (one write),
        then made durable; the result says, for each, whether it was stored."""
        good = [
            a.share is not None and a.entry.metadata.holds(self.index, a.share) for a in appends
        ]
        stored = [a for a, ok in zip(appends, good, strict=True) if ok]
        finish = self._append_blobs(stored) if stored else None

        def durable() -> list[bool]:
            if finish is not None:
                finish()
            return good

        return durable

    async def _read_share(self, blob_text: str, entry: _Entry) -> Lease | None:
        """The share from the share log in a pool lease (the caller releases it), hashed
        again if its segment changed since it was last verified. A corrupt or vanished share
        is dropped and queued for repair; returns None then."""
        shares = self._shares
        for _attempt in range(3):
            record = entry.record
            if record is None:
                return None

            def read(record: Record = record) -> tuple[Lease, int] | None:
                generation = shares.generation(record.segment)
                lease = POOL.get(record.data_len)
                if not shares.read(record, lease.aligned):
                    lease.release()
                    return None
                return lease, generation

            got = await trio.to_thread.run_sync(read)
            if got is None and entry.record is not record:
                continue  # moved meanwhile (compaction, a re-upload): read it where it is now
            break
        if got is not None:
            lease, generation = got
            if entry.verified == generation and generation >= 0:
                return lease
            if await share_matches(entry.metadata, self.index, lease.view):
                if entry.record is record:
                    entry.verified = generation
                return lease
            lease.release()
            log.warning("node %d: share of %s is corrupt on disk", self.index, blob_text)
        else:
            log.warning("node %d: share of %s vanished from disk", self.index, blob_text)
        if entry.record is record:
            await self._drop_share(blob_text, entry)
        return None

    async def _drop_share(self, blob_text: str, entry: _Entry) -> None:
        async with entry.lock:
            entry.has_share = False
            await trio.to_thread.run_sync(self._forget_blob, entry)
        self._repair_after.pop(blob_text, None)
        self._scan_now = True
        self._wake.set()

    async def _get_share(self, blob_text: str) -> Response:
        entry = self._entries.get(blob_text)
        if entry is None or not entry.has_share:
            return _error(404, "SLIVER_NOT_FOUND", "this node does not hold the sliver")
        lease = await self._read_share(blob_text, entry)
        if lease is None:
            return _error(404, "SLIVER_NOT_FOUND", "this node does not hold the sliver")
        data: Buffer = lease.view
        if self.faults.read_delay:
            try:
                await trio.sleep(self.faults.read_delay)
            except BaseException:
                lease.release()
                raise
        if self.faults.corrupt_reads and data:
            data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
        return Response(
            200, chunks=[data], content_type="application/octet-stream", on_sent=lease.release
        )

    def _confirm(self, blob_text: str, blob_id: bytes) -> Response:
        entry = self._entries.get(blob_text)
        if entry is None or not entry.has_share:
            return _error(
                400,
                "MISSING_SLIVERS",
                "this node does not hold its sliver of the blob",
                status="FAILED_PRECONDITION",
            )
        epoch = self.registry.current_epoch()
        confirmation = sign_confirmation(self._key, self.index, epoch, blob_id)
        if self.faults.bad_signatures:
            forged = SigningKey.generate().sign(confirmation.message).signature
            confirmation = replace(confirmation, signature=forged)
        return json_response(
            {
                "success": {
                    "code": 200,
                    "data": {
                        "signed": {
                            "serializedMessage": base64.b64encode(confirmation.message).decode(),
                            "signature": base64.b64encode(confirmation.signature).decode(),
                        }
                    },
                }
            }
        )

    # -- maintenance

    async def _maintenance(self, committee_ready: trio.Event | None) -> None:
        """Every pass: drop what expired, scrub a batch of shares, repair what is missing.

        Costs stay bounded as blobs accumulate: a live blob is not looked up in the registry
        again before the end epoch last seen for it, scrubbing stats the share log's segments
        and hashes at most SCRUB_BYTES a pass, and the registry's full list of live blobs is
        compared with this node's holdings only at start, every REPAIR_SCAN_EVERY passes and
        after a share was dropped (when the node also notes which segments are verified).
        """
        if committee_ready is not None:
            await committee_ready.wait()
        passes = 0
        while True:
            full = passes % REPAIR_SCAN_EVERY == 0 or self._scan_now
            self._scan_now = False
            try:
                await self._collect_garbage(recheck=full)
                await self._scrub()
                await self._repair_missing(full)
                if full:
                    await trio.to_thread.run_sync(self._save_verified)
            except Exception:
                log.exception("node %d: maintenance pass failed", self.index)
            passes += 1
            with trio.move_on_after(self.settings.maintenance_interval):
                await self._wake.wait()
            self._wake = trio.Event()

    def _should_drop(self, entry: _Entry, status: BlobStatus) -> bool:
        """Whether the blob's `status` on chain says to drop this node's copy (notes until
        when a live blob is paid for)."""
        epoch = self.registry.current_epoch()
        end = status.end_epoch
        if end is not None and epoch < end:
            entry.live_until = end
            return False
        entry.live_until = 0
        if end is not None and entry.stored_epoch < end:
            return True  # our copy belongs to registrations that have all expired
        if status.deleted_at is not None and entry.stored_at <= status.deleted_at:
            return True  # our copy belongs to objects since deleted
        # Never certified, or re-uploaded after expiry or deletion: give the upload time to
        # finish and be certified.
        return self._clock() - entry.stored_at >= self.settings.pending_grace

    async def _collect_garbage(self, recheck: bool = False) -> None:
        """Drop what `_should_drop` says to. A blob known live is looked up again only once
        the end epoch last seen for it has come, or with `recheck`; the others are looked up
        a chunk at a time (one query for hundreds: a node receives hundreds of blobs a
        second, each looked up once or twice before it is certified)."""
        epoch = self.registry.current_epoch()
        due = [b for b, e in self._entries.items() if recheck or epoch >= e.live_until]
        for first in range(0, len(due), STATUS_CHUNK):
            chunk = due[first : first + STATUS_CHUNK]
            statuses = self.registry.blob_statuses(chunk)
            for blob_text in chunk:
                entry = self._entries.get(blob_text)
                if entry is None or not self._should_drop(entry, statuses[blob_text]):
                    continue
                async with entry.lock:
                    if self._entries.get(blob_text) is not entry or not self._should_drop(
                        entry, self.registry.blob_status(blob_text)
                    ):
                        continue  # re-uploaded meanwhile
                    del self._entries[blob_text]
                    await trio.to_thread.run_sync(self._forget_blob, entry)
                self._repair_after.pop(blob_text, None)
                log.debug("node %d: dropped %s", self.index, blob_text)
            await trio.lowlevel.checkpoint()

    async def _scrub(self) -> None:
        """Re-verify shares whose segment changed behind the node's back since they were
        last verified (a stat per segment; at most SCRUB_BYTES hashed per pass, round robin),
        and give back the space of dropped shares."""
        if not self._scrub_queue:
            self._scrub_queue = [b for b, e in self._entries.items() if e.has_share]
        generations = {n: self._shares.generation(n) for n in self._shares.segments()}
        budget = SCRUB_BYTES
        while self._scrub_queue and budget > 0:
            blob_text = self._scrub_queue.pop()
            entry = self._entries.get(blob_text)
            record = entry.record if entry is not None else None
            if entry is None or record is None:
                continue
            if entry.verified is not None and entry.verified == generations.get(record.segment):
                continue
            budget -= record.data_len
            lease = await self._read_share(blob_text, entry)
            if lease is not None:
                lease.release()
        await self._compact()

    async def _compact(self) -> None:
        """Remove segments without live shares; empty mostly-dead ones first by copying their
        live shares to the current segment."""
        shares = self._shares
        active = shares.active_segment()
        for number, (size, live) in sorted(shares.segments().items()):
            if number == active or (live > 0 and 2 * live > size):
                continue
            for blob_text, entry in list(self._entries.items()):
                record = entry.record
                if record is None or record.segment != number:
                    continue
                async with entry.lock:
                    if entry.record is not record:
                        continue
                    old_generation = shares.generation(number)
                    moved = await trio.to_thread.run_sync(shares.copy, record)
                    if moved is None:
                        continue
                    entry.record = moved
                    if entry.verified == old_generation:
                        entry.verified = shares.generation(moved.segment)
                    else:
                        entry.verified = None
                log.debug("node %d: moved %s out of segment %d", self.index, blob_text, number)
            if shares.segments().get(number, (0, 1))[1] <= 0 and await trio.to_thread.run_sync(
                shares.remove_segment, number
            ):
                log.debug("node %d: removed segment %d", self.index, number)

    async def _repair_missing(self, full: bool) -> None:
        now = self._clock()
        if full:
            candidates = [
                b
                for b in self.registry.live_blob_ids()
                if b not in self._entries or not self._entries[b].has_share
            ]
        else:
            # Between full scans: only blobs whose metadata arrived without their share.
            candidates = [b for b, e in self._entries.items() if not e.has_share]
        for blob_text in candidates:
            entry = self._entries.get(blob_text)
            if entry is not None and entry.has_share:
                continue
            if self._repair_after.get(blob_text, 0.0) > now:
                continue
            if entry is not None and now - entry.stored_at < 2 * self.settings.maintenance_interval:
                continue  # its upload is probably still arriving
            if not full and entry is not None and not self._is_live(blob_text, entry):
                continue  # not certified (yet): nothing to repair
            ok = False
            try:
                ok = await self.repair(blob_text)
            finally:
                if not ok:
                    # Try again later, without hammering peers that cannot help yet.
                    self._repair_after[blob_text] = self._clock() + max(
                        5.0, 5 * self.settings.maintenance_interval
                    )

    def _is_live(self, blob_text: str, entry: _Entry) -> bool:
        epoch = self.registry.current_epoch()
        if epoch < entry.live_until:
            return True
        return self.registry.blob_status(blob_text).is_live(epoch)

    async def repair(self, blob_text: str) -> bool:
        """Rebuild this node's share of a blob from its peers; True once it is stored."""
        blob_id = blob_id_from_text(blob_text)
        committee = self.registry.committee()
        policy = self.settings.fetch
        entry = self._entries.get(blob_text)
        metadata = entry.metadata if entry is not None else None
        if metadata is None:
            metadata = await fetch_metadata(
                self._client, committee, blob_id, self._coder.n, policy, exclude=[self.index]
            )
            if metadata is None:
                log.info("node %d: no peer has metadata for %s yet", self.index, blob_text)
                return False
        k = self._coder.k
        collector = ShareCollector(self._client, committee, blob_id, metadata, policy)
        peers = [i for i in range(self._coder.n) if i != self.index]
        try:
            if not await collector.collect(peers, k):
                log.info("node %d: too few peers can help repair %s", self.index, blob_text)
                return False
            share_length = len(next(iter(collector.shares.values())))

            def rebuild() -> bytes:
                shares = collector.shares
                pieces = self._coder.decode(shares, share_length * k)
                primaries = [bytes(p) for p in pieces]
                return bytes(self._coder.share_from_primaries(primaries, self.index))

            share = await trio.to_thread.run_sync(rebuild)
        finally:
            collector.release()
        if not metadata.holds(self.index, share):
            log.error("node %d: rebuilt share of %s does not match its hash", self.index, blob_text)
            return False
        if entry is None:
            entry = self._entries.setdefault(
                blob_text, _Entry(metadata, self.registry.current_epoch(), self._clock())
            )
        async with entry.lock:
            if self._entries.get(blob_text) is not entry:
                return False
            if not entry.has_share:
                await trio.to_thread.run_sync(self._write_blob, blob_text, entry, share)
                entry.has_share = True
        self._repair_after.pop(blob_text, None)
        log.info("node %d: repaired its share of %s", self.index, blob_text)
        return True


def _error(code: int, reason: str, message: str, *, status: str | None = None) -> Response:
    return error_response(code, reason, message, domain=STORAGE_DOMAIN, status=status)


def _invalid_sliver() -> Response:
    return _error(400, "INVALID_SLIVER", "the sliver does not match its hash in the metadata")


def _ok(code: int, message: str) -> Response:
    return json_response({"success": {"code": code, "data": message}}, code)

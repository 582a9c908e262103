"""The devnet's publisher and aggregator: Walrus's daemon HTTP API over the storage nodes.

Endpoints, parameters, JSON bodies, headers, status codes and error bodies follow
`walrus daemon` (daemon_openapi.yaml, corrected to camelCase as the wire has it):

| method | path | answer |
|---|---|---|
| PUT | /v1/blobs?epochs&permanent&deletable&send_object_to&share&force | newlyCreated / alreadyCertified |
| GET | /v1/blobs/{blobId} (Range: bytes=a-b gives 206) | the blob |
| GET | /v1/blobs/{blobId}/byte-range?start&length | a slice, 200 |
| GET | /v1/blobs/by-object-id/{objectId} | the blob of that Blob object |
| GET | /status | OK |
| GET | /v1/network | devnet extension: where the devnet's services listen (devnet.info) |

Storing: the body is encoded into n zfec shares (devnet.encoding), each node gets the metadata
and its share (batched with other stores' shares for it, devnet.shareupload) and answers with
a signed confirmation. Once n - f nodes confirmed, the registry certifies the blob and charges
the owner, atomically, and the store answers; the nodes still storing get `straggler_grace`
more seconds in the background (then are left to repair themselves), and if the first quorum
held bad signatures, certifying waits for them. Stores that get there while the ledger is busy
are certified together, in one ledger transaction (BlobRegistry.certify_blobs), each refused or
certified as if alone. With fewer confirmations the answer is 504
INSUFFICIENT_CONFIRMATIONS and nothing is certified or charged. A confirmation is checked for
what it claims (node, key, epoch, blob) when it arrives; its signature only by the registry,
which must check a certificate anyway and leaves bad signatures out (checking a store's 10
signatures twice cost the publisher 0.7 ms of CPU per store). An owner that cannot pay gets
400 FAILED_PRECONDITION with reason INSUFFICIENT_FUNDS (the daemon's specs offer no better fit:
it is not retryable, and the request is well formed).

Reading: the registry says whether the blob's storage lasts past now (else 404); metadata
comes from the nodes (verified against the blob id, then cached); shares are fetched from the
primary nodes first, so a healthy read needs no decoding, and routed around nodes that are down,
slow or lying (devnet.retrieval). Too few good shares: 503 BLOB_UNAVAILABLE.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from walrusfs.devnet.apierror import error_response, json_response
from walrusfs.devnet.batchthread import batch_thread
from walrusfs.devnet.blobid import (
    ENCODING_NAMES,
    ENCODING_ZFEC,
    blob_id_from_text,
    blob_id_to_text,
)
from walrusfs.devnet.buffers import POOL, Lease
from walrusfs.devnet.confirm import (
    confirmation_claims,
    parse_confirmation_message,
    verify_confirmation,
)
from walrusfs.devnet.encoding import BlobMetadata, Buffer, EncodedBlob, ShareCoder
from walrusfs.devnet.errors import (
    InsufficientFunds,
    InvalidCertificate,
    StaleCertificate,
    unwrap_group,
)
from walrusfs.devnet.httpclient import HTTPClient, HTTPClientError
from walrusfs.devnet.httpserver import Request, Response, ServerConfig, serve
from walrusfs.devnet.registry import (
    BlobObject,
    BlobRegistry,
    Certification,
    CertifyRequest,
    Committee,
    StorageConfirmation,
    normalize_address,
)
from walrusfs.devnet.retrieval import FetchPolicy, ShareCollector, fetch_metadata
from walrusfs.devnet.shareupload import ShareUploads
from walrusfs.devnet.workers import EncodePool, SharedBlob

log = logging.getLogger(__name__)

DEFAULT_PORT = 31415
CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=3600"
_PUT_PARAMS = {
    "epochs",
    "permanent",
    "deletable",
    "send_object_to",
    "share",
    "force",
    "encoding_type",
    "reuse_resources",
}
_READ_PARAMS = {"strict_consistency_check", "skip_consistency_check"}
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass
class PublisherSettings:
    address: str
    """The publisher's own Sui address: owner and payer when no send_object_to is given."""
    max_body: int = 10 * 1024 * 1024
    """Largest blob accepted by PUT (413 above), like the real publisher's default."""
    max_read_size: int | None = None
    """Largest blob the aggregator returns (403 BLOB_TOO_LARGE above); None for no limit."""
    max_concurrent_stores: int = 16
    """Stores encoded, uploaded and certified at once; each holds its body and shares in memory
    (for up to `straggler_grace` after it answered, too, while stragglers still read them)."""
    max_queued_stores: int = 64
    """Stores waiting for a slot beyond this are refused with 429."""
    store_timeout: float = 120.0
    """Bound on one upload request to a node (a batch of shares, devnet.shareupload)."""
    straggler_grace: float = 0.5
    """After a quorum confirmed, how long the other nodes may still finish."""
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    blocklist: set[str] = field(default_factory=set)
    """Blob ids refused with 451 FORBIDDEN_BLOB (the devnet's deny list)."""
    metadata_cache: int = 4096
    network_info: Callable[[], dict[str, Any]] | None = None
    """The body of GET /v1/network (a devnet extension); None: no such route."""
    encoding_type: int = ENCODING_ZFEC
    """The encoding type of blobs it stores (devnet.encoding); its encoder's must match."""


def _error(code: int, reason: str, message: str, *, status: str | None = None) -> Response:
    return error_response(code, reason, message, status=status)


class _BadRequest(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _bool_param(query: dict[str, list[str]], name: str) -> bool | None:
    values = query.get(name)
    if not values:
        return None
    value = values[-1]
    if value == "true":
        return True
    if value == "false":
        return False
    raise _BadRequest(
        _error(400, "MALFORMED_REQUEST", f"{name} must be true or false, not {value!r}")
    )


@dataclass(frozen=True)
class _StoreOptions:
    epochs: int
    deletable: bool
    owner: str
    force: bool
    sent: bool


CERTIFY_BATCH = 32
"""Most blobs certified in one ledger transaction."""


@dataclass(eq=False)
class _PendingCertification:
    request: CertifyRequest
    done: trio.Event = field(default_factory=trio.Event)
    result: Certification | Exception | None = None


class Publisher:
    """The publisher/aggregator service; `run` serves it until cancelled."""

    def __init__(
        self,
        registry: BlobRegistry,
        settings: PublisherSettings,
        *,
        encoder: EncodePool | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self._coder = ShareCoder(registry.params().n_shards, encoding_type=settings.encoding_type)
        self._encoder = encoder
        self._client = HTTPClient()
        self._uploads = ShareUploads(self._client, timeout=settings.store_timeout)
        self._store_slots = trio.Semaphore(settings.max_concurrent_stores)
        self._waiting = 0
        self._metadata: OrderedDict[str, BlobMetadata] = OrderedDict()
        self._certifications: list[_PendingCertification] = []
        self._background: trio.Nursery | None = None
        """Where uploads to stragglers go on after their store answered (set by `run`)."""
        self._certify_wanted = trio.Event()

    @property
    def uploads(self) -> ShareUploads:
        """The uploads to storage nodes (for tests and statistics)."""
        return self._uploads

    async def run(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        limit = self.settings.max_body
        config = ServerConfig(
            max_body=limit,
            too_large=lambda _r: _error(
                413,
                "PAYLOAD_TOO_LARGE",
                f"the blob is larger than this publisher's limit of {limit} bytes",
            ),
            body_buffer=self._body_buffer,
        )
        try:
            async with trio.open_nursery() as nursery:
                self._background = nursery
                await nursery.start(self._uploads.run)
                nursery.start_soon(self._certifier)
                bound = await nursery.start(
                    lambda task_status: serve(
                        self.handle, host=host, port=port, config=config, task_status=task_status
                    )
                )
                task_status.started(bound)
        except BaseExceptionGroup as group:
            # One failure (say, the port is taken) reaches the caller as itself.
            raise unwrap_group(group) from None
        finally:
            with trio.CancelScope(shield=True):
                await self._client.aclose()

    def _body_buffer(self, request: Request, length: int) -> bytearray | memoryview | None:
        """Receive a blob straight into the encoder's shared memory (or one buffer)."""
        if request.method != "PUT" or request.path != "/v1/blobs":
            return None
        if self._encoder is not None:
            shared = self._encoder.allocate(length)
            if shared is not None:
                request.buffer_owner = shared
                request.body_progress = shared.received
                return shared.body
        # A pooled buffer is already faulted in; the shares are views of it until the store
        # is over, and the server gives it back.
        lease = POOL.get(length)
        request.buffer_owner = lease
        return lease.view

    async def handle(self, request: Request) -> Response:
        path = request.path
        method = request.method
        try:
            if path == "/status" and method in ("GET", "HEAD"):
                return Response(200, b"OK", content_type="text/plain; charset=utf-8")
            if path == "/v1/network" and method == "GET" and self.settings.network_info:
                return json_response(self.settings.network_info())
            if path == "/v1/blobs":
                if method == "PUT":
                    return await self._put_blob(request)
                return Response(405, headers=[("allow", "PUT")])
            if path.startswith("/v1/blobs/") and method in ("GET", "HEAD"):
                parts = path[len("/v1/blobs/") :].split("/")
                if len(parts) == 2 and parts[0] == "by-object-id":
                    return await self._get_by_object_id(request, parts[1])
                if len(parts) == 2 and parts[1] == "byte-range":
                    return await self._get_byte_range(request, parts[0])
                if len(parts) == 1:
                    return await self._get_blob(request, parts[0])
            return Response(404)
        except _BadRequest as bad:
            return bad.response

    # -- storing

    def _store_options(self, query: dict[str, list[str]]) -> _StoreOptions:
        unknown = sorted(set(query) - _PUT_PARAMS)
        if unknown:
            raise _BadRequest(
                _error(400, "MALFORMED_REQUEST", f"unknown query parameter {unknown[0]!r}")
            )
        params = self.registry.params()
        epochs_text = query.get("epochs", ["1"])[-1]
        if not epochs_text.isdigit() or int(epochs_text) < 1:
            raise _BadRequest(
                _error(
                    400,
                    "MALFORMED_REQUEST",
                    f"epochs must be a positive integer, not {epochs_text!r}",
                )
            )
        epochs = int(epochs_text)
        if epochs > params.max_epochs_ahead:
            raise _BadRequest(
                _error(
                    400,
                    "MALFORMED_REQUEST",
                    f"blobs can be stored for at most {params.max_epochs_ahead} epochs ahead",
                )
            )
        permanent = _bool_param(query, "permanent")
        deletable = _bool_param(query, "deletable")
        if permanent and deletable:
            raise _BadRequest(
                _error(
                    400,
                    "INVALID_BLOB_PERSISTENCE",
                    "the blob cannot be both deletable and permanent",
                )
            )
        force = bool(_bool_param(query, "force"))
        _bool_param(query, "reuse_resources")
        share = _bool_param(query, "share")
        send_to = query.get("send_object_to")
        if share and send_to:
            raise _BadRequest(
                _error(400, "MALFORMED_REQUEST", "send_object_to and share are exclusive")
            )
        if share:
            raise _BadRequest(
                _error(400, "MALFORMED_REQUEST", "the devnet does not create shared blobs")
            )
        encoding = query.get("encoding_type")
        if encoding and encoding[-1].upper() != ENCODING_NAMES[ENCODING_ZFEC]:
            raise _BadRequest(
                _error(
                    400,
                    "MALFORMED_REQUEST",
                    f"the devnet encodes with {ENCODING_NAMES[ENCODING_ZFEC]}, not {encoding[-1]}",
                )
            )
        owner = self.settings.address
        if send_to:
            try:
                owner = normalize_address(send_to[-1])
            except ValueError as exc:
                raise _BadRequest(_error(400, "MALFORMED_REQUEST", str(exc))) from None
        return _StoreOptions(epochs, not permanent, owner, force, bool(send_to))

    async def _put_blob(self, request: Request) -> Response:
        options = self._store_options(request.query)
        if self._store_slots.value == 0 and self._waiting >= self.settings.max_queued_stores:
            return _error(429, "TOO_MANY_REQUESTS", "the publisher is busy; retry later")
        self._waiting += 1
        try:
            await self._store_slots.acquire()
        finally:
            self._waiting -= 1
        # The body's buffer is given back here, not by the server: uploads to stragglers may
        # still read it after the answer.
        owner, request.buffer_owner = request.buffer_owner, None
        shared = owner if isinstance(owner, SharedBlob) else None
        uploads: list[trio.Event] = []
        try:
            return await self._store(request.payload(), shared, options, uploads)
        finally:
            self._store_slots.release()
            if uploads and not uploads[0].is_set():
                assert self._background is not None
                self._background.start_soon(self._release_after, uploads[0], owner)
            else:
                self._release_body(owner)

    def _release_body(self, owner: object) -> None:
        if isinstance(owner, SharedBlob):
            if self._encoder is not None:
                self._encoder.release(owner)
        elif isinstance(owner, Lease):
            owner.release()

    async def _release_after(self, uploads: trio.Event, owner: object) -> None:
        with trio.CancelScope(shield=True):
            await uploads.wait()  # short: stragglers get `straggler_grace` at most
        self._release_body(owner)

    async def encode(self, data: Buffer, shared: SharedBlob | None = None) -> EncodedBlob:
        if self._encoder is not None:
            return await self._encoder.encode(data, shared)
        return await batch_thread().run_sync(partial(self._coder.encode, data))

    async def _store(
        self,
        data: Buffer,
        shared: SharedBlob | None,
        options: _StoreOptions,
        uploads: list[trio.Event],
    ) -> Response:
        registry = self.registry
        params = registry.params()
        encoded = await self.encode(data, shared)
        blob_id = encoded.blob_id
        blob_text = blob_id_to_text(blob_id)
        if blob_text in self.settings.blocklist:
            return _error(451, "FORBIDDEN_BLOB", "the blob is blocked by this publisher")
        epoch = registry.current_epoch()
        if not options.force:
            existing = self._already_certified(blob_text, epoch + options.epochs, options)
            if existing is not None:
                return existing
        cost = params.cost(len(data), options.epochs)
        balance = registry.balance(options.owner)
        if balance < cost:
            return self._insufficient(InsufficientFunds(options.owner, cost, balance))
        self._remember_metadata(blob_text, encoded.metadata)
        committee = registry.committee()
        confirmations, stored = await self._upload(committee, encoded, uploads)
        certification = None
        for _attempt in range(3):
            current = registry.current_epoch()
            valid = tuple(c for c in confirmations.values() if _epoch_of(c) == current)
            if len(valid) < params.quorum:
                if len(stored) < params.quorum:
                    break
                # The epoch changed while uploading: ask the nodes that stored to sign again.
                confirmations = await self._confirm_all(committee, blob_id, stored)
                continue
            request = CertifyRequest(
                blob_id=blob_text,
                size=len(data),
                encoding_type=encoded.metadata.encoding_type,
                epochs_ahead=options.epochs,
                deletable=options.deletable,
                owner=options.owner,
                epoch=current,
                confirmations=valid,
            )
            try:
                certification = await self._certify(request)
                break
            except StaleCertificate:
                confirmations = await self._confirm_all(committee, blob_id, stored)
            except InsufficientFunds as exc:
                return self._insufficient(exc)
            except InvalidCertificate as exc:
                # Too few good signatures among the first: stragglers may bring the ones
                # missing (perhaps they already have, while this certificate was checked).
                await uploads[0].wait()
                if sum(_epoch_of(c) == current for c in confirmations.values()) > len(valid):
                    continue
                # Too few good signatures (the registry skips bad ones): name their nodes.
                bad = [
                    index
                    for index, c in sorted(confirmations.items())
                    if not verify_confirmation(c, committee, _epoch_of(c), blob_id)
                ]
                log.warning(
                    "certificate for %s refused: %s (bad signatures from nodes %s)",
                    blob_text,
                    exc,
                    bad,
                )
                break
        if certification is None:
            return _error(
                504,
                "INSUFFICIENT_CONFIRMATIONS",
                "the service timed-out while waiting for confirmations, please try again "
                f"({len(stored)} of {params.n_shards} nodes stored the blob, "
                f"{params.quorum} needed)",
            )
        blob = certification.blob
        log.info(
            "stored %s (%d bytes) until epoch %d for %d FROST",
            blob_text,
            len(data),
            blob.end_epoch,
            certification.cost,
        )
        return json_response(
            {
                "newlyCreated": {
                    "blobObject": _blob_object_json(blob),
                    "resourceOperation": {
                        "registerFromScratch": {
                            "encodedLength": certification.encoded_length,
                            "epochsAhead": options.epochs,
                        }
                    },
                    "cost": certification.cost,
                }
            }
        )

    async def _certify(self, request: CertifyRequest) -> Certification:
        """Certify through `_certifier`, with the stores that want to at the same time."""
        pending = _PendingCertification(request)
        self._certifications.append(pending)
        self._certify_wanted.set()
        await pending.done.wait()
        result = pending.result
        if isinstance(result, Exception):
            raise result
        assert result is not None
        return result

    async def _certifier(self) -> None:
        """Certifies what stores ask for, all that waits at once: one ledger transaction
        (and one fsync) for the blobs of overlapping stores. In the ledger's own thread: a
        transaction waits for the disk, and the thread that encodes needs none."""
        while True:
            await self._certify_wanted.wait()
            self._certify_wanted = trio.Event()
            while self._certifications:
                batch = self._certifications[:CERTIFY_BATCH]
                del self._certifications[:CERTIFY_BATCH]
                requests = [p.request for p in batch]
                try:
                    results = await batch_thread("ledger").run_sync(
                        partial(self.registry.certify_blobs, requests)
                    )
                except Exception as exc:
                    results = [exc] * len(batch)
                for pending, result in zip(batch, results, strict=True):
                    pending.result = result
                    pending.done.set()

    def _insufficient(self, exc: InsufficientFunds) -> Response:
        message = f"{exc}; the owner pays in WAL (on the devnet, fund it from the faucet first)"
        return _error(400, "INSUFFICIENT_FUNDS", message, status="FAILED_PRECONDITION")

    def _already_certified(
        self, blob_text: str, wanted_end: int, options: _StoreOptions
    ) -> Response | None:
        """An alreadyCertified answer if a good-enough certified object exists.

        A permanent object lasting long enough satisfies any request (quoted by its event); a
        deletable one only satisfies a deletable request when it belongs to the publisher and
        nothing is to be sent elsewhere (quoted by its object id), as with the real publisher.
        """
        epoch = self.registry.current_epoch()
        best: BlobObject | None = None
        for blob in self.registry.blob_objects(blob_text):
            if not blob.is_live(epoch) or blob.end_epoch < wanted_end:
                continue
            if blob.deletable and not (
                options.deletable and not options.sent and blob.owner == self.settings.address
            ):
                continue
            if (
                best is None
                or (best.deletable and not blob.deletable)
                or (best.deletable == blob.deletable and blob.end_epoch > best.end_epoch)
            ):
                best = blob
        if best is None:
            return None
        body: dict[str, Any] = {"blobId": blob_text}
        if best.deletable:
            body["object"] = best.object_id
        else:
            event = best.certify_event
            assert event is not None
            body["event"] = {"txDigest": event.tx_digest, "eventSeq": str(event.event_seq)}
        body["endEpoch"] = best.end_epoch
        return json_response({"alreadyCertified": body})

    async def _upload(
        self, committee: Committee, encoded: EncodedBlob, finished: list[trio.Event]
    ) -> tuple[dict[int, StorageConfirmation], set[int]]:
        """Send metadata and shares to every node; return the confirmations and who stored
        as soon as a quorum confirmed, or once every node answered (a quorum that includes
        bad signatures is found out when certifying, which then waits for the stragglers).

        The nodes still storing then go on in the background, for `straggler_grace` seconds
        at most, so that they hold their shares without repairing them, as Walrus's client
        gives stragglers extra time; the store certifies meanwhile, its answer waiting for no
        straggler. The event appended to `finished` is set once no upload reads the blob's
        buffers any more."""
        params = self.registry.params()
        metadata = encoded.metadata.to_bytes()
        confirmations: dict[int, StorageConfirmation] = {}
        stored: set[int] = set()
        pending = params.n_shards
        progress = trio.Event()
        quorum = trio.Event()
        done = trio.Event()
        finished.append(done)

        async def one(index: int) -> None:
            nonlocal pending
            confirmation = None
            try:
                confirmation = await self._store_on_node(committee, encoded, metadata, index)
            except Exception:  # a bug: it must not end the publisher, which runs this task
                log.exception("upload to node %d failed", index)
            finally:
                pending -= 1
                progress.set()
            if confirmation is not None:
                stored.add(index)
                confirmations[index] = confirmation

        async def every_node() -> None:
            nonlocal progress
            try:
                async with trio.open_nursery() as nursery:
                    for index in range(params.n_shards):
                        nursery.start_soon(one, index)
                    deadline = math.inf
                    while pending:
                        if len(confirmations) >= params.quorum and deadline == math.inf:
                            deadline = trio.current_time() + self.settings.straggler_grace
                            quorum.set()
                        progress = trio.Event()
                        with trio.move_on_at(deadline):
                            await progress.wait()
                        if trio.current_time() >= deadline:
                            break
                    nursery.cancel_scope.cancel()
            finally:
                quorum.set()
                done.set()

        assert self._background is not None, "Publisher.run is not running"
        self._background.start_soon(every_node)
        await quorum.wait()
        return confirmations, stored  # stragglers' confirmations join them later

    async def _store_on_node(
        self, committee: Committee, encoded: EncodedBlob, metadata: bytes, index: int
    ) -> StorageConfirmation | None:
        """Metadata and share to node `index`, batched with other stores' shares for it
        (devnet.shareupload); its signed confirmation, or None if the node failed."""
        blob_id = encoded.blob_id
        answer = await self._uploads.upload(
            committee.member(index).url, blob_id, metadata, encoded.shares[index]
        )
        if answer is None:
            return None  # logged by the uploader
        status, body = answer.get("status"), answer.get("body")
        if status != 200:
            log.info(
                "node %d refused its share of %s: %s %.200s",
                index,
                blob_id_to_text(blob_id),
                status,
                body,
            )
            return None
        return self._parse_confirmation(committee, blob_id, index, body)

    async def _confirmation(
        self, committee: Committee, blob_id: bytes, index: int
    ) -> StorageConfirmation | None:
        base = committee.member(index).url
        url = f"{base}/v1/blobs/{blob_id_to_text(blob_id)}/confirmation/permanent"
        r = await self._client.request("GET", url, max_response=1 << 16)
        if r.status != 200:
            log.info("node %d gave no confirmation: %d", index, r.status)
            return None
        try:
            answer = json.loads(bytes(r.body))
        except ValueError:
            answer = None
        return self._parse_confirmation(committee, blob_id, index, answer)

    def _parse_confirmation(
        self, committee: Committee, blob_id: bytes, index: int, answer: Any
    ) -> StorageConfirmation | None:
        """The confirmation in a node's JSON answer, if well formed and claiming what it
        should; the signature is left to the certification (see the module docstring)."""
        try:
            signed = answer["success"]["data"]["signed"]
            confirmation = StorageConfirmation(
                index,
                base64.b64decode(signed["serializedMessage"]),
                base64.b64decode(signed["signature"]),
            )
            _, _, epoch, _ = parse_confirmation_message(confirmation.message)
        except (ValueError, KeyError, TypeError):
            log.warning("node %d sent a malformed confirmation", index)
            return None
        if not confirmation_claims(confirmation, committee, epoch, blob_id):
            log.warning("node %d sent an invalid confirmation", index)
            return None
        return confirmation  # its signature is checked when certifying

    async def _confirm_all(
        self, committee: Committee, blob_id: bytes, nodes: set[int]
    ) -> dict[int, StorageConfirmation]:
        out: dict[int, StorageConfirmation] = {}

        async def one(index: int) -> None:
            try:
                with trio.fail_after(self.settings.fetch.request_timeout):
                    confirmation = await self._confirmation(committee, blob_id, index)
            except (HTTPClientError, trio.TooSlowError):
                return
            if confirmation is not None:
                out[index] = confirmation

        async with trio.open_nursery() as nursery:
            for index in nodes:
                nursery.start_soon(one, index)
        return out

    # -- reading

    def _remember_metadata(self, blob_text: str, metadata: BlobMetadata) -> None:
        self._metadata[blob_text] = metadata
        self._metadata.move_to_end(blob_text)
        while len(self._metadata) > self.settings.metadata_cache:
            self._metadata.popitem(last=False)

    async def _blob_metadata(self, blob_text: str, blob_id: bytes) -> BlobMetadata | None:
        metadata = self._metadata.get(blob_text)
        if metadata is not None:
            self._metadata.move_to_end(blob_text)
            return metadata
        metadata = await fetch_metadata(
            self._client,
            self.registry.committee(),
            blob_id,
            self._coder.n,
            self.settings.fetch,
        )
        if metadata is not None:
            self._remember_metadata(blob_text, metadata)
        return metadata

    def _check_read_params(self, query: dict[str, list[str]]) -> None:
        unknown = sorted(set(query) - _READ_PARAMS)
        if unknown:
            raise _BadRequest(
                _error(400, "MALFORMED_REQUEST", f"unknown query parameter {unknown[0]!r}")
            )
        if _bool_param(query, "strict_consistency_check") and _bool_param(
            query, "skip_consistency_check"
        ):
            raise _BadRequest(
                _error(
                    400,
                    "INVALID_CONSISTENCY_CHECK",
                    "strict and skip consistency checks are exclusive",
                )
            )

    async def _resolve(self, blob_text: str) -> tuple[bytes, BlobMetadata]:
        """Check a blob id is readable; raises _BadRequest with the error answer if not."""
        try:
            blob_id = blob_id_from_text(blob_text)
        except ValueError as exc:
            raise _BadRequest(_error(400, "MALFORMED_REQUEST", str(exc))) from None
        if blob_text in self.settings.blocklist:
            raise _BadRequest(_error(451, "FORBIDDEN_BLOB", "the requested blob is blocked"))
        # Live while its storage lasts: a burned object's data stays until its end epoch, as
        # on Walrus, and storage nodes keep it as long (see BlobRegistry.blob_status).
        if not self.registry.blob_status(blob_text).is_live(self.registry.current_epoch()):
            raise _BadRequest(
                _error(
                    404,
                    "BLOB_NOT_FOUND",
                    "the requested blob ID does not exist on Walrus, ensure that it was "
                    "entered correctly",
                )
            )
        metadata = await self._blob_metadata(blob_text, blob_id)
        if metadata is None:
            raise _BadRequest(_unavailable())
        limit = self.settings.max_read_size
        if limit is not None and metadata.unencoded_length > limit:
            raise _BadRequest(
                _error(
                    403,
                    "BLOB_TOO_LARGE",
                    f"the blob size exceeds the maximum allowed size: {limit}",
                )
            )
        return blob_id, metadata

    async def _get_blob(self, request: Request, blob_text: str) -> Response:
        self._check_read_params(request.query)
        return await self._read_response(request, blob_text)

    async def _get_by_object_id(self, request: Request, object_text: str) -> Response:
        self._check_read_params(request.query)
        try:
            object_id = normalize_address(object_text)
        except ValueError as exc:
            return _error(400, "MALFORMED_REQUEST", str(exc))
        blob = self.registry.get_blob_object(object_id)
        if blob is None:
            return _error(404, "BLOB_NOT_FOUND", f"no Blob object {object_id}")
        return await self._read_response(request, blob.blob_id)

    async def _read_response(self, request: Request, blob_text: str) -> Response:
        range_header = request.header("range")
        if range_header is not None:
            start, end = self._parse_range(range_header)
        blob_id, metadata = await self._resolve(blob_text)
        size = metadata.unencoded_length
        headers = self._read_headers(request, blob_text)
        if range_header is None:
            pieces, release = await self._read_range(blob_id, metadata, 0, size)
            return Response(200, chunks=pieces, headers=headers, on_sent=release)
        if end >= size:
            return _error(
                416,
                "INVALID_BYTE_RANGE",
                f"invalid byte range parameters: range {start}-{end} is beyond the blob's "
                f"{size} bytes",
            )
        pieces, release = await self._read_range(blob_id, metadata, start, end + 1)
        headers.append(("content-range", f"bytes {start}-{end}/{size}"))
        return Response(206, chunks=pieces, headers=headers, on_sent=release)

    def _parse_range(self, header: str) -> tuple[int, int]:
        match = _RANGE.match(header)

        def bad(message: str) -> _BadRequest:
            return _BadRequest(
                _error(416, "INVALID_BYTE_RANGE", f"invalid byte range parameters: {message}")
            )

        if match is None:
            raise bad("invalid range header format (only one range bytes=start-end)")
        start_text, end_text = match.groups()
        if not start_text:
            raise bad("must provide start index")
        if not end_text:
            raise bad("must provide end index")
        start, end = int(start_text), int(end_text)
        if start > end:
            raise bad("start index must be less than end index")
        return start, end

    async def _get_byte_range(self, request: Request, blob_text: str) -> Response:
        query = request.query
        unknown = sorted(set(query) - {"start", "length"})
        if unknown:
            return _error(400, "MALFORMED_REQUEST", f"unknown query parameter {unknown[0]!r}")
        values = []
        for name in ("start", "length"):
            text = query.get(name, [""])[-1]
            if not text.isdigit():
                return _error(400, "MALFORMED_REQUEST", f"{name} must be a non-negative integer")
            values.append(int(text))
        start, length = values
        if length == 0:
            return _error(
                400,
                "INVALID_BYTE_RANGE",
                "invalid byte range parameters: length must be greater than 0",
            )
        blob_id, metadata = await self._resolve(blob_text)
        size = metadata.unencoded_length
        if start + length > size:
            return _error(
                400,
                "INVALID_BYTE_RANGE",
                f"invalid byte range parameters: {start}+{length} is beyond the blob's "
                f"{size} bytes",
            )
        pieces, release = await self._read_range(blob_id, metadata, start, start + length)
        headers = self._read_headers(request, f"{blob_text}-{start}-{length}")
        return Response(200, chunks=pieces, headers=headers, on_sent=release)

    def _read_headers(self, request: Request, etag: str) -> list[tuple[str, str]]:
        headers = [
            ("x-content-type-options", "nosniff"),
            ("cache-control", CACHE_CONTROL),
            ("etag", etag),
        ]
        accept = request.header("accept")
        content_type = request.header("content-type")
        if accept and "*" not in accept:
            headers.append(("content-type", accept))
        elif request.method == "GET" and content_type:
            headers.append(("content-type", content_type))
        return headers

    async def _read_range(
        self, blob_id: bytes, metadata: BlobMetadata, start: int, end: int
    ) -> tuple[list[Buffer], Callable[[], None]]:
        """Bytes [start, end) of the blob as pieces, and the function that frees them once
        sent; raises _BadRequest(503) if too few good shares are reachable."""
        if start >= end:
            return [], lambda: None
        coder = self._coder
        k = coder.k
        length = coder.share_length(metadata.unencoded_length)
        collector = ShareCollector(
            self._client, self.registry.committee(), blob_id, metadata, self.settings.fetch
        )
        try:
            first, last = start // length, (end - 1) // length
            wanted = list(range(first, last + 1))
            # The primary shares holding the range, unless one fails: then any k, decoded.
            order = wanted + [i for i in range(coder.n) if i not in wanted]
            if not await collector.collect(order, k, prefer=wanted):
                raise _BadRequest(_unavailable())
            if all(i in collector.shares for i in wanted):
                blocks: dict[int, Buffer] = dict(collector.shares)
            else:
                shares = dict(collector.shares)
                decoded = await trio.to_thread.run_sync(coder.decode, shares, length * k)
                blocks = dict(enumerate(decoded))
        except BaseException:
            collector.release()
            raise
        pieces: list[Buffer] = []
        for index in wanted:
            block = blocks[index]
            lo = max(start - index * length, 0)
            hi = min(end - index * length, length)
            pieces.append(block if (lo, hi) == (0, len(block)) else memoryview(block)[lo:hi])
        return pieces, collector.release


def _unavailable() -> Response:
    return _error(
        503,
        "BLOB_UNAVAILABLE",
        "the requested blob is currently not retrievable from Walrus; this may be transient "
        "— retry with backoff",
    )


def _epoch_of(confirmation: StorageConfirmation) -> int:
    return parse_confirmation_message(confirmation.message)[2]


def _blob_object_json(blob: BlobObject) -> dict[str, Any]:
    return {
        "id": blob.object_id,
        "registeredEpoch": blob.registered_epoch,
        "blobId": blob.blob_id,
        "size": blob.size,
        "encodingType": ENCODING_NAMES.get(blob.encoding_type, str(blob.encoding_type)),
        "certifiedEpoch": blob.certified_epoch,
        "storage": {
            "id": blob.storage.object_id,
            "startEpoch": blob.storage.start_epoch,
            "endEpoch": blob.storage.end_epoch,
            "storageSize": blob.storage.storage_size,
        },
        "deletable": blob.deletable,
    }


__all__: Sequence[str] = ["DEFAULT_PORT", "Publisher", "PublisherSettings"]

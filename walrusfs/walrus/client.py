"""walrusfs's Walrus client: the publisher/aggregator HTTP API, on trio over httpx.

It speaks `walrus daemon`'s HTTP API as documented (PUT /v1/blobs, GET /v1/blobs/{id} with
Range, GET /v1/blobs/by-object-id/{id}) and nothing devnet-specific, so the same code stores
on the embedded devnet, testnet and mainnet.

Robustness:
- several publishers and aggregators: an attempt that fails transiently moves on to the next
  URL; a URL that worked is tried first next time;
- retries on 429, 503, 504 and connection errors, with exponential backoff and full jitter
  (honouring Retry-After), every operation bounded by an overall deadline; when the deadline
  ends the retries, the error that caused them is raised (DeadlineExceeded only if no attempt
  was answered at all);
- every request has a timeout (httpx's connect/read/write/pool timeouts);
- anything else is a typed WalrusError (walrusfs.walrus.errors) carrying the server's reason;
- a read never holds more than the bytes asked for: bodies longer than announced, or than the
  range requested, are refused, and a server that ignores Range has the rest discarded as it
  streams by.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
import trio

from walrusfs.walrus.errors import (
    BlobBlocked,
    BlobNotFound,
    BlobTooLarge,
    BlobUnavailable,
    DeadlineExceeded,
    InsufficientConfirmations,
    InsufficientFunds,
    InvalidByteRange,
    InvalidRequest,
    MalformedRequest,
    ProtocolError,
    PublisherBusy,
    ServerError,
    ServersUnreachable,
    WalrusError,
    WalrusUnavailable,
)
from walrusfs.walrus.types import StoreResult, parse_store_result

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 503, 504})
_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
_OBJECT_ID = re.compile(r"^0[xX][0-9a-fA-F]{1,64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_ERROR_BODY_LIMIT = 64 * 1024


class _Retry(Exception):
    """A transient failure of one attempt; `error` is what to raise if retries run out."""

    def __init__(self, error: WalrusError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _error_from_response(status: int, body: bytes, url: str) -> WalrusError:
    """The typed error for a non-success answer, with the server's reason and message."""
    reason = None
    message = None
    try:
        parsed = json.loads(body)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            message = error.get("message")
            details = error.get("details") or []
            for detail in details:
                if isinstance(detail, dict) and detail.get("reason"):
                    reason = str(detail["reason"])
                    break
    except (ValueError, AttributeError):
        text = body.decode("utf-8", "replace").strip()
        message = text[:300] or None
    text = f"{status}" + (f" {reason}" if reason else "")
    summary = f"{message} ({text})" if message else f"HTTP {text}"
    kwargs: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "server_message": message,
        "url": url,
    }
    where = f"{url}: {summary}"
    if status == 404:
        return BlobNotFound(f"blob not found: {where}", **kwargs)
    if status == 429:
        return PublisherBusy(f"publisher busy: {where}", **kwargs)
    if status == 503:
        return BlobUnavailable(f"blob unavailable: {where}", **kwargs)
    if status == 504:
        if reason in (None, "INSUFFICIENT_CONFIRMATIONS"):
            return InsufficientConfirmations(f"too few storage confirmations: {where}", **kwargs)
        return WalrusUnavailable(f"gateway timeout: {where}", **kwargs)
    if status == 451:
        return BlobBlocked(f"blob blocked: {where}", **kwargs)
    if status == 413 or (status == 403 and reason in (None, "BLOB_TOO_LARGE")):
        return BlobTooLarge(f"blob too large: {where}", **kwargs)
    if status == 416 or reason == "INVALID_BYTE_RANGE":
        return InvalidByteRange(f"invalid byte range: {where}", **kwargs)
    if reason == "INSUFFICIENT_FUNDS":
        return InsufficientFunds(f"insufficient funds: {where}", **kwargs)
    if status == 400:
        return MalformedRequest(f"request refused: {where}", **kwargs)
    return ServerError(f"server error: {where}", **kwargs)


def _check_blob_id(blob_id: str) -> None:
    if not isinstance(blob_id, str) or not _BLOB_ID.match(blob_id):
        raise InvalidRequest(f"{blob_id!r} is not a Walrus blob id")


def _check_range(start: int, length: int | None) -> None:
    if start < 0 or (length is not None and length < 0):
        raise InvalidRequest("a byte range cannot start or extend below zero")
    if start > 0 and length is None:
        raise InvalidRequest("a range that does not start at 0 needs a length")


class WalrusClient:
    """Store and read blobs through Walrus publishers and aggregators.

    Use as `async with WalrusClient(publishers=[...], aggregators=[...]) as client:` or call
    `aclose()`. Safe to share between tasks of one trio run.
    """

    def __init__(
        self,
        *,
        publishers: Sequence[str] = (),
        aggregators: Sequence[str] = (),
        request_timeout: float = 60.0,
        deadline: float = 300.0,
        backoff: float = 0.25,
        max_backoff: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`request_timeout` bounds every network wait of one request (connect, each read
        and write); `deadline` bounds a whole operation, retries included; backoff before
        retry round r is uniform in [0, min(max_backoff, backoff * 2**r)]."""
        self._publishers = [u.rstrip("/") for u in publishers]
        self._aggregators = [u.rstrip("/") for u in aggregators]
        self.deadline = deadline
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(request_timeout),
            transport=transport,
            headers={"user-agent": "walrusfs"},
            follow_redirects=True,
        )

    async def __aenter__(self) -> WalrusClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- retries and failover

    async def _with_retries(
        self, urls: list[str], what: str, attempt: Callable[[str], Awaitable[T]]
    ) -> T:
        if not urls:
            raise InvalidRequest(f"no {what} URL configured")
        deadline = trio.current_time() + self.deadline
        last: WalrusError | None = None
        tried = 0
        round_ = 0
        order = list(urls)
        while True:
            url = order[tried % len(order)]
            try:
                with trio.fail_at(deadline):
                    result = await attempt(url)
            except _Retry as retry:
                last = retry.error
                log.debug("%s: %s (will retry)", url, retry.error)
                retry_after = retry.retry_after
            except trio.TooSlowError:
                if last is not None:
                    # Out of time while retrying: the error that made us retry, exactly as
                    # when the next back-off would pass the deadline.
                    raise last from None
                message = f"{what} request gave up after {self.deadline:g} s without an answer"
                raise DeadlineExceeded(message) from None
            else:
                if url != urls[0]:
                    # Remember what worked: try it first next time.
                    urls.remove(url)
                    urls.insert(0, url)
                return result
            tried += 1
            if tried % len(order) and retry_after is None:
                continue  # fail over to the next URL at once
            if tried % len(order) == 0:
                round_ += 1
            delay = random.uniform(0, min(self.max_backoff, self.backoff * 2**round_))
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_backoff))
            if trio.current_time() + delay >= deadline:
                assert last is not None
                raise last
            await trio.sleep(delay)

    @staticmethod
    def _transport_error(url: str, exc: httpx.TransportError) -> _Retry:
        kind = type(exc).__name__
        return _Retry(ServersUnreachable(f"{url}: {kind}: {exc or 'connection failed'}", url=url))

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        value = response.headers.get("retry-after")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None

    def _failure(self, response: httpx.Response, body: bytes, url: str) -> Exception:
        error = _error_from_response(response.status_code, body, url)
        if response.status_code in RETRY_STATUSES:
            return _Retry(error, self._retry_after(response))
        return error

    # -- store

    async def store(
        self,
        data: bytes,
        *,
        epochs: int = 1,
        permanent: bool = False,
        send_object_to: str | None = None,
        force: bool = False,
    ) -> StoreResult:
        """Store `data` for `epochs` epochs ahead of the current one.

        Blobs are deletable unless `permanent`. `send_object_to` receives the new Blob object
        (and, on walrusfs's devnet, pays for it); `force` stores a new object even if the blob
        is already certified long enough. Retried on 429/503/504 and connection errors; a
        retry after a lost answer normally yields `alreadyCertified`.
        """
        if not isinstance(epochs, int) or epochs < 1:
            raise InvalidRequest(f"epochs must be a positive integer, not {epochs!r}")
        params: dict[str, str] = {"epochs": str(epochs)}
        if permanent:
            params["permanent"] = "true"
        if send_object_to is not None:
            if not _OBJECT_ID.match(send_object_to):
                raise InvalidRequest(f"{send_object_to!r} is not a Sui address")
            params["send_object_to"] = send_object_to
        if force:
            params["force"] = "true"

        async def attempt(base: str) -> StoreResult:
            url = f"{base}/v1/blobs"
            try:
                response = await self._http.put(
                    url,
                    params=params,
                    content=_pieces(data),
                    headers={
                        "content-type": "application/octet-stream",
                        "content-length": str(len(data)),
                    },
                )
            except httpx.TransportError as exc:
                raise self._transport_error(url, exc) from None
            if response.status_code != 200:
                raise self._failure(response, response.content[:_ERROR_BODY_LIMIT], url)
            try:
                body = response.json()
            except ValueError:
                raise ProtocolError(f"{url}: the answer is not JSON", url=url) from None
            return parse_store_result(body)

        result = await self._with_retries(self._publishers, "publisher", attempt)
        log.debug("stored %s (%d bytes, new=%s)", result.blob_id, len(data), result.newly_created)
        return result

    # -- read

    async def read(
        self,
        blob_id: str,
        *,
        start: int = 0,
        length: int | None = None,
        retry_not_found: bool = False,
    ) -> bytes:
        """The blob, or `length` bytes of it from `start` (an HTTP Range request).

        `retry_not_found` treats 404 as transient (an aggregator may not know a blob for a
        moment after it was stored); otherwise 404 raises BlobNotFound at once. The pieces
        received and the bytes returned coexist for a moment; `read_into` avoids that.
        """
        _check_blob_id(blob_id)
        _check_range(start, length)
        return await self._read(f"/v1/blobs/{blob_id}", start, length, retry_not_found, None)

    async def read_into(
        self,
        blob_id: str,
        buffer: bytearray | memoryview,
        *,
        start: int = 0,
        retry_not_found: bool = False,
    ) -> int:
        """Fill `buffer` with the blob's bytes from `start` (a range of len(buffer) bytes);
        the memory used is the caller's buffer and one network chunk, nothing more."""
        _check_blob_id(blob_id)
        view = memoryview(buffer).cast("B")
        _check_range(start, len(view))
        await self._read(f"/v1/blobs/{blob_id}", start, len(view), retry_not_found, view)
        return len(view)

    async def read_by_object_id(
        self, object_id: str, *, start: int = 0, length: int | None = None
    ) -> bytes:
        """The blob of the Sui Blob object `object_id` (or a range of it)."""
        if not isinstance(object_id, str) or not _OBJECT_ID.match(object_id):
            raise InvalidRequest(f"{object_id!r} is not a Sui object id")
        _check_range(start, length)
        return await self._read(f"/v1/blobs/by-object-id/{object_id}", start, length, False, None)

    async def _read(
        self,
        path: str,
        start: int,
        length: int | None,
        retry_not_found: bool,
        sink: memoryview | None,
    ) -> bytes:
        if length == 0:
            return b""
        ranged = length is not None
        # identity: lengths must be the blob's, not those of a compressed body.
        headers = {"accept": "*/*", "accept-encoding": "identity"}
        if ranged:
            assert length is not None
            headers["range"] = f"bytes={start}-{start + length - 1}"

        async def attempt(base: str) -> bytes:
            url = f"{base}{path}"
            try:
                async with self._http.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    if status not in (200, 206):
                        body = await _read_limited(response, _ERROR_BODY_LIMIT)
                        failure = self._failure(response, body, url)
                        if retry_not_found and status == 404:
                            assert isinstance(failure, WalrusError)
                            raise _Retry(failure)
                        raise failure
                    return await self._receive(response, url, start, length, status, sink)
            except httpx.TransportError as exc:
                raise self._transport_error(url, exc) from None

        return await self._with_retries(self._aggregators, "aggregator", attempt)

    async def _receive(
        self,
        response: httpx.Response,
        url: str,
        start: int,
        length: int | None,
        status: int,
        sink: memoryview | None,
    ) -> bytes:
        """The body, checked against what was asked; never more than that is kept. With a
        `sink`, the body goes there and b"" is returned."""
        declared_text = response.headers.get("content-length")
        declared = int(declared_text) if declared_text and declared_text.isdigit() else None
        skip = 0
        if length is not None and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is None or (int(match[1]), int(match[2])) != (start, start + length - 1):
                raise ProtocolError(
                    f"{url}: Content-Range {response.headers.get('content-range')!r} does not "
                    f"match the range asked for",
                    url=url,
                )
            expected: int | None = length
        elif length is not None:
            # A server that ignored Range: keep only our slice of the stream.
            skip = start
            expected = length
        else:
            expected = declared
        if expected is not None and status == 206 and declared not in (None, expected):
            raise ProtocolError(f"{url}: Content-Length {declared} for {expected} bytes", url=url)
        chunks: list[bytes] = []
        kept = 0
        ignored_range = length is not None and status == 200
        async for chunk in response.aiter_raw():
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk = chunk[skip:]
                skip = 0
            if expected is not None and len(chunk) > expected - kept:
                if not ignored_range:
                    raise ProtocolError(f"{url}: the body is longer than announced", url=url)
                chunk = chunk[: expected - kept]
            if sink is not None:
                sink[kept : kept + len(chunk)] = chunk
            else:
                chunks.append(chunk)
            kept += len(chunk)
            if ignored_range and kept == expected:
                break  # the rest of a body that ignored Range is not ours
        if expected is not None and kept != expected:
            raise _Retry(
                ServersUnreachable(f"{url}: the body ended after {kept} of {expected} bytes")
            )
        if sink is not None:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _pieces(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """The body in moderate pieces: handed over whole, httpx's h11 would copy it in one go
    (a fresh allocation as large as the blob)."""
    if len(data) <= size:
        yield data  # one piece: h11 sends it as it is
        return
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk[: limit - size])
        size += len(chunks[-1])
        if size >= limit:
            break
    return b"".join(chunks)

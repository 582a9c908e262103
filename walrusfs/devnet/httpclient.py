"""A lean HTTP/1.1 client on trio and h11 for traffic inside the devnet.

The publisher talks to every storage node for every blob, and nodes talk to each other when
they repair; httpx's per-request overhead would dominate small blobs, so devnet-internal calls
use this client: keep-alive connections pooled per host, bodies sent from bytes or memoryviews
without joining them, responses read in large chunks and bounded. Timeouts are the caller's
cancel scopes; a connection interrupted mid-request is closed, never reused. (walrusfs's own
Walrus client uses httpx, like any client of a real network would.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

from walrusfs.devnet.buffers import POOL, Lease
from walrusfs.devnet.httpserver import HEAD_RECV_SIZE, send_pieces

log = logging.getLogger(__name__)

RECV_SIZE = 1 << 20
MAX_IDLE_PER_HOST = 8
FAST_BODY_MIN = 256 * 1024


class HTTPClientError(Exception):
    """The request could not be completed (connection refused, reset, protocol error)."""


class ResponseTooLarge(HTTPClientError):
    pass


@dataclass(frozen=True)
class ClientResponse:
    status: int
    headers: dict[str, str]
    body: bytes | memoryview
    """A view of `lease` when the body was large enough to be received straight into one."""
    lease: Lease | None = None
    """The pooled buffer holding a large body; the caller releases it when done."""

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()


class _Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.reusable = True

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


class HTTPClient:
    """Pooled keep-alive connections to a set of base URLs (http only)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await conn.aclose()

    async def request(
        self,
        method: str,
        url: str,
        body: Sequence[bytes | bytearray | memoryview] | bytes | bytearray | memoryview = b"",
        *,
        headers: Sequence[tuple[str, str]] = (),
        max_response: int = 1 << 40,
    ) -> ClientResponse:
        """Send one request; retries once on a fresh connection if a pooled one was stale."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise HTTPClientError(f"unsupported URL {url}")
        key = (parts.hostname, parts.port or 80)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        pieces: list[bytes | bytearray | memoryview] = (
            [body] if isinstance(body, bytes | bytearray | memoryview) else list(body)
        )
        for attempt in range(2):
            conn, reused = await self._connection(key)
            try:
                response = await self._exchange(
                    conn, method, target, key, pieces, headers, max_response
                )
            except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError) as exc:
                await conn.aclose()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection; try a fresh one
                raise HTTPClientError(f"{method} {url}: {exc or type(exc).__name__}") from exc
            except BaseException:
                await conn.aclose()
                raise
            self._release(key, conn)
            return response
        raise AssertionError("unreachable")

    async def _connection(self, key: tuple[str, int]) -> tuple[_Conn, bool]:
        idle = self._idle.get(key)
        if idle:
            return idle.pop(), True
        try:
            stream = await trio.open_tcp_stream(*key)
        except OSError as exc:
            raise HTTPClientError(f"cannot connect to {key[0]}:{key[1]}: {exc.strerror}") from exc
        return _Conn(stream), False

    def _release(self, key: tuple[str, int], conn: _Conn) -> None:
        c = conn.h11
        if not conn.reusable:
            return
        states = (c.our_state, c.their_state)
        if self._closed or states not in ((h11.DONE, h11.DONE), (h11.IDLE, h11.IDLE)):
            # Not reusable; let the socket go (closing a SocketStream needs no await).
            conn.stream.socket.close()
            return
        if states == (h11.DONE, h11.DONE):
            c.start_next_cycle()
        # else: a fresh state machine, put in place after a body received past h11.
        idle = self._idle.setdefault(key, [])
        if len(idle) < MAX_IDLE_PER_HOST:
            idle.append(conn)
        else:
            conn.stream.socket.close()

    async def _exchange(
        self,
        conn: _Conn,
        method: str,
        target: str,
        key: tuple[str, int],
        pieces: list[bytes | bytearray | memoryview],
        headers: Sequence[tuple[str, str]],
        max_response: int,
    ) -> ClientResponse:
        c = conn.h11
        length = sum(len(p) for p in pieces)
        request_headers = [
            ("host", f"{key[0]}:{key[1]}"),
            *headers,
            ("content-length", str(length)),
        ]
        out: list[bytes | bytearray | memoryview] = [
            c.send(h11.Request(method=method, target=target, headers=request_headers)) or b""
        ]
        for piece in pieces:
            if len(piece):
                out.extend(c.send_with_data_passthrough(h11.Data(data=piece)))  # type: ignore[arg-type]
        out.append(c.send(h11.EndOfMessage()) or b"")
        await send_pieces(conn.stream, out)

        status = 0
        response_headers: dict[str, str] = {}
        chunks: list[bytes] = []
        received = 0
        while True:
            event = c.next_event()
            if event is h11.NEED_DATA:
                # Small reads until the response head is in (see httpserver.HEAD_RECV_SIZE).
                data = await conn.stream.receive_some(HEAD_RECV_SIZE if not status else RECV_SIZE)
                c.receive_data(bytes(data) if isinstance(data, bytearray) else data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                response_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers
                }
                declared = int(response_headers.get("content-length", "0") or 0)
                if declared > max_response:
                    raise ResponseTooLarge(f"response of {declared} bytes refused")
                if declared >= FAST_BODY_MIN and method != "HEAD":
                    # Receive a large body straight into its final buffer, skipping h11.
                    lease = POOL.get(declared)
                    try:
                        await self._receive_into(conn, lease.view)
                    except BaseException:
                        lease.release()
                        raise
                    if response_headers.get("connection", "").lower() == "close":
                        conn.reusable = False
                        conn.stream.socket.close()
                    else:
                        conn.h11 = h11.Connection(h11.CLIENT)  # the old one never saw the body
                    return ClientResponse(status, response_headers, lease.view, lease)
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Data):
                received += len(event.data)
                if received > max_response:
                    raise ResponseTooLarge(f"response larger than {max_response} bytes refused")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise trio.BrokenResourceError("connection closed before the response ended")
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return ClientResponse(status, response_headers, body)

    async def _receive_into(self, conn: _Conn, view: memoryview) -> None:
        pending, _closed = conn.h11.trailing_data
        first = pending[: len(view)]
        view[: len(first)] = first
        got = len(first)
        while got < len(view):
            n = await conn.stream.socket.recv_into(view[got:], len(view) - got)
            if n == 0:
                raise trio.BrokenResourceError("connection closed inside a response body")
            got += n

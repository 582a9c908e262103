"""A small HTTP/1.1 server on trio and h11, shared by every devnet service.

Each devnet service (storage node, publisher/aggregator, Sui ledger) is an async handler
from Request to Response served by `serve`. Connections are kept alive, bodies are read whole
(the services work on whole blobs and shares anyway), and a body larger than the service's
limit is refused from its Content-Length before any of it is read.

A response body is either `body` or, to send large data without concatenating it first,
`chunks` (bytes or memoryviews, sent in order); a response goes out in as few sendmsg calls as
the socket allows.

A service that receives large bodies can set `ServerConfig.body_buffer`: for a body with a
Content-Length of at least `FAST_BODY_MIN` bytes it returns a writable buffer of exactly that
size (or None), and the body is received straight into it with recv_into, skipping h11's
buffer copies; the handler then finds it in `Request.buffer` (`Request.payload()` gives either).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import trio

from walrusfs.devnet.buffers import IOV_MAX, Lease

log = logging.getLogger(__name__)

RECV_SIZE = 1 << 20
HEAD_RECV_SIZE = 64 * 1024
"""Reads while waiting for a request's head are this small, so that little of a large body
arrives through h11 (which copies it several times, holding the GIL) before the body can be
received straight into its buffer."""
IDLE_TIMEOUT = 120.0


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    buffer: bytearray | memoryview | None = None
    """The body, when a `body_buffer` hook supplied the storage (then `body` is empty)."""
    buffer_owner: object | None = None
    """Anything the `body_buffer` hook wants to keep with the buffer. A pool `Lease` is
    released by the server once the handler has returned."""
    body_progress: Callable[[int], None] | None = None
    """Set by a `body_buffer` hook to hear how many bytes of the buffer are filled so far."""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def payload(self) -> bytes | bytearray | memoryview:
        return self.buffer if self.buffer is not None else self.body


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None
    chunks: Sequence[bytes | bytearray | memoryview] | None = None
    """If set, the body is these pieces in order and `body` is ignored."""
    on_sent: Callable[[], None] | None = None
    """Called once the response was sent or failed to be (to recycle its buffers)."""

    def pieces(self) -> Sequence[bytes | bytearray | memoryview]:
        return self.chunks if self.chunks is not None else (self.body,)

    def length(self) -> int:
        return sum(len(p) for p in self.pieces())


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ServerConfig:
    max_body: int = 10 * 1024 * 1024
    body_limit: Callable[[Request], int] | None = None
    """A request's body limit, if it depends on the request (else `max_body`)."""
    too_large: Callable[[Request], Response] = lambda _req: Response(413, b"body too large")
    server_name: str = "walrusfs-devnet"
    body_buffer: Callable[[Request, int], bytearray | memoryview | None] | None = None
    """Storage for a large body of the given length (see the module docstring)."""


FAST_BODY_MIN = 256 * 1024


def _parse_target(target: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(target)
    return unquote(parts.path), parse_qs(parts.query, keep_blank_values=True)


async def _send_response(
    stream: trio.abc.Stream, conn: h11.Connection, response: Response, head_only: bool = False
) -> None:
    try:
        await _send_response_inner(stream, conn, response, head_only)
    finally:
        if response.on_sent is not None:
            response.on_sent()


async def _send_response_inner(
    stream: trio.abc.Stream, conn: h11.Connection, response: Response, head_only: bool
) -> None:
    headers = [("server", "walrusfs-devnet"), *response.headers]
    if response.content_type is not None:
        headers.append(("content-type", response.content_type))
    pieces = [p for p in response.pieces() if len(p)]
    total = sum(len(p) for p in pieces)
    headers.append(("content-length", str(total)))
    out: list[bytes | bytearray | memoryview] = []
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    if data:
        out.append(data)
    if not head_only:
        for piece in pieces:
            # Passthrough keeps h11 from joining (copying) large bodies.
            out.extend(conn.send_with_data_passthrough(h11.Data(data=piece)))  # type: ignore[arg-type]
    data = conn.send(h11.EndOfMessage())
    if data:
        out.append(data)
    await send_pieces(stream, out)


async def send_pieces(
    stream: trio.abc.Stream, pieces: Sequence[bytes | bytearray | memoryview]
) -> None:
    """Send `pieces` in order, as one sendmsg call each time the socket has room (a request
    or response of many pieces once cost a trio send and a system call per piece)."""
    if not isinstance(stream, trio.SocketStream):
        for piece in pieces:
            await stream.send_all(piece)
        return
    views = [memoryview(p).cast("B") for p in pieces if len(p)]
    sock = stream.socket
    first = 0
    while first < len(views):
        try:
            sent = await sock.sendmsg(views[first : first + IOV_MAX])
        except OSError as exc:
            if sock.fileno() == -1:
                raise trio.ClosedResourceError("the socket was closed") from exc
            raise trio.BrokenResourceError(f"send failed: {exc.strerror}") from exc
        while sent:
            head = views[first]
            if sent >= len(head):
                sent -= len(head)
                first += 1
            else:
                views[first] = head[sent:]
                sent = 0


async def _next_event(stream: trio.abc.Stream, conn: h11.Connection) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        size = HEAD_RECV_SIZE if conn.their_state is h11.IDLE else RECV_SIZE
        with trio.move_on_after(IDLE_TIMEOUT) as scope:
            data = await stream.receive_some(size)
        if scope.cancelled_caught:
            return h11.ConnectionClosed()
        conn.receive_data(bytes(data) if isinstance(data, bytearray) else data)


async def _call(handler: Handler, request: Request) -> Response:
    try:
        return await handler(request)
    except Exception:
        log.exception("handler failed for %s %s", request.method, request.target)
        return Response(500, b"internal error")


async def _receive_into(
    stream: trio.SocketStream,
    conn: h11.Connection,
    view: memoryview,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Fill `view` with the request body; returns bytes that arrived after it."""
    pending, _closed = conn.trailing_data
    length = len(view)
    first = pending[:length]
    view[: len(first)] = first
    got = len(first)
    while got < length:
        with trio.move_on_after(IDLE_TIMEOUT) as scope:
            n = await stream.socket.recv_into(view[got:], length - got)
        if scope.cancelled_caught or n == 0:
            raise trio.BrokenResourceError("connection closed inside a request body")
        got += n
        if progress is not None:
            progress(got)
    return bytes(pending[length:])


async def _serve_connection(
    stream: trio.abc.Stream, handler: Handler, config: ServerConfig
) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    try:
        while True:
            event = await _next_event(stream, conn)
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            target = event.target.decode("latin-1")
            path, query = _parse_target(target)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            request = Request(event.method.decode("ascii"), target, path, query, headers, b"")
            length = int(headers.get("content-length", "0") or 0)
            limit = config.max_body if config.body_limit is None else config.body_limit(request)
            if length > limit:
                await _send_response(stream, conn, config.too_large(request))
                return  # the unread body makes the connection unusable
            buffer = None
            if (
                config.body_buffer is not None
                and length >= FAST_BODY_MIN
                and isinstance(stream, trio.SocketStream)
                and "chunked" not in headers.get("transfer-encoding", "").lower()
            ):
                buffer = config.body_buffer(request, length)
            if buffer is not None:
                assert isinstance(stream, trio.SocketStream)
                leftover = await _receive_into(
                    stream, conn, memoryview(buffer).cast("B"), request.body_progress
                )
                request.buffer = buffer
                try:
                    response = await _call(handler, request)
                finally:
                    if isinstance(request.buffer_owner, Lease):
                        request.buffer_owner.release()
                await _send_response(stream, conn, response, head_only=request.method == "HEAD")
                if conn.our_state is h11.MUST_CLOSE:
                    return
                # h11 never saw the body, so this cycle cannot end cleanly in it; the next
                # request starts on a fresh state machine with whatever followed the body.
                conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
                if leftover:
                    conn.receive_data(leftover)
                continue
            chunks: list[bytes] = []
            while True:
                event = await _next_event(stream, conn)
                if isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                    continue
                if isinstance(event, h11.EndOfMessage):
                    break
                return
            request.body = b"".join(chunks)
            if len(request.body) > limit:
                await _send_response(stream, conn, config.too_large(request))
                return
            response = await _call(handler, request)
            await _send_response(stream, conn, response, head_only=request.method == "HEAD")
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return
    except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    except h11.LocalProtocolError:
        return
    finally:
        with trio.move_on_after(1) as cleanup:
            cleanup.shield = True
            await stream.aclose()


async def serve(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: ServerConfig | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` until cancelled; reports the bound port through task_status."""
    config = config or ServerConfig()
    listeners: Sequence[trio.SocketListener] = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.debug("serving on %s:%d", host, bound)

    async def on_connection(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, handler, config)

    async with trio.open_nursery() as nursery:
        task_status.started(bound)
        await trio.serve_listeners(on_connection, list(listeners), handler_nursery=nursery)

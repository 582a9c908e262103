"""The devnet's own HTTP server and client (walrusfs.devnet.httpserver / httpclient)."""

from __future__ import annotations

import os
import random
import socket

import trio

from walrusfs.devnet.httpclient import FAST_BODY_MIN, HTTPClient
from walrusfs.devnet.httpserver import Request, Response, send_pieces, serve


async def test_connections_are_reused_after_small_and_large_bodies() -> None:
    """A body received straight into a pooled buffer (past h11) leaves the connection
    reusable, as a small one does: reading shares must not open a connection per share."""
    large = os.urandom(FAST_BODY_MIN + 12345)

    async def handler(request: Request) -> Response:
        return Response(200, large if request.path == "/large" else b"small")

    async with trio.open_nursery() as nursery:

        async def run_server(task_status: trio.TaskStatus[int]) -> None:
            await serve(handler, port=0, task_status=task_status)

        port = await nursery.start(run_server)
        client = HTTPClient()
        try:
            used = set()
            for path in ("/small", "/large", "/large", "/small", "/large"):
                response = await client.request("GET", f"http://127.0.0.1:{port}{path}")
                assert response.status == 200
                assert bytes(response.body) == (large if path == "/large" else b"small")
                response.release()
                (idle,) = client._idle.values()
                assert len(idle) == 1
                used.add(id(idle[0]))
            assert len(used) == 1  # one connection served every request
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()


async def test_many_pieces_arrive_whole_and_in_order() -> None:
    """send_pieces resumes after partial sends (a socket buffer far smaller than the data)
    and takes more pieces than one sendmsg can."""
    rng = random.Random(7)
    pieces: list[bytes | bytearray | memoryview] = []
    for i in range(3000):
        size = rng.choice([0, 1, 17, 4096, 65_536, 300_000]) if i % 50 else 1 << 20
        piece = os.urandom(size)
        pieces.append((memoryview(piece), bytearray(piece), piece)[i % 3])
    expected = b"".join(bytes(p) for p in pieces)
    a, b = trio.socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    received = bytearray()
    async with trio.SocketStream(a) as sender, trio.SocketStream(b) as receiver:

        async def receive() -> None:
            while len(received) < len(expected):
                data = await receiver.receive_some(1 << 16)
                assert data
                received.extend(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await send_pieces(sender, pieces)
    assert received == expected

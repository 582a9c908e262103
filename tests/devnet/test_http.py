"""The devnet's own HTTP server and client (walrusfs.devnet.httpserver / httpclient)."""

from __future__ import annotations

import os

import trio

from walrusfs.devnet.httpclient import FAST_BODY_MIN, HTTPClient
from walrusfs.devnet.httpserver import Request, Response, serve


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

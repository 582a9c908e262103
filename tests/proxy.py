"""A proxy in front of a real publisher/aggregator, for tests: it can flip bytes in chosen
blobs (a malicious aggregator) or answer 503 to everything (the network gone)."""

from __future__ import annotations

import threading

import httpx
import trio

from walrusfs.devnet.httpserver import Request, Response, ServerConfig, serve


class TamperingProxy:
    """`with TamperingProxy(upstream) as p:` serves on p.url; blob ids in `p.tamper` come back
    with one byte changed in every answer (whole blob or range)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tamper: set[str] = set()
        # While True the proxy answers every request 503, as an unreachable network would
        # look to a client that retries.
        self.down = False
        self.requests = 0
        self.url = ""
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None

    async def _handle(self, req: Request) -> Response:
        self.requests += 1
        if self.down:
            return Response(503, b'{"error": {"code": 503, "status": "UNAVAILABLE"}}')
        headers = {k: v for k, v in req.headers.items() if k in ("range", "content-type")}
        async with httpx.AsyncClient(timeout=60) as client:
            r = await client.request(req.method, self.upstream + req.target, headers=headers,
                                     content=req.body or None)  # fmt: skip
        body = r.content
        parts = req.path.split("/")
        if len(parts) > 3 and parts[3] in self.tamper and body and r.status_code < 300:
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
        keep = ("content-range", "etag", "cache-control", "content-type")
        return Response(r.status_code, body, [(k, v) for k, v in r.headers.items() if k in keep])

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            config = ServerConfig(max_body=1 << 30)
            port = await nursery.start(
                lambda task_status: serve(self._handle, config=config, task_status=task_status)
            )
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def __enter__(self) -> TamperingProxy:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None and self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)

"""The ledger's HTTP service on the shared devnet server: Sui GraphQL, a faucet, network info.

Routes:
- `POST /graphql` (also `/`): Sui GraphQL; every response carries `x-sui-rpc-version`, which
  pysui's client requires.
- `POST /v2/gas`: Sui's faucet API, `{"FixedAmountRequest": {"recipient": "0x…"}}` →
  `{"status": "Success", "coins_sent": [{"amount", "id", "transferTxDigest"}]}` with SUI;
  `POST /v2/wal` does the same with WAL (a devnet extension).
- `GET /v1/network`: the ids a client needs to talk to this devnet (package, System object, WAL
  type, chain identifier); inside a running devnet, also where its other services listen
  (walrusfs.devnet.info).

`serve_ledger` runs the service in a trio nursery; `LedgerThread` runs it in a thread with its
own trio loop (for tests and synchronous callers).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any

import trio

from ..httpserver import Request, Response, ServerConfig, serve
from .errors import LedgerError
from .gql import RPC_VERSION, GraphQLService
from .ledger import Ledger, LedgerConfig

log = logging.getLogger(__name__)

MAX_REQUEST = 1 << 20


def _json(status: int, body: Any, extra: list[tuple[str, str]] | None = None) -> Response:
    headers = [("x-sui-rpc-version", RPC_VERSION), *(extra or [])]
    return Response(status, json.dumps(body).encode(), headers, "application/json")


class LedgerHttp:
    """The request handler."""

    def __init__(
        self, ledger: Ledger, *, extra_info: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.ledger = ledger
        self.extra_info = extra_info
        """More fields for GET /v1/network (the devnet adds where its services listen)."""
        self.graphql = GraphQLService(ledger)
        self._limiter = trio.CapacityLimiter(4)
        # Fault injection: the next N requests that execute a transaction are answered with a
        # 502 after the transaction was applied, as when a connection drops mid-answer.
        self.drop_execute_answers = 0

    async def __call__(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path in ("/graphql", "/"):
            if request.method != "POST":
                return _json(405, {"errors": [{"message": "use POST"}]}, [("allow", "POST")])
            return await self._graphql(request)
        if path in ("/v2/gas", "/v2/wal") and request.method == "POST":
            return await self._faucet(request, "WAL" if path == "/v2/wal" else "SUI")
        if path == "/v1/network" and request.method == "GET":
            return _json(200, self.network_info())
        if path == "/health":
            return Response(200, b"OK", content_type="text/plain")
        return _json(404, {"error": f"no route {request.method} {request.path}"})

    def network_info(self) -> dict[str, Any]:
        cfg = self.ledger.config
        info = {
            "chainIdentifier": self.ledger.chain_identifier,
            "walrusPackageId": cfg.walrus_package_id,
            "walPackageId": cfg.wal_package_id,
            "systemObjectId": cfg.system_object_id,
            "walCoinType": self.ledger.wal_type,
        }
        if self.extra_info is not None:
            info.update(self.extra_info())
        return info

    async def _graphql(self, request: Request) -> Response:
        try:
            payload = json.loads(request.body or b"{}")
            query = payload["query"]
            if not isinstance(query, str):
                raise TypeError("query must be a string")
            variables = payload.get("variables") or None
            operation = payload.get("operationName") or None
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"data": None, "errors": [{"message": f"bad request: {exc}"}]})
        body = await trio.to_thread.run_sync(
            self.graphql.execute, query, variables, operation, limiter=self._limiter
        )
        if self.drop_execute_answers > 0 and "executeTransaction" in query:
            self.drop_execute_answers -= 1
            return Response(502, b"answer lost (devnet fault injection)")
        return _json(200, body)

    async def _faucet(self, request: Request, coin: str) -> Response:
        try:
            payload = json.loads(request.body or b"{}")
            recipient = payload["FixedAmountRequest"]["recipient"]
        except (ValueError, KeyError, TypeError):
            return _json(
                400,
                {
                    "status": {"Failure": {"internal": "expected FixedAmountRequest"}},
                    "coins_sent": None,
                },
            )

        def grant() -> Any:
            if coin == "SUI":
                return self.ledger.fund(recipient, wal=0)
            return self.ledger.fund(recipient, sui=0)

        try:
            result = await trio.to_thread.run_sync(grant, limiter=self._limiter)
        except LedgerError as exc:
            return _json(400, {"status": {"Failure": {"internal": str(exc)}}, "coins_sent": None})
        return _json(
            201,
            {
                "status": "Success",
                "coins_sent": [
                    {"amount": c.balance, "id": c.object_id, "transferTxDigest": result.tx_digest}
                    for c in result.coins
                ],
            },
        )


async def serve_ledger(
    ledger: Ledger,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ledger until cancelled; reports the bound port through task_status."""
    await serve_http(LedgerHttp(ledger), host=host, port=port, task_status=task_status)


async def serve_http(
    http: LedgerHttp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an existing handler (keeps a reference for fault injection)."""
    await serve(
        http,
        host=host,
        port=port,
        config=ServerConfig(max_body=MAX_REQUEST, server_name="walrusfs-devnet-ledger"),
        task_status=task_status,
    )


@dataclass(frozen=True)
class LedgerEndpoints:
    url: str  # http://127.0.0.1:PORT

    @property
    def graphql_url(self) -> str:
        return self.url + "/graphql"

    @property
    def faucet_url(self) -> str:
        """Sui's faucet API, paying SUI."""
        return self.url + "/v2/gas"

    @property
    def wal_faucet_url(self) -> str:
        """The same request paying WAL (a devnet extension)."""
        return self.url + "/v2/wal"


class LedgerThread:
    """A ledger and its HTTP service on a thread of their own (a context manager)."""

    def __init__(self, config: LedgerConfig, *, port: int = 0) -> None:
        self.config = config
        self._port = port
        self.ledger: Ledger | None = None
        self.http: LedgerHttp | None = None
        self.endpoints: LedgerEndpoints | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> LedgerThread:
        self.ledger = Ledger(self.config)
        self._thread = threading.Thread(target=self._run, name="devnet-ledger", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        async def main() -> None:
            assert self.ledger is not None
            with trio.CancelScope() as scope:
                self._cancel = scope
                self._token = trio.lowlevel.current_trio_token()
                self.http = LedgerHttp(self.ledger)
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(partial(serve_http, self.http, port=self._port))
                    self.endpoints = LedgerEndpoints(f"http://127.0.0.1:{port}")
                    self._ready.set()

        try:
            trio.run(main)
        except BaseException as exc:  # reported to start() or logged at stop()
            self._error = exc
            self._ready.set()

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._token is not None and self._cancel is not None:
            cancel = self._cancel
            try:
                trio.from_thread.run_sync(cancel.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(timeout=10)
        self._thread = None
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        if self._error is not None:
            log.error("devnet ledger thread failed", exc_info=self._error)

    def __enter__(self) -> LedgerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

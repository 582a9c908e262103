"""Where a running devnet listens, and how another process recognises one.

A running devnet answers `GET /v1/network` on both its publisher/aggregator port and its ledger
port with one JSON document (`DevnetInfo.to_json`), marked `"kind": "walrusfs-devnet"`. So a
process that finds something listening on 127.0.0.1:31415 (or 31416) can tell whether it is a
walrusfs devnet and, if so, where each service is:

    info = probe_devnet(31415)
    if info is None:
        ...  # nothing there, or something else: start a devnet in-process instead
    else:
        network("devnet", **info.chain_settings())  # walrusfs.chain, pointed at its ledger

This module imports only the standard library: probing starts nothing and loads no devnet code.
"""

from __future__ import annotations

import http.client
import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KIND = "walrusfs-devnet"
INFO_VERSION = 1


@dataclass(frozen=True)
class DevnetInfo:
    """Where a devnet listens and what a client needs to use it."""

    directory: Path
    """The devnet's state directory."""
    publisher_url: str
    """Walrus publisher API, e.g. http://127.0.0.1:31415."""
    aggregator_url: str
    """Walrus aggregator API (the same service as the publisher)."""
    node_urls: tuple[str, ...]
    """The storage nodes' APIs, node i holding shard i."""
    publisher_address: str
    """The Sui address that owns and pays for blobs stored without send_object_to."""
    n_shards: int
    k: int
    """Shares that rebuild a blob."""
    quorum: int
    """Confirmations that certify a blob."""
    ledger_url: str
    """The Sui ledger's HTTP service, e.g. http://127.0.0.1:31416."""
    graphql_url: str
    """Sui GraphQL (ledger_url + /graphql)."""
    faucet_url: str
    """Sui's faucet API paying SUI (ledger_url + /v2/gas)."""
    wal_faucet_url: str
    """The same request paying WAL (ledger_url + /v2/wal)."""
    chain_identifier: str
    walrus_package_id: str
    wal_package_id: str
    system_object_id: str
    wal_coin_type: str
    epoch_seconds: float
    pid: int
    """The process the devnet runs in."""

    def chain_settings(self) -> dict[str, str]:
        """Fields of walrusfs.chain's NetworkConfig that point a Sui client at this devnet:
        `network("devnet", **info.chain_settings())`."""
        return {
            "graphql_url": self.graphql_url,
            "faucet_url": self.faucet_url,
            "walrus_package_id": self.walrus_package_id,
            "system_object_id": self.system_object_id,
            "wal_coin_type": self.wal_coin_type,
        }

    def to_json(self) -> dict[str, Any]:
        """The body of GET /v1/network (camelCase, like the ledger's own fields)."""
        body: dict[str, Any] = {"kind": KIND, "infoVersion": INFO_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            body[_camel(f.name)] = value
        return body

    @classmethod
    def from_json(cls, body: Any) -> DevnetInfo | None:
        """The info in a GET /v1/network body, or None if it is not a walrusfs devnet's."""
        if not isinstance(body, dict) or body.get("kind") != KIND:
            return None
        try:
            values: dict[str, Any] = {}
            for f in fields(cls):
                value = body[_camel(f.name)]
                if f.name == "directory":
                    value = Path(value)
                elif f.name == "node_urls":
                    value = tuple(str(u) for u in value)
                elif f.name in ("n_shards", "k", "quorum", "pid"):
                    value = int(value)
                elif f.name == "epoch_seconds":
                    value = float(value)
                else:
                    value = str(value)
                values[f.name] = value
        except (KeyError, TypeError, ValueError):
            return None
        return cls(**values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes] | None:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read(1 << 20)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _split_url(url: str) -> tuple[str, int] | None:
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rstrip("/").rpartition(":")
    if scheme != "http" or not host or not port.isdigit():
        return None
    return host, int(port)


def probe_devnet(port: int, host: str = "127.0.0.1", *, timeout: float = 2.0) -> DevnetInfo | None:
    """The devnet listening on `host:port` (its publisher or its ledger port), or None if
    nothing answers there or what answers is not a running walrusfs devnet.

    Blocking, bounded by `timeout` per request; from trio call it through
    `trio.to_thread.run_sync`. A devnet whose publisher does not answer `GET /status` with OK
    is not considered running.
    """
    got = _get(host, port, "/v1/network", timeout)
    if got is None or got[0] != 200:
        return None
    try:
        info = DevnetInfo.from_json(json.loads(got[1]))
    except ValueError:
        return None
    if info is None:
        return None
    where = _split_url(info.publisher_url)
    if where is None:
        return None
    status = _get(*where, "/status", timeout)
    if status is None or status != (200, b"OK"):
        log.debug("%s:%d names a devnet whose publisher does not answer", host, port)
        return None
    return info

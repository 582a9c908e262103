"""The whole devnet in one trio nursery: the Sui ledger, n storage nodes, publisher/aggregator.

    async with trio.open_nursery() as nursery:
        devnet = await nursery.start(run_devnet, DevnetConfig(directory, port=0))
        print(devnet.info.publisher_url, devnet.info.graphql_url)
        devnet.fund(address, sui=10**9, wal=10**9)
        ...
        nursery.cancel_scope.cancel()

The ledger is the devnet's chain: the publisher certifies Blob objects on it, the aggregator and
the nodes read blob lifetimes and the epoch from it (through `LedgerRegistry`, the
devnet.registry seam), and its HTTP service (Sui GraphQL, faucet, network info) is served
alongside, so a Sui client such as walrusfs.chain sees, extends, deletes and burns those
objects, and the Walrus services honour what it did.

Layout of the devnet directory (created 0700 on first start):

    DIR/lock               flock held while a devnet runs on DIR (a second one is refused)
    DIR/devnet.json        node count, and the ledger whose publisher account was funded
    DIR/ledger.sqlite3     the Sui ledger (devnet.ledger): objects, transactions, epoch clock
    DIR/publisher.key      Ed25519 seed of the publisher's Sui address (0600)
    DIR/nodes/node-NN/     one directory per storage node (devnet.node)
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio
from nacl.signing import SigningKey

from walrusfs.devnet.blobid import ENCODING_ZFEC
from walrusfs.devnet.confirm import load_or_create_key
from walrusfs.devnet.durable import write_durably
from walrusfs.devnet.errors import DevnetConfigError, DevnetError, PortInUse
from walrusfs.devnet.info import DevnetInfo
from walrusfs.devnet.ledger import FaucetGrant, Ledger, LedgerError, LedgerHttp
from walrusfs.devnet.ledger.registry import LedgerRegistry
from walrusfs.devnet.ledger.service import LedgerEndpoints, serve_http
from walrusfs.devnet.node import NodeFaults, NodeSettings
from walrusfs.devnet.nodehost import LocalNodes, NodeHostProcess, NodeRunner, node_directory
from walrusfs.devnet.publisher import DEFAULT_PORT, Publisher, PublisherSettings
from walrusfs.devnet.registry import (
    FROST_PER_WAL,
    Committee,
    CommitteeMember,
    SystemParams,
)
from walrusfs.devnet.retrieval import FetchPolicy
from walrusfs.devnet.sharelog import SEGMENT_SIZE
from walrusfs.devnet.sharelog import scan as scan_shares

__all__ = [
    "DEFAULT_EPOCH_SECONDS",
    "DEFAULT_LEDGER_PORT",
    "DEFAULT_PORT",
    "Devnet",
    "DevnetConfig",
    "DevnetInfo",
    "run_devnet",
]

log = logging.getLogger(__name__)

DEFAULT_EPOCH_SECONDS = 86400.0  # one day, like testnet
DEFAULT_LEDGER_PORT = DEFAULT_PORT + 1  # 31416, where walrusfs.chain's devnet network looks
MIST_PER_SUI = 10**9


@dataclass(frozen=True)
class DevnetConfig:
    directory: Path
    nodes: int = 10
    epoch_seconds: float = DEFAULT_EPOCH_SECONDS
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """Publisher/aggregator port; 0 picks a free one. Nodes always pick free ports."""
    ledger_port: int | None = None
    """The Sui ledger's port (GraphQL, faucet, network info); None: `port` + 1, or a free one
    when `port` is 0."""
    max_body: int = 10 * 1024 * 1024
    """The publisher's body limit (413 above)."""
    max_read_size: int | None = None
    """The aggregator's read limit (403 BLOB_TOO_LARGE above); None for none."""
    storage_price: int = 100
    """FROST per MiB unit per epoch (testnet's order of magnitude)."""
    write_price: int = 2000
    """FROST per MiB unit, once per blob."""
    publisher_funds: int = 1_000_000 * FROST_PER_WAL
    """WAL credited to the publisher's own address when the devnet's ledger is created."""
    faucet_sui: int = 10 * MIST_PER_SUI
    """MIST one faucet request pays (HTTP, or `Devnet.fund` without amounts)."""
    faucet_wal: int = 10 * FROST_PER_WAL
    """FROST of WAL one faucet request pays."""
    max_concurrent_stores: int = 16
    max_queued_stores: int = 64
    straggler_grace: float = 0.5
    maintenance_interval: float = 2.0
    pending_grace: float = 600.0
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    blocklist: frozenset[str] = frozenset()
    encode_workers: int = 2
    """Processes that run zfec for large blobs (0: encode in a thread of this process)."""
    share_segment_size: int = SEGMENT_SIZE
    """A storage node starts a new segment of its share log past this size (devnet.sharelog)."""
    encoding_type: int = ENCODING_ZFEC
    """The encoding type of new blobs (devnet.encoding). ENCODING_ZFEC_BLAKE2B writes blobs as
    devnets before 2026-11-24 did: for tests that such blobs stay readable."""
    node_process: bool = True
    """Run the storage nodes in a process of their own (devnet.nodehost), so their work uses
    another core than the publisher's; False runs them in the devnet's own trio loop."""

    def effective_ledger_port(self) -> int:
        if self.ledger_port is not None:
            return self.ledger_port
        return 0 if self.port == 0 else self.port + 1


def sui_address(public_key: bytes) -> str:
    """The Sui address of an Ed25519 key: Blake2b-256 over the scheme flag 0x00 and the key."""
    return "0x" + hashlib.blake2b(b"\x00" + public_key, digest_size=32).hexdigest()


class _DirLock:
    def __init__(self, directory: Path) -> None:
        self._path = directory / "lock"
        self._fd = -1

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DevnetConfigError(
                    f"{self._path.parent} is in use by another devnet (pid {holder})"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _prepare_directory(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise DevnetConfigError(f"{directory} is not a directory")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DevnetConfigError(f"cannot create {directory}: {exc.strerror}") from None
    if not directory.is_dir():
        raise DevnetConfigError(f"{directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DevnetConfigError(f"{directory} is not writable")


class Devnet:
    """A running devnet. Made by `run_devnet`; its async methods run in the devnet's trio loop.

    `registry` (the chain state as the Walrus services see it) and `ledger` (the Sui ledger
    itself) are synchronous and thread-safe; from trio, call what writes (`fund`) through
    `trio.to_thread.run_sync`.
    """

    def __init__(
        self, config: DevnetConfig, registry: LedgerRegistry, publisher_key: SigningKey
    ) -> None:
        self.config = config
        self.registry = registry
        self.ledger: Ledger = registry.ledger
        self.ledger_http: LedgerHttp | None = None
        """The ledger's HTTP handler (tests inject faults through it)."""
        self.publisher_address = sui_address(bytes(publisher_key.verify_key))
        self.nodes: NodeRunner | None = None
        """Where the storage nodes run (a node-host process by default, see devnet.nodehost)."""
        self._node_ports: list[int] = []
        self._node_running: list[bool] = []
        self.publisher: Publisher | None = None
        self.info: DevnetInfo | None = None

    def _node_settings(self) -> NodeSettings:
        config = self.config
        k = self.registry.params().k
        return NodeSettings(
            maintenance_interval=config.maintenance_interval,
            pending_grace=config.pending_grace,
            fetch=config.fetch,
            max_share=-(-max(config.max_body, 1) // k) + 1024,
            segment_size=config.share_segment_size,
        )

    def node_directory(self, index: int) -> Path:
        return node_directory(self.config.directory, index)

    def share_location(self, index: int, blob_id: str) -> tuple[Path, int, int] | None:
        """Where node `index` keeps its share of `blob_id` on disk: (segment file, offset,
        length), or None if it holds none (for tests that inspect or damage shares)."""
        return scan_shares(self.node_directory(index) / "shares").get(blob_id)

    def node_share(self, index: int, blob_id: str) -> bytes | None:
        """The bytes of node `index`'s share of `blob_id` as on its disk, or None."""
        where = self.share_location(index, blob_id)
        if where is None:
            return None
        path, offset, length = where
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def node_running(self, index: int) -> bool:
        return self._node_running[index]

    def _runner(self) -> NodeRunner:
        if self.nodes is None:
            raise DevnetError("the devnet's storage nodes are not running")
        return self.nodes

    async def stop_node(self, index: int) -> None:
        """Stop node `index` (its server and maintenance); its files stay."""
        if not self._node_running[index]:
            return
        await self._runner().stop(index)
        self._node_running[index] = False
        log.info("node %d stopped", index)

    async def start_node(self, index: int) -> None:
        """Start node `index` again on its old port; it repairs what it missed."""
        if self._node_running[index]:
            return
        await self._runner().start(index, self._node_ports[index])
        self._node_running[index] = True
        log.info("node %d started again", index)

    async def set_faults(self, index: int, faults: NodeFaults) -> None:
        await self._runner().set_faults(index, faults)

    def fund(self, address: str, *, sui: int | None = None, wal: int | None = None) -> FaucetGrant:
        """The faucet: new coins of `sui` MIST and `wal` FROST for `address` (by default what one
        faucet request pays, DevnetConfig.faucet_sui / faucet_wal). A devnet address must be
        funded before it can pay for storage (send_object_to) or gas."""
        return self.ledger.fund(address, sui=sui, wal=wal)

    def network_info(self) -> dict[str, object]:
        """The body of GET /v1/network on the publisher and ledger ports."""
        assert self.info is not None
        return self.info.to_json()


async def _start_server(
    nursery: trio.Nursery,
    what: str,
    port: int,
    fn: Callable[..., Coroutine[Any, Any, None]],
    *args: object,
) -> int:
    try:
        bound: int = await nursery.start(fn, *args)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} is already in use ({what})") from None
        if exc.errno == errno.EACCES:
            raise PortInUse(f"no permission to listen on port {port} ({what})") from None
        raise
    return bound


def _check_ports(config: DevnetConfig) -> None:
    if config.port == 65535 and config.ledger_port is None:
        raise DevnetConfigError("port 65535 leaves no port + 1 for the ledger; choose its port")
    ledger_port = config.effective_ledger_port()
    for name, port in (("publisher", config.port), ("ledger", ledger_port)):
        if not 0 <= port <= 65535:
            raise DevnetConfigError(f"{port} is not a port number for the {name}")
    if config.port != 0 and ledger_port == config.port:
        raise DevnetConfigError(f"the publisher and the ledger cannot both use port {config.port}")


def _open_nodes(devnet: Devnet, params: SystemParams) -> AbstractAsyncContextManager[NodeRunner]:
    config = devnet.config
    settings = devnet._node_settings()
    if config.node_process:
        return NodeHostProcess.open(config.directory, params, settings, config.host)
    return LocalNodes.open(config.directory, devnet.registry, settings, config.host)


def _open_ledger(directory: Path, config: DevnetConfig, params: SystemParams) -> LedgerRegistry:
    if (directory / "registry.sqlite3").exists() and not (directory / "ledger.sqlite3").exists():
        raise DevnetConfigError(
            f"{directory} holds a devnet from before its Sui ledger; remove it or use another "
            "directory"
        )
    try:
        return LedgerRegistry.open(
            directory, params, faucet_sui=config.faucet_sui, faucet_wal=config.faucet_wal
        )
    except LedgerError as exc:
        raise DevnetConfigError(f"cannot open the ledger in {directory}: {exc}") from None


async def run_devnet(
    config: DevnetConfig,
    *,
    task_status: trio.TaskStatus[Devnet] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the devnet until cancelled; `nursery.start` returns the running `Devnet`.

    Raises DevnetConfigError (bad directory, another devnet on it, a node count that differs
    from the directory's) or PortInUse before anything listens.
    """
    directory = config.directory.resolve()
    config = replace(config, directory=directory)
    if config.nodes < 1:
        raise DevnetConfigError("a devnet needs at least one storage node")
    if config.epoch_seconds <= 0:
        raise DevnetConfigError("an epoch must last longer than 0 seconds")
    _check_ports(config)
    _prepare_directory(directory)
    lock = _DirLock(directory)
    lock.acquire()
    registry: LedgerRegistry | None = None
    encoder = None
    try:
        state_path = directory / "devnet.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        if state and state.get("nodes") != config.nodes:
            raise DevnetConfigError(
                f"{directory} holds a devnet of {state.get('nodes')} storage nodes, "
                f"not {config.nodes}"
            )
        params = SystemParams(
            n_shards=config.nodes,
            storage_price_per_unit=config.storage_price,
            write_price_per_unit=config.write_price,
            epoch_seconds=config.epoch_seconds,
        )
        registry = _open_ledger(directory, config, params)
        ledger = registry.ledger
        publisher_key = load_or_create_key(directory / "publisher.key")
        devnet = Devnet(config, registry, publisher_key)
        if state.get("funded") != ledger.chain_identifier:
            # Once per ledger: the publisher pays for blobs stored without send_object_to.
            ledger.fund(devnet.publisher_address, sui=0, wal=config.publisher_funds)
            state = {"nodes": config.nodes, "funded": ledger.chain_identifier}
            write_durably(state_path, [json.dumps(state).encode()])

        if config.encode_workers > 0:
            from walrusfs.devnet.workers import EncodePool

            encoder = EncodePool(
                config.nodes, config.encode_workers, encoding_type=config.encoding_type
            )

        async with (
            _open_nodes(devnet, params) as nodes,
            trio.open_nursery() as nursery,
        ):
            devnet.nodes = nodes
            n = config.nodes
            keys = []
            for index in range(n):
                port, public_key = await nodes.start(index, 0)
                devnet._node_ports.append(port)
                devnet._node_running.append(True)
                keys.append(public_key)
            members = tuple(
                CommitteeMember(i, keys[i], f"http://{config.host}:{devnet._node_ports[i]}")
                for i in range(n)
            )
            registry.set_committee(Committee(members))
            await nodes.committee_ready()
            publisher = Publisher(
                registry,
                PublisherSettings(
                    address=devnet.publisher_address,
                    max_body=config.max_body,
                    max_read_size=config.max_read_size,
                    max_concurrent_stores=config.max_concurrent_stores,
                    max_queued_stores=config.max_queued_stores,
                    straggler_grace=config.straggler_grace,
                    fetch=config.fetch,
                    blocklist=set(config.blocklist),
                    network_info=devnet.network_info,
                    encoding_type=config.encoding_type,
                ),
                encoder=encoder,
            )
            devnet.publisher = publisher
            port = await _start_server(
                nursery,
                "publisher",
                config.port,
                lambda task_status: publisher.run(
                    host=config.host, port=config.port, task_status=task_status
                ),
            )
            http = LedgerHttp(ledger, extra_info=devnet.network_info)
            devnet.ledger_http = http
            wanted = config.effective_ledger_port()
            ledger_port = await _start_server(
                nursery,
                "Sui ledger",
                wanted,
                lambda task_status: serve_http(
                    http, host=config.host, port=wanted, task_status=task_status
                ),
            )
            url = f"http://{config.host}:{port}"
            endpoints = LedgerEndpoints(f"http://{config.host}:{ledger_port}")
            ledger_config = ledger.config
            devnet.info = DevnetInfo(
                directory=directory,
                publisher_url=url,
                aggregator_url=url,
                node_urls=tuple(m.url for m in members),
                publisher_address=devnet.publisher_address,
                n_shards=n,
                k=params.k,
                quorum=params.quorum,
                ledger_url=endpoints.url,
                graphql_url=endpoints.graphql_url,
                faucet_url=endpoints.faucet_url,
                wal_faucet_url=endpoints.wal_faucet_url,
                chain_identifier=ledger.chain_identifier,
                walrus_package_id=ledger_config.walrus_package_id,
                wal_package_id=ledger_config.wal_package_id,
                system_object_id=ledger_config.system_object_id,
                wal_coin_type=ledger.wal_type,
                epoch_seconds=float(config.epoch_seconds),
                pid=os.getpid(),
            )
            log.debug(
                "devnet in %s: publisher and aggregator on %s, Sui GraphQL on %s, "
                "%d storage nodes, epoch %d",
                directory,
                url,
                endpoints.graphql_url,
                n,
                registry.current_epoch(),
            )
            task_status.started(devnet)
    finally:
        if encoder is not None:
            encoder.close()
        if registry is not None:
            registry.close()
        lock.release()

"""The whole devnet in one trio nursery: registry, n storage nodes, publisher/aggregator.

    async with trio.open_nursery() as nursery:
        devnet = await nursery.start(run_devnet, DevnetConfig(directory, port=0))
        print(devnet.info.publisher_url)
        ...
        nursery.cancel_scope.cancel()

Layout of the devnet directory (created 0700 on first start):

    DIR/lock               flock held while a devnet runs on DIR (a second one is refused)
    DIR/devnet.json        node count and whether the publisher was funded
    DIR/registry.sqlite3   the interim registry (devnet.sqlite_registry), i.e. chain state
    DIR/publisher.key      Ed25519 seed of the publisher's Sui address (0600)
    DIR/nodes/node-NN/     one directory per storage node (devnet.node)

The registry can be supplied by the embedder instead (the Sui ledger, once it implements
devnet.registry.BlobRegistry); the devnet then uses it and opens no SQLite file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio
from nacl.signing import SigningKey

from walrusfs.devnet.confirm import load_or_create_key
from walrusfs.devnet.durable import write_durably
from walrusfs.devnet.errors import DevnetConfigError, PortInUse
from walrusfs.devnet.node import NodeFaults, NodeSettings, StorageNode
from walrusfs.devnet.publisher import DEFAULT_PORT, Publisher, PublisherSettings
from walrusfs.devnet.registry import (
    FROST_PER_WAL,
    BlobRegistry,
    Committee,
    CommitteeMember,
    SystemParams,
)
from walrusfs.devnet.retrieval import FetchPolicy
from walrusfs.devnet.sqlite_registry import SqliteRegistry

log = logging.getLogger(__name__)

DEFAULT_EPOCH_SECONDS = 86400.0  # one day, like testnet


@dataclass(frozen=True)
class DevnetConfig:
    directory: Path
    nodes: int = 10
    epoch_seconds: float = DEFAULT_EPOCH_SECONDS
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """Publisher/aggregator port; 0 picks a free one. Nodes always pick free ports."""
    max_body: int = 10 * 1024 * 1024
    """The publisher's body limit (413 above)."""
    max_read_size: int | None = None
    """The aggregator's read limit (403 BLOB_TOO_LARGE above); None for none."""
    storage_price: int = 100
    """FROST per MiB unit per epoch (testnet's order of magnitude)."""
    write_price: int = 2000
    """FROST per MiB unit, once per blob."""
    publisher_funds: int = 1_000_000 * FROST_PER_WAL
    """WAL credited to the publisher's own address when the devnet is created."""
    max_concurrent_stores: int = 4
    max_queued_stores: int = 64
    straggler_grace: float = 0.5
    maintenance_interval: float = 2.0
    pending_grace: float = 600.0
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    blocklist: frozenset[str] = frozenset()
    encode_workers: int = 2
    """Processes that run zfec for large blobs (0: encode in a thread of this process)."""


@dataclass(frozen=True)
class DevnetInfo:
    """Where the devnet listens, for clients and the embedder."""

    directory: Path
    publisher_url: str
    aggregator_url: str
    node_urls: tuple[str, ...]
    publisher_address: str
    n_shards: int
    k: int
    quorum: int


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
    """A running devnet. Made by `run_devnet`; its methods run in the devnet's trio loop."""

    def __init__(
        self, config: DevnetConfig, registry: BlobRegistry, publisher_key: SigningKey
    ) -> None:
        self.config = config
        self.registry = registry
        self.publisher_address = sui_address(bytes(publisher_key.verify_key))
        self.nodes: list[StorageNode] = []
        self._node_ports: list[int] = []
        self._node_scopes: list[trio.CancelScope | None] = []
        self._node_done: list[trio.Event] = []
        self._nursery: trio.Nursery | None = None
        self._committee_ready = trio.Event()
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
        )

    def node_directory(self, index: int) -> Path:
        return self.config.directory / "nodes" / f"node-{index:02d}"

    def share_path(self, index: int, blob_id: str) -> Path:
        """Where node `index` keeps its share of `blob_id` (for fault-injection tests)."""
        return self.node_directory(index) / "blobs" / f"{blob_id}.share"

    def node_running(self, index: int) -> bool:
        return self._node_scopes[index] is not None

    async def _run_node(
        self, index: int, port: int, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        done = self._node_done[index]
        try:
            with trio.CancelScope() as scope:
                self._node_scopes[index] = scope
                node = StorageNode(
                    index, self.node_directory(index), self.registry, self._node_settings()
                )
                if index < len(self.nodes):
                    node.faults = self.nodes[index].faults
                    self.nodes[index] = node
                else:
                    self.nodes.append(node)
                await node.run(
                    host=self.config.host,
                    port=port,
                    committee_ready=self._committee_ready,
                    task_status=task_status,
                )
        finally:
            self._node_scopes[index] = None
            done.set()

    async def stop_node(self, index: int) -> None:
        """Stop node `index` (its server and maintenance); its files stay."""
        scope = self._node_scopes[index]
        if scope is None:
            return
        scope.cancel()
        await self._node_done[index].wait()
        log.info("node %d stopped", index)

    async def start_node(self, index: int) -> None:
        """Start node `index` again on its old port; it repairs what it missed."""
        if self._node_scopes[index] is not None:
            return
        assert self._nursery is not None
        self._node_done[index] = trio.Event()
        await self._nursery.start(self._run_node, index, self._node_ports[index])
        log.info("node %d started again", index)

    def set_faults(self, index: int, faults: NodeFaults) -> None:
        self.nodes[index].faults = faults

    def fund(self, address: str, amount: int) -> int:
        return self.registry.faucet(address, amount)


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


async def run_devnet(
    config: DevnetConfig,
    *,
    registry: BlobRegistry | None = None,
    task_status: trio.TaskStatus[Devnet] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the devnet until cancelled; `nursery.start` returns the running `Devnet`."""
    directory = config.directory.resolve()
    config = replace(config, directory=directory)
    if config.nodes < 1:
        raise DevnetConfigError("a devnet needs at least one storage node")
    if config.epoch_seconds <= 0:
        raise DevnetConfigError("an epoch must last longer than 0 seconds")
    _prepare_directory(directory)
    lock = _DirLock(directory)
    lock.acquire()
    owned_registry: SqliteRegistry | None = None
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
        if registry is None:
            owned_registry = SqliteRegistry(directory / "registry.sqlite3", params)
            registry = owned_registry
        publisher_key = load_or_create_key(directory / "publisher.key")
        devnet = Devnet(config, registry, publisher_key)
        if not state.get("funded"):
            registry.faucet(devnet.publisher_address, config.publisher_funds)
            state = {"nodes": config.nodes, "funded": True}
            write_durably(state_path, [json.dumps(state).encode()])

        if config.encode_workers > 0:
            from walrusfs.devnet.workers import EncodePool

            encoder = EncodePool(config.nodes, config.encode_workers)

        async with trio.open_nursery() as nursery:
            devnet._nursery = nursery
            n = config.nodes
            devnet._node_scopes = [None] * n
            devnet._node_done = [trio.Event() for _ in range(n)]
            for index in range(n):
                port = await _start_server(nursery, f"node {index}", 0, devnet._run_node, index, 0)
                devnet._node_ports.append(port)
            members = tuple(
                CommitteeMember(i, node.public_key, f"http://{config.host}:{devnet._node_ports[i]}")
                for i, node in enumerate(devnet.nodes)
            )
            registry.set_committee(Committee(members))
            devnet._committee_ready.set()
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
            url = f"http://{config.host}:{port}"
            devnet.info = DevnetInfo(
                directory=directory,
                publisher_url=url,
                aggregator_url=url,
                node_urls=tuple(m.url for m in members),
                publisher_address=devnet.publisher_address,
                n_shards=n,
                k=params.k,
                quorum=params.quorum,
            )
            log.debug(
                "devnet in %s: publisher and aggregator on %s, %d storage nodes, epoch %d",
                directory,
                url,
                n,
                registry.current_epoch(),
            )
            task_status.started(devnet)
    finally:
        if encoder is not None:
            encoder.close()
        if owned_registry is not None:
            owned_registry.close()
        lock.release()

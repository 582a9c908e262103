"""The devnet in a background thread with its own trio loop.

    with BackgroundDevnet(DevnetConfig(directory, port=0)) as devnet:
        url = devnet.info.publisher_url          # Walrus publisher and aggregator
        graphql = devnet.info.graphql_url        # its Sui ledger
        devnet.fund(address, sui=10**9, wal=10**9)
        devnet.stop_node(3)
        ...

Synchronous code (mount.walrusfs embedding the default network, tests sharing one devnet
across many test functions) uses this; every method may be called from any thread but the
devnet's own, and runs its work in the devnet's loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from walrusfs.devnet.errors import DevnetError, unwrap_group
from walrusfs.devnet.info import DevnetInfo
from walrusfs.devnet.ledger import FaucetGrant, Ledger
from walrusfs.devnet.ledger.registry import LedgerRegistry
from walrusfs.devnet.network import Devnet, DevnetConfig, run_devnet
from walrusfs.devnet.node import NodeFaults

log = logging.getLogger(__name__)

T = TypeVar("T")


class BackgroundDevnet:
    """A devnet running in a daemon thread; a context manager."""

    def __init__(self, config: DevnetConfig, *, start_timeout: float = 120.0) -> None:
        self.config = config
        self._start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._devnet: Devnet | None = None

    def __enter__(self) -> BackgroundDevnet:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="walrusfs-devnet", daemon=True)
        self._thread.start()
        if not self._started.wait(self._start_timeout):
            raise DevnetError(f"the devnet did not start within {self._start_timeout} seconds")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _main(self) -> None:
        try:
            trio.run(self._run)
        except BaseException as exc:
            self._error = unwrap_group(exc)
            if self._started.is_set():
                log.error("the background devnet failed", exc_info=self._error)
        finally:
            self._started.set()

    async def _run(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._devnet = await nursery.start(run_devnet, self.config)
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def stop(self) -> None:
        """Stop every service and wait for the thread; idempotent."""
        thread = self._thread
        if thread is None:
            return
        if thread.is_alive() and self._token is not None and self._stop is not None:
            # run_sync_soon works from any thread, even one running a trio loop of its own.
            try:
                self._token.run_sync_soon(self._stop.set)
            except trio.RunFinishedError:
                pass
        thread.join()
        self._thread = None

    # -- access

    @property
    def devnet(self) -> Devnet:
        if self._devnet is None:
            raise DevnetError("the devnet is not running")
        return self._devnet

    @property
    def info(self) -> DevnetInfo:
        info = self.devnet.info
        assert info is not None
        return info

    @property
    def registry(self) -> LedgerRegistry:
        """The chain state as the Walrus services see it; thread-safe, call it directly."""
        return self.devnet.registry

    @property
    def ledger(self) -> Ledger:
        """The devnet's Sui ledger; thread-safe, call it directly."""
        return self.devnet.ledger

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run an async function in the devnet's loop and return its result."""
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def stop_node(self, index: int) -> None:
        self.call(self.devnet.stop_node, index)

    def start_node(self, index: int) -> None:
        self.call(self.devnet.start_node, index)

    def set_faults(self, index: int, faults: NodeFaults) -> None:
        self.call(self.devnet.set_faults, index, faults)

    def share_location(self, index: int, blob_id: str) -> tuple[Path, int, int] | None:
        return self.devnet.share_location(index, blob_id)

    def node_share(self, index: int, blob_id: str) -> bytes | None:
        return self.devnet.node_share(index, blob_id)

    def node_directory(self, index: int) -> Path:
        return self.devnet.node_directory(index)

    def fund(self, address: str, *, sui: int | None = None, wal: int | None = None) -> FaucetGrant:
        """See Devnet.fund (runs in the calling thread; the ledger is thread-safe)."""
        return self.devnet.fund(address, sui=sui, wal=wal)

    def current_epoch(self) -> int:
        return self.devnet.registry.current_epoch()

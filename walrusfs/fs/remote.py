"""The network side of a filesystem: Walrus, Sui and the anchor, opened and closed together.

For the embedded devnet (the default network), a devnet already answering on its port is
used; otherwise one is started inside this process, on the same directory, so any mount of
a devnet filesystem finds its blobs where it left them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import trio

from walrusfs.errors import WalrusfsError
from walrusfs.fs.config import WALLET_DIR, Config, Network
from walrusfs.store.blobs import BlobStore, LeasePolicy

if TYPE_CHECKING:
    from walrusfs.manifest.anchor import AnchorOps

log = logging.getLogger(__name__)


OPERATION_DEADLINE = 20.0


class NetworkError(WalrusfsError):
    pass


@dataclass
class Remote:
    network: Network
    walrus: Any  # walrus.WalrusClient
    chain: Any  # chain.SuiChainClient
    blobs: BlobStore
    address: str

    def anchor_ops(self, anchor_id: str) -> AnchorOps:
        from walrusfs.manifest.anchor import AnchorOps

        return AnchorOps(self.chain, self.blobs, anchor_id)


async def answers(url: str, timeout: float = 2.0) -> bool:
    """True if a Walrus publisher or aggregator answers /status at `url`."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.get(url.rstrip("/") + "/status")
            return r.status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.asynccontextmanager
async def embedded_devnet(network: Network) -> AsyncIterator[None]:
    """Make sure the devnet of `network` runs: use one that answers, or start it here."""
    if network.embedded_devnet is None or await answers(network.publishers[0]):
        yield
        return
    from walrusfs.devnet import BackgroundDevnet, DevnetConfig

    port = urlsplit(network.publishers[0]).port or 31415
    log.info("starting the embedded devnet in %s on port %d", network.embedded_devnet, port)
    config = DevnetConfig(directory=Path(network.embedded_devnet), port=port)
    devnet = BackgroundDevnet(config)
    try:
        await trio.to_thread.run_sync(devnet.start)
    except Exception as exc:
        raise NetworkError(f"cannot start the embedded devnet: {exc}") from None
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(devnet.stop)


@contextlib.asynccontextmanager
async def connect(directory: str, config: Config) -> AsyncIterator[Remote]:
    """Open the filesystem's network (its config must have one) for the duration."""
    from walrusfs.chain import SuiChainClient
    from walrusfs.walrus import WalrusClient

    network = config.network
    if network is None:
        raise NetworkError("this filesystem has no network")
    async with embedded_devnet(network):
        # Each operation gives up after OPERATION_DEADLINE: the blob store retries stores
        # across longer outages itself (and says it is offline meanwhile); a read of remote
        # data fails with EIO rather than hang while the network is away.
        walrus = WalrusClient(
            publishers=network.publishers,
            aggregators=network.aggregators,
            deadline=OPERATION_DEADLINE,
        )
        try:
            try:
                chain = await SuiChainClient.open(network.chain(), Path(directory) / WALLET_DIR)
            except WalrusfsError as exc:
                raise NetworkError(
                    f"cannot reach the Sui network {network.name!r}: {exc}"
                ) from None
            try:
                address = config.address or chain.address
                blobs = BlobStore(walrus, address, LeasePolicy(config.lease_epochs))
                yield Remote(network, walrus, chain, blobs, address)
            finally:
                with trio.CancelScope(shield=True):
                    await chain.aclose()
        finally:
            with trio.CancelScope(shield=True):
                await walrus.aclose()

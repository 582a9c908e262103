"""A filesystem directory's configuration: which network, which anchor, which policies.

    DIR/walrusfs.json   this file (0600)
    DIR/key             the wrapped master key (0600; crypto/keyfile.py)
    DIR/wallet/         the Sui wallet pysui uses (0700; chain/wallet.py)

`network` is None for a filesystem that lives only in its directory (no Walrus, no Sui):
everything but the remote tier still works. Otherwise it names a Sui network from
chain/networks.toml with optional overrides, the Walrus publisher and aggregators, and
whether to start the embedded devnet when none answers.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from walrusfs.durable import write_durably
from walrusfs.errors import WalrusfsError

if TYPE_CHECKING:  # pysui is slow to import: only mounts with a network load it
    from walrusfs.chain import NetworkConfig

CONFIG_FILE = "walrusfs.json"
KEY_FILE = "key"
WALLET_DIR = "wallet"
FORMAT = 1

DEVNET_PORT = 31415


class ConfigError(WalrusfsError):
    pass


@dataclass(frozen=True)
class Network:
    name: str
    publishers: tuple[str, ...]
    aggregators: tuple[str, ...]
    # Overrides of the chain's settings from networks.toml (graphql_url, ids, faucet_url).
    chain_overrides: dict[str, str] = field(default_factory=dict)
    # Start the embedded devnet (in this directory) when nothing answers on the publisher.
    embedded_devnet: str | None = None

    def chain(self) -> NetworkConfig:
        from walrusfs.chain import network

        try:
            return network(self.name, None, **self.chain_overrides)
        except Exception as exc:
            raise ConfigError(f"network {self.name!r}: {exc}") from None

    @classmethod
    def devnet(cls, *, port: int = DEVNET_PORT, directory: str | None = None) -> Network:
        url = f"http://127.0.0.1:{port}"
        overrides: dict[str, str] = {}
        if port != DEVNET_PORT:
            overrides = {
                "graphql_url": f"http://127.0.0.1:{port + 1}/graphql",
                "faucet_url": f"http://127.0.0.1:{port + 1}/v2/gas",
            }
        return cls("devnet", (url,), (url,), overrides, directory)


@dataclass(frozen=True)
class Config:
    network: Network | None = None
    # The anchor: the superblock's Sui Blob object id, and the filesystem's Sui address.
    anchor: str | None = None
    address: str | None = None
    # Walrus epochs new blobs are paid for.
    lease_epochs: int = 53
    # Seconds between automatic commits of the manifest.
    commit_interval: float = 300.0
    cache_size: int = 16 << 30
    dirty_limit: int = 4 << 30
    pack_size: int = 8 << 20
    upload_delay: float = 5.0

    def to_json(self) -> str:
        body: dict[str, Any] = asdict(self)
        body["format"] = FORMAT
        if self.network is not None:
            body["network"]["publishers"] = list(self.network.publishers)
            body["network"]["aggregators"] = list(self.network.aggregators)
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            body = json.loads(text)
            if body.pop("format", None) != FORMAT:
                raise ConfigError("unknown configuration format")
            net = body.pop("network", None)
            if net is not None:
                net = Network(
                    name=net["name"],
                    publishers=tuple(net["publishers"]),
                    aggregators=tuple(net["aggregators"]),
                    chain_overrides=dict(net.get("chain_overrides") or {}),
                    embedded_devnet=net.get("embedded_devnet"),
                )
            return cls(network=net, **body)
        except ConfigError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"the configuration is damaged: {exc}") from None

    def with_changes(self, **changes: Any) -> Config:
        return replace(self, **changes)


def config_path(directory: str) -> str:
    return os.path.join(directory, CONFIG_FILE)


def load(directory: str) -> Config:
    path = config_path(directory)
    try:
        with open(path, encoding="utf-8") as f:
            return Config.from_json(f.read())
    except FileNotFoundError:
        return Config()  # a filesystem made before networks: local only
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save(directory: str, config: Config) -> None:
    """Write the configuration durably, 0600."""
    write_durably(config_path(directory), config.to_json().encode())

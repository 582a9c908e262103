"""Network settings of the Sui client, read from data (networks.toml), not written in code.

The packaged `networks.toml` names devnet, testnet and mainnet. A user file in the same format
may add networks or override fields of the packaged ones (e.g. the devnet's GraphQL URL when the
embedded ledger listens on another port).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ChainConfigError

_HEX = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
NETWORK_TYPES = ("local", "devnet", "testnet", "mainnet")


def long_address(text: str) -> str:
    """ "0x" + 64 lowercase hex digits."""
    if not _HEX.match(text):
        raise ChainConfigError(f"{text!r} is not a Sui address or object id")
    return "0x" + text[2:].lower().rjust(64, "0")


@dataclass(frozen=True)
class NetworkConfig:
    """Where a Sui network is and which Walrus deployment on it walrusfs uses."""

    name: str
    graphql_url: str
    walrus_package_id: str  # original id (the types' package)
    system_object_id: str
    wal_coin_type: str
    faucet_url: str | None = None
    network_type: str = "local"

    def __post_init__(self) -> None:
        object.__setattr__(self, "walrus_package_id", long_address(self.walrus_package_id))
        object.__setattr__(self, "system_object_id", long_address(self.system_object_id))
        pkg, sep, rest = self.wal_coin_type.partition("::")
        if not sep:
            raise ChainConfigError(f"{self.wal_coin_type!r} is not a Move type")
        object.__setattr__(self, "wal_coin_type", f"{long_address(pkg)}::{rest}")
        if self.network_type not in NETWORK_TYPES:
            raise ChainConfigError(f"network_type must be one of {', '.join(NETWORK_TYPES)}")

    @property
    def blob_type(self) -> str:
        return f"{self.walrus_package_id}::blob::Blob"

    @property
    def wal_coin_object_type(self) -> str:
        return f"0x2::coin::Coin<{self.wal_coin_type}>"

    def with_overrides(self, **changes: Any) -> NetworkConfig:
        return replace(self, **changes)


def _parse(doc: Mapping[str, Any], origin: str) -> dict[str, dict[str, Any]]:
    allowed = {f.name for f in fields(NetworkConfig)} - {"name"}
    out: dict[str, dict[str, Any]] = {}
    for name, table in doc.items():
        if not isinstance(table, Mapping):
            raise ChainConfigError(f"{origin}: [{name}] must be a table")
        unknown = set(table) - allowed
        if unknown:
            raise ChainConfigError(f"{origin}: [{name}] has unknown keys {sorted(unknown)}")
        out[name] = dict(table)
    return out


def load_networks(user_file: Path | None = None) -> dict[str, NetworkConfig]:
    """The packaged networks, with `user_file`'s tables added or merged over them."""
    text = resources.files("walrusfs.chain").joinpath("networks.toml").read_text("utf-8")
    tables = _parse(tomllib.loads(text), "networks.toml")
    if user_file is not None:
        try:
            user = tomllib.loads(user_file.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ChainConfigError(f"cannot read {user_file}: {exc}") from exc
        for name, table in _parse(user, str(user_file)).items():
            tables[name] = {**tables.get(name, {}), **table}
    try:
        return {name: NetworkConfig(name=name, **table) for name, table in tables.items()}
    except TypeError as exc:
        raise ChainConfigError(f"incomplete network configuration: {exc}") from exc


def network(name: str, user_file: Path | None = None, **overrides: Any) -> NetworkConfig:
    """One network by name, optionally with fields overridden (e.g. graphql_url)."""
    nets = load_networks(user_file)
    if name not in nets:
        raise ChainConfigError(f"unknown network {name!r}; known: {', '.join(sorted(nets))}")
    return nets[name].with_overrides(**overrides) if overrides else nets[name]

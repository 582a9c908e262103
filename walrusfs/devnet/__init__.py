"""The embedded local network: storage nodes, publisher/aggregator, and a Sui ledger. Imports nothing from the filesystem layers.

Library API (imported lazily, so `import walrusfs.devnet.registry` stays light):
- `run_devnet(config)`: run the devnet (ledger included) in a trio nursery;
  `await nursery.start(run_devnet, config)` returns a running `Devnet` whose `info` (a
  `DevnetInfo`) says where it listens and whose `fund(address, sui=, wal=)` is the faucet.
- `BackgroundDevnet(config)`: a context manager running the devnet in a thread with its own trio
  loop, for synchronous code and for tests that share one devnet.
- `probe_devnet(port)`: the `DevnetInfo` of a devnet already running on 127.0.0.1:port (its
  publisher or ledger port), or None; loads nothing but the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from walrusfs.devnet.background import BackgroundDevnet
    from walrusfs.devnet.info import DevnetInfo, probe_devnet
    from walrusfs.devnet.network import Devnet, DevnetConfig, run_devnet
    from walrusfs.devnet.node import NodeFaults

__all__ = [
    "BackgroundDevnet",
    "Devnet",
    "DevnetConfig",
    "DevnetInfo",
    "NodeFaults",
    "probe_devnet",
    "run_devnet",
]

_WHERE = {
    "BackgroundDevnet": "walrusfs.devnet.background",
    "Devnet": "walrusfs.devnet.network",
    "DevnetConfig": "walrusfs.devnet.network",
    "DevnetInfo": "walrusfs.devnet.info",
    "probe_devnet": "walrusfs.devnet.info",
    "run_devnet": "walrusfs.devnet.network",
    "NodeFaults": "walrusfs.devnet.node",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

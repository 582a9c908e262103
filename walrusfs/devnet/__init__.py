"""The embedded local network: storage nodes, publisher/aggregator, and a Sui ledger. Imports nothing from the filesystem layers.

Library API (imported lazily, so `import walrusfs.devnet.registry` stays light):
- `run_devnet(config)`: run the devnet in a trio nursery; `await nursery.start(run_devnet, config)`
  returns a running `Devnet` whose `info` says where it listens.
- `BackgroundDevnet(config)`: a context manager running the devnet in a thread with its own trio
  loop, for synchronous code and for tests that share one devnet.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from walrusfs.devnet.background import BackgroundDevnet
    from walrusfs.devnet.network import Devnet, DevnetConfig, DevnetInfo, run_devnet
    from walrusfs.devnet.node import NodeFaults

__all__ = ["BackgroundDevnet", "Devnet", "DevnetConfig", "DevnetInfo", "NodeFaults", "run_devnet"]

_WHERE = {
    "BackgroundDevnet": "walrusfs.devnet.background",
    "Devnet": "walrusfs.devnet.network",
    "DevnetConfig": "walrusfs.devnet.network",
    "DevnetInfo": "walrusfs.devnet.network",
    "run_devnet": "walrusfs.devnet.network",
    "NodeFaults": "walrusfs.devnet.node",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

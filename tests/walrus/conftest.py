"""Devnets for the Walrus client's tests, in background threads on 127.0.0.1.

Tests here are async (trio); they reach a background devnet's controls through
`trio.to_thread.run_sync`, since its methods block until the devnet's own loop ran them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.network import DevnetConfig
from walrusfs.devnet.retrieval import FetchPolicy


def _config(directory: Path, **overrides: object) -> DevnetConfig:
    settings: dict[str, object] = {
        "port": 0,
        "epoch_seconds": 3600.0,
        "maintenance_interval": 0.2,
        "fetch": FetchPolicy(request_timeout=5.0, hedge_after=0.3),
    }
    settings.update(overrides)
    return DevnetConfig(directory=directory, **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundDevnet]:
    """Shared by the module's tests: leave its nodes running and honest."""
    with BackgroundDevnet(_config(tmp_path_factory.mktemp("walrus-devnet"))) as running:
        yield running


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundDevnet]:
    """A devnet whose nodes tests stop and restart (each test restores them)."""
    with BackgroundDevnet(_config(tmp_path_factory.mktemp("walrus-faulty"), nodes=10)) as running:
        yield running


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundDevnet]:
    """One store at a time and no queue: a second concurrent store gets 429."""
    config = _config(
        tmp_path_factory.mktemp("walrus-busy"),
        nodes=4,
        max_concurrent_stores=1,
        max_queued_stores=0,
    )
    with BackgroundDevnet(config) as running:
        yield running


@pytest.fixture
def dead_url() -> str:
    """A URL on which nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"

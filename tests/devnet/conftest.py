"""Devnets for the devnet's tests, each in a background thread on 127.0.0.1 with free ports.

`devnet` is shared by the whole session (tests must leave its nodes running and honest);
modules that stop nodes or need special limits start their own with `start_devnet`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from devnet.devnet_helpers import make_config

from walrusfs.devnet.background import BackgroundDevnet


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundDevnet]:
    directory = tmp_path_factory.mktemp("devnet")
    with BackgroundDevnet(make_config(directory, max_body=128 << 20)) as running:
        yield running


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture
def url(devnet: BackgroundDevnet) -> str:
    return devnet.info.publisher_url

"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fsmount import FsUnderTest
from netfs import NetFs


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[FsUnderTest]:
    """A freshly made and mounted filesystem; unmounted (forcibly if need be) afterwards."""
    f = FsUnderTest(tmp_path)
    f.mkfs()
    f.mount()
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture
def fs_unmounted(tmp_path: Path) -> Iterator[FsUnderTest]:
    """A filesystem made but not mounted; whatever a test mounts is cleaned up."""
    f = FsUnderTest(tmp_path)
    f.mkfs()
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One devnet (storage nodes, publisher/aggregator, Sui ledger) for the whole session,
    in a thread of its own; tests reach it over HTTP like any client."""
    from walrusfs.devnet import BackgroundDevnet, DevnetConfig

    config = DevnetConfig(directory=tmp_path_factory.mktemp("devnet"), port=0)
    with BackgroundDevnet(config) as bg:
        yield bg.devnet


@pytest.fixture
def netfs(devnet, tmp_path: Path) -> Iterator[NetFs]:
    """A filesystem made on the session's devnet, mounted."""
    f = NetFs(tmp_path, devnet.info.publisher_url)
    f.mkfs()
    f.mount()
    try:
        yield f
    finally:
        f.cleanup()

"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fsmount import FsUnderTest


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

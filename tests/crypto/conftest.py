"""Fixtures of the crypto tests."""

from __future__ import annotations

import pytest
from crypto.crypto_helpers import cheap_params

from walrusfs.crypto import KdfParams


@pytest.fixture
def params() -> KdfParams:
    """Argon2id parameters at libsodium's minimum cost, with a fresh salt."""
    return cheap_params()

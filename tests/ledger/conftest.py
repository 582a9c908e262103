"""Fixtures for the devnet ledger's tests: a ledger on a settable clock, funded accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger.ledger_helpers import Account, FakeClock, new_ledger

from walrusfs.devnet.ledger import Ledger


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Iterator[Ledger]:
    led = new_ledger(tmp_path / "ledger", clock)
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def alice(ledger: Ledger) -> Account:
    account = Account.new()
    ledger.fund(account.address)
    return account


@pytest.fixture
def bob(ledger: Ledger) -> Account:
    account = Account.new()
    ledger.fund(account.address)
    return account

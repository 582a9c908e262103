"""Fixtures for the Sui client's tests: a devnet ledger served on 127.0.0.1 (one per test module,
on a settable clock) and funded wallets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ledger.ledger_helpers import FakeClock

from walrusfs.chain import NetworkConfig, generate_key, network, write_wallet
from walrusfs.devnet.ledger import Ledger, LedgerConfig, LedgerThread

EPOCH = 100.0
MIB = 1024 * 1024


@dataclass
class Devnet:
    thread: LedgerThread
    clock: FakeClock
    net: NetworkConfig

    @property
    def ledger(self) -> Ledger:
        assert self.thread.ledger is not None
        return self.thread.ledger

    def blob(
        self, owner: str, *, epochs: int = 3, deletable: bool = True, encoded: int = 5 * MIB
    ) -> str:
        return self.ledger.create_certified_blob(
            owner=owner,
            blob_id=os.urandom(32),
            size=4321,
            encoded_length=encoded,
            epochs=epochs,
            deletable=deletable,
            payer=FUNDER,
        ).blob.object_id


FUNDER = "0x" + "f0" * 32


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    clock = FakeClock()
    config = LedgerConfig(
        directory=tmp_path_factory.mktemp("ledger"), epoch_seconds=EPOCH, clock=clock
    )
    with LedgerThread(config) as thread:
        assert thread.endpoints is not None and thread.ledger is not None
        thread.ledger.fund(FUNDER, sui=0, wal=10**15)
        net = network(
            "devnet",
            graphql_url=thread.endpoints.graphql_url,
            faucet_url=thread.endpoints.faucet_url,
        )
        yield Devnet(thread, clock, net)


@dataclass
class Wallet:
    directory: Path
    address: str
    key: str


@pytest.fixture
def wallet(devnet: Devnet, tmp_path: Path) -> Wallet:
    key = generate_key()
    directory = tmp_path / "wallet"
    address = write_wallet(directory, devnet.net, key)
    devnet.ledger.fund(address)
    return Wallet(directory, address, key)

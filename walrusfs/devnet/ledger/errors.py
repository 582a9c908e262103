"""Errors of the devnet Sui ledger.

A `TransactionRejected` is what Sui calls a user input error: the transaction is refused before
execution, nothing is applied and no gas is charged. The GraphQL endpoint reports it as a GraphQL
error whose message follows Sui's wording where walrusfs's Sui client parses it (stale objects).
A transaction that passes those checks but aborts while executing is not an error here: it is
committed with a failure status and charged gas, as on Sui.
"""

from __future__ import annotations

from walrusfs.errors import WalrusfsError


class LedgerError(WalrusfsError):
    """Any error of the devnet ledger."""


class BcsError(LedgerError):
    """Bytes that do not decode as the expected BCS value."""


class TransactionRejected(LedgerError):
    """A transaction refused before execution; nothing was applied."""


class InvalidTransaction(TransactionRejected):
    """Malformed or inconsistent transaction data."""


class InvalidSignature(TransactionRejected):
    """A missing signature, or one that does not verify against the signer."""


class ObjectNotFound(TransactionRejected):
    """An input object that does not exist (or no longer exists)."""


class StaleObjects(TransactionRejected):
    """Owned inputs referenced at a version or digest that is no longer current.

    `stale` holds (object id, version given, digest given, current version) per object.
    """

    def __init__(self, message: str, stale: list[tuple[str, int, str, int]]) -> None:
        super().__init__(message)
        self.stale = stale


class GasError(TransactionRejected):
    """Gas payment problems found before execution (price, budget, balance, coins)."""


class Unsupported(TransactionRejected):
    """A command, function or transaction kind the devnet ledger does not implement."""


class InsufficientFunds(LedgerError):
    """An account lacks the WAL a devnet operation would charge."""

    def __init__(self, address: str, needed: int, balance: int) -> None:
        super().__init__(
            f"account {address} holds {balance} FROST of WAL but the operation costs {needed}"
        )
        self.address = address
        self.needed = needed
        self.balance = balance


class UnknownObject(LedgerError):
    """A Python API lookup of an object that does not exist."""

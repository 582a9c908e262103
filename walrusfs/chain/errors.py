"""Errors of walrusfs's Sui client.

`AnchorConflict` is the one the manifest layer acts on: the anchor object moved since it was
read, so another writer advanced the head. Everything the chain refused or aborted maps to a
`TransactionFailed` subclass carrying what Sui reported; network trouble is `ChainUnavailable`.
"""

from __future__ import annotations

from walrusfs.errors import WalrusfsError


class ChainError(WalrusfsError):
    """Any error of the Sui client."""


class ChainConfigError(ChainError):
    """A network configuration or wallet that cannot be used."""


class ChainUnavailable(ChainError):
    """The Sui GraphQL endpoint could not be reached or answered garbage."""


class ObjectMissing(ChainError):
    """An object walrusfs expected on chain does not exist (or is not a Walrus Blob)."""


class AnchorConflict(ChainError):
    """The anchor's Blob object is no longer at the version read: someone else moved it first."""

    def __init__(self, object_id: str, version: int, current: int | None = None) -> None:
        now = f", now at version {current}" if current is not None else ""
        super().__init__(f"anchor {object_id} moved since version {version} was read{now}")
        self.object_id = object_id
        self.version = version
        self.current = current


class TransactionRejected(ChainError):
    """The chain refused the transaction before executing it (nothing happened, no gas)."""


class StaleObjects(TransactionRejected):
    """Inputs (typically gas coins) were referenced at an old version; retrying may succeed."""

    def __init__(self, message: str, object_ids: frozenset[str]) -> None:
        super().__init__(message)
        self.object_ids = object_ids


class TransactionFailed(ChainError):
    """The transaction executed but aborted; gas was charged and nothing else changed.

    `simulated` is True when the failure was found by simulating before paying anything.
    """

    def __init__(
        self,
        message: str,
        *,
        digest: str | None = None,
        module: str | None = None,
        function: str | None = None,
        abort_code: int | None = None,
        simulated: bool = False,
    ) -> None:
        super().__init__(message)
        self.digest = digest
        self.module = module
        self.function = function
        self.abort_code = abort_code
        self.simulated = simulated


class InsufficientWal(TransactionFailed):
    """The WAL coin could not pay for the operation."""


class InsufficientGas(ChainError):
    """The address holds too little SUI to pay for gas."""


class BlobExpired(TransactionFailed):
    """The blob's end epoch has passed; it can no longer be extended or deleted."""


class BlobNotCertified(TransactionFailed):
    """The blob was registered but never certified."""


class BlobNotDeletable(TransactionFailed):
    """The blob was stored permanently and cannot be deleted."""


class EpochsOutOfRange(TransactionFailed):
    """The extension would end more than the maximum number of epochs ahead (or is zero)."""


class MissingMetadata(TransactionFailed):
    """The blob has no metadata, or no pair with the key asked to remove."""

"""Errors of the embedded devnet.

Everything the devnet raises to its embedder is a DevnetError; the registry's refusals (a
certificate without quorum, an account that cannot pay, an epoch count out of range) are
RegistryErrors so the publisher can translate each into its HTTP answer.
"""

from __future__ import annotations

from walrusfs.errors import WalrusfsError


class DevnetError(WalrusfsError):
    """Something about the devnet itself went wrong."""


class DevnetConfigError(DevnetError):
    """The devnet cannot start with this configuration (bad directory, mismatched node count)."""


class PortInUse(DevnetError):
    """A port the devnet should listen on is taken."""


class RegistryError(DevnetError):
    """The registry refused an operation."""


class InsufficientFunds(RegistryError):
    """The paying account holds less than the operation costs."""

    def __init__(self, address: str, needed: int, balance: int) -> None:
        super().__init__(
            f"account {address} holds {balance} FROST but the operation costs {needed} FROST"
        )
        self.address = address
        self.needed = needed
        self.balance = balance


class InvalidCertificate(RegistryError):
    """The storage confirmations do not add up to a quorum of valid signatures."""


class StaleCertificate(InvalidCertificate):
    """The confirmations were signed in an epoch that is no longer the current one."""


class EpochsOutOfRange(RegistryError):
    """The number of epochs asked for is zero or beyond the maximum ahead."""


class InvalidMetadata(DevnetError):
    """Blob metadata does not parse or does not hash to its blob id."""


def unwrap_group(exc: BaseException) -> BaseException:
    """The single exception inside (nested) one-member exception groups, or `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc

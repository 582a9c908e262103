"""Errors of the key-management and cryptography layer.

`WrongPassphrase` is what a user sees most: the key-encryption key derived from the
passphrase does not open the wrapped master key. `Tampered` means authenticated data failed
its check: it was modified, truncated, or sealed for another place (another chunk id, another
key). `BadKeyFile` is a wrapped key or key file that is not ours or not a version we read.
"""

from __future__ import annotations

from walrusfs.errors import WalrusfsError


class CryptoError(WalrusfsError):
    """Any error of walrusfs's cryptography layer."""


class WrongPassphrase(CryptoError):
    """The passphrase does not unwrap the master key."""

    def __init__(self, message: str = "wrong passphrase for this filesystem") -> None:
        super().__init__(message)


class Tampered(CryptoError):
    """Authentication failed: the data was modified or belongs elsewhere."""

    def __init__(
        self,
        message: str = "authentication failed: data was modified or belongs elsewhere",
    ) -> None:
        super().__init__(message)


class BadKeyFile(CryptoError):
    """A wrapped key that cannot be read: not walrusfs's, damaged, or an unknown version."""

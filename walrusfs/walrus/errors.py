"""Errors of the Walrus client.

Every failure is a WalrusError carrying, when a server answered, its HTTP status, its reason
(the `reason` of the first ErrorInfo in Walrus's error body, e.g. BLOB_NOT_FOUND) and its
message. Transient conditions that outlasted the retries (busy publisher, unavailable blob,
too few confirmations, unreachable servers, the deadline) are WalrusUnavailable, so a caller
can tell "try again later" from "this will never work".
"""

from __future__ import annotations

from walrusfs.errors import WalrusfsError


class WalrusError(WalrusfsError):
    """A Walrus publisher or aggregator refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        server_message: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.server_message = server_message
        self.url = url


class InvalidRequest(WalrusError, ValueError):
    """The caller passed arguments no server could accept (checked before sending)."""


class WalrusUnavailable(WalrusError):
    """A transient failure that outlasted every retry; trying later may succeed."""


class DeadlineExceeded(WalrusUnavailable):
    """The operation's overall deadline passed before any server answered."""


class ServersUnreachable(WalrusUnavailable):
    """No server could be reached (connection refused, reset or timed out)."""


class PublisherBusy(WalrusUnavailable):
    """429: the publisher is busy."""


class BlobUnavailable(WalrusUnavailable):
    """503 BLOB_UNAVAILABLE: the blob cannot be reconstructed right now."""


class InsufficientConfirmations(WalrusUnavailable):
    """504 INSUFFICIENT_CONFIRMATIONS: too few storage nodes confirmed the blob."""


class BlobNotFound(WalrusError):
    """404: the blob (or Blob object) does not exist or has expired."""


class BlobBlocked(WalrusError):
    """451 FORBIDDEN_BLOB: the service refuses this blob."""


class BlobTooLarge(WalrusError):
    """413 from a publisher (body limit) or 403 BLOB_TOO_LARGE from an aggregator."""


class InvalidByteRange(WalrusError):
    """416, or 400 INVALID_BYTE_RANGE: the range is outside the blob or malformed."""


class MalformedRequest(WalrusError):
    """400: the server found the request malformed (MALFORMED_REQUEST,
    INVALID_BLOB_PERSISTENCE, ...)."""


class InsufficientFunds(WalrusError):
    """The paying account cannot cover the storage cost (reason INSUFFICIENT_FUNDS)."""


class ServerError(WalrusError):
    """Any other error answer (500, unexpected statuses)."""


class ProtocolError(WalrusError):
    """The server answered something that is not Walrus's API (bad JSON, wrong length)."""

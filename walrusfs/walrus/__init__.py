"""The Walrus client: publisher and aggregator HTTP API with retries and failover. Knows nothing of inodes.

async with WalrusClient(publishers=[url], aggregators=[url, backup]) as walrus:
    result = await walrus.store(data, epochs=5, send_object_to=address)
    data = await walrus.read(result.blob_id, start=4096, length=65536)
"""

from walrusfs.walrus.client import WalrusClient
from walrusfs.walrus.errors import (
    BlobBlocked,
    BlobNotFound,
    BlobTooLarge,
    BlobUnavailable,
    DeadlineExceeded,
    InsufficientConfirmations,
    InsufficientFunds,
    InvalidByteRange,
    InvalidRequest,
    MalformedRequest,
    ProtocolError,
    PublisherBusy,
    ServerError,
    ServersUnreachable,
    WalrusError,
    WalrusUnavailable,
)
from walrusfs.walrus.types import BlobObject, EventId, StorageResource, StoreResult

__all__ = [
    "BlobBlocked",
    "BlobNotFound",
    "BlobObject",
    "BlobTooLarge",
    "BlobUnavailable",
    "DeadlineExceeded",
    "EventId",
    "InsufficientConfirmations",
    "InsufficientFunds",
    "InvalidByteRange",
    "InvalidRequest",
    "MalformedRequest",
    "ProtocolError",
    "PublisherBusy",
    "ServerError",
    "ServersUnreachable",
    "StorageResource",
    "StoreResult",
    "WalrusClient",
    "WalrusError",
    "WalrusUnavailable",
]

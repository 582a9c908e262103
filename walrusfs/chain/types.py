"""Values the Sui client returns: frozen, plain data that crosses into the other layers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class WalrusState:
    """The Walrus System object's current state, with Sui's reference gas price."""

    epoch: int
    n_shards: int
    storage_price_per_unit: int  # FROST per MiB of encoded length per epoch
    write_price_per_unit: int  # FROST per MiB of encoded length, once
    max_epochs_ahead: int
    total_capacity: int
    used_capacity: int
    package_id: str  # the Walrus package transactions call (the System object's current one)
    reference_gas_price: int  # MIST per gas unit

    def storage_units(self, encoded_size: int) -> int:
        return -(-encoded_size // MIB)

    def extension_price(self, storage_size: int, epochs: int) -> int:
        """FROST to extend a blob whose Storage reserves `storage_size` bytes by `epochs`."""
        return self.storage_price_per_unit * self.storage_units(storage_size) * epochs


@dataclass(frozen=True)
class BlobInfo:
    """A Walrus Blob object owned by walrusfs, with its metadata pairs."""

    object_id: str
    version: int
    digest: str
    blob_id: str  # unpadded URL-safe base64 of the 32 bytes
    size: int
    encoding_type: int
    registered_epoch: int
    certified_epoch: int | None
    start_epoch: int
    end_epoch: int  # exclusive: the blob expires when this epoch starts
    storage_size: int  # encoded length reserved
    deletable: bool
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def metadata_map(self) -> Mapping[str, str]:
        return dict(self.metadata)

    def is_live(self, epoch: int) -> bool:
        return self.certified_epoch is not None and epoch < self.end_epoch


@dataclass(frozen=True)
class BlobPage:
    blobs: tuple[BlobInfo, ...]
    cursor: str | None  # pass back to get the next page; None on the last page


@dataclass(frozen=True)
class Anchor:
    """The anchor: a Blob object at the version (and digest) it was read at, with its metadata.

    A compare-and-swap references exactly this version, so it fails if the object moved.
    """

    object_id: str
    version: int
    digest: str
    metadata: tuple[tuple[str, str], ...]
    blob: BlobInfo

    @property
    def metadata_map(self) -> Mapping[str, str]:
        return dict(self.metadata)


@dataclass(frozen=True)
class ExtensionQuote:
    epochs: int
    total: int  # FROST
    per_blob: tuple[tuple[str, int], ...]  # (object id, FROST)


@dataclass(frozen=True)
class GasUsed:
    computation: int
    storage: int
    rebate: int

    @property
    def net(self) -> int:
        return self.computation + self.storage - self.rebate


@dataclass(frozen=True)
class ExtendResult:
    digest: str
    epochs: int
    end_epochs: tuple[tuple[str, int], ...]  # (object id, new end epoch)
    wal_spent: int
    gas: GasUsed


@dataclass(frozen=True)
class DeleteResult:
    digest: str
    deleted: tuple[str, ...]
    storage_ids: tuple[str, ...]  # the Storage resources returned to the wallet
    gas: GasUsed


@dataclass(frozen=True)
class Balances:
    sui: int  # MIST
    wal: int  # FROST

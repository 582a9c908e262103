"""The registry seam: everything the devnet's Walrus services know about chain state.

On a real network, Blob objects, the epoch, the committee, prices and WAL balances live on
Sui. In the devnet they live on the devnet's Sui ledger (walrusfs/devnet/ledger/), and the
publisher, the aggregator and the storage nodes reach that chain state ONLY through the
`BlobRegistry` protocol below, implemented by `walrusfs.devnet.ledger.registry.LedgerRegistry`.
A Blob object certified by the publisher is therefore an object that pysui can read, extend,
delete and burn, and what clients do to it there is what the Walrus services see here.

Who calls what, and when:

| caller | method | when |
|---|---|---|
| devnet start-up | `set_committee` | after every node is listening (node URLs may change) |
| publisher | `params`, `current_epoch`, `balance` | before encoding: validate `epochs`, pre-check the price |
| publisher | `blob_objects` | before uploading: is the blob already certified long enough? |
| publisher | `certify_blobs` | after n - f nodes returned signed confirmations (several stores at once) |
| aggregator | `blob_status`, `get_blob_object` | on every read: is the blob's storage paid until after now? |
| storage node | `committee`, `current_epoch` | to find its peers and to sign confirmations |
| storage node | `live_blob_ids`, `blob_statuses` | in its maintenance loop: repair what it lacks, drop what expired or was deleted |

Storage nodes use only those read-only calls (`NodeChainView`); when they run in a process of
their own (devnet.nodehost) they get them from `devnet.ledgerview.LedgerView`, which reads the
ledger's database.
| embedder, tests | `faucet`, `balance` | to fund an address |

Rules every implementation keeps:
- Every method is synchronous, returns quickly (no network round trips to a remote chain) and is
  safe to call from any thread. Each method is atomic: `certify_blob` either checks the
  certificate, charges the payer and creates the object, or changes nothing.
- Epochs start at 1 and advance with wall time (`SystemParams.epoch_seconds`); the epoch survives
  restarts and never goes backwards. A blob is live while current epoch < its end epoch, its
  end epoch being the latest over its Blob objects and the storage of burned ones: as on
  Walrus, burning an object (blob::burn) leaves its data stored until that storage ends, while
  deleting it (system::delete_blob) ends its storage at once.
- Objects are never returned half-made: every object returned is certified.
- Amounts are FROST (1 WAL = 10**9 FROST). Addresses are Sui addresses in their long form,
  "0x" followed by 64 lowercase hex digits (see `normalize_address`).
- Blob ids cross the seam in their text form (unpadded URL-safe base64), object ids as "0x" + 64
  lowercase hex digits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from walrusfs.devnet.blobid import encoded_length, max_faulty, storage_cost

FROST_PER_WAL = 10**9
MAX_EPOCHS_AHEAD = 53

_ADDRESS = re.compile(r"^0[xX][0-9a-fA-F]{1,64}$")


def normalize_address(text: str) -> str:
    """The long form of a Sui address or object id: "0x" + 64 lowercase hex digits.

    Raises ValueError for anything that is not hex with a 0x prefix.
    """
    if not _ADDRESS.match(text):
        raise ValueError(f"{text!r} is not a Sui address (0x followed by up to 64 hex digits)")
    return "0x" + text[2:].lower().rjust(64, "0")


@dataclass(frozen=True)
class SystemParams:
    """The Walrus system object's parameters as the devnet sets them."""

    n_shards: int
    """Shards in the committee; one storage node holds one shard."""
    storage_price_per_unit: int
    """FROST per MiB of encoded length per epoch."""
    write_price_per_unit: int
    """FROST per MiB of encoded length, paid once per registration."""
    epoch_seconds: float
    """Wall-clock length of an epoch."""
    max_epochs_ahead: int = MAX_EPOCHS_AHEAD
    """A blob may be stored at most this many epochs ahead of the current one."""

    @property
    def max_faulty(self) -> int:
        """f = (n - 1) // 3."""
        return max_faulty(self.n_shards)

    @property
    def quorum(self) -> int:
        """Confirmations needed to certify a blob: n - f."""
        return self.n_shards - self.max_faulty

    @property
    def k(self) -> int:
        """Shares needed to rebuild a blob: n - 2f."""
        return self.n_shards - 2 * self.max_faulty

    def encoded_length(self, size: int) -> int:
        return encoded_length(self.n_shards, size)

    def cost(self, size: int, epochs: int) -> int:
        """FROST to store an unencoded blob of `size` bytes for `epochs` epochs."""
        return storage_cost(
            self.encoded_length(size),
            epochs,
            self.storage_price_per_unit,
            self.write_price_per_unit,
        )


@dataclass(frozen=True)
class CommitteeMember:
    """One storage node: the shard it holds, the key it signs with, where it listens."""

    index: int
    public_key: bytes
    """Ed25519 verify key, 32 bytes."""
    url: str
    """Base URL of its storage API, e.g. http://127.0.0.1:40123."""


@dataclass(frozen=True)
class Committee:
    members: tuple[CommitteeMember, ...]
    """Ordered by index; member i holds shard i."""

    def member(self, index: int) -> CommitteeMember:
        return self.members[index]


@dataclass(frozen=True)
class StorageConfirmation:
    """A node's signed statement that it holds its share of a blob (see devnet.confirm)."""

    node_index: int
    message: bytes
    """The signed bytes; binds the node, its key, the epoch and the blob id."""
    signature: bytes
    """Ed25519 signature over `message`, 64 bytes."""


@dataclass(frozen=True)
class EventId:
    """A Sui event: the transaction digest (base58) and the event's position in it."""

    tx_digest: str
    event_seq: int


@dataclass(frozen=True)
class StorageResource:
    """Move `Storage`: a reservation of `storage_size` bytes for [start_epoch, end_epoch)."""

    object_id: str
    start_epoch: int
    end_epoch: int
    storage_size: int


@dataclass(frozen=True)
class BlobObject:
    """Move `Blob`, plus its owner and the event that certified it."""

    object_id: str
    blob_id: str
    size: int
    encoding_type: int
    registered_epoch: int
    certified_epoch: int | None
    storage: StorageResource
    deletable: bool
    owner: str
    certify_event: EventId | None
    """The BlobCertified event; publishers quote it in `alreadyCertified` answers."""

    @property
    def end_epoch(self) -> int:
        return self.storage.end_epoch

    def is_live(self, epoch: int) -> bool:
        return self.certified_epoch is not None and epoch < self.storage.end_epoch


@dataclass(frozen=True)
class BlobStatus:
    """What the Walrus services need to know about a blob id to serve or keep its data."""

    end_epoch: int | None
    """The blob's data is paid for until this epoch (exclusive): the latest end epoch over its
    certified Blob objects, expired ones included, and the storage of burned ones. None when
    there is neither (never certified, or every object deleted)."""
    deleted_at: float | None
    """Unix time at which one of its Blob objects was last deleted (system::delete_blob), or
    None. A node drops a copy it received before then once no storage is left."""

    def is_live(self, epoch: int) -> bool:
        return self.end_epoch is not None and epoch < self.end_epoch


@dataclass(frozen=True)
class CertifyRequest:
    """What the publisher asks the registry to certify, with the certificate that backs it."""

    blob_id: str
    size: int
    """Unencoded length in bytes."""
    encoding_type: int
    epochs_ahead: int
    """The blob lives for [current epoch, current epoch + epochs_ahead)."""
    deletable: bool
    owner: str
    """Receives the Blob object and pays for it (the publisher's own address by default)."""
    epoch: int
    """The epoch in which the confirmations were signed; must be the current one."""
    confirmations: tuple[StorageConfirmation, ...]


@dataclass(frozen=True)
class Certification:
    """The outcome of `certify_blob`."""

    blob: BlobObject
    encoded_length: int
    cost: int
    """FROST charged to the owner: storage for every epoch plus the write fee."""


class NodeChainView(Protocol):
    """The part of the seam a storage node uses: all of it read-only. A `BlobRegistry` is one;
    so is `devnet.ledgerview.LedgerView`, which nodes in a process of their own read."""

    def params(self) -> SystemParams: ...

    def current_epoch(self) -> int: ...

    def committee(self) -> Committee: ...

    def blob_status(self, blob_id: str) -> BlobStatus: ...

    def blob_statuses(self, blob_ids: Sequence[str]) -> dict[str, BlobStatus]: ...

    def live_blob_ids(self) -> tuple[str, ...]: ...


@runtime_checkable
class BlobRegistry(Protocol):
    """Chain state as the devnet's Walrus services see it. See the module docstring."""

    def params(self) -> SystemParams:
        """The system parameters (shard count, prices, epoch length, max epochs ahead)."""
        ...

    def current_epoch(self) -> int:
        """The current epoch, from wall time; never decreases."""
        ...

    def committee(self) -> Committee:
        """The storage nodes, one per shard, in shard order."""
        ...

    def set_committee(self, committee: Committee) -> None:
        """Replace the committee (the devnet does this when its nodes start listening).

        The committee must have exactly `params().n_shards` members with indexes 0..n-1.
        """
        ...

    def balance(self, address: str) -> int:
        """FROST held by `address`; 0 for an address never funded."""
        ...

    def faucet(self, address: str, amount: int) -> int:
        """Credit `amount` FROST to `address`; returns the new balance."""
        ...

    def certify_blob(self, request: CertifyRequest) -> Certification:
        """Register and certify a blob in one atomic step.

        Checks that the confirmations come from at least n - f distinct committee members, each
        signature valid for `request.blob_id` in `request.epoch`, and that `request.epoch` is the
        current epoch; checks 1 <= epochs_ahead <= max_epochs_ahead; charges the owner
        `params().cost(size, epochs_ahead)`; creates a certified Blob object owned by the owner,
        with storage [epoch, epoch + epochs_ahead). Raises InvalidCertificate (StaleCertificate
        when only the epoch is wrong), EpochsOutOfRange or InsufficientFunds, and then nothing
        has changed.
        """
        ...

    def certify_blobs(self, requests: Sequence[CertifyRequest]) -> list[Certification | Exception]:
        """`certify_blob` for several blobs at once (in one ledger transaction): each request
        gets its Certification, or in its place the exception `certify_blob` would raise for
        it alone, and then nothing changed for it."""
        ...

    def get_blob_object(self, object_id: str) -> BlobObject | None:
        """The Blob object with this id, expired or not; None if it does not exist."""
        ...

    def blob_objects(self, blob_id: str) -> tuple[BlobObject, ...]:
        """Every existing certified Blob object for this blob id, expired ones included."""
        ...

    def blob_status(self, blob_id: str) -> BlobStatus:
        """Until when the blob's data is paid for, burned objects included; see BlobStatus."""
        ...

    def blob_statuses(self, blob_ids: Sequence[str]) -> dict[str, BlobStatus]:
        """`blob_status` of each of `blob_ids`, at the cost of a few lookups."""
        ...

    def live_blob_ids(self) -> tuple[str, ...]:
        """The blob ids whose `blob_status` is live in the current epoch."""
        ...

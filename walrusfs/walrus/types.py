"""Values the Walrus client returns: what a store created, parsed from the publisher's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from walrusfs.walrus.errors import ProtocolError


@dataclass(frozen=True)
class StorageResource:
    object_id: str
    start_epoch: int
    end_epoch: int
    """Exclusive: the blob expires when this epoch starts."""
    storage_size: int


@dataclass(frozen=True)
class BlobObject:
    """The Sui Blob object a store created."""

    object_id: str
    blob_id: str
    size: int
    encoding_type: str
    """"RS2" on Walrus, "ZFEC" on walrusfs's devnet."""
    registered_epoch: int
    certified_epoch: int | None
    storage: StorageResource
    deletable: bool


@dataclass(frozen=True)
class EventId:
    tx_digest: str
    event_seq: str


@dataclass(frozen=True)
class StoreResult:
    """The outcome of `WalrusClient.store`."""

    blob_id: str
    newly_created: bool
    """False when the publisher found the blob already certified for long enough."""
    end_epoch: int
    object_id: str | None
    """The new Blob object; for an already certified blob, the publisher's own deletable
    object when it named one, else None."""
    encoded_length: int | None
    """Encoded size the storage was bought for; None when nothing was bought."""
    cost: int
    """FROST charged (storage + write fee, gas excluded); 0 when already certified."""
    blob_object: BlobObject | None = None
    event: EventId | None = None
    """For an already certified blob: the event that certified it."""
    resource_operation: str | None = None
    """How storage was obtained: registerFromScratch, reuseStorage, reuseAndExtend, ..."""


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ProtocolError(f"{what} is not a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"{what} is not a number: {value!r}") from None


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} is not a string: {value!r}")
    return value


def parse_blob_object(obj: Any) -> BlobObject:
    try:
        storage = obj["storage"]
        certified = obj.get("certifiedEpoch")
        return BlobObject(
            object_id=_str(obj["id"], "blobObject.id"),
            blob_id=_str(obj["blobId"], "blobObject.blobId"),
            size=_int(obj["size"], "blobObject.size"),
            encoding_type=str(obj.get("encodingType", "")),
            registered_epoch=_int(obj["registeredEpoch"], "blobObject.registeredEpoch"),
            certified_epoch=None if certified is None else _int(certified, "certifiedEpoch"),
            storage=StorageResource(
                object_id=_str(storage["id"], "storage.id"),
                start_epoch=_int(storage["startEpoch"], "storage.startEpoch"),
                end_epoch=_int(storage["endEpoch"], "storage.endEpoch"),
                storage_size=_int(storage["storageSize"], "storage.storageSize"),
            ),
            deletable=bool(obj["deletable"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"the publisher's blob object lacks {exc}") from None


def parse_store_result(body: Any) -> StoreResult:
    """A StoreResult from the publisher's JSON (camelCase, as the wire has it)."""
    if not isinstance(body, dict):
        raise ProtocolError("the publisher's answer is not a JSON object")
    try:
        if "newlyCreated" in body:
            created = body["newlyCreated"]
            blob = parse_blob_object(created["blobObject"])
            operation = created.get("resourceOperation") or {}
            kind = next(iter(operation), None) if isinstance(operation, dict) else None
            details = operation.get(kind, {}) if kind else {}
            encoded = details.get("encodedLength") if isinstance(details, dict) else None
            return StoreResult(
                blob_id=blob.blob_id,
                newly_created=True,
                end_epoch=blob.storage.end_epoch,
                object_id=blob.object_id,
                encoded_length=None if encoded is None else _int(encoded, "encodedLength"),
                cost=_int(created.get("cost", 0), "cost"),
                blob_object=blob,
                resource_operation=kind,
            )
        if "alreadyCertified" in body:
            certified = body["alreadyCertified"]
            event = certified.get("event")
            return StoreResult(
                blob_id=_str(certified["blobId"], "alreadyCertified.blobId"),
                newly_created=False,
                end_epoch=_int(certified["endEpoch"], "alreadyCertified.endEpoch"),
                object_id=certified.get("object"),
                encoded_length=None,
                cost=0,
                event=None
                if event is None
                else EventId(str(event["txDigest"]), str(event["eventSeq"])),
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"the publisher's answer lacks {exc}") from None
    if "markedInvalid" in body:
        raise ProtocolError("the publisher reports the blob as marked invalid")
    if "error" in body:
        raise ProtocolError(f"the publisher failed: {body['error']}")
    raise ProtocolError(f"unexpected answer from the publisher: {sorted(body)}")

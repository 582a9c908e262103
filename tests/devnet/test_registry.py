"""The interim SQLite registry against the BlobRegistry contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from walrusfs.devnet.blobid import ENCODING_ZFEC, blob_id_to_text
from walrusfs.devnet.confirm import sign_confirmation
from walrusfs.devnet.errors import (
    DevnetConfigError,
    EpochsOutOfRange,
    InsufficientFunds,
    InvalidCertificate,
    StaleCertificate,
)
from walrusfs.devnet.registry import (
    BlobRegistry,
    CertifyRequest,
    Committee,
    CommitteeMember,
    SystemParams,
    normalize_address,
)
from walrusfs.devnet.sqlite_registry import SqliteRegistry

OWNER = "0x" + "ab" * 32
PARAMS = SystemParams(
    n_shards=4, storage_price_per_unit=100, write_price_per_unit=2000, epoch_seconds=10.0
)
BLOB = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys() -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(4)]


@pytest.fixture
def registry(tmp_path: Path, clock: Clock, keys: list[SigningKey]) -> SqliteRegistry:
    reg = SqliteRegistry(tmp_path / "r.sqlite3", PARAMS, clock=clock)
    reg.set_committee(
        Committee(
            tuple(
                CommitteeMember(i, bytes(k.verify_key), f"http://127.0.0.1:{1000 + i}")
                for i, k in enumerate(keys)
            )
        )
    )
    return reg


def _request(
    registry: SqliteRegistry, keys: list[SigningKey], signers: range, **changes: object
) -> CertifyRequest:
    epoch = registry.current_epoch()
    fields: dict[str, object] = {
        "blob_id": blob_id_to_text(BLOB),
        "size": 1000,
        "encoding_type": ENCODING_ZFEC,
        "epochs_ahead": 3,
        "deletable": True,
        "owner": OWNER,
        "epoch": epoch,
        "confirmations": tuple(sign_confirmation(keys[i], i, epoch, BLOB) for i in signers),
    }
    fields.update(changes)
    return CertifyRequest(**fields)  # type: ignore[arg-type]


def test_is_a_blob_registry(registry: SqliteRegistry) -> None:
    assert isinstance(registry, BlobRegistry)
    assert registry.params() == PARAMS
    assert (PARAMS.k, PARAMS.quorum, PARAMS.max_faulty) == (2, 3, 1)


def test_certify_charges_and_creates(registry: SqliteRegistry, keys: list[SigningKey]) -> None:
    registry.faucet(OWNER, 10**9)
    cost = PARAMS.cost(1000, 3)
    certification = registry.certify_blob(_request(registry, keys, range(3)))
    blob = certification.blob
    assert certification.cost == cost
    assert certification.encoded_length == PARAMS.encoded_length(1000)
    assert registry.balance(OWNER) == 10**9 - cost
    epoch = registry.current_epoch()
    assert (blob.registered_epoch, blob.certified_epoch) == (epoch, epoch)
    assert (blob.storage.start_epoch, blob.storage.end_epoch) == (epoch, epoch + 3)
    assert blob.storage.storage_size == certification.encoded_length
    assert blob.owner == OWNER and blob.deletable and blob.size == 1000
    assert blob.object_id.startswith("0x") and len(blob.object_id) == 66
    assert registry.get_blob_object(blob.object_id) == blob
    assert registry.blob_objects(blob.blob_id) == (blob,)
    assert registry.live_blob_ids() == (blob.blob_id,)


def test_refusals_change_nothing(registry: SqliteRegistry, keys: list[SigningKey]) -> None:
    registry.faucet(OWNER, 10)  # far too little
    with pytest.raises(InsufficientFunds):
        registry.certify_blob(_request(registry, keys, range(4)))
    registry.faucet(OWNER, 10**9)
    with pytest.raises(InvalidCertificate):
        registry.certify_blob(_request(registry, keys, range(2)))  # below quorum
    with pytest.raises(InvalidCertificate):  # the same node three times is one node
        req = _request(registry, keys, range(1))
        registry.certify_blob(
            _request(registry, keys, range(0), confirmations=req.confirmations * 3)
        )
    forged = _request(registry, keys, range(3))
    swapped = (
        *forged.confirmations[:2],
        forged.confirmations[0].__class__(
            2, forged.confirmations[2].message, forged.confirmations[1].signature
        ),
    )
    with pytest.raises(InvalidCertificate):
        registry.certify_blob(_request(registry, keys, range(0), confirmations=swapped))
    with pytest.raises(StaleCertificate):
        registry.certify_blob(
            _request(registry, keys, range(3), epoch=registry.current_epoch() - 1)
        )
    for epochs in (0, 54):
        with pytest.raises(EpochsOutOfRange):
            registry.certify_blob(_request(registry, keys, range(3), epochs_ahead=epochs))
    assert registry.balance(OWNER) == 10**9 + 10
    assert registry.blob_objects(blob_id_to_text(BLOB)) == ()


def test_epoch_clock_advances_and_survives(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "r.sqlite3"
    registry = SqliteRegistry(path, PARAMS, clock=clock)
    assert registry.current_epoch() == 1
    clock.now += 25
    assert registry.current_epoch() == 3
    registry.close()
    clock.now += 10
    reopened = SqliteRegistry(path, PARAMS, clock=clock)
    assert reopened.current_epoch() == 4
    # A new epoch length applies from now on; the epoch never goes back.
    faster = SqliteRegistry(path, SystemParams(4, 100, 2000, epoch_seconds=1.0), clock=clock)
    assert faster.current_epoch() == 4
    clock.now += 2.5
    assert faster.current_epoch() == 6
    with pytest.raises(DevnetConfigError):
        SqliteRegistry(path, SystemParams(7, 100, 2000, epoch_seconds=1.0), clock=clock)


def test_expired_blobs_are_not_live(
    registry: SqliteRegistry, keys: list[SigningKey], clock: Clock
) -> None:
    registry.faucet(OWNER, 10**9)
    blob = registry.certify_blob(_request(registry, keys, range(3), epochs_ahead=1)).blob
    assert blob.is_live(registry.current_epoch())
    clock.now += PARAMS.epoch_seconds
    assert not blob.is_live(registry.current_epoch())
    assert registry.live_blob_ids() == ()
    assert registry.blob_objects(blob.blob_id) == (blob,)  # expired objects still exist


def test_addresses() -> None:
    assert normalize_address("0x1") == "0x" + "0" * 63 + "1"
    assert normalize_address("0X" + "AB" * 32) == "0x" + "ab" * 32
    for bad in ["1", "0x", "0xg1", "0x" + "1" * 65]:
        with pytest.raises(ValueError):
            normalize_address(bad)

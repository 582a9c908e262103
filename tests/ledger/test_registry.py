"""The ledger behind the devnet's BlobRegistry protocol (what the publisher, aggregator and
storage nodes will use once they move onto the ledger)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ledger.ledger_helpers import EPOCH, FakeClock
from nacl.signing import SigningKey

from walrusfs.devnet.blobid import blob_id_to_text
from walrusfs.devnet.confirm import sign_confirmation
from walrusfs.devnet.errors import (
    EpochsOutOfRange,
    InsufficientFunds,
    InvalidCertificate,
    StaleCertificate,
)
from walrusfs.devnet.ledger.registry import LedgerRegistry
from walrusfs.devnet.registry import (
    BlobRegistry,
    CertifyRequest,
    Committee,
    CommitteeMember,
    SystemParams,
)

PARAMS = SystemParams(
    n_shards=4, storage_price_per_unit=100, write_price_per_unit=50, epoch_seconds=EPOCH
)
OWNER = "0x" + "0a" * 32


@pytest.fixture
def keys() -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(PARAMS.n_shards)]


@pytest.fixture
def registry(tmp_path: Path, clock: FakeClock, keys: list[SigningKey]) -> LedgerRegistry:
    reg = LedgerRegistry.open(tmp_path / "ledger", PARAMS, clock=clock)
    reg.set_committee(
        Committee(
            tuple(
                CommitteeMember(i, bytes(k.verify_key), f"http://127.0.0.1:{4000 + i}")
                for i, k in enumerate(keys)
            )
        )
    )
    return reg


def request(
    keys: list[SigningKey],
    blob_id: bytes,
    epoch: int,
    signers: int,
    *,
    epochs: int = 3,
    size: int = 1000,
) -> CertifyRequest:
    return CertifyRequest(
        blob_id=blob_id_to_text(blob_id),
        size=size,
        encoding_type=0x5A,
        epochs_ahead=epochs,
        deletable=True,
        owner=OWNER,
        epoch=epoch,
        confirmations=tuple(
            sign_confirmation(k, i, epoch, blob_id) for i, k in enumerate(keys[:signers])
        ),
    )


def test_it_is_a_blob_registry(registry: LedgerRegistry, keys: list[SigningKey]):
    assert isinstance(registry, BlobRegistry)
    assert registry.params() == PARAMS
    assert registry.current_epoch() == 1
    assert [m.public_key for m in registry.committee().members] == [
        bytes(k.verify_key) for k in keys
    ]


def test_certify_charges_the_owner_and_creates_the_blob(
    registry: LedgerRegistry, keys: list[SigningKey], clock: FakeClock
):
    assert registry.balance(OWNER) == 0
    assert registry.faucet(OWNER, 10**6) == 10**6
    blob_id = os.urandom(32)
    cert = registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum))
    assert cert.cost == PARAMS.cost(1000, 3) and cert.encoded_length == PARAMS.encoded_length(1000)
    assert registry.balance(OWNER) == 10**6 - cert.cost
    blob = cert.blob
    assert (blob.owner, blob.end_epoch, blob.encoding_type, blob.certified_epoch) == (
        OWNER,
        4,
        0x5A,
        1,
    )
    assert blob.certify_event is not None
    assert registry.get_blob_object(blob.object_id) == blob
    assert registry.blob_objects(blob.blob_id) == (blob,)
    assert registry.live_blob_ids() == (blob.blob_id,)
    # the object is a real Blob on the ledger, with its Storage
    rec = registry.ledger.get_blob(blob.object_id)
    assert rec is not None and rec.storage_id == blob.storage.object_id
    clock.advance(3 * EPOCH)
    assert registry.live_blob_ids() == ()
    assert registry.blob_objects(blob.blob_id) == (blob,)  # expired objects still exist


def test_certify_refusals_change_nothing(
    registry: LedgerRegistry, keys: list[SigningKey], clock: FakeClock
):
    blob_id = os.urandom(32)
    with pytest.raises(InsufficientFunds):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum))
    registry.faucet(OWNER, 10**6)
    with pytest.raises(InvalidCertificate):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum - 1))
    with pytest.raises(EpochsOutOfRange):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum, epochs=54))
    clock.advance(EPOCH)
    with pytest.raises(StaleCertificate):
        registry.certify_blob(request(keys, blob_id, 1, PARAMS.quorum))
    assert registry.balance(OWNER) == 10**6
    assert registry.blob_objects(blob_id_to_text(blob_id)) == ()
    assert registry.get_blob_object("0x1234") is None
    assert registry.get_blob_object("not an id") is None


def test_reopening_keeps_state_and_updates_prices(
    tmp_path: Path, clock: FakeClock, keys: list[SigningKey]
):
    reg = LedgerRegistry.open(tmp_path, PARAMS, clock=clock)
    reg.faucet(OWNER, 500)
    reg.close()
    reg = LedgerRegistry.open(tmp_path, clock=clock)
    assert reg.params() == PARAMS and reg.balance(OWNER) == 500
    reg.close()
    cheaper = SystemParams(4, 10, 5, EPOCH)
    reg = LedgerRegistry.open(tmp_path, cheaper, clock=clock)
    assert reg.params() == cheaper
    reg.close()
    from walrusfs.devnet.ledger import LedgerError

    with pytest.raises(LedgerError, match="shards"):
        LedgerRegistry.open(tmp_path, SystemParams(7, 10, 5, EPOCH), clock=clock)
    with pytest.raises(ValueError):
        LedgerRegistry.open(tmp_path, clock=clock).set_committee(Committee(()))

"""The ledger as the devnet's `BlobRegistry` (walrusfs.devnet.registry).

With this adapter the publisher, aggregator and storage nodes see chain state on the Sui
ledger: a certified blob is a real Blob object (with its Storage) that pysui can read, extend
and delete; WAL balances are Coin<WAL> objects; the epoch is the System object's.

Worth knowing:
- `faucet` mints a new Coin<WAL> of `amount` FROST; `balance` sums the address's WAL coins.
- `certify_blob` charges the owner's WAL coins (largest first) in the same ledger transaction
  that creates the Blob, so a failed check or a short balance changes nothing.
- `blob_status` and `live_blob_ids` count the storage of burned Blob objects (blob::burn) until
  its end epoch: on Walrus the data stays until then. A deleted Blob (system::delete_blob) no
  longer counts from the moment it is deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from walrusfs.devnet.blobid import blob_id_from_text as devnet_blob_id
from walrusfs.devnet.confirm import check_certificate
from walrusfs.devnet.errors import EpochsOutOfRange
from walrusfs.devnet.errors import InsufficientFunds as RegistryInsufficientFunds
from walrusfs.devnet.registry import (
    BlobObject,
    BlobStatus,
    Certification,
    CertifyRequest,
    Committee,
    CommitteeMember,
    EventId,
    StorageResource,
    SystemParams,
    normalize_address,
)

from .errors import InsufficientFunds, LedgerError
from .ledger import BlobRecord, BlobSpec, Ledger, LedgerConfig, blob_id_to_text


def _blob_object(rec: BlobRecord) -> BlobObject:
    return BlobObject(
        object_id=rec.object_id,
        blob_id=blob_id_to_text(rec.blob_id),
        size=rec.size,
        encoding_type=rec.encoding_type,
        registered_epoch=rec.registered_epoch,
        certified_epoch=rec.certified_epoch,
        storage=StorageResource(rec.storage_id, rec.start_epoch, rec.end_epoch, rec.storage_size),
        deletable=rec.deletable,
        owner=rec.owner,
        certify_event=(
            None
            if rec.certified_tx_digest is None or rec.certified_event_seq is None
            else EventId(rec.certified_tx_digest, rec.certified_event_seq)
        ),
    )


class LedgerRegistry:
    """A BlobRegistry backed by the devnet's Sui ledger. Thread-safe like the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @classmethod
    def open(
        cls,
        directory: Path,
        params: SystemParams | None = None,
        *,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> LedgerRegistry:
        """Open (or create, which needs `params`) the ledger in `directory`.

        On an existing ledger, `params` may change the epoch length and the prices; the shard
        count and max epochs ahead are fixed at creation. `options` are further LedgerConfig
        fields (faucet amounts, for instance).
        """
        exists = (directory / "ledger.sqlite3").exists()
        if not exists and params is None:
            raise LedgerError(f"{directory} holds no ledger yet; creating one needs parameters")
        config = LedgerConfig(directory=directory, clock=clock, **options)
        if params is not None:
            config = LedgerConfig(
                directory=directory,
                epoch_seconds=params.epoch_seconds,
                n_shards=params.n_shards,
                storage_price_per_unit=params.storage_price_per_unit,
                write_price_per_unit=params.write_price_per_unit,
                max_epochs_ahead=params.max_epochs_ahead,
                clock=clock,
                **options,
            )
        ledger = Ledger(config)
        if params is not None:
            state = ledger.system_state()
            if state.n_shards != params.n_shards:
                ledger.close()
                raise LedgerError(f"this devnet has {state.n_shards} shards, not {params.n_shards}")
            ledger.set_prices(params.storage_price_per_unit, params.write_price_per_unit)
        return cls(ledger)

    def close(self) -> None:
        self.ledger.close()

    def params(self) -> SystemParams:
        s = self.ledger.system_state()
        return SystemParams(
            n_shards=s.n_shards,
            storage_price_per_unit=s.storage_price_per_unit,
            write_price_per_unit=s.write_price_per_unit,
            epoch_seconds=s.epoch_seconds,
            max_epochs_ahead=s.max_epochs_ahead,
        )

    def current_epoch(self) -> int:
        return self.ledger.current_epoch()

    def committee(self) -> Committee:
        return Committee(
            tuple(CommitteeMember(i, key, url) for i, key, url in self.ledger.committee())
        )

    def set_committee(self, committee: Committee) -> None:
        try:
            self.ledger.set_committee([(m.index, m.public_key, m.url) for m in committee.members])
        except LedgerError as exc:
            raise ValueError(str(exc)) from exc

    def balance(self, address: str) -> int:
        return self.ledger.balance(normalize_address(address), "WAL")

    def faucet(self, address: str, amount: int) -> int:
        if amount < 0:
            raise ValueError("a faucet gives, it does not take")
        address = normalize_address(address)
        if amount:
            self.ledger.fund(address, sui=0, wal=amount)
        return self.balance(address)

    def certify_blob(self, request: CertifyRequest) -> Certification:
        (result,) = self.certify_blobs([request])
        if isinstance(result, Exception):
            raise result
        return result

    def certify_blobs(self, requests: Sequence[CertifyRequest]) -> list[Certification | Exception]:
        params = self.params()
        committee = self.committee()
        specs: list[BlobSpec] = []
        places: list[int] = []
        results: list[Certification | Exception | None] = []  # None: certified below
        for request in requests:
            try:
                if not 1 <= request.epochs_ahead <= params.max_epochs_ahead:
                    raise EpochsOutOfRange(
                        f"a blob is stored for 1 to {params.max_epochs_ahead} epochs, "
                        f"not {request.epochs_ahead}"
                    )
                raw_id = devnet_blob_id(request.blob_id)

                def precheck(
                    epoch: int, request: CertifyRequest = request, raw_id: bytes = raw_id
                ) -> None:
                    check_certificate(
                        committee,
                        params.quorum,
                        raw_id,
                        request.epoch,
                        epoch,
                        request.confirmations,
                    )

                spec = BlobSpec(
                    owner=normalize_address(request.owner),
                    blob_id=raw_id,
                    size=request.size,
                    encoded_length=params.encoded_length(request.size),
                    epochs=request.epochs_ahead,
                    deletable=request.deletable,
                    encoding_type=request.encoding_type,
                    precheck=precheck,
                )
            except Exception as exc:  # this request's alone
                results.append(exc)
                continue
            places.append(len(results))
            results.append(None)
            specs.append(spec)
        for place, spec, made in zip(
            places, specs, self.ledger.create_certified_blobs(specs), strict=True
        ):
            if isinstance(made, InsufficientFunds):
                results[place] = RegistryInsufficientFunds(made.address, made.needed, made.balance)
            elif isinstance(made, Exception):
                results[place] = made
            else:
                results[place] = Certification(
                    _blob_object(made.blob), spec.encoded_length, made.cost
                )
        return [r for r in results if r is not None]  # every place is filled by now

    def get_blob_object(self, object_id: str) -> BlobObject | None:
        try:
            rec = self.ledger.get_blob(normalize_address(object_id))
        except (ValueError, LedgerError):
            return None
        return None if rec is None else _blob_object(rec)

    def blob_objects(self, blob_id: str) -> tuple[BlobObject, ...]:
        recs = self.ledger.find_blobs(devnet_blob_id(blob_id), include_expired=True)
        return tuple(_blob_object(r) for r in sorted(recs, key=lambda r: r.end_epoch))

    def blob_status(self, blob_id: str) -> BlobStatus:
        return self.blob_statuses([blob_id])[blob_id]

    def blob_statuses(self, blob_ids: Sequence[str]) -> dict[str, BlobStatus]:
        raw = {b: devnet_blob_id(b) for b in blob_ids}
        lifetimes = self.ledger.blob_lifetimes(list(raw.values()))
        return {b: BlobStatus(*lifetimes[r]) for b, r in raw.items()}

    def live_blob_ids(self) -> tuple[str, ...]:
        return tuple(blob_id_to_text(b) for b in self.ledger.live_blob_ids())

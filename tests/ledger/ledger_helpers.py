"""Helpers for ledger tests: a settable clock, accounts, and raw transactions built with
pysui's own BCS types and signer (independent of the ledger's decoder and verifier)."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from pysui.sui.sui_bcs import bcs
from pysui.sui.sui_crypto import SignatureScheme, SuiKeyPair, create_new_keypair

from walrusfs.devnet.ledger import Ledger, LedgerConfig
from walrusfs.devnet.ledger.store import StoredObject
from walrusfs.devnet.ledger.suitypes import digest_str, fmt_address


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


EPOCH = 100.0  # seconds per epoch in ledger tests


def new_ledger(directory: Any, clock: FakeClock, **kw: Any) -> Ledger:
    kw.setdefault("epoch_seconds", EPOCH)
    return Ledger(LedgerConfig(directory=directory, clock=clock, **kw))


@dataclass
class Account:
    keypair: SuiKeyPair
    address: str

    @classmethod
    def new(cls) -> Account:
        _, kp = create_new_keypair(SignatureScheme.ED25519)
        assert kp.public_key is not None
        addr = "0x" + hashlib.blake2b(kp.public_key.scheme_and_key(), digest_size=32).hexdigest()
        return cls(kp, addr)

    def sign(self, tx_bytes: bytes) -> bytes:
        return base64.b64decode(self.keypair.new_sign_secure(base64.b64encode(tx_bytes).decode()))


def ref(obj: StoredObject) -> bcs.ObjectReference:
    return bcs.ObjectReference(
        bcs.Address.from_str(fmt_address(obj.id)),
        obj.version,
        bcs.Digest.from_str(digest_str(obj.digest)),
    )


def pure(data: bytes) -> bcs.CallArg:
    return bcs.CallArg("Pure", list(data))


def u32(v: int) -> bcs.CallArg:
    return pure(v.to_bytes(4, "little"))


def u64(v: int) -> bcs.CallArg:
    return pure(v.to_bytes(8, "little"))


def string(s: str) -> bcs.CallArg:
    raw = s.encode()
    assert len(raw) < 128
    return pure(bytes([len(raw)]) + raw)


def address(a: str) -> bcs.CallArg:
    return pure(bytes.fromhex(a[2:].rjust(64, "0")))


def owned(obj: StoredObject) -> bcs.CallArg:
    return bcs.CallArg("Object", bcs.ObjectArg("ImmOrOwnedObject", ref(obj)))


def shared(object_id: str, initial: int, mutable: bool) -> bcs.CallArg:
    return bcs.CallArg(
        "Object",
        bcs.ObjectArg(
            "SharedObject",
            bcs.SharedObjectReference(bcs.Address.from_str(object_id), initial, mutable),
        ),
    )


def inp(i: int) -> bcs.Argument:
    return bcs.Argument("Input", i)


def res(i: int) -> bcs.Argument:
    return bcs.Argument("Result", i)


def nested(i: int, j: int) -> bcs.Argument:
    return bcs.Argument("NestedResult", (i, j))


GAS = bcs.Argument("GasCoin", None)


def call(package: str, module: str, function: str, *args: bcs.Argument) -> bcs.Command:
    return bcs.Command(
        "MoveCall",
        bcs.ProgrammableMoveCall(bcs.Address.from_str(package), module, function, [], list(args)),
    )


def split(coin: bcs.Argument, *amounts: bcs.Argument) -> bcs.Command:
    return bcs.Command("SplitCoin", bcs.SplitCoin(coin, list(amounts)))


def merge(coin: bcs.Argument, *sources: bcs.Argument) -> bcs.Command:
    return bcs.Command("MergeCoins", bcs.MergeCoins(coin, list(sources)))


def transfer(objects: list[bcs.Argument], recipient: bcs.Argument) -> bcs.Command:
    return bcs.Command("TransferObjects", bcs.TransferObjects(objects, recipient))


def build(
    sender: Account,
    inputs: list[bcs.CallArg],
    commands: list[bcs.Command],
    gas: list[StoredObject],
    *,
    budget: int = 50_000_000,
    price: int = 1_000,
    expiration: int | None = None,
) -> bytes:
    kind = bcs.TransactionKind(
        "ProgrammableTransaction", bcs.ProgrammableTransaction(inputs, commands)
    )
    exp = (
        bcs.TransactionExpiration("None", None)
        if expiration is None
        else bcs.TransactionExpiration("Epoch", expiration)
    )
    data = bcs.TransactionData(
        "V1",
        bcs.TransactionDataV1(
            kind,
            bcs.Address.from_str(sender.address),
            bcs.GasData([ref(g) for g in gas], bcs.Address.from_str(sender.address), price, budget),
            exp,
        ),
    )
    return bytes(data.serialize())


def random_blob_id() -> bytes:
    return os.urandom(32)

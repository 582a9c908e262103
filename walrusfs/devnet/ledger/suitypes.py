"""Sui's core types as the devnet ledger needs them: addresses, digests, type tags, owners,
TransactionData (decoded from BCS or from the gRPC-style JSON that simulateTransaction accepts),
signatures, and the BCS of objects, events and TransactionEffectsV2.

Layouts and hashing follow Sui (crates/sui-types and sui-sdk-types): digests are Blake2b-256 over
a type-name salt and the BCS bytes ("TransactionData::", "Object::", "TransactionEffects::",
"TransactionEvents::"); a transaction is signed over Blake2b-256(intent ‖ BCS(TransactionData))
with intent [0, 0, 0]; an Ed25519 address is Blake2b-256(0x00 ‖ public key); a created object's id
is Blake2b-256(0xf1 ‖ tx digest ‖ creation index as u64 LE); a dynamic field's id is
Blake2b-256(0xf0 ‖ parent ‖ len(key) as u64 LE ‖ BCS(key) ‖ BCS(key type tag)).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing

from .bcs import Reader, Writer
from .errors import BcsError, InvalidSignature, InvalidTransaction, Unsupported

# --- addresses and digests -------------------------------------------------------------------

_HEX_ADDR = re.compile(r"^(0x)?([0-9a-fA-F]{1,64})$")


def parse_address(text: str) -> bytes:
    """A Sui address or object id from "0x…" hex (short forms are zero-padded on the left)."""
    m = _HEX_ADDR.match(text.strip())
    if not m:
        raise InvalidTransaction(f"not a Sui address: {text!r}")
    return bytes.fromhex(m.group(2).zfill(64))


def fmt_address(raw: bytes) -> str:
    """The canonical text form: 0x and 64 lowercase hex digits."""
    return "0x" + raw.hex()


def blake2b256(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        h.update(p)
    return h.digest()


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise InvalidTransaction(f"not base58: {text!r}")
        n = n * 58 + _B58_INDEX[c]
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


def digest_str(raw: bytes) -> str:
    return b58encode(raw)


def parse_digest(text: str) -> bytes:
    raw = b58decode(text)
    if len(raw) != 32:
        raise InvalidTransaction(f"not a 32-byte digest: {text!r}")
    return raw


def type_digest(salt: str, bcs_bytes: bytes) -> bytes:
    return blake2b256(salt.encode(), bcs_bytes)


def derive_object_id(tx_digest: bytes, index: int) -> bytes:
    return blake2b256(b"\xf1", tx_digest, index.to_bytes(8, "little"))


def derive_dynamic_field_id(parent: bytes, key_type: TypeTag, key_bcs: bytes) -> bytes:
    return blake2b256(
        b"\xf0", parent, len(key_bcs).to_bytes(8, "little"), key_bcs, encode_type_tag(key_type)
    )


def ed25519_address(public_key: bytes) -> bytes:
    return blake2b256(b"\x00", public_key)


# --- type tags -------------------------------------------------------------------------------

PRIMITIVES = ("bool", "u8", "u16", "u32", "u64", "u128", "u256", "address", "signer")
_PRIM_TAG = {
    "bool": 0,
    "u8": 1,
    "u64": 2,
    "u128": 3,
    "address": 4,
    "signer": 5,
    "u16": 8,
    "u32": 9,
    "u256": 10,
}
_TAG_PRIM = {v: k for k, v in _PRIM_TAG.items()}


@dataclass(frozen=True)
class VectorTag:
    elem: TypeTag


@dataclass(frozen=True)
class StructTag:
    address: bytes
    module: str
    name: str
    type_params: tuple[TypeTag, ...] = ()

    def base(self) -> StructTag:
        return StructTag(self.address, self.module, self.name)


TypeTag = str | VectorTag | StructTag

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_type(tag: TypeTag, *, short: bool = False) -> str:
    """Canonical Move type text (full-width addresses, as Sui GraphQL prints `repr`)."""
    if isinstance(tag, str):
        return tag
    if isinstance(tag, VectorTag):
        return f"vector<{format_type(tag.elem, short=short)}>"
    addr = fmt_address(tag.address)
    if short:
        addr = "0x" + (tag.address.hex().lstrip("0") or "0")
    text = f"{addr}::{tag.module}::{tag.name}"
    if tag.type_params:
        text += "<" + ", ".join(format_type(t, short=short) for t in tag.type_params) + ">"
    return text


class _TypeParser:
    def __init__(self, text: str) -> None:
        self.text = text.replace(" ", "")
        self.pos = 0

    def fail(self) -> InvalidTransaction:
        return InvalidTransaction(f"not a Move type: {self.text!r}")

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def take(self, s: str) -> None:
        if not self.peek(s):
            raise self.fail()
        self.pos += len(s)

    def ident(self) -> str:
        m = _IDENT.match(self.text, self.pos)
        if not m:
            raise self.fail()
        self.pos = m.end()
        return m.group(0)

    def tag(self) -> TypeTag:
        if self.peek("vector<"):
            self.take("vector<")
            inner = self.tag()
            self.take(">")
            return VectorTag(inner)
        m = re.compile(r"0x[0-9a-fA-F]+|[0-9]+(?=::)").match(self.text, self.pos)
        if not m:
            word = self.ident()
            if word in PRIMITIVES:
                return word
            raise self.fail()
        self.pos = m.end()
        addr = parse_address(m.group(0))
        self.take("::")
        module = self.ident()
        self.take("::")
        name = self.ident()
        params: list[TypeTag] = []
        if self.peek("<"):
            self.take("<")
            params.append(self.tag())
            while self.peek(","):
                self.take(",")
                params.append(self.tag())
            self.take(">")
        return StructTag(addr, module, name, tuple(params))


@functools.lru_cache(maxsize=1024)
def parse_type(text: str) -> TypeTag:
    """The type in `text` (cached: every object read from the store parses its type)."""
    p = _TypeParser(text)
    tag = p.tag()
    if p.pos != len(p.text):
        raise p.fail()
    return tag


def parse_type_filter(
    text: str,
) -> tuple[bytes, str | None, str | None, tuple[TypeTag, ...] | None]:
    """A GraphQL type filter: `package`, `package::module`, `package::module::Type` or a full type.

    Returns (package, module, name, type params) with None for the parts not constrained.
    """
    parts = text.replace(" ", "").split("::")
    if len(parts) == 1:
        return parse_address(parts[0]), None, None, None
    if len(parts) == 2:
        return parse_address(parts[0]), parts[1], None, None
    tag = parse_type(text)
    if not isinstance(tag, StructTag):
        raise InvalidTransaction(f"not a struct type filter: {text!r}")
    has_params = "<" in text
    return tag.address, tag.module, tag.name, (tag.type_params if has_params else None)


def encode_type_tag(tag: TypeTag, w: Writer | None = None) -> bytes:
    w = w or Writer()
    _write_type_tag(w, tag)
    return w.finish()


def _write_type_tag(w: Writer, tag: TypeTag) -> None:
    if isinstance(tag, str):
        w.variant(_PRIM_TAG[tag])
    elif isinstance(tag, VectorTag):
        w.variant(6)
        _write_type_tag(w, tag.elem)
    else:
        w.variant(7)
        write_struct_tag(w, tag)


def write_struct_tag(w: Writer, tag: StructTag) -> None:
    w.fixed(tag.address).str(tag.module).str(tag.name).uleb128(len(tag.type_params))
    for p in tag.type_params:
        _write_type_tag(w, p)


def read_type_tag(r: Reader, depth: int = 0) -> TypeTag:
    if depth > 16:
        raise BcsError("type tag nested too deeply")
    v = r.variant(11)
    if v in _TAG_PRIM:
        return _TAG_PRIM[v]
    if v == 6:
        return VectorTag(read_type_tag(r, depth + 1))
    return read_struct_tag(r, depth + 1)


def read_struct_tag(r: Reader, depth: int = 0) -> StructTag:
    address = r.fixed(32)
    module = r.str()
    name = r.str()
    params = tuple(read_type_tag(r, depth + 1) for _ in range(r.uleb128()))
    return StructTag(address, module, name, params)


SUI_FRAMEWORK = parse_address("0x2")
MOVE_STDLIB = parse_address("0x1")
SUI_TYPE = StructTag(SUI_FRAMEWORK, "sui", "SUI")


def coin_type(coin: TypeTag) -> StructTag:
    return StructTag(SUI_FRAMEWORK, "coin", "Coin", (coin,))


def coin_inner(tag: TypeTag) -> TypeTag | None:
    """T for a `0x2::coin::Coin<T>`, else None."""
    if (
        isinstance(tag, StructTag)
        and tag.address == SUI_FRAMEWORK
        and tag.module == "coin"
        and tag.name == "Coin"
        and len(tag.type_params) == 1
    ):
        return tag.type_params[0]
    return None


# --- owners and object references ------------------------------------------------------------

ADDRESS_OWNER, OBJECT_OWNER, SHARED, IMMUTABLE = 0, 1, 2, 3


@dataclass(frozen=True)
class Owner:
    kind: int
    address: bytes | None = None  # owner address (kind 0) or parent object id (kind 1)
    initial_shared_version: int | None = None

    @staticmethod
    def address_owner(addr: bytes) -> Owner:
        return Owner(ADDRESS_OWNER, addr)

    @staticmethod
    def object_owner(parent: bytes) -> Owner:
        return Owner(OBJECT_OWNER, parent)

    @staticmethod
    def shared(initial: int) -> Owner:
        return Owner(SHARED, None, initial)

    def write(self, w: Writer) -> None:
        w.variant(self.kind)
        if self.kind in (ADDRESS_OWNER, OBJECT_OWNER):
            assert self.address is not None
            w.fixed(self.address)
        elif self.kind == SHARED:
            assert self.initial_shared_version is not None
            w.u64(self.initial_shared_version)

    def to_json(self) -> dict[str, Any]:
        """The gRPC `Owner` message in proto JSON form."""
        if self.kind == ADDRESS_OWNER:
            assert self.address is not None
            return {"kind": "ADDRESS", "address": fmt_address(self.address)}
        if self.kind == OBJECT_OWNER:
            assert self.address is not None
            return {"kind": "OBJECT", "address": fmt_address(self.address)}
        if self.kind == SHARED:
            return {"kind": "SHARED", "version": str(self.initial_shared_version)}
        return {"kind": "IMMUTABLE"}


@dataclass(frozen=True)
class ObjectRef:
    object_id: bytes
    version: int
    digest: bytes

    def write(self, w: Writer) -> None:
        w.fixed(self.object_id).u64(self.version).bytes(self.digest)

    @staticmethod
    def read(r: Reader) -> ObjectRef:
        oid = r.fixed(32)
        version = r.u64()
        digest = r.bytes()
        if len(digest) != 32:
            raise BcsError("object digest is not 32 bytes")
        return ObjectRef(oid, version, digest)


# --- transactions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Argument:
    """GasCoin (kind 0), Input(index) (1), Result(cmd) (2) or NestedResult(cmd, sub) (3)."""

    kind: int
    index: int = 0
    sub: int = 0

    def __str__(self) -> str:
        return [
            "GasCoin",
            f"Input({self.index})",
            f"Result({self.index})",
            f"NestedResult({self.index},{self.sub})",
        ][self.kind]


GAS_COIN = Argument(0)


@dataclass(frozen=True)
class PureArg:
    data: bytes


@dataclass(frozen=True)
class OwnedArg:
    ref: ObjectRef
    receiving: bool = False


@dataclass(frozen=True)
class SharedArg:
    object_id: bytes
    initial_shared_version: int
    mutable: bool


CallArg = PureArg | OwnedArg | SharedArg


@dataclass(frozen=True)
class MoveCall:
    package: bytes
    module: str
    function: str
    type_args: tuple[TypeTag, ...]
    args: tuple[Argument, ...]

    def target(self) -> str:
        return f"{fmt_address(self.package)}::{self.module}::{self.function}"


@dataclass(frozen=True)
class TransferObjects:
    objects: tuple[Argument, ...]
    address: Argument


@dataclass(frozen=True)
class SplitCoins:
    coin: Argument
    amounts: tuple[Argument, ...]


@dataclass(frozen=True)
class MergeCoins:
    coin: Argument
    sources: tuple[Argument, ...]


@dataclass(frozen=True)
class OtherCommand:
    """Publish, MakeMoveVec or Upgrade: decoded only far enough to be refused by name."""

    name: str


Command = MoveCall | TransferObjects | SplitCoins | MergeCoins | OtherCommand


@dataclass(frozen=True)
class GasData:
    payment: tuple[ObjectRef, ...]
    owner: bytes
    price: int
    budget: int


@dataclass(frozen=True)
class TransactionData:
    inputs: tuple[CallArg, ...]
    commands: tuple[Command, ...]
    sender: bytes
    gas: GasData | None  # None for a bare transaction kind given to simulateTransaction
    expiration_epoch: int | None = None
    raw: bytes | None = None  # the BCS bytes, when the transaction came as BCS

    def digest(self) -> bytes:
        assert self.raw is not None
        return type_digest("TransactionData::", self.raw)


def _read_argument(r: Reader) -> Argument:
    kind = r.variant(4)
    if kind == 0:
        return GAS_COIN
    if kind in (1, 2):
        return Argument(kind, r.u16())
    return Argument(3, r.u16(), r.u16())


def _read_args(r: Reader) -> tuple[Argument, ...]:
    return tuple(_read_argument(r) for _ in range(r.uleb128()))


def _read_command(r: Reader) -> Command:
    tag = r.variant(7)
    if tag == 0:
        package = r.fixed(32)
        module = r.str()
        function = r.str()
        type_args = tuple(read_type_tag(r) for _ in range(r.uleb128()))
        return MoveCall(package, module, function, type_args, _read_args(r))
    if tag == 1:
        objects = _read_args(r)
        return TransferObjects(objects, _read_argument(r))
    if tag == 2:
        coin = _read_argument(r)
        return SplitCoins(coin, _read_args(r))
    if tag == 3:
        coin = _read_argument(r)
        return MergeCoins(coin, _read_args(r))
    name = {4: "Publish", 5: "MakeMoveVec", 6: "Upgrade"}[tag]
    raise Unsupported(f"the devnet ledger does not support the {name} command")


def _read_call_arg(r: Reader) -> CallArg:
    tag = r.variant(3)
    if tag == 0:
        return PureArg(r.bytes())
    if tag == 2:
        raise Unsupported("the devnet ledger does not support FundsWithdrawal inputs")
    otag = r.variant(3)
    if otag == 0:
        return OwnedArg(ObjectRef.read(r))
    if otag == 1:
        oid = r.fixed(32)
        initial = r.u64()
        mut = r.u8()
        if mut > 1:
            raise Unsupported("the devnet ledger supports only mutable and immutable shared inputs")
        return SharedArg(oid, initial, mut == 1)
    return OwnedArg(ObjectRef.read(r), receiving=True)


def decode_transaction_data(raw: bytes) -> TransactionData:
    """Decode TransactionData (V1) BCS; anything but a programmable transaction is refused."""
    r = Reader(raw)
    r.variant(1)  # TransactionData::V1
    kind = r.uleb128()
    if kind != 0:
        raise Unsupported(
            f"the devnet ledger executes programmable transactions only (kind {kind})"
        )
    inputs = tuple(_read_call_arg(r) for _ in range(r.uleb128()))
    commands = tuple(_read_command(r) for _ in range(r.uleb128()))
    sender = r.fixed(32)
    payment = tuple(ObjectRef.read(r) for _ in range(r.uleb128()))
    gas_owner = r.fixed(32)
    price = r.u64()
    budget = r.u64()
    exp = r.variant(3)
    expiration = None
    if exp == 1:
        expiration = r.u64()
    elif exp == 2:
        raise Unsupported("the devnet ledger does not support ValidDuring expirations")
    r.done()
    return TransactionData(
        inputs, commands, sender, GasData(payment, gas_owner, price, budget), expiration, raw
    )


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _norm(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {_snake(k): _norm(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    return obj


def _json_int(value: Any, what: str) -> int:
    try:
        return int(value if value is not None else 0)
    except (TypeError, ValueError) as exc:
        raise InvalidTransaction(f"{what} is not an integer: {value!r}") from exc


def _json_argument(d: dict[str, Any]) -> Argument:
    kind = d.get("kind")
    if kind == "GAS":
        return GAS_COIN
    if kind == "INPUT":
        return Argument(1, _json_int(d.get("input"), "input index"))
    if kind == "RESULT":
        if d.get("subresult") is None:
            return Argument(2, _json_int(d.get("result"), "result index"))
        return Argument(3, _json_int(d.get("result"), "result"), _json_int(d["subresult"], "sub"))
    raise InvalidTransaction(f"unknown argument kind {kind!r}")


def _json_input(d: dict[str, Any]) -> CallArg:
    kind = d.get("kind")
    if kind == "PURE":
        try:
            return PureArg(base64.b64decode(d.get("pure") or "", validate=True))
        except ValueError as exc:
            raise InvalidTransaction("pure input is not base64") from exc
    if kind in ("IMMUTABLE_OR_OWNED", "RECEIVING"):
        ref = ObjectRef(
            parse_address(str(d.get("object_id"))),
            _json_int(d.get("version"), "version"),
            parse_digest(str(d.get("digest"))),
        )
        return OwnedArg(ref, receiving=kind == "RECEIVING")
    if kind == "SHARED":
        return SharedArg(
            parse_address(str(d.get("object_id"))),
            _json_int(d.get("version"), "initial shared version"),
            bool(d.get("mutable")),
        )
    raise Unsupported(f"the devnet ledger does not support {kind} inputs")


def _json_command(d: dict[str, Any]) -> Command:
    if "move_call" in d:
        mc = d["move_call"]
        return MoveCall(
            parse_address(str(mc.get("package"))),
            str(mc.get("module")),
            str(mc.get("function")),
            tuple(parse_type(t) for t in mc.get("type_arguments") or []),
            tuple(_json_argument(a) for a in mc.get("arguments") or []),
        )
    if "transfer_objects" in d:
        t = d["transfer_objects"]
        return TransferObjects(
            tuple(_json_argument(a) for a in t.get("objects") or []),
            _json_argument(t.get("address") or {}),
        )
    if "split_coins" in d:
        s = d["split_coins"]
        return SplitCoins(
            _json_argument(s.get("coin") or {}),
            tuple(_json_argument(a) for a in s.get("amounts") or []),
        )
    if "merge_coins" in d:
        m = d["merge_coins"]
        return MergeCoins(
            _json_argument(m.get("coin") or {}),
            tuple(_json_argument(a) for a in m.get("coins_to_merge") or []),
        )
    raise Unsupported(f"the devnet ledger does not support the command {sorted(d)}")


def transaction_from_json(obj: Any) -> TransactionData:
    """A transaction in the gRPC `Transaction` JSON form simulateTransaction accepts.

    Either `{"bcs": {"value": base64 TransactionData}}` or a structured transaction whose gas
    payment may be absent (the ledger then selects gas, as Sui's doGasSelection does).
    """
    if not isinstance(obj, dict):
        raise InvalidTransaction("transaction must be a JSON object")
    d = _norm(obj)
    bcs_part = d.get("bcs")
    if isinstance(bcs_part, dict) and bcs_part.get("value"):
        try:
            raw = base64.b64decode(bcs_part["value"], validate=True)
        except ValueError as exc:
            raise InvalidTransaction("transaction BCS is not base64") from exc
        return decode_transaction_data(raw)
    kind = d.get("kind") or {}
    if kind.get("kind") not in (None, "PROGRAMMABLE_TRANSACTION"):
        raise Unsupported("the devnet ledger simulates programmable transactions only")
    ptb = kind.get("programmable_transaction") or {}
    sender = d.get("sender")
    if not sender:
        raise InvalidTransaction("transaction has no sender")
    gas = None
    gp = d.get("gas_payment")
    if gp and gp.get("objects"):
        gas = GasData(
            tuple(
                ObjectRef(
                    parse_address(o["object_id"]),
                    _json_int(o.get("version"), "version"),
                    parse_digest(o["digest"]),
                )
                for o in gp["objects"]
            ),
            parse_address(gp.get("owner") or sender),
            _json_int(gp.get("price"), "gas price"),
            _json_int(gp.get("budget"), "gas budget"),
        )
    expiration = None
    exp = d.get("expiration")
    if isinstance(exp, dict) and exp.get("epoch") is not None:
        expiration = _json_int(exp.get("epoch"), "expiration epoch")
    elif isinstance(exp, (int, str)):
        expiration = _json_int(exp, "expiration epoch")
    return TransactionData(
        tuple(_json_input(i) for i in ptb.get("inputs") or []),
        tuple(_json_command(c) for c in ptb.get("commands") or []),
        parse_address(str(sender)),
        gas,
        expiration,
        None,
    )


# --- signatures ------------------------------------------------------------------------------

INTENT_TRANSACTION = bytes([0, 0, 0])
_SCHEMES = {0: "Ed25519", 1: "Secp256k1", 2: "Secp256r1", 3: "MultiSig", 5: "ZkLogin", 6: "Passkey"}


def verify_signature(signature: bytes, tx_bytes: bytes) -> bytes:
    """Verify a Sui user signature over TransactionData; return the signer's address."""
    if not signature:
        raise InvalidSignature("empty signature")
    flag = signature[0]
    if flag != 0:
        name = _SCHEMES.get(flag, f"flag {flag}")
        raise InvalidSignature(f"the devnet ledger verifies Ed25519 signatures only, not {name}")
    if len(signature) != 1 + 64 + 32:
        raise InvalidSignature("an Ed25519 signature is flag, 64 signature bytes and a 32-byte key")
    sig, public_key = signature[1:65], signature[65:]
    message = blake2b256(INTENT_TRANSACTION, tx_bytes)
    try:
        nacl.signing.VerifyKey(public_key).verify(message, sig)
    except (nacl.exceptions.BadSignatureError, ValueError) as exc:
        raise InvalidSignature("signature does not verify against the transaction") from exc
    return ed25519_address(public_key)


# --- objects, events, effects ----------------------------------------------------------------


def write_move_object_type(w: Writer, tag: StructTag) -> None:
    """Sui's compressed MoveObjectType: GasCoin, Coin(T) or Other(StructTag)."""
    inner = coin_inner(tag)
    if inner == SUI_TYPE:
        w.variant(1)
    elif inner is not None:
        w.variant(3)
        _write_type_tag(w, inner)
    else:
        w.variant(0)
        write_struct_tag(w, tag)


def encode_object(
    type_: StructTag,
    has_public_transfer: bool,
    version: int,
    contents: bytes,
    owner: Owner,
    previous_transaction: bytes,
    storage_rebate: int,
) -> bytes:
    w = Writer()
    w.variant(0)  # Data::Move
    write_move_object_type(w, type_)
    w.bool(has_public_transfer).u64(version).bytes(contents)
    owner.write(w)
    w.bytes(previous_transaction)
    w.u64(storage_rebate)
    return w.finish()


@dataclass(frozen=True)
class Event:
    package: bytes
    module: str
    sender: bytes
    type_: StructTag
    contents: bytes

    def write(self, w: Writer) -> None:
        w.fixed(self.package).str(self.module).fixed(self.sender)
        write_struct_tag(w, self.type_)
        w.bytes(self.contents)


def event_bcs(event: Event) -> bytes:
    w = Writer()
    event.write(w)
    return w.finish()


def encode_events(events: list[Event]) -> bytes:
    w = Writer().uleb128(len(events))
    for e in events:
        e.write(w)
    return w.finish()


@dataclass(frozen=True)
class MoveLocation:
    package: bytes
    module: str
    function: int
    instruction: int
    function_name: str | None


@dataclass(frozen=True)
class ExecutionFailure:
    """The subset of Sui's ExecutionFailureStatus the ledger produces, with its BCS tag."""

    kind: str  # proto enum name, e.g. MOVE_ABORT
    description: str
    command: int | None = None
    abort: tuple[MoveLocation, int] | None = None
    arg_error: tuple[int, int] | None = None  # (argument index, CommandArgumentError tag)
    payload: tuple[int, ...] = ()  # u16 fields of the CommandArgumentError variant

    _TAGS = {
        "INSUFFICIENT_GAS": 0,
        "INVALID_GAS_OBJECT": 1,
        "INSUFFICIENT_COIN_BALANCE": 7,
        "COIN_BALANCE_OVERFLOW": 8,
        "MOVE_ABORT": 12,
        "FUNCTION_NOT_FOUND": 15,
        "ARITY_MISMATCH": 16,
        "TYPE_ARITY_MISMATCH": 17,
        "COMMAND_ARGUMENT_ERROR": 19,
        "UNUSED_VALUE_WITHOUT_DROP": 21,
        "INVALID_TRANSFER_OBJECT": 23,
    }

    def write(self, w: Writer) -> None:
        w.variant(self._TAGS[self.kind])
        if self.kind == "MOVE_ABORT":
            assert self.abort is not None
            loc, code = self.abort
            w.fixed(loc.package).str(loc.module).u16(loc.function).u16(loc.instruction)
            if loc.function_name is None:
                w.variant(0)
            else:
                w.variant(1).str(loc.function_name)
            w.u64(code)
        elif self.kind == "COMMAND_ARGUMENT_ERROR":
            assert self.arg_error is not None
            idx, tag = self.arg_error
            w.u16(idx).variant(tag)
            for p in self.payload:
                w.u16(p)
        elif self.kind == "UNUSED_VALUE_WITHOUT_DROP":
            assert self.arg_error is not None
            w.u16(self.arg_error[0]).u16(self.arg_error[1])


# CommandArgumentError tags used by the ledger
ARG_TYPE_MISMATCH = 0
ARG_INVALID_BCS_BYTES = 1
ARG_INVALID_USAGE_OF_PURE = 2
ARG_INDEX_OUT_OF_BOUNDS = 4
ARG_SECONDARY_INDEX_OUT_OF_BOUNDS = 5
ARG_INVALID_RESULT_ARITY = 6
ARG_INVALID_GAS_COIN_USAGE = 7
ARG_INVALID_VALUE_USAGE = 8
ARG_INVALID_OBJECT_BY_VALUE = 9
ARG_INVALID_OBJECT_BY_MUT_REF = 10

ARG_ERROR_NAMES = {
    0: "TYPE_MISMATCH",
    1: "INVALID_BCS_BYTES",
    2: "INVALID_USAGE_OF_PURE_ARGUMENT",
    4: "INDEX_OUT_OF_BOUNDS",
    5: "SECONDARY_INDEX_OUT_OF_BOUNDS",
    6: "INVALID_RESULT_ARITY",
    7: "INVALID_GAS_COIN_USAGE",
    8: "INVALID_VALUE_USAGE",
    9: "INVALID_OBJECT_BY_VALUE",
    10: "INVALID_OBJECT_BY_MUT_REF",
}


@dataclass
class ObjectChange:
    """One entry of TransactionEffectsV2.changed_objects."""

    object_id: bytes
    input: tuple[int, bytes, Owner] | None  # (version, digest, owner) before, if it existed
    output: tuple[bytes, Owner] | None  # (digest, owner) after, if it exists at root level
    id_operation: int  # 0 none, 1 created, 2 deleted
    object_type: str | None = None

    def write(self, w: Writer) -> None:
        w.fixed(self.object_id)
        if self.input is None:
            w.variant(0)
        else:
            version, digest, owner = self.input
            w.variant(1).u64(version).bytes(digest)
            owner.write(w)
        if self.output is None:
            w.variant(0)
        else:
            digest, owner = self.output
            w.variant(1).bytes(digest)
            owner.write(w)
        w.variant(self.id_operation)


@dataclass
class Effects:
    """TransactionEffectsV2, kept as fields so the ledger can render BCS and JSON from it."""

    success: bool
    failure: ExecutionFailure | None
    epoch: int
    computation_cost: int
    storage_cost: int
    storage_rebate: int
    non_refundable_storage_fee: int
    transaction_digest: bytes
    gas_object: bytes | None
    events_digest: bytes | None
    dependencies: list[bytes]
    lamport_version: int
    changes: list[ObjectChange]
    unchanged_shared: list[tuple[bytes, int, bytes]] = field(default_factory=list)

    def to_bcs(self) -> bytes:
        w = Writer()
        w.variant(1)  # TransactionEffects::V2
        if self.success:
            w.variant(0)
        else:
            assert self.failure is not None
            w.variant(1)
            self.failure.write(w)
            if self.failure.command is None:
                w.variant(0)
            else:
                w.variant(1).u64(self.failure.command)
        w.u64(self.epoch)
        w.u64(self.computation_cost).u64(self.storage_cost)
        w.u64(self.storage_rebate).u64(self.non_refundable_storage_fee)
        w.bytes(self.transaction_digest)
        changes = sorted(self.changes, key=lambda c: c.object_id)
        if self.gas_object is None:
            w.variant(0)
        else:
            w.variant(1).u32([c.object_id for c in changes].index(self.gas_object))
        if self.events_digest is None:
            w.variant(0)
        else:
            w.variant(1).bytes(self.events_digest)
        w.uleb128(len(self.dependencies))
        for d in self.dependencies:
            w.bytes(d)
        w.u64(self.lamport_version)
        w.uleb128(len(changes))
        for c in changes:
            c.write(w)
        w.uleb128(len(self.unchanged_shared))
        for oid, version, digest in sorted(self.unchanged_shared):
            w.fixed(oid).variant(0).u64(version).bytes(digest)  # ReadOnlyRoot
        w.variant(0)  # aux_data_digest: None
        return w.finish()

    def digest(self) -> bytes:
        return type_digest("TransactionEffects::", self.to_bcs())

    def to_json(self) -> dict[str, Any]:
        """The gRPC `TransactionEffects` message in proto JSON form (what `effectsJson` is)."""
        status: dict[str, Any] = {"success": self.success}
        if self.failure is not None:
            err: dict[str, Any] = {
                "description": self.failure.description,
                "kind": self.failure.kind,
            }
            if self.failure.command is not None:
                err["command"] = str(self.failure.command)
            if self.failure.abort is not None:
                loc, code = self.failure.abort
                location: dict[str, Any] = {
                    "package": fmt_address(loc.package),
                    "module": loc.module,
                    "function": loc.function,
                    "instruction": loc.instruction,
                }
                if loc.function_name:
                    location["functionName"] = loc.function_name
                err["abort"] = {"abortCode": str(code), "location": location}
            if self.failure.kind == "COMMAND_ARGUMENT_ERROR" and self.failure.arg_error:
                idx, tag = self.failure.arg_error
                err["commandArgumentError"] = {"argument": idx, "kind": ARG_ERROR_NAMES[tag]}
            status["error"] = err
        changes = sorted(self.changes, key=lambda c: c.object_id)
        out: dict[str, Any] = {
            "digest": digest_str(self.digest()),
            "version": 2,
            "status": status,
            "epoch": str(self.epoch),
            "gasUsed": {
                "computationCost": str(self.computation_cost),
                "storageCost": str(self.storage_cost),
                "storageRebate": str(self.storage_rebate),
                "nonRefundableStorageFee": str(self.non_refundable_storage_fee),
            },
            "transactionDigest": digest_str(self.transaction_digest),
            "dependencies": [digest_str(d) for d in self.dependencies],
            "lamportVersion": str(self.lamport_version),
            "changedObjects": [self._change_json(c) for c in changes],
            "unchangedConsensusObjects": [
                {
                    "kind": "READ_ONLY_ROOT",
                    "objectId": fmt_address(oid),
                    "version": str(version),
                    "digest": digest_str(digest),
                }
                for oid, version, digest in sorted(self.unchanged_shared)
            ],
        }
        if self.gas_object is not None:
            gas = next(c for c in changes if c.object_id == self.gas_object)
            out["gasObject"] = self._change_json(gas)
        if self.events_digest is not None:
            out["eventsDigest"] = digest_str(self.events_digest)
        return out

    def _change_json(self, c: ObjectChange) -> dict[str, Any]:
        d: dict[str, Any] = {"objectId": fmt_address(c.object_id)}
        if c.input is None:
            d["inputState"] = "INPUT_OBJECT_STATE_DOES_NOT_EXIST"
        else:
            version, digest, owner = c.input
            d.update(
                inputState="INPUT_OBJECT_STATE_EXISTS",
                inputVersion=str(version),
                inputDigest=digest_str(digest),
                inputOwner=owner.to_json(),
            )
        if c.output is None:
            d["outputState"] = "OUTPUT_OBJECT_STATE_DOES_NOT_EXIST"
        else:
            digest, owner = c.output
            d.update(
                outputState="OUTPUT_OBJECT_STATE_OBJECT_WRITE",
                outputVersion=str(self.lamport_version),
                outputDigest=digest_str(digest),
                outputOwner=owner.to_json(),
            )
        d["idOperation"] = ["NONE", "CREATED", "DELETED"][c.id_operation]
        if c.object_type:
            d["objectType"] = c.object_type
        return d


def _arg_json(a: Argument) -> dict[str, Any]:
    if a.kind == 0:
        return {"kind": "GAS"}
    if a.kind == 1:
        return {"kind": "INPUT", "input": a.index}
    if a.kind == 2:
        return {"kind": "RESULT", "result": a.index}
    return {"kind": "RESULT", "result": a.index, "subresult": a.sub}


def _input_json(i: CallArg) -> dict[str, Any]:
    if isinstance(i, PureArg):
        return {"kind": "PURE", "pure": base64.b64encode(i.data).decode()}
    if isinstance(i, OwnedArg):
        return {
            "kind": "RECEIVING" if i.receiving else "IMMUTABLE_OR_OWNED",
            "objectId": fmt_address(i.ref.object_id),
            "version": str(i.ref.version),
            "digest": digest_str(i.ref.digest),
        }
    return {
        "kind": "SHARED",
        "objectId": fmt_address(i.object_id),
        "version": str(i.initial_shared_version),
        "mutable": i.mutable,
    }


def _command_json(c: Command) -> dict[str, Any]:
    if isinstance(c, MoveCall):
        return {
            "moveCall": {
                "package": fmt_address(c.package),
                "module": c.module,
                "function": c.function,
                "typeArguments": [format_type(t) for t in c.type_args],
                "arguments": [_arg_json(a) for a in c.args],
            }
        }
    if isinstance(c, TransferObjects):
        return {
            "transferObjects": {
                "objects": [_arg_json(a) for a in c.objects],
                "address": _arg_json(c.address),
            }
        }
    if isinstance(c, SplitCoins):
        return {
            "splitCoins": {"coin": _arg_json(c.coin), "amounts": [_arg_json(a) for a in c.amounts]}
        }
    if isinstance(c, MergeCoins):
        return {
            "mergeCoins": {
                "coin": _arg_json(c.coin),
                "coinsToMerge": [_arg_json(a) for a in c.sources],
            }
        }
    return {}


def transaction_json(tx: TransactionData, digest: bytes) -> dict[str, Any]:
    """The gRPC `Transaction` message in proto JSON form (what `transactionJson` is)."""
    out: dict[str, Any] = {
        "digest": digest_str(digest),
        "version": 1,
        "kind": {
            "kind": "PROGRAMMABLE_TRANSACTION",
            "programmableTransaction": {
                "inputs": [_input_json(i) for i in tx.inputs],
                "commands": [_command_json(c) for c in tx.commands],
            },
        },
        "sender": fmt_address(tx.sender),
    }
    if tx.gas is not None:
        out["gasPayment"] = {
            "objects": [
                {
                    "objectId": fmt_address(r.object_id),
                    "version": str(r.version),
                    "digest": digest_str(r.digest),
                }
                for r in tx.gas.payment
            ],
            "owner": fmt_address(tx.gas.owner),
            "price": str(tx.gas.price),
            "budget": str(tx.gas.budget),
        }
    if tx.expiration_epoch is None:
        out["expiration"] = {"kind": "NONE"}
    else:
        out["expiration"] = {"kind": "EPOCH", "epoch": str(tx.expiration_epoch)}
    return out

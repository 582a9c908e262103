"""Checking and executing programmable transactions against the ledger's state.

A transaction goes through two stages, as on Sui:

1. Input checks (`TransactionRejected` on failure; nothing is applied, no gas is charged):
   every command is one the ledger implements; every owned input and gas coin is referenced at
   its current version and digest (all stale references are reported together) and belongs to
   the sender (gas: to the gas owner); shared inputs are shared at the given initial version;
   the gas price is at least the reference price, the budget within bounds, and the gas coins
   hold at least the budget; the expiration epoch has not passed.
2. Execution on a working copy of the touched objects. A Move abort or a command error ends it
   with a failure status: every change is discarded except that the gas is charged and every
   owned or mutable shared input gets its new version, as on Sui.

Gas follows Sui's structure with a simple cost model: computation is a flat 1000 units at the
transaction's gas price; storage costs 7600 MIST per byte of each written object (its Object BCS
plus 98 bytes of metadata, Sui's per-object overhead); deleting or rewriting an object refunds 99%
of the rebate stored with it. The result is charged to the first gas coin after the others are
merged into it. Versions follow Sui's Lamport rule: every written object gets the maximum version
of all inputs (including gas coins and shared objects) plus one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from . import move
from .errors import (
    BcsError,
    GasError,
    InvalidTransaction,
    ObjectNotFound,
    StaleObjects,
    TransactionRejected,
    Unsupported,
)
from .move import FunctionSig, Layout, Struct, WalrusTypes
from .store import Store, StoredObject
from .suitypes import (
    ADDRESS_OWNER,
    ARG_INDEX_OUT_OF_BOUNDS,
    ARG_INVALID_BCS_BYTES,
    ARG_INVALID_GAS_COIN_USAGE,
    ARG_INVALID_OBJECT_BY_MUT_REF,
    ARG_INVALID_OBJECT_BY_VALUE,
    ARG_INVALID_RESULT_ARITY,
    ARG_INVALID_USAGE_OF_PURE,
    ARG_INVALID_VALUE_USAGE,
    ARG_SECONDARY_INDEX_OUT_OF_BOUNDS,
    ARG_TYPE_MISMATCH,
    IMMUTABLE,
    OBJECT_OWNER,
    SHARED,
    SUI_FRAMEWORK,
    Argument,
    Effects,
    Event,
    ExecutionFailure,
    MergeCoins,
    MoveCall,
    MoveLocation,
    ObjectChange,
    OwnedArg,
    Owner,
    PureArg,
    SplitCoins,
    StructTag,
    TransactionData,
    TransferObjects,
    VectorTag,
    coin_inner,
    derive_dynamic_field_id,
    derive_object_id,
    digest_str,
    encode_events,
    fmt_address,
    format_type,
    type_digest,
)

log = logging.getLogger(__name__)

COMPUTATION_UNITS = 1_000
STORAGE_PRICE_PER_BYTE = 7_600
OBJECT_OVERHEAD_BYTES = 98
REBATE_BPS = 9_900
MAX_GAS_BUDGET = 50_000_000_000
BYTES_PER_UNIT = 1024 * 1024

# The protocol limits the ledger enforces and reports in protocolConfigs (Sui's values).
PROTOCOL_LIMITS = {
    "max_tx_gas": MAX_GAS_BUDGET,
    "max_gas_price": 100_000,
    "max_input_objects": 2048,
    "max_arguments": 512,
    "max_programmable_tx_commands": 1024,
    "max_pure_argument_size": 16 * 1024,
    "max_tx_size_bytes": 128 * 1024,
    "max_type_arguments": 16,
    "base_tx_cost_fixed": COMPUTATION_UNITS,
    "storage_rebate_rate": REBATE_BPS,
}

# Walrus and Sui framework abort codes the ledger reproduces
E_NOT_CERTIFIED = 0  # walrus::blob
E_BLOB_NOT_DELETABLE = 1  # walrus::blob
E_RESOURCE_BOUNDS = 2  # walrus::blob
E_MISSING_METADATA = 8  # walrus::blob
E_STORAGE_EXCEEDED = 1  # walrus::system_state_inner
E_INVALID_EPOCHS_AHEAD = 2  # walrus::system_state_inner
E_BALANCE_NOT_ENOUGH = 2  # sui::balance
E_KEY_DOES_NOT_EXIST = 1  # sui::vec_map

METADATA_KEY = b"metadata"
METADATA_KEY_TYPE = VectorTag("u8")


def storage_units(size: int) -> int:
    return -(-size // BYTES_PER_UNIT)


def object_storage_cost(obj: StoredObject) -> int:
    return (len(obj.bcs()) + OBJECT_OVERHEAD_BYTES) * STORAGE_PRICE_PER_BYTE


def new_version(
    oid: bytes,
    version: int,
    owner: Owner,
    type_: StructTag,
    public: bool,
    contents: bytes,
    digest: bytes,
) -> StoredObject:
    """An object version written by transaction `digest`, with the storage rebate its size
    earns (what storing it cost)."""
    draft = StoredObject(oid, version, owner, type_, public, contents, digest, 0)
    return replace(draft, storage_rebate=object_storage_cost(draft))


class MoveFailure(Exception):
    """Ends execution with a failure status (the transaction is still committed)."""

    def __init__(self, failure: ExecutionFailure) -> None:
        super().__init__(failure.description)
        self.failure = failure


@dataclass
class Live:
    """An object as the executing transaction sees it."""

    id: bytes
    layout: Struct
    value: Any
    owner: Owner | None  # None while the transaction holds it by value
    original: StoredObject | None  # None if created or unwrapped by this transaction
    child: bool = False  # a dynamic field (owned by its parent object)

    @property
    def type_(self) -> StructTag:
        return self.layout.tag


@dataclass(frozen=True)
class ObjectValue:
    id: bytes


@dataclass(frozen=True)
class PureValue:
    data: bytes


@dataclass(frozen=True)
class PlainValue:
    layout: Layout
    value: Any


Value = ObjectValue | PureValue | PlainValue


@dataclass
class EventOut:
    event: Event
    json: Any


@dataclass
class CommandOutput:
    type_: str
    bcs: bytes
    json: Any


@dataclass
class Outcome:
    """What executing (or simulating) a transaction produced."""

    digest: bytes
    effects: Effects
    events: list[EventOut]
    inputs: dict[bytes, StoredObject]  # changed objects before, by id
    outputs: dict[bytes, StoredObject]  # written objects after, by id
    deleted: list[bytes]
    balance_changes: list[tuple[bytes, str, int]]
    command_results: list[tuple[list[CommandOutput], list[CommandOutput]]]
    # Walrus Blob objects written: object id -> (blob id, end epoch); and those burned
    blob_index: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    burned: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.effects.success


@dataclass
class ChainView:
    """What execution needs from the ledger besides the store."""

    store: Store
    types: WalrusTypes
    functions: dict[tuple[str, str], FunctionSig]
    system_id: bytes
    reference_gas_price: int
    epoch: int


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class Execution:
    """One transaction's run: input checks, then the commands on a working copy."""

    def __init__(
        self,
        view: ChainView,
        tx: TransactionData,
        digest: bytes,
        *,
        mock_gas_balance: int | None = None,
    ) -> None:
        self.view = view
        self.t = view.types
        self.tx = tx
        self.digest = digest
        self.mock_gas_balance = mock_gas_balance
        self.inputs: list[Value | None] = []
        self.results: list[list[Value | None]] = []
        self.input_objects: dict[bytes, StoredObject] = {}  # owned and shared inputs, by id
        self.mutable_shared: set[bytes] = set()
        self.readonly_shared: set[bytes] = set()
        self.gas_coins: list[StoredObject] = []
        self.live: dict[bytes, Live] = {}
        self.dead: dict[bytes, bool] = {}  # deleted ids -> existed at root level before
        self.loaded_children: dict[bytes, StoredObject] = {}
        self.dirty: set[bytes] = set()
        self.created_count = 0
        self.events: list[EventOut] = []
        self.command_results: list[tuple[list[CommandOutput], list[CommandOutput]]] = []
        self.cmd = 0
        self.burned: dict[bytes, tuple[bytes, int]] = {}

    # ==== stage 1: input checks ====================================================

    def check(self) -> None:
        self._check_commands()
        self._load_inputs()
        self._check_gas()
        if self.tx.expiration_epoch is not None and self.view.epoch > self.tx.expiration_epoch:
            raise TransactionRejected(
                f"Transaction expired: expiration epoch {self.tx.expiration_epoch}, "
                f"current epoch {self.view.epoch}"
            )

    def _check_commands(self) -> None:
        if not self.tx.commands:
            raise InvalidTransaction("a programmable transaction needs at least one command")
        limits = PROTOCOL_LIMITS
        if self.tx.raw is not None and len(self.tx.raw) > limits["max_tx_size_bytes"]:
            raise InvalidTransaction(f"transaction larger than {limits['max_tx_size_bytes']} bytes")
        if len(self.tx.commands) > limits["max_programmable_tx_commands"]:
            raise InvalidTransaction("too many commands")
        if len(self.tx.inputs) > limits["max_input_objects"]:
            raise InvalidTransaction("too many inputs")
        for arg in self.tx.inputs:
            if isinstance(arg, PureArg) and len(arg.data) > limits["max_pure_argument_size"]:
                raise InvalidTransaction("a pure argument is too large")
        for c in self.tx.commands:
            if isinstance(c, MoveCall):
                if len(c.args) > limits["max_arguments"]:
                    raise InvalidTransaction("too many arguments to a Move call")
                if len(c.type_args) > limits["max_type_arguments"]:
                    raise InvalidTransaction("too many type arguments to a Move call")
                self._function(c)

    def _function(self, c: MoveCall) -> FunctionSig:
        if c.package != self.t.pkg:
            raise Unsupported(
                f"the walrusfs devnet ledger does not execute {c.target()}: it implements "
                "only Walrus's system::extend_blob, system::delete_blob, "
                "blob::insert_or_update_metadata_pair, blob::remove_metadata_pair and blob::burn"
            )
        sig = self.view.functions.get((c.module, c.function))
        if sig is None:
            what = "module" if c.module not in move.WALRUS_MODULES else "function"
            raise Unsupported(
                f"the walrusfs devnet ledger does not execute {c.target()} (unknown or "
                f"unsupported {what}); supported: "
                + ", ".join(f"{m}::{f}" for m, f in sorted(self.view.functions))
            )
        return sig

    def _load_inputs(self) -> None:
        stale: list[tuple[str, int, str, int]] = []
        seen: set[bytes] = set()
        store = self.view.store
        for arg in self.tx.inputs:
            if isinstance(arg, PureArg):
                self.inputs.append(PureValue(arg.data))
                continue
            oid = arg.ref.object_id if isinstance(arg, OwnedArg) else arg.object_id
            if oid in seen:
                raise InvalidTransaction(f"object {fmt_address(oid)} is used twice as an input")
            seen.add(oid)
            obj = store.get(oid)
            if obj is None:
                raise ObjectNotFound(f"Could not find the referenced object {fmt_address(oid)}")
            if isinstance(arg, OwnedArg):
                if arg.receiving:
                    raise Unsupported("the devnet ledger does not support Receiving inputs")
                if obj.owner.kind == SHARED:
                    raise InvalidTransaction(
                        f"object {fmt_address(oid)} is shared and must be passed as a shared input"
                    )
                if obj.owner.kind == OBJECT_OWNER:
                    raise InvalidTransaction(
                        f"object {fmt_address(oid)} is owned by object "
                        f"{fmt_address(obj.owner.address or b'')} and cannot be an input"
                    )
                if (obj.version, obj.digest) != (arg.ref.version, arg.ref.digest):
                    stale.append(
                        (fmt_address(oid), arg.ref.version, digest_str(arg.ref.digest), obj.version)
                    )
                elif obj.owner.kind == ADDRESS_OWNER and obj.owner.address != self.tx.sender:
                    raise InvalidTransaction(
                        f"Transaction was not signed by the correct sender: object "
                        f"{fmt_address(oid)} is owned by account address "
                        f"{fmt_address(obj.owner.address or b'')}, but given owner/signer address "
                        f"is {fmt_address(self.tx.sender)}"
                    )
            else:
                if obj.owner.kind != SHARED:
                    raise InvalidTransaction(f"object {fmt_address(oid)} is not shared")
                if obj.owner.initial_shared_version != arg.initial_shared_version:
                    raise InvalidTransaction(
                        f"shared object {fmt_address(oid)} has initial shared version "
                        f"{obj.owner.initial_shared_version}, not {arg.initial_shared_version}"
                    )
                (self.mutable_shared if arg.mutable else self.readonly_shared).add(oid)
            self.input_objects[oid] = obj
            layout = self._layout(obj)
            self.live[oid] = Live(oid, layout, move.decode(layout, obj.contents), obj.owner, obj)
            self.inputs.append(ObjectValue(oid))
        if self.tx.gas is not None and self.mock_gas_balance is None:
            for ref in self.tx.gas.payment:
                obj = store.get(ref.object_id)
                if obj is None:
                    raise ObjectNotFound(
                        f"Could not find the referenced gas object {fmt_address(ref.object_id)}"
                    )
                if ref.object_id in seen:
                    raise InvalidTransaction(
                        f"gas coin {fmt_address(ref.object_id)} is also a transaction input"
                    )
                seen.add(ref.object_id)
                if (obj.version, obj.digest) != (ref.version, ref.digest):
                    stale.append(
                        (
                            fmt_address(ref.object_id),
                            ref.version,
                            digest_str(ref.digest),
                            obj.version,
                        )
                    )
                    continue
                if obj.type_ != self.t.sui_coin.tag:
                    raise GasError(f"gas object {fmt_address(obj.id)} is not a Coin<SUI>")
                if obj.owner != Owner.address_owner(self.tx.gas.owner):
                    raise GasError(
                        f"gas coin {fmt_address(obj.id)} is not owned by the gas owner "
                        f"{fmt_address(self.tx.gas.owner)}"
                    )
                self.gas_coins.append(obj)
        if stale:
            lines = [
                f"Object ID {oid} Version {version:#x} Digest {digest} is not available for "
                f"consumption, current version: {current:#x}"
                for oid, version, digest, current in stale
            ]
            raise StaleObjects(
                "Transaction validator signing failed due to issues with transaction inputs, "
                "please review the errors and try again:\n- " + "\n- ".join(lines),
                stale,
            )

    def _layout(self, obj: StoredObject) -> Struct:
        layout = self.t.layout_of(obj.type_)
        if not isinstance(layout, Struct):
            raise Unsupported(f"the devnet ledger does not know objects of type {obj.type_str}")
        return layout

    def _check_gas(self) -> None:
        gas = self.tx.gas
        if gas is None:
            return
        if gas.price < self.view.reference_gas_price:
            raise GasError(
                f"Gas price {gas.price} under reference gas price (RGP) "
                f"{self.view.reference_gas_price}"
            )
        minimum = COMPUTATION_UNITS * gas.price
        if gas.budget < minimum:
            raise GasError(f"Gas budget: {gas.budget} is lower than min: {minimum}.")
        if gas.budget > MAX_GAS_BUDGET:
            raise GasError(f"Gas budget: {gas.budget} is higher than max: {MAX_GAS_BUDGET}.")
        if gas.price > PROTOCOL_LIMITS["max_gas_price"]:
            raise GasError(
                f"Gas price {gas.price} is higher than max {PROTOCOL_LIMITS['max_gas_price']}"
            )
        if self.mock_gas_balance is not None:
            return
        if not gas.payment:
            raise GasError("the devnet ledger needs gas coins (address balances are not supported)")
        total = sum(self._coin_value(c) for c in self.gas_coins)
        if total < gas.budget:
            raise GasError(
                f"Balance of gas object {fmt_address(self.gas_coins[0].id)} is lower than the "
                f"needed amount: {gas.budget}"
            )

    def _coin_value(self, obj: StoredObject) -> int:
        return int(move.decode(self.t.sui_coin, obj.contents)["balance"])

    # ==== stage 2: execution ========================================================

    def run(self) -> Outcome:
        self.check()
        gas_id, budget = self._prepare_gas()
        failure: ExecutionFailure | None = None
        try:
            for index, command in enumerate(self.tx.commands):
                self.cmd = index
                self.results.append(self._command(command))
            self._check_unused()
        except MoveFailure as exc:
            failure = exc.failure
        return self._finish(failure, gas_id, budget)

    def _prepare_gas(self) -> tuple[bytes | None, int]:
        """Smash the gas coins into the first and set the budget aside, as Sui does."""
        gas = self.tx.gas
        if gas is None or self.mock_gas_balance is not None:
            return None, gas.budget if gas is not None else MAX_GAS_BUDGET
        primary = self.gas_coins[0]
        total = sum(self._coin_value(c) for c in self.gas_coins)
        value = move.decode(self.t.sui_coin, primary.contents)
        value["balance"] = total - gas.budget
        self.live[primary.id] = Live(primary.id, self.t.sui_coin, value, primary.owner, primary)
        return primary.id, gas.budget

    def fail(self, kind: str, description: str, **extra: Any) -> MoveFailure:
        return MoveFailure(
            ExecutionFailure(
                kind, f"{description} in {_ordinal(self.cmd + 1)} command.", self.cmd, **extra
            )
        )

    def arg_error(self, index: int, tag: int, why: str, *payload: int) -> MoveFailure:
        return self.fail(
            "COMMAND_ARGUMENT_ERROR",
            f"CommandArgumentError {{ arg_idx: {index}, kind: {why} }}",
            arg_error=(index, tag),
            payload=payload,
        )

    def abort(self, package: bytes, module: str, function: str, code: int, why: str) -> MoveFailure:
        loc = MoveLocation(package, module, 0, 0, function)
        return self.fail(
            "MOVE_ABORT",
            f"MoveAbort(MoveLocation {{ module: {fmt_address(package)}::{module}, function_name: "
            f"{function} }}, {code}) ({why})",
            abort=(loc, code),
        )

    # --- argument access ---

    def _slot(self, arg: Argument, index: int) -> tuple[list[Value | None], int]:
        if arg.kind == 0:
            raise self.arg_error(index, ARG_TYPE_MISMATCH, "GasCoin where it is not allowed")
        if arg.kind == 1:
            if arg.index >= len(self.inputs):
                raise self.arg_error(index, ARG_INDEX_OUT_OF_BOUNDS, "IndexOutOfBounds", arg.index)
            return self.inputs, arg.index
        if arg.index >= len(self.results):
            raise self.arg_error(index, ARG_INDEX_OUT_OF_BOUNDS, "IndexOutOfBounds", arg.index)
        results = self.results[arg.index]
        sub = 0 if arg.kind == 2 else arg.sub
        if arg.kind == 2 and len(results) != 1:
            raise self.arg_error(index, ARG_INVALID_RESULT_ARITY, "InvalidResultArity", arg.index)
        if sub >= len(results):
            raise self.arg_error(
                index,
                ARG_SECONDARY_INDEX_OUT_OF_BOUNDS,
                "SecondaryIndexOutOfBounds",
                arg.index,
                sub,
            )
        return results, sub

    def _gas_live(self, index: int) -> Live:
        gas = self.tx.gas
        if gas is None or not gas.payment or self.mock_gas_balance is not None:
            raise self.arg_error(index, ARG_TYPE_MISMATCH, "no gas coin to use")
        return self.live[gas.payment[0].object_id]

    def _object(
        self, arg: Argument, index: int, expected: StructTag | None, *, mutable: bool
    ) -> Live:
        """Borrow an object argument (by & or &mut)."""
        if arg.kind == 0:
            live = self._gas_live(index)
            self._check_type(live, index, expected)
        else:
            _slots, _i, live = self._object_in_slot(arg, index, expected)
        immutable = live.id in self.readonly_shared or (
            live.original is not None and live.original.owner.kind == IMMUTABLE
        )
        if mutable and arg.kind == 1 and immutable:
            raise self.arg_error(index, ARG_INVALID_OBJECT_BY_MUT_REF, "InvalidObjectByMutRef")
        return live

    def _take(
        self, arg: Argument, index: int, expected: StructTag | None, *, allow_gas: bool = False
    ) -> Live:
        """Move an object argument out of its slot (by value)."""
        if arg.kind == 0:
            if not allow_gas:
                raise self.arg_error(index, ARG_INVALID_GAS_COIN_USAGE, "InvalidGasCoinUsage")
            live = self._gas_live(index)
            live.owner = None
            return live
        slots, i, live = self._object_in_slot(arg, index, expected)
        if arg.kind == 1 and (
            live.id in self.mutable_shared
            or live.id in self.readonly_shared
            or (live.original is not None and live.original.owner.kind == IMMUTABLE)
        ):
            raise self.arg_error(index, ARG_INVALID_OBJECT_BY_VALUE, "InvalidObjectByValue")
        slots[i] = None
        live.owner = None
        return live

    def _object_in_slot(
        self, arg: Argument, index: int, expected: StructTag | None
    ) -> tuple[list[Value | None], int, Live]:
        """The object an input or result argument holds: (its slots, its index, the object),
        checked to be there, to be an object, and to be of the expected type."""
        slots, i = self._slot(arg, index)
        v = slots[i]
        if v is None:
            raise self.arg_error(index, ARG_INVALID_VALUE_USAGE, "value already moved")
        if not isinstance(v, ObjectValue):
            raise self.arg_error(index, ARG_TYPE_MISMATCH, "TypeMismatch (not an object)")
        live = self.live[v.id]
        self._check_type(live, index, expected)
        return slots, i, live

    def _check_type(self, live: Live, index: int, expected: StructTag | None) -> None:
        if expected is not None and live.type_ != expected:
            raise self.arg_error(
                index, ARG_TYPE_MISMATCH, f"TypeMismatch ({live.type_.name} for {expected.name})"
            )

    def _pure(self, arg: Argument, index: int, layout: Layout) -> Any:
        if arg.kind == 0:
            raise self.arg_error(index, ARG_TYPE_MISMATCH, "TypeMismatch (gas coin)")
        slots, i = self._slot(arg, index)
        v = slots[i]
        if v is None:
            raise self.arg_error(index, ARG_INVALID_VALUE_USAGE, "value already moved")
        if isinstance(v, PlainValue):
            if v.layout != layout:
                raise self.arg_error(index, ARG_TYPE_MISMATCH, "TypeMismatch")
            return v.value
        if isinstance(v, ObjectValue):
            raise self.arg_error(index, ARG_INVALID_USAGE_OF_PURE, "TypeMismatch (object)")
        try:
            return move.decode(layout, v.data)
        except BcsError as exc:
            raise self.arg_error(index, ARG_INVALID_BCS_BYTES, f"InvalidBCSBytes ({exc})") from exc

    # --- commands ---

    def _command(self, c: Any) -> list[Value | None]:
        if isinstance(c, MoveCall):
            return self._move_call(c)
        if isinstance(c, SplitCoins):
            return self._split(c)
        if isinstance(c, MergeCoins):
            self._merge(c)
            return []
        if isinstance(c, TransferObjects):
            self._transfer(c)
            return []
        raise Unsupported(f"the devnet ledger does not support {c}")  # checked before

    def _output(self, live: Live) -> CommandOutput:
        return CommandOutput(
            format_type(live.type_),
            move.encode(live.layout, live.value),
            move.to_json(live.layout, live.value),
        )

    def _split(self, c: SplitCoins) -> list[Value | None]:
        coin = self._object(c.coin, 0, None, mutable=True)
        if coin_inner(coin.type_) is None:
            raise self.arg_error(0, ARG_TYPE_MISMATCH, "TypeMismatch (not a coin)")
        out: list[Value | None] = []
        returns: list[CommandOutput] = []
        for j, amount_arg in enumerate(c.amounts, start=1):
            amount = self._pure(amount_arg, j, move.U64)
            if coin.value["balance"] < amount:
                raise self.fail("INSUFFICIENT_COIN_BALANCE", "InsufficientCoinBalance")
            coin.value["balance"] -= amount
            new = self._create(coin.layout, {"balance": amount})
            out.append(ObjectValue(new.id))
            returns.append(self._output(new))
        self.command_results.append((returns, [self._output(coin)]))
        return out

    def _merge(self, c: MergeCoins) -> None:
        target = self._object(c.coin, 0, None, mutable=True)
        if coin_inner(target.type_) is None:
            raise self.arg_error(0, ARG_TYPE_MISMATCH, "TypeMismatch (not a coin)")
        for j, src_arg in enumerate(c.sources, start=1):
            src = self._take(src_arg, j, target.type_)
            if src.id == target.id:
                raise self.arg_error(j, ARG_INVALID_VALUE_USAGE, "coin merged into itself")
            total = target.value["balance"] + src.value["balance"]
            if total >= 1 << 64:
                raise self.fail("COIN_BALANCE_OVERFLOW", "CoinBalanceOverflow")
            target.value["balance"] = total
            self._delete(src)
        self.command_results.append(([], [self._output(target)]))

    def _transfer(self, c: TransferObjects) -> None:
        n = len(c.objects)
        recipient = self._pure(c.address, n, move.ADDRESS)
        for j, arg in enumerate(c.objects):
            live = self._take(arg, j, None, allow_gas=True)
            if live.child or live.type_ == self.t.system.tag:
                raise self.fail("INVALID_TRANSFER_OBJECT", "InvalidTransferObject")
            live.owner = Owner.address_owner(recipient)
        self.command_results.append(([], []))

    def _create(
        self,
        layout: Struct,
        fields: dict[str, Any],
        *,
        child_of: bytes | None = None,
        object_id: bytes | None = None,
    ) -> Live:
        oid = object_id or derive_object_id(self.digest, self.created_count)
        if object_id is None:
            self.created_count += 1
        value = dict(fields)
        if "id" in dict(layout.fields):
            value = {"id": oid, **fields}
        owner = Owner.object_owner(child_of) if child_of is not None else None
        live = Live(oid, layout, value, owner, None, child=child_of is not None)
        self.live[oid] = live
        return live

    def _delete(self, live: Live) -> None:
        existed = live.original is not None and (not live.child or live.id in self.loaded_children)
        self.live.pop(live.id, None)
        self.dead[live.id] = existed

    # --- dynamic fields ---

    def _child(self, parent: bytes, key_type: Any, key_bcs: bytes, layout: Struct) -> Live | None:
        cid = derive_dynamic_field_id(parent, key_type, key_bcs)
        if cid in self.live:
            return self.live[cid]
        if cid in self.dead:
            return None
        obj = self.view.store.get(cid)
        if obj is None:
            return None
        if obj.owner != Owner.object_owner(parent) or obj.type_ != layout.tag:
            raise Unsupported(
                f"unexpected dynamic field {fmt_address(cid)} of {fmt_address(parent)}"
            )
        self.loaded_children[cid] = obj
        live = Live(cid, layout, move.decode(layout, obj.contents), obj.owner, obj, child=True)
        self.live[cid] = live
        return live

    def _system_inner(self, system: Live) -> Live:
        version = int(system.value["version"])
        inner = self._child(
            system.id, "u64", version.to_bytes(8, "little"), self.t.system_inner_field
        )
        if inner is None:
            raise Unsupported("the Walrus System object has no inner state")
        return inner

    def _metadata(self, blob: Live) -> Live | None:
        return self._child(
            blob.id, METADATA_KEY_TYPE, b"\x08" + METADATA_KEY, self.t.metadata_field
        )

    # --- Walrus functions ---

    def _move_call(self, c: MoveCall) -> list[Value | None]:
        sig = self._function(c)
        if c.type_args:
            raise self.fail("TYPE_ARITY_MISMATCH", "TypeArityMismatch")
        if len(c.args) != len(sig.params):
            raise self.fail("ARITY_MISMATCH", "ArityMismatch")
        handler = getattr(self, f"_walrus_{c.module}_{c.function}")
        returned: list[Value | None] = handler(c.args)
        return returned

    def _emit(self, layout: Struct, value: dict[str, Any]) -> None:
        call = self.tx.commands[self.cmd]
        assert isinstance(call, MoveCall)
        event = Event(
            self.t.pkg, call.module, self.tx.sender, layout.tag, move.encode(layout, value)
        )
        self.events.append(EventOut(event, move.to_json(layout, value)))

    def _walrus_system_extend_blob(self, args: tuple[Argument, ...]) -> list[Value | None]:
        t = self.t
        system = self._object(args[0], 0, t.system.tag, mutable=True)
        blob = self._object(args[1], 1, t.blob.tag, mutable=True)
        epochs = self._pure(args[2], 2, move.U32)
        payment = self._object(args[3], 3, t.wal_coin.tag, mutable=True)
        inner_field = self._system_inner(system)
        inner = inner_field.value["value"]
        epoch = inner["committee"]["epoch"]
        b = blob.value
        if b["certified_epoch"] is None:
            raise self.abort(
                t.pkg,
                "blob",
                "assert_certified_not_expired",
                E_NOT_CERTIFIED,
                "the blob is not certified",
            )
        if epoch >= b["storage"]["end_epoch"]:
            raise self.abort(
                t.pkg,
                "blob",
                "assert_certified_not_expired",
                E_RESOURCE_BOUNDS,
                "the blob has expired",
            )
        start_offset = b["storage"]["end_epoch"] - epoch
        end_offset = start_offset + epochs
        ring = inner["future_accounting"]
        if epochs == 0 or end_offset > ring["length"]:
            raise self.abort(
                t.pkg,
                "system_state_inner",
                "extend_blob",
                E_INVALID_EPOCHS_AHEAD,
                f"the blob would end more than {ring['length']} epochs ahead",
            )
        size = b["storage"]["storage_size"]
        per_epoch = inner["storage_price_per_unit_size"] * storage_units(size)
        for i in range(start_offset, end_offset):
            if payment.value["balance"] < per_epoch:
                raise self.abort(
                    SUI_FRAMEWORK,
                    "balance",
                    "split",
                    E_BALANCE_NOT_ENOUGH,
                    "the WAL coin cannot pay for the extension",
                )
            payment.value["balance"] -= per_epoch
            slot = ring["ring_buffer"][(i + ring["current_index"]) % ring["length"]]
            slot["rewards_to_distribute"] += per_epoch
        for i in range(start_offset, end_offset):
            slot = ring["ring_buffer"][(i + ring["current_index"]) % ring["length"]]
            slot["used_capacity"] += size
            if slot["used_capacity"] > inner["total_capacity_size"]:
                raise self.abort(
                    t.pkg,
                    "system_state_inner",
                    "extend_blob",
                    E_STORAGE_EXCEEDED,
                    "not enough storage capacity",
                )
        b["storage"]["end_epoch"] += epochs
        self.dirty.add(inner_field.id)
        self._emit(
            t.blob_certified,
            {
                "epoch": b["certified_epoch"],
                "blob_id": b["blob_id"],
                "end_epoch": b["storage"]["end_epoch"],
                "deletable": b["deletable"],
                "object_id": blob.id,
                "is_extension": True,
            },
        )
        self.command_results.append(
            ([], [self._output(system), self._output(blob), self._output(payment)])
        )
        return []

    def _walrus_system_delete_blob(self, args: tuple[Argument, ...]) -> list[Value | None]:
        t = self.t
        system = self._object(args[0], 0, t.system.tag, mutable=False)
        blob = self._take(args[1], 1, t.blob.tag)
        epoch = self._system_inner(system).value["value"]["committee"]["epoch"]
        meta = self._metadata(blob)
        if meta is not None:
            self._delete(meta)
        b = blob.value
        if not b["deletable"]:
            raise self.abort(
                t.pkg, "blob", "delete", E_BLOB_NOT_DELETABLE, "the blob is not deletable"
            )
        if b["storage"]["end_epoch"] <= epoch:
            raise self.abort(t.pkg, "blob", "delete", E_RESOURCE_BOUNDS, "the blob has expired")
        self._delete(blob)
        self._emit(
            t.blob_deleted,
            {
                "epoch": epoch,
                "blob_id": b["blob_id"],
                "end_epoch": b["storage"]["end_epoch"],
                "object_id": blob.id,
                "was_certified": b["certified_epoch"] is not None,
            },
        )
        storage = Live(b["storage"]["id"], t.storage, b["storage"], None, None)
        self.live[storage.id] = storage
        self.command_results.append(([self._output(storage)], []))
        return [ObjectValue(storage.id)]

    def _walrus_blob_insert_or_update_metadata_pair(
        self, args: tuple[Argument, ...]
    ) -> list[Value | None]:
        t = self.t
        blob = self._object(args[0], 0, t.blob.tag, mutable=True)
        key = self._pure(args[1], 1, move.STRING)
        value = self._pure(args[2], 2, move.STRING)
        meta = self._metadata(blob)
        if meta is None:
            cid = derive_dynamic_field_id(blob.id, METADATA_KEY_TYPE, b"\x08" + METADATA_KEY)
            meta = self._create(
                t.metadata_field,
                {"name": METADATA_KEY, "value": {"metadata": {"contents": []}}},
                child_of=blob.id,
                object_id=cid,
            )
        entries = meta.value["value"]["metadata"]["contents"]
        entries[:] = [e for e in entries if e["key"] != key]
        entries.append({"key": key, "value": value})
        self.dirty.add(meta.id)
        self.command_results.append(([], [self._output(blob)]))
        return []

    def _walrus_blob_remove_metadata_pair(self, args: tuple[Argument, ...]) -> list[Value | None]:
        t = self.t
        blob = self._object(args[0], 0, t.blob.tag, mutable=True)
        key = self._pure(args[1], 1, move.STRING)
        meta = self._metadata(blob)
        if meta is None:
            raise self.abort(
                t.pkg, "blob", "metadata", E_MISSING_METADATA, "the blob has no metadata"
            )
        entries = meta.value["value"]["metadata"]["contents"]
        for i, e in enumerate(entries):
            if e["key"] == key:
                del entries[i]
                self.dirty.add(meta.id)
                out = [PlainValue(move.STRING, e["key"]), PlainValue(move.STRING, e["value"])]
                string = format_type(move.STRING.tag)
                self.command_results.append(
                    (
                        [
                            CommandOutput(string, move.encode(move.STRING, v.value), v.value)
                            for v in out
                        ],
                        [self._output(blob)],
                    )
                )
                return list(out)
        raise self.abort(
            SUI_FRAMEWORK,
            "vec_map",
            "get_idx",
            E_KEY_DOES_NOT_EXIST,
            f"the blob's metadata has no key {key!r}",
        )

    def _walrus_blob_burn(self, args: tuple[Argument, ...]) -> list[Value | None]:
        blob = self._take(args[0], 0, self.t.blob.tag)
        meta = self._metadata(blob)
        if meta is not None:
            self._delete(meta)
        self._delete(blob)
        self.dead[blob.value["storage"]["id"]] = False  # the wrapped Storage's UID is deleted
        self.burned[blob.id] = (
            int(blob.value["blob_id"]).to_bytes(32, "little"),
            int(blob.value["storage"]["end_epoch"]),
        )
        self.command_results.append(([], []))
        return []

    def _check_unused(self) -> None:
        for i, results in enumerate(self.results):
            for j, v in enumerate(results):
                if isinstance(v, ObjectValue) and self.live[v.id].owner is None:
                    self.cmd = i
                    raise self.fail(
                        "UNUSED_VALUE_WITHOUT_DROP", "UnusedValueWithoutDrop", arg_error=(i, j)
                    )

    # ==== effects ====================================================================

    def _finish(
        self, failure: ExecutionFailure | None, gas_id: bytes | None, budget: int
    ) -> Outcome:
        price = self.tx.gas.price if self.tx.gas is not None else self.view.reference_gas_price
        computation = COMPUTATION_UNITS * price
        writes, deleted = self._write_set(failure is None, gas_id)
        lamport = self._lamport()
        storage, rebate = self._storage(writes, deleted, lamport)
        if failure is None and computation + storage > budget:
            failure = ExecutionFailure("INSUFFICIENT_GAS", "InsufficientGas", None)
            writes, deleted = self._write_set(False, gas_id)
            storage, rebate = self._storage(writes, deleted, lamport)
        refund = rebate * REBATE_BPS // 10_000
        charge = computation + storage - refund
        if failure is not None and charge > budget:
            charge = budget
        if gas_id is not None:
            gas_live = writes[gas_id]
            gas_live.value["balance"] += budget - charge
        if failure is not None:
            self.events = []
            self.command_results = []
        outputs = {oid: self._new_version(oid, live, lamport) for oid, live in writes.items()}
        inputs = dict(self.input_objects)
        inputs.update(self.loaded_children)
        for coin in self.gas_coins:
            inputs[coin.id] = coin
        changes: list[ObjectChange] = []
        for oid, obj in outputs.items():
            before = inputs.get(oid)
            created = (
                before is None and writes[oid].original is None and oid not in self._unwrapped()
            )
            changes.append(
                ObjectChange(
                    oid,
                    None if before is None else (before.version, before.digest, before.owner),
                    (obj.digest, obj.owner),
                    1 if created else 0,
                    obj.type_str,
                )
            )
        for oid, existed in deleted.items():
            before = inputs.get(oid) if existed else None
            changes.append(
                ObjectChange(
                    oid,
                    None if before is None else (before.version, before.digest, before.owner),
                    None,
                    2,
                    None if before is None else before.type_str,
                )
            )
        events_digest = None
        if self.events:
            events_digest = type_digest(
                "TransactionEvents::", encode_events([e.event for e in self.events])
            )
        deps = sorted({o.previous_transaction for o in inputs.values()} - {self.digest})
        effects = Effects(
            success=failure is None,
            failure=failure,
            epoch=self.view.epoch,
            computation_cost=computation,
            storage_cost=storage,
            storage_rebate=refund,
            non_refundable_storage_fee=rebate - refund,
            transaction_digest=self.digest,
            gas_object=gas_id,
            events_digest=events_digest,
            dependencies=deps,
            lamport_version=lamport,
            changes=changes,
            unchanged_shared=[
                (oid, inputs[oid].version, inputs[oid].digest) for oid in self.readonly_shared
            ],
        )
        blob_index = {
            oid: (
                int(writes[oid].value["blob_id"]).to_bytes(32, "little"),
                int(writes[oid].value["storage"]["end_epoch"]),
            )
            for oid in outputs
            if writes[oid].type_ == self.t.blob.tag
        }
        return Outcome(
            self.digest,
            effects,
            self.events,
            {o: inputs[o] for o in inputs if o in outputs or deleted.get(o)},
            outputs,
            [o for o in deleted],
            self._balance_changes(inputs, outputs),
            self.command_results,
            blob_index,
            self.burned if failure is None else {},
        )

    def _unwrapped(self) -> set[bytes]:
        return {
            oid
            for oid, live in self.live.items()
            if live.original is None and live.type_ == self.t.storage.tag and not live.child
        }

    def _public(self, layout: Struct) -> bool:
        return layout.tag not in (self.t.system.tag,) and not (
            layout.tag.address == SUI_FRAMEWORK and layout.tag.module == "dynamic_field"
        )

    def _write_set(
        self, success: bool, gas_id: bytes | None
    ) -> tuple[dict[bytes, Live], dict[bytes, bool]]:
        if success:
            writes: dict[bytes, Live] = {}
            for oid, live in self.live.items():
                if live.child:
                    if oid in self.dirty or live.original is None:
                        writes[oid] = live
                elif oid in self.readonly_shared:
                    continue
                else:
                    writes[oid] = live
            deleted = {oid: existed for oid, existed in self.dead.items() if oid not in writes}
            # an object both created and deleted here leaves no trace
            deleted = {
                oid: existed
                for oid, existed in deleted.items()
                if existed or oid in self._wrapped_before()
            }
            for coin in self.gas_coins[1:]:
                deleted[coin.id] = True
            return writes, deleted
        # failure: only the gas coin and the owned or mutable shared inputs are written
        writes = {}
        for oid, obj in self.input_objects.items():
            if oid in self.readonly_shared:
                continue
            layout = self._layout(obj)
            writes[oid] = Live(oid, layout, move.decode(layout, obj.contents), obj.owner, obj)
        deleted = {}
        if gas_id is not None:
            primary = self.gas_coins[0]
            value = move.decode(self.t.sui_coin, primary.contents)
            value["balance"] = sum(self._coin_value(c) for c in self.gas_coins) - (
                self.tx.gas.budget if self.tx.gas else 0
            )
            writes[gas_id] = Live(gas_id, self.t.sui_coin, value, primary.owner, primary)
            for coin in self.gas_coins[1:]:
                deleted[coin.id] = True
        return writes, deleted

    def _wrapped_before(self) -> set[bytes]:
        """Ids that existed wrapped inside an input object before this transaction."""
        out = set()
        for obj in self.input_objects.values():
            if obj.type_ == self.t.blob.tag:
                out.add(move.decode(self.t.blob, obj.contents)["storage"]["id"])
        return out

    def _lamport(self) -> int:
        versions = [o.version for o in self.input_objects.values()]
        versions += [c.version for c in self.gas_coins]
        versions += [c.version for c in self.loaded_children.values()]
        return max(versions, default=0) + 1

    def _new_version(self, oid: bytes, live: Live, lamport: int) -> StoredObject:
        assert live.owner is not None, f"object {fmt_address(oid)} written without an owner"
        return new_version(
            oid,
            lamport,
            live.owner,
            live.type_,
            self._public(live.layout),
            move.encode(live.layout, live.value),
            self.digest,
        )

    def _storage(
        self, writes: dict[bytes, Live], deleted: dict[bytes, bool], lamport: int
    ) -> tuple[int, int]:
        storage = sum(
            self._new_version(oid, live, lamport).storage_rebate for oid, live in writes.items()
        )
        rebate = 0
        for oid in set(writes) | {o for o, existed in deleted.items() if existed}:
            before = (
                self.input_objects.get(oid)
                or self.loaded_children.get(oid)
                or next((c for c in self.gas_coins if c.id == oid), None)
            )
            if before is not None:
                rebate += before.storage_rebate
        return storage, rebate

    def _balance_changes(
        self, inputs: dict[bytes, StoredObject], outputs: dict[bytes, StoredObject]
    ) -> list[tuple[bytes, str, int]]:
        totals: dict[tuple[bytes, str], int] = {}

        def add(obj: StoredObject, sign: int) -> None:
            inner = coin_inner(obj.type_)
            if inner is None or obj.owner.kind != ADDRESS_OWNER or obj.owner.address is None:
                return
            layout = self.t.coin_layout(obj.type_)
            if layout is None:
                return
            amount = int(move.decode(layout, obj.contents)["balance"])
            key = (obj.owner.address, format_type(inner))
            totals[key] = totals.get(key, 0) + sign * amount

        for oid, obj in inputs.items():
            if oid in outputs or oid in self.dead or any(c.id == oid for c in self.gas_coins):
                add(obj, -1)
        for obj in outputs.values():
            add(obj, +1)
        return sorted((addr, ct, amt) for (addr, ct), amt in totals.items() if amt != 0)


def read_system_epoch(store: Store, types: WalrusTypes, system_id: bytes) -> int:
    """The Walrus epoch recorded in the System object's inner state."""
    system = store.get(system_id)
    if system is None:
        raise ObjectNotFound("the Walrus System object is missing")
    version = int(move.decode(types.system, system.contents)["version"])
    cid = derive_dynamic_field_id(system_id, "u64", version.to_bytes(8, "little"))
    inner = store.get(cid)
    if inner is None:
        raise ObjectNotFound("the Walrus System object's inner state is missing")
    value = move.decode(types.system_inner_field, inner.contents)
    return int(value["value"]["committee"]["epoch"])

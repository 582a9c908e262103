"""Sui GraphQL over the ledger: the real schema (@mysten/sui 2.33.1), executed by graphql-core
with resolvers for the part pysui 1.5.1 uses.

Resolvers are methods named `r_<field>` on small node classes (or keys of plain dicts). A field
without a resolver is answered with a GraphQL error naming it — never with a made-up null — so a
client relying on something the devnet does not model learns it at once. Introspection comes from
graphql-core. Abstract types (unions, interfaces) are resolved from each node's `typename`.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    graphql_sync,
    parse,
)

from . import move
from .errors import LedgerError, TransactionRejected
from .execute import PROTOCOL_LIMITS
from .ledger import Ledger, timestamp_text
from .store import StoredObject
from .suitypes import (
    ADDRESS_OWNER,
    IMMUTABLE,
    OBJECT_OWNER,
    SHARED,
    StructTag,
    coin_type,
    digest_str,
    fmt_address,
    format_type,
    parse_address,
    parse_digest,
    parse_type,
    parse_type_filter,
    transaction_from_json,
)

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("sui-graphql-schema.graphql")
RPC_VERSION = "1.66.0-walrusfs-devnet"
DEFAULT_PAGE = 20
MAX_PAGE = 50
MAX_MULTI_GET = 200


class Unavailable(GraphQLError):
    """A field or argument the devnet ledger does not serve."""


def unavailable(what: str) -> Unavailable:
    return Unavailable(f"{what} is not supported by the walrusfs devnet ledger")


def _resolve_field(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    name = info.field_name
    if isinstance(source, dict):
        if name in source:
            value = source[name]
            return value(**args) if callable(value) else value
    else:
        fn = getattr(source, "r_" + name, None)
        if fn is not None:
            return fn(**args)
    raise unavailable(f"{info.parent_type.name}.{name}")


def _resolve_type(value: Any, info: GraphQLResolveInfo, abstract: Any) -> str:
    if isinstance(value, dict):
        return str(value["__typename"])
    return str(value.typename)


@dataclass
class Context:
    ledger: Ledger
    overlay: dict[tuple[bytes, int], StoredObject] = field(default_factory=dict)

    def object_at(self, oid: bytes, version: int) -> StoredObject | None:
        if (oid, version) in self.overlay:
            return self.overlay[(oid, version)]
        return self.ledger.store.get_version(oid, version)


def _page_args(
    first: int | None, after: str | None, last: int | None, before: str | None, what: str
) -> tuple[int, str | None]:
    if last is not None or before is not None:
        raise unavailable(f"backward paging of {what}")
    n = DEFAULT_PAGE if first is None else first
    if n < 0 or n > MAX_PAGE:
        raise GraphQLError(f"page size must be between 0 and {MAX_PAGE}")
    return n, after


def _cursor(oid: bytes) -> str:
    return base64.b64encode(oid).decode()


def _uncursor(cursor: str | None) -> bytes | None:
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor, validate=True)
    except ValueError as exc:
        raise GraphQLError(f"invalid cursor {cursor!r}") from exc
    if len(raw) != 32:
        raise GraphQLError(f"invalid cursor {cursor!r}")
    return raw


def connection(
    nodes: list[Any], has_next: bool, cursors: list[str] | None = None, has_previous: bool = False
) -> dict[str, Any]:
    cursors = cursors if cursors is not None else [str(i) for i in range(len(nodes))]
    return {
        "nodes": nodes,
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def move_type(repr_: str) -> dict[str, Any]:
    return {"repr": repr_}


def move_value(type_repr: str, bcs: bytes, json: Any) -> dict[str, Any]:
    return {"type": move_type(type_repr), "bcs": base64.b64encode(bcs).decode(), "json": json}


# --- objects and addresses -----------------------------------------------------------------


class AddressNode:
    typename = "Address"

    def __init__(self, ctx: Context, address: bytes) -> None:
        self.ctx = ctx
        self.addr = address

    def r_address(self) -> str:
        return fmt_address(self.addr)

    def r_asObject(self) -> ObjectNode | None:
        obj = self.ctx.ledger.store.get(self.addr)
        return None if obj is None else ObjectNode(self.ctx, obj)

    def r_balance(self, coinType: str) -> dict[str, Any]:
        tag = parse_type(coinType)
        total = 0
        layout = (
            self.ctx.ledger.types.coin_layout(coin_type(tag))
            if isinstance(tag, StructTag)
            else None
        )
        if layout is not None:
            for obj in _all_owned(self.ctx, self.addr, format_type(coin_type(tag))):
                total += int(move.decode(layout, obj.contents)["balance"])
        return _balance(format_type(tag), total)

    def r_balances(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        n, cursor = _page_args(first, after, last, before, "balances")
        totals: dict[str, int] = {}
        ledger = self.ctx.ledger
        for tag in (ledger.types.sui, ledger.types.wal):
            layout = ledger.types.coin_layout(coin_type(tag))
            assert layout is not None
            amount = sum(
                int(move.decode(layout, o.contents)["balance"])
                for o in _all_owned(self.ctx, self.addr, format_type(coin_type(tag)))
            )
            if amount:
                totals[format_type(tag)] = amount
        keys = sorted(totals)
        if cursor is not None:
            keys = [k for k in keys if k > base64.b64decode(cursor).decode()]
        page = keys[:n]
        return connection(
            [_balance(k, totals[k]) for k in page],
            len(keys) > n,
            [base64.b64encode(k.encode()).decode() for k in page],
        )

    def r_objects(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        flt = dict(filter or {})
        flt["owner"] = fmt_address(self.addr)
        return objects_connection(self.ctx, flt, first, after, last, before, "MoveObject")

    def r_dynamicFields(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        n, cursor = _page_args(first, after, last, before, "dynamic fields")
        objs = self.ctx.ledger.store.owned(
            OBJECT_OWNER, self.addr, None, None, None, _uncursor(cursor), n + 1
        )
        page = objs[:n]
        return connection(
            [ObjectNode(self.ctx, o, "DynamicField") for o in page],
            len(objs) > n,
            [_cursor(o.id) for o in page],
        )


def _balance(coin: str, total: int) -> dict[str, Any]:
    return {
        "coinType": move_type(coin),
        "addressBalance": "0",
        "coinBalance": str(total),
        "totalBalance": str(total),
    }


def _all_owned(ctx: Context, owner: bytes, type_exact: str) -> list[StoredObject]:
    out: list[StoredObject] = []
    after = None
    while True:
        page = ctx.ledger.store.owned(ADDRESS_OWNER, owner, None, type_exact, None, after, 500)
        out += page
        if len(page) < 500:
            return out
        after = page[-1].id


def objects_connection(
    ctx: Context,
    flt: dict[str, Any],
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    typename: str,
) -> dict[str, Any]:
    n, cursor = _page_args(first, after, last, before, "objects")
    owner = flt.get("owner")
    kind = flt.get("ownerKind")
    if owner is None:
        raise unavailable("listing objects without an owner filter")
    kinds = {None: ADDRESS_OWNER, "ADDRESS": ADDRESS_OWNER, "OBJECT": OBJECT_OWNER}
    if kind not in kinds:
        raise unavailable(f"ownerKind {kind}")
    type_base = type_exact = prefix = None
    if flt.get("type"):
        try:
            pkg, module, name, params = parse_type_filter(flt["type"])
        except LedgerError as exc:
            raise GraphQLError(str(exc)) from exc
        if name is None:
            prefix = fmt_address(pkg) + "::" + (f"{module}::" if module else "")
        elif params is None:
            type_base = format_type(StructTag(pkg, module or "", name))
        else:
            type_exact = format_type(StructTag(pkg, module or "", name, params))
    objs = ctx.ledger.store.owned(
        kinds[kind], parse_address(owner), type_base, type_exact, prefix, _uncursor(cursor), n + 1
    )
    page = objs[:n]
    return connection(
        [ObjectNode(ctx, o, typename) for o in page], len(objs) > n, [_cursor(o.id) for o in page]
    )


class ObjectNode:
    """An Object, MoveObject or DynamicField: the same data seen through different types."""

    def __init__(self, ctx: Context, obj: StoredObject, typename: str = "Object") -> None:
        self.ctx = ctx
        self.obj = obj
        self.typename = typename

    # IObject / IAddressable
    def r_address(self) -> str:
        return fmt_address(self.obj.id)

    def r_version(self) -> int:
        return self.obj.version

    def r_digest(self) -> str:
        return digest_str(self.obj.digest)

    def r_objectBcs(self) -> str:
        return base64.b64encode(self.obj.bcs()).decode()

    def r_storageRebate(self) -> str:
        return str(self.obj.storage_rebate)

    def r_owner(self) -> dict[str, Any]:
        o = self.obj.owner
        if o.kind == ADDRESS_OWNER:
            assert o.address is not None
            return {"__typename": "AddressOwner", "address": AddressNode(self.ctx, o.address)}
        if o.kind == OBJECT_OWNER:
            assert o.address is not None
            return {"__typename": "ObjectOwner", "address": AddressNode(self.ctx, o.address)}
        if o.kind == SHARED:
            return {"__typename": "Shared", "initialSharedVersion": o.initial_shared_version}
        assert o.kind == IMMUTABLE
        return {"__typename": "Immutable", "_": None}

    def r_previousTransaction(self) -> TransactionNode:
        return TransactionNode(self.ctx, self.obj.previous_transaction)

    def r_asMoveObject(self) -> ObjectNode:
        return ObjectNode(self.ctx, self.obj, "MoveObject")

    def r_asMovePackage(self) -> None:
        return None

    def r_asAddress(self) -> AddressNode:
        return AddressNode(self.ctx, self.obj.id)

    def r_dynamicFields(self, **kw: Any) -> dict[str, Any]:
        return AddressNode(self.ctx, self.obj.id).r_dynamicFields(**kw)

    def r_balance(self, coinType: str) -> dict[str, Any]:
        return AddressNode(self.ctx, self.obj.id).r_balance(coinType)

    # IMoveObject
    def _layout(self) -> move.Layout:
        layout = self.ctx.ledger.types.layout_of(self.obj.type_)
        if layout is None:
            raise unavailable(f"the layout of {self.obj.type_str}")
        return layout

    def r_hasPublicTransfer(self) -> bool:
        return self.obj.has_public_transfer

    def r_moveObjectBcs(self) -> str:
        return base64.b64encode(self.obj.contents).decode()

    def r_contents(self) -> dict[str, Any]:
        layout = self._layout()
        value = move.decode(layout, self.obj.contents)
        return move_value(self.obj.type_str, self.obj.contents, move.to_json(layout, value))

    # DynamicField
    def _field(self) -> tuple[move.Struct, Any]:
        layout = self._layout()
        if not isinstance(layout, move.Struct) or layout.tag.module != "dynamic_field":
            raise GraphQLError(f"{fmt_address(self.obj.id)} is not a dynamic field")
        return layout, move.decode(layout, self.obj.contents)

    def r_name(self) -> dict[str, Any]:
        layout, value = self._field()
        name_layout = dict(layout.fields)["name"]
        return move_value(
            format_type(move.layout_type(name_layout)),
            move.encode(name_layout, value["name"]),
            move.to_json(name_layout, value["name"]),
        )

    def r_value(self) -> dict[str, Any]:
        layout, value = self._field()
        value_layout = dict(layout.fields)["value"]
        out = move_value(
            format_type(move.layout_type(value_layout)),
            move.encode(value_layout, value["value"]),
            move.to_json(value_layout, value["value"]),
        )
        out["__typename"] = "MoveValue"
        return out


class PackageNode:
    """A Move package the ledger knows by its function signatures (no bytecode)."""

    typename = "Object"

    def __init__(self, ctx: Context, address: bytes) -> None:
        self.ctx = ctx
        self.addr = address

    def r_address(self) -> str:
        return fmt_address(self.addr)

    def r_version(self) -> int:
        return 1

    def r_owner(self) -> dict[str, Any]:
        return {"__typename": "Immutable", "_": None}

    def r_asMoveObject(self) -> None:
        return None

    def r_asMovePackage(self) -> PackageNode:
        return self

    def r_module(self, name: str) -> ModuleNode | None:
        ledger = self.ctx.ledger
        if self.addr == ledger.types.pkg:
            return ModuleNode(self.ctx, self.addr, name) if name in move.WALRUS_MODULES else None
        known = {
            ledger.types.wal_package: {"wal"},
            parse_address("0x1"): {"string", "option", "vector", "ascii", "type_name"},
            parse_address("0x2"): {
                "coin",
                "balance",
                "transfer",
                "object",
                "dynamic_field",
                "vec_map",
                "pay",
                "sui",
                "tx_context",
                "event",
            },
        }
        return ModuleNode(self.ctx, self.addr, name) if name in known.get(self.addr, ()) else None


class ModuleNode:
    typename = "MoveModule"

    def __init__(self, ctx: Context, package: bytes, name: str) -> None:
        self.ctx = ctx
        self.package = package
        self.name = name

    def r_name(self) -> str:
        return self.name

    def r_fullyQualifiedName(self) -> str:
        return f"{fmt_address(self.package)}::{self.name}"

    def r_package(self) -> PackageNode:
        return PackageNode(self.ctx, self.package)

    def r_function(self, name: str) -> dict[str, Any]:
        ledger = self.ctx.ledger
        sig = ledger.functions.get((self.name, name)) if self.package == ledger.types.pkg else None
        if sig is None:
            raise unavailable(f"the signature of {fmt_address(self.package)}::{self.name}::{name}")

        def open_type(p: move.Param) -> dict[str, Any]:
            return {"repr": "", "signature": sig.param_json(p)}

        return {
            "name": sig.name,
            "fullyQualifiedName": f"{fmt_address(self.package)}::{self.name}::{sig.name}",
            "module": self,
            "isEntry": sig.is_entry,
            "visibility": sig.visibility,
            "typeParameters": [],
            "parameters": [open_type(p) for p in sig.params],
            "return": [open_type(p) for p in sig.returns],
        }


def lookup_object(ctx: Context, address: str, version: int | None = None) -> Any:
    oid = parse_address(address)
    ledger = ctx.ledger
    if oid in (
        ledger.types.pkg,
        ledger.types.wal_package,
        parse_address("0x1"),
        parse_address("0x2"),
    ):
        return PackageNode(ctx, oid)
    obj = ledger.store.get(oid) if version is None else ledger.store.get_version(oid, version)
    return None if obj is None else ObjectNode(ctx, obj)


# --- transactions ---------------------------------------------------------------------------


class TransactionNode:
    typename = "Transaction"

    def __init__(self, ctx: Context, digest: bytes, record: dict[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.digest = digest
        self._record = record

    def record(self) -> dict[str, Any]:
        if self._record is None:
            import json

            row = self.ctx.ledger.store.transaction(self.digest)
            if row is None:
                raise GraphQLError(f"transaction {digest_str(self.digest)} is not known")
            self._record = json.loads(row["record"])
            self._record["signatures"] = json.loads(row["signatures"] or "[]")
            self._record["tx_bcs"] = (
                base64.b64encode(row["tx_bcs"]).decode() if row["tx_bcs"] else None
            )
        return self._record

    def r_digest(self) -> str:
        return digest_str(self.digest)

    def r_transactionBcs(self) -> str | None:
        return self.record().get("tx_bcs")

    def r_transactionJson(self) -> Any:
        return self.record().get("tx_json")

    def r_signatures(self) -> list[dict[str, Any]]:
        return [
            {"signatureBytes": s, "scheme": "ED25519"} for s in self.record().get("signatures", [])
        ]

    def r_sender(self) -> AddressNode | None:
        sender = self.record().get("sender")
        return None if sender is None else AddressNode(self.ctx, parse_address(sender))

    def r_effects(self) -> EffectsNode:
        return EffectsNode(self.ctx, self.record())

    def r_expiration(self) -> EpochNode | None:
        tx_json = self.record().get("tx_json") or {}
        exp = tx_json.get("expiration") or {}
        return EpochNode(self.ctx, int(exp["epoch"])) if exp.get("kind") == "EPOCH" else None

    def r_gasInput(self) -> dict[str, Any] | None:
        gas = self.record().get("gas_input")
        if gas is None:
            return None
        objs = []
        for oid, version, _digest in gas["payment"]:
            obj = self.ctx.object_at(parse_address(oid), version)
            if obj is not None:
                objs.append(ObjectNode(self.ctx, obj))
        return {
            "gasBudget": str(gas["budget"]),
            "gasPrice": str(gas["price"]),
            "gasSponsor": AddressNode(self.ctx, parse_address(gas["owner"])),
            "gasPayment": lambda **_kw: connection(objs, False),
        }


class EpochNode:
    typename = "Epoch"

    def __init__(self, ctx: Context, epoch: int) -> None:
        self.ctx = ctx
        self.epoch = epoch

    def r_epochId(self) -> int:
        return self.epoch

    def r_referenceGasPrice(self) -> str:
        return str(self.ctx.ledger.config.reference_gas_price)

    def r_startTimestamp(self) -> str:
        return timestamp_text(int(self.ctx.ledger._epoch_start(self.epoch) * 1000))

    def r_endTimestamp(self) -> str | None:
        if self.epoch >= self.ctx.ledger._current_epoch():
            return None
        return timestamp_text(int(self.ctx.ledger._epoch_start(self.epoch + 1) * 1000))

    def r_protocolConfigs(self) -> dict[str, Any]:
        return protocol_configs(self.ctx)

    def r_checkpoints(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: Any = None,
    ) -> dict[str, Any]:
        if filter is not None or after is not None or before is not None:
            raise unavailable("filtered or paged checkpoints of an epoch")
        if (first is None) == (last is None) or (first or last or 0) > 1:
            raise unavailable("listing an epoch's checkpoints beyond its first or last")
        bounds = self.ctx.ledger.store.epoch_checkpoints(self.epoch)
        if bounds is None or (first or last) == 0:
            return connection([], False)
        more = bounds[0] != bounds[1]
        if first is not None:
            return connection([CheckpointNode(self.ctx, bounds[0])], more)
        return connection([CheckpointNode(self.ctx, bounds[1])], False, has_previous=more)


class CheckpointNode:
    typename = "Checkpoint"

    def __init__(self, ctx: Context, seq: int) -> None:
        self.ctx = ctx
        self.seq = seq

    def _row(self) -> Any:
        row = self.ctx.ledger.store.transaction_by_seq(self.seq)
        if row is None:
            raise GraphQLError(f"checkpoint {self.seq} is not known")
        return row

    def r_sequenceNumber(self) -> int:
        return self.seq

    def r_timestamp(self) -> str:
        return timestamp_text(int(self._row()["timestamp_ms"]))

    def r_networkTotalTransactions(self) -> int:
        return self.seq + 1

    def r_epoch(self) -> EpochNode:
        return EpochNode(self.ctx, int(self._row()["epoch"]))

    def r_digest(self) -> str:
        return digest_str(self._row()["digest"])


class EffectsNode:
    typename = "TransactionEffects"

    def __init__(self, ctx: Context, record: dict[str, Any]) -> None:
        self.ctx = ctx
        self.rec = record

    def r_digest(self) -> str:
        return str(self.rec["digest"])

    def r_effectsDigest(self) -> str:
        return str(self.rec["effects_digest"])

    def r_effectsBcs(self) -> str:
        return str(self.rec["effects_bcs"])

    def r_effectsJson(self) -> Any:
        return self.rec["effects"]

    def r_balanceChangesJson(self) -> Any:
        return self.rec["balance_changes"]

    def r_version(self) -> int:
        return 2

    def r_lamportVersion(self) -> int:
        return int(self.rec["lamport"])

    def r_status(self) -> str:
        return str(self.rec["status"])

    def r_executionError(self) -> dict[str, Any] | None:
        err = self.rec.get("error")
        if err is None:
            return None
        return {
            "abortCode": err.get("abort_code"),
            "message": err["message"],
            "identifier": None,
            "constant": None,
            "sourceLineNumber": None,
            "instructionOffset": None,
            "module": (
                ModuleNode(self.ctx, parse_address(err["package"]), err["module"])
                if err.get("module")
                else None
            ),
        }

    def r_timestamp(self) -> str | None:
        return (
            None if self.rec.get("seq") is None else timestamp_text(int(self.rec["timestamp_ms"]))
        )

    def r_checkpoint(self) -> CheckpointNode | None:
        seq = self.rec.get("seq")
        return None if seq is None else CheckpointNode(self.ctx, int(seq))

    def r_epoch(self) -> EpochNode:
        return EpochNode(self.ctx, int(self.rec["epoch"]))

    def r_transaction(self) -> TransactionNode:
        return TransactionNode(self.ctx, parse_digest(self.rec["digest"]), self.rec)

    def r_dependencies(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        deps = [TransactionNode(self.ctx, parse_digest(d)) for d in self.rec["dependencies"]]
        return connection(deps, False)

    def r_gasEffects(self) -> dict[str, Any]:
        gas = self.rec["gas"]
        gas_object = None
        if gas["object"] is not None:
            obj = self.ctx.object_at(parse_address(gas["object"]), int(self.rec["lamport"]))
            gas_object = None if obj is None else ObjectNode(self.ctx, obj)
        return {
            "gasObject": gas_object,
            "gasSummary": {
                "computationCost": gas["computation"],
                "storageCost": gas["storage"],
                "storageRebate": gas["rebate"],
                "nonRefundableStorageFee": gas["non_refundable"],
            },
        }

    def r_balanceChanges(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        nodes = [
            {
                "coinType": move_type(b["coinType"]),
                "amount": b["amount"],
                "owner": AddressNode(self.ctx, parse_address(b["address"])),
            }
            for b in self.rec["balance_changes"]
        ]
        return connection(nodes, False)

    def r_objectChanges(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        nodes = []
        for oid_hex, in_v, out_v, created, deleted in self.rec["changes"]:
            oid = parse_address(oid_hex)
            before_obj = None if in_v is None else self.ctx.object_at(oid, in_v)
            after_obj = None if out_v is None else self.ctx.object_at(oid, out_v)
            nodes.append(
                {
                    "address": oid_hex,
                    "idCreated": created,
                    "idDeleted": deleted,
                    "inputState": None if before_obj is None else ObjectNode(self.ctx, before_obj),
                    "outputState": None if after_obj is None else ObjectNode(self.ctx, after_obj),
                }
            )
        return connection(nodes, False)

    def r_events(
        self,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: Any = None,
    ) -> dict[str, Any]:
        nodes = []
        for i, ev in enumerate(self.rec["events"]):
            nodes.append(
                {
                    "sequenceNumber": i,
                    "timestamp": self.r_timestamp(),
                    "eventBcs": ev["bcs"],
                    "sender": AddressNode(self.ctx, parse_address(ev["sender"])),
                    "contents": move_value(
                        ev["type"], base64.b64decode(ev["contents"]), ev["json"]
                    ),
                    "transactionModule": ModuleNode(
                        self.ctx, parse_address(ev["package"]), ev["module"]
                    ),
                    "transaction": self.r_transaction(),
                }
            )
        return connection(nodes, False)


def _command_outputs(items: list[list[Any]]) -> list[dict[str, Any]]:
    return [{"value": move_value(t, base64.b64decode(b), j)} for t, b, j in items]


def protocol_configs(ctx: Context) -> dict[str, Any]:
    configs = {k: str(v) for k, v in PROTOCOL_LIMITS.items()}

    def config(key: str) -> dict[str, Any] | None:
        return {"key": key, "value": configs[key]} if key in configs else None

    return {
        "protocolVersion": ctx.ledger.config.protocol_version,
        "configs": [{"key": k, "value": v} for k, v in sorted(configs.items())],
        "featureFlags": [],
        "config": config,
        "featureFlag": lambda key: None,
    }


SERVICE_CONFIG: dict[str, Any] = {
    # enforced: query depth and fields (GraphQLService.execute), multi-get size, page sizes and
    # the request body (the HTTP server's limit). Output size is not limited by the devnet.
    "maxQueryDepth": 20,
    "maxQueryNodes": 300,
    "maxOutputNodes": 100_000,
    "maxQueryPayloadSize": 1 << 20,
    "maxTransactionPayloadSize": 174_763,
    "maxMultiGetSize": MAX_MULTI_GET,
    "maxTypeArgumentDepth": 16,
    "maxTypeArgumentWidth": 32,
    "maxTypeNodes": 256,
    "maxMoveValueDepth": 128,
    "maxMoveValueBound": 1_048_576,
    "mutationTimeoutMs": 74_000,
    "queryTimeoutMs": 40_000,
    "defaultPageSize": lambda type, field: DEFAULT_PAGE,
    "maxPageSize": lambda type, field: MAX_PAGE,
}


# --- roots ----------------------------------------------------------------------------------


def _rejected(exc: LedgerError) -> GraphQLError:
    return GraphQLError(
        str(exc.args[0]) if exc.args else type(exc).__name__, extensions={"code": "BAD_USER_INPUT"}
    )


class QueryRoot:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def r_chainIdentifier(self) -> str:
        return self.ctx.ledger.chain_identifier

    def r_serviceConfig(self) -> dict[str, Any]:
        return SERVICE_CONFIG

    def r_protocolConfigs(self, version: int | None = None) -> dict[str, Any] | None:
        if version is not None and version != self.ctx.ledger.config.protocol_version:
            return None
        return protocol_configs(self.ctx)

    def r_epoch(self, epochId: int | None = None) -> EpochNode | None:
        current = self.ctx.ledger._current_epoch()
        if epochId is None:
            return EpochNode(self.ctx, current)
        return EpochNode(self.ctx, epochId) if epochId <= current else None

    def r_checkpoint(
        self, sequenceNumber: int | None = None, digest: str | None = None
    ) -> CheckpointNode | None:
        if digest is not None:
            raise unavailable("checkpoint lookup by digest")
        row = self.ctx.ledger.store.last_transaction()
        latest = 0 if row is None else int(row["seq"])
        seq = latest if sequenceNumber is None else sequenceNumber
        return CheckpointNode(self.ctx, seq) if seq <= latest else None

    def r_object(
        self,
        address: str,
        version: int | None = None,
        rootVersion: int | None = None,
        atCheckpoint: int | None = None,
    ) -> Any:
        if rootVersion is not None or atCheckpoint is not None:
            raise unavailable("object lookup by root version or checkpoint")
        return lookup_object(self.ctx, address, version)

    def r_multiGetObjects(self, keys: list[dict[str, Any]]) -> list[Any]:
        if len(keys) > MAX_MULTI_GET:
            raise GraphQLError(f"at most {MAX_MULTI_GET} keys")
        out = []
        for k in keys:
            if k.get("rootVersion") is not None or k.get("atCheckpoint") is not None:
                raise unavailable("object lookup by root version or checkpoint")
            out.append(lookup_object(self.ctx, k["address"], k.get("version")))
        return out

    def r_objects(
        self,
        filter: dict[str, Any],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        return objects_connection(self.ctx, filter, first, after, last, before, "Object")

    def r_address(
        self,
        address: str | None = None,
        name: str | None = None,
        rootVersion: int | None = None,
        atCheckpoint: int | None = None,
    ) -> AddressNode:
        if name is not None or address is None:
            raise unavailable("name service lookups")
        if rootVersion is not None or atCheckpoint is not None:
            raise unavailable("address lookups at a root version or checkpoint")
        return AddressNode(self.ctx, parse_address(address))

    def r_transaction(self, digest: str) -> TransactionNode | None:
        raw = parse_digest(digest)
        if self.ctx.ledger.store.transaction(raw) is None:
            return None
        return TransactionNode(self.ctx, raw)

    def r_transactionEffects(self, digest: str) -> EffectsNode | None:
        node = self.r_transaction(digest)
        return None if node is None else node.r_effects()

    def r_simulateTransaction(
        self,
        transaction: Any,
        checksEnabled: bool | None = None,
        doGasSelection: bool | None = None,
    ) -> dict[str, Any]:
        try:
            tx = transaction_from_json(transaction)
            record, overlay = self.ctx.ledger.simulate(
                tx, gas_selection=doGasSelection is not False
            )
        except TransactionRejected as exc:
            raise _rejected(exc) from exc
        self.ctx.overlay.update(overlay)
        return {
            "effects": EffectsNode(self.ctx, record),
            "outputs": [
                {
                    "returnValues": _command_outputs(o["returnValues"]),
                    "mutatedReferences": _command_outputs(o["mutatedReferences"]),
                }
                for o in record["outputs"]
            ],
        }


class MutationRoot:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def r_executeTransaction(
        self, transactionDataBcs: str, signatures: list[str]
    ) -> dict[str, Any]:
        try:
            tx_bytes = base64.b64decode(transactionDataBcs, validate=True)
            sigs = [base64.b64decode(s, validate=True) for s in signatures]
        except ValueError as exc:
            raise GraphQLError("transaction and signatures must be base64") from exc
        try:
            record = self.ctx.ledger.execute(tx_bytes, sigs)
        except TransactionRejected as exc:
            raise _rejected(exc) from exc
        return {"effects": EffectsNode(self.ctx, record)}


def measure(document: DocumentNode) -> tuple[int, int]:
    """(depth, field count) of the operations in a query, with fragments expanded."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }

    def walk(sel: SelectionSetNode | None, depth: int, seen: frozenset[str]) -> tuple[int, int]:
        if sel is None:
            return depth, 0
        deepest, count = depth, 0
        for node in sel.selections:
            if isinstance(node, FieldNode):
                d, c = walk(node.selection_set, depth + 1, seen)
                deepest, count = max(deepest, d), count + 1 + c
            elif isinstance(node, InlineFragmentNode):
                d, c = walk(node.selection_set, depth, seen)
                deepest, count = max(deepest, d), count + c
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                if name in seen or name not in fragments:
                    continue  # validation reports cycles and unknown fragments
                d, c = walk(fragments[name].selection_set, depth, seen | {name})
                deepest, count = max(deepest, d), count + c
        return deepest, count

    depth = nodes = 0
    for d in document.definitions:
        if isinstance(d, OperationDefinitionNode):
            dd, nn = walk(d.selection_set, 0, frozenset())
            depth, nodes = max(depth, dd), nodes + nn
    return depth, nodes


class GraphQLService:
    """Executes GraphQL requests against a ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.schema: GraphQLSchema = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))

    def execute(
        self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
    ) -> dict[str, Any]:
        """Run one GraphQL request; returns the response body (data and errors)."""

        try:
            depth, nodes = measure(parse(query))
        except GraphQLError as exc:
            return {"data": None, "errors": [exc.formatted]}
        limit = SERVICE_CONFIG
        if depth > int(limit["maxQueryDepth"]) or nodes > int(limit["maxQueryNodes"]):
            message = (
                f"query too large: depth {depth} (limit {limit['maxQueryDepth']}), "
                f"{nodes} fields (limit {limit['maxQueryNodes']})"
            )
            return {"data": None, "errors": [{"message": message}]}

        def run() -> dict[str, Any]:
            ctx = Context(self.ledger)
            result = graphql_sync(
                self.schema,
                query,
                root_value=_Roots(ctx),
                variable_values=variables,
                operation_name=operation_name,
                field_resolver=_resolve_field,
                type_resolver=_resolve_type,
            )
            body: dict[str, Any] = {"data": result.data}
            if result.errors:
                body["errors"] = [e.formatted for e in result.errors]
                for e in result.errors:
                    if e.original_error is not None and not isinstance(
                        e.original_error, (GraphQLError, LedgerError)
                    ):
                        log.error("resolver failed", exc_info=e.original_error)
            return body

        return self.ledger.run_locked(run)


class _Roots:
    """The root value: query fields from QueryRoot, the mutation field from MutationRoot."""

    def __init__(self, ctx: Context) -> None:
        self._q = QueryRoot(ctx)
        self._m = MutationRoot(ctx)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if hasattr(self._q, name):
            return getattr(self._q, name)
        return getattr(self._m, name)

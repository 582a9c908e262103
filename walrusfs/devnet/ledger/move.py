"""Move values the devnet ledger stores: layouts, BCS, and the JSON Sui's RPCs render.

A layout describes a Move type; values are plain Python (ints, bools, bytes for addresses, IDs
and vector<u8>, str for String, None or the value for Option, lists, dicts for structs).
`to_json` follows Sui's RPC rendering: u8-u32 as numbers, u64-u256 as decimal strings, addresses
and UID/ID as 0x-prefixed hex, vector<u8> as base64, String as text, Option as null or its value,
Balance as a decimal string, other structs as objects of their fields.

The Walrus types (Blob, Storage, Metadata, System, SystemStateInnerV1, events) copy the field
order of the Walrus Move contracts, so their BCS is what a Walrus client expects on Sui.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from .bcs import Reader, Writer
from .errors import BcsError
from .suitypes import (
    MOVE_STDLIB,
    SUI_FRAMEWORK,
    StructTag,
    TypeTag,
    VectorTag,
    coin_type,
    fmt_address,
)


@dataclass(frozen=True)
class Prim:
    name: str  # bool, u8, u16, u32, u64, u128, u256, address


@dataclass(frozen=True)
class Vec:
    elem: Layout


@dataclass(frozen=True)
class Struct:
    tag: StructTag
    fields: tuple[tuple[str, Layout], ...]
    special: str | None = None  # "string", "uid", "id", "option", "balance"


Layout = Prim | Vec | Struct

BOOL, U8, U16, U32, U64, U128, U256, ADDRESS = (
    Prim(n) for n in ("bool", "u8", "u16", "u32", "u64", "u128", "u256", "address")
)

STRING = Struct(StructTag(MOVE_STDLIB, "string", "String"), (("bytes", Vec(U8)),), "string")
ID = Struct(StructTag(SUI_FRAMEWORK, "object", "ID"), (("bytes", ADDRESS),), "id")
UID = Struct(StructTag(SUI_FRAMEWORK, "object", "UID"), (("id", ID),), "uid")


def option(inner: Layout) -> Struct:
    return Struct(
        StructTag(MOVE_STDLIB, "option", "Option", (layout_type(inner),)),
        (("vec", Vec(inner)),),
        "option",
    )


def balance(coin: TypeTag) -> Struct:
    return Struct(
        StructTag(SUI_FRAMEWORK, "balance", "Balance", (coin,)), (("value", U64),), "balance"
    )


def coin(coin_t: TypeTag) -> Struct:
    return Struct(coin_type(coin_t), (("id", UID), ("balance", balance(coin_t))))


def vec_map(key: Layout, value: Layout) -> Struct:
    params = (layout_type(key), layout_type(value))
    entry = Struct(
        StructTag(SUI_FRAMEWORK, "vec_map", "Entry", params), (("key", key), ("value", value))
    )
    return Struct(
        StructTag(SUI_FRAMEWORK, "vec_map", "VecMap", params), (("contents", Vec(entry)),)
    )


def dynamic_field(name: Layout, value: Layout) -> Struct:
    tag = StructTag(
        SUI_FRAMEWORK, "dynamic_field", "Field", (layout_type(name), layout_type(value))
    )
    return Struct(tag, (("id", UID), ("name", name), ("value", value)))


def layout_type(layout: Layout) -> TypeTag:
    if isinstance(layout, Prim):
        return layout.name
    if isinstance(layout, Vec):
        return VectorTag(layout_type(layout.elem))
    return layout.tag


# --- BCS ---------------------------------------------------------------------------------------


def encode(layout: Layout, value: Any) -> bytes:
    w = Writer()
    _write(w, layout, value)
    return w.finish()


def _write(w: Writer, layout: Layout, value: Any) -> None:
    if isinstance(layout, Prim):
        n = layout.name
        if n == "bool":
            w.bool(bool(value))
        elif n == "address":
            w.fixed(value)
        else:
            getattr(w, n)(value)
        return
    if isinstance(layout, Vec):
        if layout.elem == U8:
            w.bytes(value)
            return
        w.uleb128(len(value))
        for v in value:
            _write(w, layout.elem, v)
        return
    special = layout.special
    if special == "string":
        w.str(value)
    elif special in ("id", "uid"):
        w.fixed(value)
    elif special == "option":
        if value is None:
            w.uleb128(0)
        else:
            w.uleb128(1)
            _write(w, layout.fields[0][1].elem, value)  # type: ignore[union-attr]
    elif special == "balance":
        w.u64(value)
    else:
        for name, fl in layout.fields:
            _write(w, fl, value[name])


def decode(layout: Layout, data: bytes) -> Any:
    r = Reader(data)
    value = _read(r, layout)
    r.done()
    return value


def _read(r: Reader, layout: Layout) -> Any:
    if isinstance(layout, Prim):
        n = layout.name
        if n == "address":
            return r.fixed(32)
        return getattr(r, n)()
    if isinstance(layout, Vec):
        if layout.elem == U8:
            return r.bytes()
        return [_read(r, layout.elem) for _ in range(r.uleb128())]
    special = layout.special
    if special == "string":
        return r.str()
    if special in ("id", "uid"):
        return r.fixed(32)
    if special == "option":
        count = r.uleb128()
        if count > 1:
            raise BcsError("Option holds more than one value")
        return _read(r, layout.fields[0][1].elem) if count else None  # type: ignore[union-attr]
    if special == "balance":
        return r.u64()
    return {name: _read(r, fl) for name, fl in layout.fields}


# --- JSON --------------------------------------------------------------------------------------


def to_json(layout: Layout, value: Any) -> Any:
    if isinstance(layout, Prim):
        n = layout.name
        if n == "bool":
            return bool(value)
        if n == "address":
            return fmt_address(value)
        if n in ("u8", "u16", "u32"):
            return int(value)
        return str(value)
    if isinstance(layout, Vec):
        if layout.elem == U8:
            return base64.b64encode(value).decode()
        return [to_json(layout.elem, v) for v in value]
    special = layout.special
    if special == "string":
        return value
    if special in ("id", "uid"):
        return fmt_address(value)
    if special == "option":
        return None if value is None else to_json(layout.fields[0][1].elem, value)  # type: ignore[union-attr]
    if special == "balance":
        return str(value)
    return {name: to_json(fl, value[name]) for name, fl in layout.fields}


# --- Walrus types ------------------------------------------------------------------------------


class WalrusTypes:
    """The Move layouts of the Walrus and WAL packages at the configured package ids."""

    def __init__(self, walrus_package: bytes, wal_package: bytes) -> None:
        self.pkg = walrus_package
        self.wal_package = wal_package
        w = walrus_package
        self.wal = StructTag(wal_package, "wal", "WAL")
        self.sui = StructTag(SUI_FRAMEWORK, "sui", "SUI")
        self.wal_coin = coin(self.wal)
        self.sui_coin = coin(self.sui)
        self.storage = Struct(
            StructTag(w, "storage_resource", "Storage"),
            (("id", UID), ("start_epoch", U32), ("end_epoch", U32), ("storage_size", U64)),
        )
        self.blob = Struct(
            StructTag(w, "blob", "Blob"),
            (
                ("id", UID),
                ("registered_epoch", U32),
                ("blob_id", U256),
                ("size", U64),
                ("encoding_type", U8),
                ("certified_epoch", option(U32)),
                ("storage", self.storage),
                ("deletable", BOOL),
            ),
        )
        self.metadata = Struct(
            StructTag(w, "metadata", "Metadata"), (("metadata", vec_map(STRING, STRING)),)
        )
        self.metadata_field = dynamic_field(Vec(U8), self.metadata)
        self.system = Struct(
            StructTag(w, "system", "System"),
            (("id", UID), ("version", U64), ("package_id", ID), ("new_package_id", option(ID))),
        )
        element = Struct(
            StructTag(
                SUI_FRAMEWORK, "group_ops", "Element", (StructTag(SUI_FRAMEWORK, "bls12381", "G1"),)
            ),
            (("bytes", Vec(U8)),),
        )
        element_uncompressed = Struct(
            StructTag(
                SUI_FRAMEWORK,
                "group_ops",
                "Element",
                (StructTag(SUI_FRAMEWORK, "bls12381", "UncompressedG1"),),
            ),
            (("bytes", Vec(U8)),),
        )
        member = Struct(
            StructTag(w, "bls_aggregate", "BlsCommitteeMember"),
            (("public_key", element_uncompressed), ("weight", U16), ("node_id", ID)),
        )
        committee = Struct(
            StructTag(w, "bls_aggregate", "BlsCommittee"),
            (
                ("members", Vec(member)),
                ("n_shards", U16),
                ("epoch", U32),
                ("total_aggregated_key", element),
            ),
        )
        accounting = Struct(
            StructTag(w, "storage_accounting", "FutureAccounting"),
            (("epoch", U32), ("used_capacity", U64), ("rewards_to_distribute", balance(self.wal))),
        )
        ring = Struct(
            StructTag(w, "storage_accounting", "FutureAccountingRingBuffer"),
            (("current_index", U32), ("length", U32), ("ring_buffer", Vec(accounting))),
        )
        event_blob = Struct(
            StructTag(w, "event_blob", "EventBlob"),
            (("blob_id", U256), ("ending_checkpoint_sequence_number", U64)),
        )
        event_state = Struct(
            StructTag(w, "event_blob", "EventBlobCertificationState"),
            (
                ("latest_certified_blob", option(event_blob)),
                ("aggregate_weight_per_blob", vec_map(event_blob, U16)),
            ),
        )
        deny_sizes = Struct(
            StructTag(w, "extended_field", "ExtendedField", (layout_type(vec_map(ID, U64)),)),
            (("id", UID),),
        )
        self.system_inner = Struct(
            StructTag(w, "system_state_inner", "SystemStateInnerV1"),
            (
                ("committee", committee),
                ("total_capacity_size", U64),
                ("used_capacity_size", U64),
                ("storage_price_per_unit_size", U64),
                ("write_price_per_unit_size", U64),
                ("future_accounting", ring),
                ("event_blob_certification_state", event_state),
                ("deny_list_sizes", deny_sizes),
            ),
        )
        self.system_inner_field = dynamic_field(U64, self.system_inner)
        self.blob_registered = Struct(
            StructTag(w, "events", "BlobRegistered"),
            (
                ("epoch", U32),
                ("blob_id", U256),
                ("size", U64),
                ("encoding_type", U8),
                ("end_epoch", U32),
                ("deletable", BOOL),
                ("object_id", ID),
            ),
        )
        self.blob_certified = Struct(
            StructTag(w, "events", "BlobCertified"),
            (
                ("epoch", U32),
                ("blob_id", U256),
                ("end_epoch", U32),
                ("deletable", BOOL),
                ("object_id", ID),
                ("is_extension", BOOL),
            ),
        )
        self.blob_deleted = Struct(
            StructTag(w, "events", "BlobDeleted"),
            (
                ("epoch", U32),
                ("blob_id", U256),
                ("end_epoch", U32),
                ("object_id", ID),
                ("was_certified", BOOL),
            ),
        )
        self.prices_updated = Struct(
            StructTag(w, "events", "PricesUpdated"),
            (("epoch", U32), ("storage_price", U64), ("write_price", U64)),
        )
        self._by_type: dict[StructTag, Layout] = {
            s.tag: s
            for s in (
                self.wal_coin,
                self.sui_coin,
                self.storage,
                self.blob,
                self.metadata_field,
                self.system,
                self.system_inner_field,
                self.blob_registered,
                self.blob_certified,
                self.blob_deleted,
            )
        }

    def layout_of(self, tag: StructTag) -> Layout | None:
        return self._by_type.get(tag)

    def coin_layout(self, tag: StructTag) -> Struct | None:
        if tag == self.wal_coin.tag:
            return self.wal_coin
        if tag == self.sui_coin.tag:
            return self.sui_coin
        return None


# --- Move function signatures ------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    ref: str | None  # None (by value), "&" or "&mut"
    body: Any  # a scalar name, {"vector": …} or {"datatype": …} as Sui GraphQL renders it


def _datatype(tag: StructTag) -> dict[str, Any]:
    return {
        "datatype": {
            "package": fmt_address(tag.address),
            "module": tag.module,
            "type": tag.name,
            "typeParameters": [
                _datatype(p) if isinstance(p, StructTag) else p for p in tag.type_params
            ],
        }
    }


@dataclass(frozen=True)
class FunctionSig:
    module: str
    name: str
    params: tuple[Param, ...]
    returns: tuple[Param, ...]
    visibility: str = "PUBLIC"
    is_entry: bool = False

    def param_json(self, p: Param) -> dict[str, Any]:
        out: dict[str, Any] = {"body": p.body}
        if p.ref is not None:
            out["ref"] = p.ref
        return out


def walrus_functions(t: WalrusTypes) -> dict[tuple[str, str], FunctionSig]:
    """The Walrus functions the devnet ledger executes, with their contract signatures."""
    system, blob, wal_coin = (
        _datatype(t.system.tag),
        _datatype(t.blob.tag),
        _datatype(t.wal_coin.tag),
    )
    storage, string = _datatype(t.storage.tag), _datatype(STRING.tag)
    sigs = [
        FunctionSig(
            "system",
            "extend_blob",
            (
                Param("&mut", system),
                Param("&mut", blob),
                Param(None, "u32"),
                Param("&mut", wal_coin),
            ),
            (),
        ),
        FunctionSig(
            "system",
            "delete_blob",
            (Param("&", system), Param(None, blob)),
            (Param(None, storage),),
        ),
        FunctionSig(
            "blob",
            "insert_or_update_metadata_pair",
            (Param("&mut", blob), Param(None, string), Param(None, string)),
            (),
        ),
        FunctionSig(
            "blob",
            "remove_metadata_pair",
            (Param("&mut", blob), Param("&", string)),
            (Param(None, string), Param(None, string)),
        ),
        FunctionSig("blob", "burn", (Param(None, blob),), ()),
    ]
    return {(s.module, s.name): s for s in sigs}


# Modules of the Walrus package (from its sources); a function the ledger does not execute is
# reported as unavailable rather than as missing, since it may well exist on a real network.
WALRUS_MODULES = frozenset(
    {
        "display",
        "init",
        "slashing",
        "staking",
        "active_set",
        "apportionment_queue",
        "auth",
        "committee",
        "exchange_rate",
        "node_metadata",
        "pending_values",
        "staked_wal",
        "staking_inner",
        "staking_pool",
        "storage_node",
        "walrus_context",
        "system",
        "blob",
        "bls_aggregate",
        "encoding",
        "epoch_parameters",
        "event_blob",
        "events",
        "messages",
        "metadata",
        "redstuff",
        "shared_blob",
        "storage_accounting",
        "storage_pool",
        "storage_resource",
        "system_state_inner",
        "upgrade",
        "extended_field",
        "sort",
    }
)

"""walrusfs's Sui client: the Walrus Blob objects it owns, their leases, and the anchor.

Everything is a trio coroutine; each talks to pysui's GraphQL client on the asyncio loop of an
`AsyncioBridge`. A transaction is built with pysui's builder, simulated first (so an abort —
too little WAL, an expired blob — is reported before any gas is spent, and the gas budget is
what the simulation used plus Sui's safety margin), then signed, executed, and checked.

Stale inputs: objects are resolved at their current version when the transaction is built,
except the anchor of a compare-and-swap, which is pinned at the version read. If the chain
refuses the transaction because an input moved, a moved anchor is an `AnchorConflict` (someone
else advanced it first); any other moved input (a gas or WAL coin spent by a concurrent
transaction of the same wallet) makes the client rebuild and retry, a bounded number of times.
If the answer to an execution is lost, the client looks the transaction up by digest before
deciding anything, so a CAS that landed is never reported as a conflict with itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import trio
from gql.transport.exceptions import TransportError
from pysui import GqlProtocolClient, SuiRpcResult
from pysui.sui.sui_bcs import bcs
from pysui.sui.sui_common import sui_commands as cmd
from pysui.sui.sui_common.txn_gas import compute_gas_budget
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as sui_prot

from .bridge import AsyncioBridge
from .config import NetworkConfig, long_address
from .errors import (
    AnchorConflict,
    BlobExpired,
    BlobNotCertified,
    BlobNotDeletable,
    ChainError,
    ChainUnavailable,
    EpochsOutOfRange,
    InsufficientGas,
    InsufficientWal,
    MissingMetadata,
    ObjectMissing,
    StaleObjects,
    TransactionFailed,
    TransactionRejected,
)
from .types import (
    Anchor,
    Balances,
    BlobInfo,
    BlobPage,
    DeleteResult,
    ExtendResult,
    ExtensionQuote,
    GasUsed,
    WalrusState,
)
from .wallet import load_pysui_config, wallet_address
from .walrus_objects import (
    decode_blob,
    decode_metadata_field,
    decode_system,
    decode_system_inner,
    metadata_field_id,
    system_inner_id,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MULTI_GET = 50
STALE_RETRIES = 6
LOST_ANSWER_CHECKS = 5
SUI_COIN_TYPE = "0x2::coin::Coin<0x2::sui::SUI>"

_OBJECT_ID = re.compile(r"Object ID (0x[0-9a-fA-F]{1,64})")
_CURRENT = re.compile(
    r"Object ID (0x[0-9a-fA-F]{1,64})[^\n]*current version: (0x[0-9a-fA-F]+|[0-9]+)"
)

TxObserver = Callable[[bytes], None]

# what pysui's GraphQL transport (gql over httpx) may raise past pysui's own error handling
_TRANSPORT_ERRORS = (TransportError, httpx.HTTPError, OSError, asyncio.TimeoutError)


def _error_text(result: SuiRpcResult) -> str:
    data = result.result_data
    errors = getattr(data, "errors", None)
    if errors:
        parts = []
        for e in errors if isinstance(errors, list | tuple) else [errors]:
            parts.append(str(e.get("message", e)) if isinstance(e, dict) else str(e))
        return "; ".join(parts)
    return f"{result.result_string} {data!r}".strip()


def _is_transport_error(result: SuiRpcResult) -> bool:
    return (result.result_string or "").startswith("HTTPX error")


def _tx_digest(tx_bytes: bytes) -> str:
    raw = hashlib.blake2b(b"TransactionData::" + tx_bytes, digest_size=32).digest()
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def _norm_type(type_: str | None) -> str | None:
    """A struct type with its package address in long form (reprs may be short)."""
    if not type_:
        return type_
    pkg, sep, rest = type_.partition("::")
    return f"{long_address(pkg)}{sep}{rest}" if sep and pkg.startswith("0x") else type_


def _contents(obj: sui_prot.Object) -> bytes:
    if obj.contents is None or obj.contents.value is None:
        raise ObjectMissing(f"object {obj.object_id} has no Move contents")
    return bytes(obj.contents.value)


def _effects(executed: sui_prot.ExecutedTransaction) -> sui_prot.TransactionEffects:
    if executed.effects is None:
        raise ChainError("the chain returned no effects for the transaction")
    return executed.effects


def _gas_used(effects: sui_prot.TransactionEffects) -> GasUsed:
    g = effects.gas_used or sui_prot.GasCostSummary()
    return GasUsed(g.computation_cost or 0, g.storage_cost or 0, g.storage_rebate or 0)


def _failure(
    status: sui_prot.ExecutionStatus, *, digest: str | None, simulated: bool
) -> TransactionFailed:
    """Map an execution failure to the error walrusfs acts on."""
    err = status.error or sui_prot.ExecutionError()
    abort = err.abort
    module = function = None
    code = None
    if abort is not None:
        code = abort.abort_code
        if abort.location is not None:
            module = abort.location.module
            function = abort.location.function_name
    what = "simulation" if simulated else "transaction"
    message = f"the {what} failed: {err.description or err.kind}"
    kw: dict[str, Any] = dict(
        digest=digest, module=module, function=function, abort_code=code, simulated=simulated
    )
    cls: type[TransactionFailed] = TransactionFailed
    if module == "blob":
        cls = {0: BlobNotCertified, 1: BlobNotDeletable, 2: BlobExpired, 8: MissingMetadata}.get(
            code or -1, TransactionFailed
        )
    elif module == "system_state_inner" and code == 2:
        cls = EpochsOutOfRange
    elif module == "balance" and code == 2:
        cls = InsufficientWal
    elif module == "vec_map" and code == 1:
        cls = MissingMetadata
    return cls(message, **kw)


class SuiChainClient:
    """The Sui side of walrusfs. Open with `SuiChainClient.open`; close with `aclose`.

    `tx_observer`, if given, is called with the BCS bytes of every transaction before it is
    executed (tests decode them with sui-sandbox).
    """

    def __init__(
        self,
        network: NetworkConfig,
        bridge: AsyncioBridge,
        client: GqlProtocolClient,
        address: str,
        *,
        tx_observer: TxObserver | None = None,
        stale_retries: int = STALE_RETRIES,
    ) -> None:
        self.network = network
        self.address = address
        self._bridge = bridge
        self._client = client
        self._observer = tx_observer
        self._stale_retries = stale_retries

    @classmethod
    async def open(
        cls,
        network: NetworkConfig,
        wallet_dir: Path,
        *,
        timeout: float = 60.0,
        tx_observer: TxObserver | None = None,
    ) -> SuiChainClient:
        """Connect to `network` with the wallet in `wallet_dir` (see walrusfs.chain.wallet)."""
        cfg = await trio.to_thread.run_sync(load_pysui_config, wallet_dir, network)
        address = long_address(wallet_address(wallet_dir))
        bridge = AsyncioBridge()
        try:
            # pysui's constructor fetches the schema and the chain's configuration, blocking
            client = await trio.to_thread.run_sync(
                partial(GqlProtocolClient, pysui_config=cfg, timeout=timeout)
            )
        except Exception as exc:
            bridge.close()
            raise ChainUnavailable(f"cannot reach {network.graphql_url}: {exc}") from None
        return cls(network, bridge, client, address, tx_observer=tx_observer)

    async def aclose(self) -> None:
        try:
            with trio.move_on_after(10):
                await self._bridge.run(self._client.close())
        finally:
            self._bridge.close()

    async def __aenter__(self) -> SuiChainClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ==== asyncio-side primitives (run on the bridge) ===============================

    async def _call(self, command: Any) -> SuiRpcResult:
        """pysui's execute, with transport exceptions it lets through turned into results."""
        try:
            return await self._client.execute(command=command)
        except _TRANSPORT_ERRORS as exc:
            return SuiRpcResult(False, f"HTTPX error: {type(exc).__name__}", str(exc))

    async def _query(self, command: Any) -> Any:
        result = await self._call(command)
        if not result.is_ok():
            text = _error_text(result)
            if _is_transport_error(result):
                raise ChainUnavailable(f"{self.network.graphql_url}: {text}")
            raise ChainError(f"{type(command).__name__} failed: {text}")
        return result.result_data

    async def _objects(self, ids: Sequence[str]) -> dict[str, sui_prot.Object]:
        out: dict[str, sui_prot.Object] = {}
        for i in range(0, len(ids), MULTI_GET):
            res = await self._query(cmd.GetMultipleObjects(object_ids=list(ids[i : i + MULTI_GET])))
            for entry in res.objects:
                obj = entry.object
                if obj is not None and obj.object_id:
                    out[long_address(obj.object_id)] = obj
        return out

    async def _a_state(self) -> WalrusState:
        sid = self.network.system_object_id
        system = (await self._objects([sid])).get(sid)
        if system is None or system.contents is None:
            raise ObjectMissing(f"the Walrus System object {sid} is not on {self.network.name}")
        version, package = decode_system(_contents(system))
        inner_id = system_inner_id(sid, version)
        inner = (await self._objects([inner_id])).get(inner_id)
        if inner is None or inner.contents is None:
            raise ObjectMissing(f"the Walrus System object {sid} has no inner state")
        fields = decode_system_inner(_contents(inner))
        epoch = await self._query(cmd.GetBasicCurrentEpochInfo())
        return WalrusState(
            epoch=fields["epoch"],
            n_shards=fields["n_shards"],
            storage_price_per_unit=fields["storage_price"],
            write_price_per_unit=fields["write_price"],
            max_epochs_ahead=fields["max_epochs_ahead"],
            total_capacity=fields["total_capacity"],
            used_capacity=fields["used_capacity"],
            package_id=package,
            reference_gas_price=int(epoch.reference_gas_price or 0),
        )

    async def _a_blobs(self, objs: Sequence[sui_prot.Object]) -> list[BlobInfo]:
        meta_ids = [metadata_field_id(long_address(str(o.object_id))) for o in objs]
        metas = await self._objects(meta_ids)
        out = []
        for o, mid in zip(objs, meta_ids, strict=True):
            if o.contents is None or _norm_type(o.object_type) != self.network.blob_type:
                raise ObjectMissing(f"{o.object_id} is not a Walrus Blob object")
            meta = metas.get(mid)
            pairs = decode_metadata_field(_contents(meta)) if meta and meta.contents else ()
            out.append(
                decode_blob(
                    _contents(o),
                    version=int(o.version or 0),
                    digest=str(o.digest),
                    metadata=pairs,
                )
            )
        return out

    async def _a_list(self, cursor: str | None) -> BlobPage:
        res = await self._query(
            cmd.GetObjectsForType(
                owner=self.address,
                object_type=self.network.blob_type,
                next_page_token=cursor.encode() if cursor else None,
            )
        )
        blobs = await self._a_blobs(list(res.objects))
        token = res.next_page_token
        return BlobPage(tuple(blobs), token.decode() if token else None)

    async def _a_get_blobs(self, object_ids: Sequence[str]) -> list[BlobInfo]:
        ids = [long_address(i) for i in object_ids]
        objs = await self._objects(ids)
        missing = [i for i in ids if i not in objs]
        if missing:
            raise ObjectMissing(f"no such Blob object: {', '.join(missing)}")
        return await self._a_blobs([objs[i] for i in ids])

    async def _a_coins(self, coin_object_type: str) -> list[sui_prot.Object]:
        try:
            res = await self._client.execute_for_all(
                command=cmd.GetObjectsForType(owner=self.address, object_type=coin_object_type)
            )
        except _TRANSPORT_ERRORS as exc:
            raise ChainUnavailable(f"{self.network.graphql_url}: {exc}") from None
        if not res.is_ok():
            raise ChainError(f"listing coins failed: {_error_text(res)}")
        return list(res.result_data.objects)

    # ==== transactions ===============================================================

    async def _a_attempt(
        self, build: Callable[[Any], Awaitable[None]], pinned: Mapping[str, int]
    ) -> sui_prot.ExecutedTransaction:
        """Build, simulate, sign and execute once; raises StaleObjects for a retry."""
        txn = await self._client.transaction(initial_sender=self.address)
        try:
            await build(txn)
            kind = await txn.raw_kind()
        except _TRANSPORT_ERRORS as exc:
            raise ChainUnavailable(f"{self.network.graphql_url}: {exc}") from None
        except ValueError as exc:
            raise ChainError(f"building the transaction failed: {exc}") from None
        sim = await self._call(
            cmd.SimulateTransactionKind(tx_kind=kind, tx_meta={"sender": self.address})
        )
        if not sim.is_ok():
            self._raise_refusal(sim, pinned)
        effects = sim.result_data.transaction.effects
        if effects is None or effects.status is None:
            raise ChainError("the simulation returned no effects")
        if not effects.status.success:
            raise _failure(effects.status, digest=None, simulated=True)
        gas = effects.gas_used or sui_prot.GasCostSummary()
        state_price = await self._query(cmd.GetBasicCurrentEpochInfo())
        budget = compute_gas_budget(
            gas.computation_cost or 0,
            gas.storage_cost or 0,
            int(state_price.reference_gas_price or 1000),
        )
        try:
            signed = await txn.build_and_sign(gas_budget=budget)
        except _TRANSPORT_ERRORS as exc:
            raise ChainUnavailable(f"{self.network.graphql_url}: {exc}") from None
        except ValueError as exc:
            text = str(exc)
            if "gas" in text.lower() or "fund transaction" in text:
                raise InsufficientGas(
                    f"{self.address} cannot pay {budget} MIST of gas: {text}"
                ) from None
            raise ChainError(f"building the transaction failed: {text}") from None
        tx_bytes = base64.b64decode(signed["tx_bytestr"])
        if self._observer is not None:
            self._observer(tx_bytes)
        res = await self._call(cmd.ExecuteTransaction(**signed))
        if not res.is_ok():
            if _is_transport_error(res):
                return await self._a_lost_answer(_tx_digest(tx_bytes), _error_text(res))
            self._raise_refusal(res, pinned)
        executed: sui_prot.ExecutedTransaction | None = res.result_data
        if executed is None or executed.effects is None or executed.effects.status is None:
            raise ChainError("the chain returned no effects for the transaction")
        if not executed.effects.status.success:
            raise _failure(executed.effects.status, digest=executed.digest, simulated=False)
        return executed

    async def _a_lost_answer(self, digest: str, why: str) -> sui_prot.ExecutedTransaction:
        """The execution's answer was lost: find out whether the transaction landed."""
        for attempt in range(LOST_ANSWER_CHECKS):
            res = await self._call(cmd.GetTransaction(digest=digest))
            if res.is_ok() and res.result_data is not None:
                executed: sui_prot.ExecutedTransaction = res.result_data
                effects = executed.effects
                if effects is not None and effects.status is not None:
                    if not effects.status.success:
                        raise _failure(effects.status, digest=digest, simulated=False)
                    return executed
            await asyncio.sleep(0.2 * (attempt + 1))
        raise ChainUnavailable(f"transaction {digest} may or may not have executed: {why}")

    def _raise_refusal(self, result: SuiRpcResult, pinned: Mapping[str, int]) -> None:
        text = _error_text(result)
        if _is_transport_error(result):
            raise ChainUnavailable(f"{self.network.graphql_url}: {text}")
        if "not available for consumption" in text or "locked" in text.lower():
            ids = frozenset(long_address(m) for m in _OBJECT_ID.findall(text))
            current = {long_address(a): int(v, 0) for a, v in _CURRENT.findall(text)}
            for oid, version in pinned.items():
                if oid in ids:
                    raise AnchorConflict(oid, version, current.get(oid))
            raise StaleObjects(text, ids)
        if "Balance of gas object" in text or "lower than the needed amount" in text:
            raise InsufficientGas(text)
        raise TransactionRejected(f"the chain refused the transaction: {text}")

    async def _transact(
        self, build: Callable[[Any], Awaitable[None]], *, pinned: Mapping[str, int] | None = None
    ) -> sui_prot.ExecutedTransaction:
        pinned = dict(pinned or {})
        delay = 0.05
        for attempt in range(self._stale_retries + 1):
            try:
                return await self._bridge.run(self._a_attempt(build, pinned))
            except StaleObjects as exc:
                if attempt == self._stale_retries:
                    raise
                log.debug(
                    "stale inputs %s; rebuilding (attempt %d)", sorted(exc.object_ids), attempt + 1
                )
                await trio.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    def _target(self, state: WalrusState, module: str, function: str) -> str:
        return f"{state.package_id}::{module}::{function}"

    # ==== public API (trio) ===========================================================

    async def walrus_state(self) -> WalrusState:
        """The current Walrus epoch, prices, limits and Sui's reference gas price."""
        return await self._bridge.run(self._a_state())

    async def current_epoch(self) -> int:
        return (await self.walrus_state()).epoch

    async def list_blobs(self, cursor: str | None = None) -> BlobPage:
        """One page of the wallet's Blob objects (with metadata); pass `cursor` for the next."""
        return await self._bridge.run(self._a_list(cursor))

    async def all_blobs(self) -> list[BlobInfo]:
        out: list[BlobInfo] = []
        cursor: str | None = None
        while True:
            page = await self.list_blobs(cursor)
            out += page.blobs
            if page.cursor is None:
                return out
            cursor = page.cursor

    async def get_blobs(self, object_ids: Sequence[str]) -> list[BlobInfo]:
        """Blob objects by id (any owner), with their metadata."""
        return await self._bridge.run(self._a_get_blobs(object_ids))

    async def balances(self) -> Balances:
        async def read() -> Balances:
            sui = await self._a_coins(SUI_COIN_TYPE)
            wal = await self._a_coins(self.network.wal_coin_object_type)
            return Balances(
                sum(int(c.balance or 0) for c in sui), sum(int(c.balance or 0) for c in wal)
            )

        return await self._bridge.run(read())

    async def extension_price(self, object_ids: Sequence[str], epochs: int) -> ExtensionQuote:
        """What extending these blobs by `epochs` costs in WAL, checked as the contract would."""
        state = await self.walrus_state()
        blobs = await self.get_blobs(object_ids)
        return self._quote(state, blobs, epochs)

    def _quote(
        self, state: WalrusState, blobs: Iterable[BlobInfo], epochs: int, *, check: bool = True
    ) -> ExtensionQuote:
        per: list[tuple[str, int]] = []
        for b in blobs:
            per.append((b.object_id, state.extension_price(b.storage_size, epochs)))
            if not check:
                continue
            if b.certified_epoch is None:
                raise BlobNotCertified(
                    f"blob object {b.object_id} is not certified", simulated=True
                )
            if b.end_epoch <= state.epoch:
                raise BlobExpired(
                    f"blob object {b.object_id} expired at epoch {b.end_epoch}", simulated=True
                )
            if epochs <= 0 or b.end_epoch + epochs - state.epoch > state.max_epochs_ahead:
                raise EpochsOutOfRange(
                    f"blob object {b.object_id} would end at epoch {b.end_epoch + epochs}, more "
                    f"than {state.max_epochs_ahead} epochs after epoch {state.epoch}",
                    simulated=True,
                )
        return ExtensionQuote(epochs, sum(p for _, p in per), tuple(per))

    async def extend_blobs(
        self,
        object_ids: Sequence[str],
        epochs: int,
        *,
        max_price: int | None = None,
        check: bool = True,
    ) -> ExtendResult:
        """Extend every blob by `epochs` in one transaction, paid from the wallet's WAL.

        With `check` (the default) the contract's conditions are checked locally first, with
        clear errors; either way the transaction is simulated before it is paid for, so a
        condition the chain enforces raises the same typed error (with `simulated=True`).
        """
        if not object_ids:
            raise ValueError("nothing to extend")
        state = await self.walrus_state()
        blobs = await self.get_blobs(object_ids)
        quote = self._quote(state, blobs, epochs, check=check)
        if max_price is not None and quote.total > max_price:
            raise InsufficientWal(
                f"extending costs {quote.total} FROST, more than the limit {max_price}",
                simulated=True,
            )
        coins = sorted(
            await self._bridge.run(self._a_coins(self.network.wal_coin_object_type)),
            key=lambda c: -int(c.balance or 0),
        )
        total = sum(int(c.balance or 0) for c in coins)
        if check and total < quote.total:
            raise InsufficientWal(
                f"extending costs {quote.total} FROST of WAL, the wallet holds {total}",
                simulated=True,
            )
        need: list[str] = []
        have = 0
        for c in coins:
            need.append(long_address(str(c.object_id)))
            have += int(c.balance or 0)
            if have >= quote.total:
                break
        if not need:
            raise InsufficientWal(f"{self.address} holds no WAL coin", simulated=True)
        target = self._target(state, "system", "extend_blob")
        system_id = self.network.system_object_id
        ids = [b.object_id for b in blobs]

        async def build(txn: Any) -> None:
            if len(need) > 1:
                await txn.merge_coins(merge_to=need[0], merge_from=need[1:])
            for oid in ids:
                await txn.move_call(target=target, arguments=[system_id, oid, epochs, need[0]])

        executed = await self._transact(build)
        return ExtendResult(
            digest=str(executed.digest),
            epochs=epochs,
            end_epochs=tuple((b.object_id, b.end_epoch + epochs) for b in blobs),
            wal_spent=quote.total,
            gas=_gas_used(_effects(executed)),
        )

    async def delete_blobs(self, object_ids: Sequence[str], *, check: bool = True) -> DeleteResult:
        """Delete deletable blobs in one transaction; their Storage comes back to the wallet.

        `check` as for `extend_blobs`.
        """
        if not object_ids:
            raise ValueError("nothing to delete")
        state = await self.walrus_state()
        blobs = await self.get_blobs(object_ids)
        for b in blobs if check else ():
            if not b.deletable:
                raise BlobNotDeletable(f"blob object {b.object_id} is permanent", simulated=True)
            if b.end_epoch <= state.epoch:
                raise BlobExpired(
                    f"blob object {b.object_id} expired at epoch {b.end_epoch}", simulated=True
                )
        target = self._target(state, "system", "delete_blob")
        system_id = self.network.system_object_id
        ids = [b.object_id for b in blobs]

        async def build(txn: Any) -> None:
            storages = [
                await txn.move_call(target=target, arguments=[system_id, oid]) for oid in ids
            ]
            await txn.transfer_objects(transfers=storages, recipient=self.address)

        executed = await self._transact(build)
        storage_ids = tuple(
            long_address(str(c.object_id))
            for c in _effects(executed).changed_objects
            if c.object_type
            and c.object_type.endswith("::storage_resource::Storage")
            and c.output_state == sui_prot.ChangedObjectOutputObjectState.OBJECT_WRITE
        )
        return DeleteResult(
            str(executed.digest), tuple(ids), storage_ids, _gas_used(_effects(executed))
        )

    async def read_anchor(self, object_id: str) -> Anchor:
        """The anchor Blob object at its current version, with its metadata pairs."""
        blob = (await self.get_blobs([object_id]))[0]
        return Anchor(blob.object_id, blob.version, blob.digest, blob.metadata, blob)

    async def compare_and_swap_anchor(
        self, anchor: Anchor, updates: Mapping[str, str], removals: Iterable[str] = ()
    ) -> Anchor:
        """Set and remove metadata pairs of the anchor, only if it is still at `anchor.version`.

        Raises AnchorConflict if the object moved since it was read (another writer won).
        Returns the anchor at its new version.
        """
        removals = [k for k in removals if k not in updates]
        if not updates and not removals:
            raise ValueError("a compare-and-swap must change something")
        state = await self.walrus_state()
        oid = long_address(anchor.object_id)
        ref = bcs.ObjectReference(
            bcs.Address.from_str(oid), anchor.version, bcs.Digest.from_str(anchor.digest)
        )
        insert = self._target(state, "blob", "insert_or_update_metadata_pair")
        remove = self._target(state, "blob", "remove_metadata_pair")

        async def build(txn: Any) -> None:
            for key, value in updates.items():
                await txn.move_call(target=insert, arguments=[ref, key, value])
            for key in removals:
                await txn.move_call(target=remove, arguments=[ref, key])

        executed = await self._transact(build, pinned={oid: anchor.version})
        change = next(
            (
                c
                for c in _effects(executed).changed_objects
                if long_address(str(c.object_id)) == oid
            ),
            None,
        )
        if change is None or change.output_version is None or change.output_digest is None:
            raise ChainError(f"the transaction did not write the anchor {oid}")
        pairs = dict(anchor.metadata)
        for key in removals:
            pairs.pop(key, None)
        for key, value in updates.items():
            pairs.pop(key, None)
            pairs[key] = value
        metadata = tuple(pairs.items())
        blob = anchor.blob
        new_blob = BlobInfo(
            **{
                **blob.__dict__,
                "version": int(change.output_version),
                "digest": str(change.output_digest),
                "metadata": metadata,
            }
        )
        return Anchor(
            oid, int(change.output_version), str(change.output_digest), metadata, new_blob
        )

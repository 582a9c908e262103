"""walrusfs's Walrus client against real servers: the devnet, and small HTTP servers for
misbehaviour the devnet never shows."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest
import trio

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.httpserver import Request, Response, serve
from walrusfs.devnet.node import NodeFaults
from walrusfs.devnet.registry import FROST_PER_WAL
from walrusfs.walrus import (
    BlobNotFound,
    BlobTooLarge,
    BlobUnavailable,
    DeadlineExceeded,
    InsufficientFunds,
    InvalidByteRange,
    InvalidRequest,
    ProtocolError,
    ServerError,
    ServersUnreachable,
    WalrusClient,
    WalrusUnavailable,
)


def client_for(devnet: BackgroundDevnet, **kwargs: object) -> WalrusClient:
    url = devnet.info.publisher_url
    return WalrusClient(publishers=[url], aggregators=[url], **kwargs)  # type: ignore[arg-type]


async def test_store_and_read(devnet: BackgroundDevnet) -> None:
    data = os.urandom(123_457)
    async with client_for(devnet) as walrus:
        result = await walrus.store(data, epochs=4)
        assert result.newly_created and result.blob_object is not None
        params = devnet.registry.params()
        assert result.cost == params.cost(len(data), 4)
        assert result.encoded_length == params.encoded_length(len(data))
        assert result.resource_operation == "registerFromScratch"
        assert result.end_epoch == result.blob_object.storage.start_epoch + 4
        assert result.blob_object.size == len(data) and result.blob_object.deletable
        assert await walrus.read(result.blob_id) == data
        assert await walrus.read(result.blob_id, start=0, length=1) == data[:1]
        assert await walrus.read(result.blob_id, start=len(data) - 5, length=5) == data[-5:]
        assert (
            await walrus.read(result.blob_id, start=70_000, length=40_000) == data[70_000:110_000]
        )
        assert await walrus.read(result.blob_id, start=10, length=0) == b""
        buffer = bytearray(40_000)
        assert await walrus.read_into(result.blob_id, buffer, start=70_000) == 40_000
        assert buffer == data[70_000:110_000]
        whole = bytearray(len(data))
        await walrus.read_into(result.blob_id, memoryview(whole))
        assert whole == data
        assert result.object_id is not None
        assert await walrus.read_by_object_id(result.object_id) == data
        assert await walrus.read_by_object_id(result.object_id, start=3, length=4) == data[3:7]
        again = await walrus.store(data, epochs=2)
        assert not again.newly_created and again.cost == 0
        assert (again.blob_id, again.object_id) == (result.blob_id, result.object_id)
        permanent = await walrus.store(data, epochs=2, permanent=True, force=True)
        assert permanent.newly_created and not permanent.blob_object.deletable  # type: ignore[union-attr]
        empty = await walrus.store(b"")
        assert await walrus.read(empty.blob_id) == b""


async def test_send_object_to_and_typed_errors(devnet: BackgroundDevnet) -> None:
    owner = "0x" + os.urandom(32).hex()
    data = os.urandom(1000)
    async with client_for(devnet, deadline=30) as walrus:
        with pytest.raises(InsufficientFunds) as funds:
            await walrus.store(data, send_object_to=owner)
        assert funds.value.status == 400 and funds.value.reason == "INSUFFICIENT_FUNDS"
        await trio.to_thread.run_sync(partial(devnet.fund, owner, wal=FROST_PER_WAL))
        result = await walrus.store(data, send_object_to=owner)
        assert result.blob_object is not None
        assert devnet.registry.get_blob_object(result.blob_object.object_id).owner == owner  # type: ignore[union-attr]

        with pytest.raises(BlobNotFound) as missing:
            await walrus.read("A" * 43)
        assert (missing.value.status, missing.value.reason) == (404, "BLOB_NOT_FOUND")
        assert "does not exist" in (missing.value.server_message or "")
        with pytest.raises(BlobNotFound):
            await walrus.read_by_object_id("0x" + "12" * 32)
        with pytest.raises(InvalidByteRange) as bad_range:
            await walrus.read(result.blob_id, start=999, length=2)
        assert (bad_range.value.status, bad_range.value.reason) == (416, "INVALID_BYTE_RANGE")
        for call in (
            walrus.read("not a blob id"),
            walrus.read(result.blob_id, start=5),  # open-ended ranges are not supported
            walrus.read(result.blob_id, start=-1, length=3),
            walrus.read_by_object_id("nope"),
            walrus.store(data, epochs=0),
            walrus.store(data, send_object_to="alice"),
        ):
            with pytest.raises(InvalidRequest):
                await call


async def test_failover_to_a_live_server(devnet: BackgroundDevnet, dead_url: str) -> None:
    url = devnet.info.publisher_url
    data = os.urandom(5000)
    async with WalrusClient(
        publishers=[dead_url, url], aggregators=[dead_url, url], deadline=20
    ) as walrus:
        with trio.fail_after(10):
            result = await walrus.store(data)
            assert await walrus.read(result.blob_id) == data


async def test_unreachable_servers_fail_within_the_deadline(dead_url: str) -> None:
    async with WalrusClient(aggregators=[dead_url], deadline=1.5, backoff=0.1) as walrus:
        started = trio.current_time()
        with pytest.raises(WalrusUnavailable) as failure:
            await walrus.read("A" * 43)
        assert isinstance(failure.value, ServersUnreachable)
        assert trio.current_time() - started < 5


async def _restart_later(devnet: BackgroundDevnet, nodes: list[int], delay: float) -> None:
    await trio.sleep(delay)
    for index in nodes:
        await trio.to_thread.run_sync(devnet.start_node, index)


async def test_read_retries_503_until_nodes_return(faulty: BackgroundDevnet) -> None:
    data = os.urandom(50_000)
    down = [0, 1, 2, 3, 4, 5, 6]  # n - k + 1: too few shares left
    async with client_for(faulty, deadline=30, backoff=0.1, max_backoff=0.5) as walrus:
        result = await walrus.store(data)
        for index in down:
            await trio.to_thread.run_sync(faulty.stop_node, index)
        try:
            quick = client_for(faulty, deadline=1.0, backoff=0.1)
            async with quick:
                with pytest.raises(BlobUnavailable):
                    await quick.read(result.blob_id)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_restart_later, faulty, down[:1], 1.0)
                started = trio.current_time()
                assert await walrus.read(result.blob_id) == data
                assert trio.current_time() - started >= 0.9
        finally:
            for index in down:
                await trio.to_thread.run_sync(faulty.start_node, index)


async def test_store_retries_504_until_nodes_return(faulty: BackgroundDevnet) -> None:
    data = os.urandom(20_000)
    down = [1, 4, 7, 8]  # 6 nodes left, 7 confirmations needed
    for index in down:
        await trio.to_thread.run_sync(faulty.stop_node, index)
    try:
        async with client_for(faulty, deadline=30, backoff=0.1, max_backoff=0.5) as walrus:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_restart_later, faulty, down[:1], 1.0)
                result = await walrus.store(data)
            assert result.newly_created
            assert await walrus.read(result.blob_id) == data
    finally:
        for index in down:
            await trio.to_thread.run_sync(faulty.start_node, index)


async def test_store_retries_429(busy: BackgroundDevnet, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="walrusfs.walrus.client")
    for index in range(busy.info.n_shards):
        await trio.to_thread.run_sync(busy.set_faults, index, NodeFaults(write_delay=0.5))
    results = []
    try:
        async with client_for(busy, deadline=30, backoff=0.2, max_backoff=0.5) as walrus:

            async def one() -> None:
                results.append(await walrus.store(os.urandom(3000)))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(one)
                nursery.start_soon(one)
    finally:
        for index in range(busy.info.n_shards):
            await trio.to_thread.run_sync(busy.set_faults, index, NodeFaults())
    assert len(results) == 2 and all(r.newly_created for r in results)
    assert any("429 TOO_MANY_REQUESTS" in r.message for r in caplog.records)


async def test_publisher_body_limit(busy: BackgroundDevnet) -> None:
    async with client_for(busy) as walrus:
        with pytest.raises(BlobTooLarge) as too_large:
            await walrus.store(bytes((10 << 20) + 1))
        assert too_large.value.status == 413


# -- small real servers that misbehave in ways the devnet does not


Handler = Callable[[Request], Awaitable[Response]]


async def _server(nursery: trio.Nursery, handler: Handler) -> str:
    port = await nursery.start(lambda task_status: serve(handler, task_status=task_status))
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as n:
        yield n
        n.cancel_scope.cancel()


BLOB_ID = "B" * 43
PAYLOAD = bytes(range(256)) * 40


async def test_a_server_that_ignores_range_yields_only_the_range(nursery: trio.Nursery) -> None:
    async def handler(request: Request) -> Response:
        return Response(200, PAYLOAD)  # Range ignored: the whole blob, 200

    url = await _server(nursery, handler)
    async with WalrusClient(aggregators=[url]) as walrus:
        assert await walrus.read(BLOB_ID, start=1000, length=300) == PAYLOAD[1000:1300]
        buffer = bytearray(300)
        await walrus.read_into(BLOB_ID, buffer, start=2000)
        assert buffer == PAYLOAD[2000:2300]


async def test_a_body_that_does_not_match_the_range_is_refused(nursery: trio.Nursery) -> None:
    async def handler(request: Request) -> Response:
        # Claims the asked range but sends more bytes than it spans.
        return Response(206, PAYLOAD[:500], headers=[("content-range", "bytes 0-99/10240")])

    url = await _server(nursery, handler)
    async with WalrusClient(aggregators=[url]) as walrus:
        with pytest.raises(ProtocolError):
            await walrus.read(BLOB_ID, start=0, length=100)


async def test_server_errors_are_not_retried_but_503_is(nursery: trio.Nursery) -> None:
    calls = {"500": 0, "503": 0}

    async def fails(request: Request) -> Response:
        calls["500"] += 1
        return Response(500, b"boom")

    async def recovers(request: Request) -> Response:
        calls["503"] += 1
        if calls["503"] < 3:
            return Response(503, b"{}", headers=[("retry-after", "0.2")])
        return Response(200, PAYLOAD)

    failing = await _server(nursery, fails)
    recovering = await _server(nursery, recovers)
    async with WalrusClient(aggregators=[failing], deadline=10) as walrus:
        with pytest.raises(ServerError) as error:
            await walrus.read(BLOB_ID)
        assert error.value.status == 500 and calls["500"] == 1
    async with WalrusClient(aggregators=[recovering], deadline=10, backoff=0.05) as walrus:
        started = trio.current_time()
        assert await walrus.read(BLOB_ID) == PAYLOAD
        assert calls["503"] == 3
        assert trio.current_time() - started >= 0.4  # Retry-After honoured twice


async def test_the_deadline_ends_retries_with_the_error_that_caused_them(
    nursery: trio.Nursery,
) -> None:
    """A 503, then no answer: the deadline cuts the second attempt short, and the caller
    learns why it was retrying. A server that never answers at all: DeadlineExceeded."""
    calls = []

    async def unavailable_then_silent(request: Request) -> Response:
        calls.append(request.path)
        if len(calls) == 1:
            return Response(503, b"{}")
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def silent(request: Request) -> Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    flaky = await _server(nursery, unavailable_then_silent)
    dead = await _server(nursery, silent)
    async with WalrusClient(aggregators=[flaky], deadline=1.0, backoff=0.01) as walrus:
        with pytest.raises(BlobUnavailable):
            await walrus.read(BLOB_ID)
        assert len(calls) == 2
    async with WalrusClient(aggregators=[dead], deadline=0.5) as walrus:
        with pytest.raises(DeadlineExceeded):
            await walrus.read(BLOB_ID)

"""The trio-to-asyncio bridge pysui runs behind."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from walrusfs.chain.bridge import AsyncioBridge


async def test_results_errors_and_the_loop_thread():
    bridge = AsyncioBridge()
    try:

        async def where() -> str:
            await asyncio.sleep(0)
            return threading.current_thread().name

        assert await bridge.run(where()) == "pysui-asyncio"

        async def boom() -> None:
            raise KeyError("x")

        with pytest.raises(KeyError):
            await bridge.run(boom())
        # concurrent calls from trio run concurrently on the one asyncio loop
        results: list[int] = []

        async def slow(i: int) -> int:
            await asyncio.sleep(0.2)
            return i

        async def call(i: int) -> None:
            results.append(await bridge.run(slow(i)))

        with trio.fail_after(1.5):  # five 0.2 s calls, concurrently
            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(call, i)
        assert sorted(results) == list(range(5))
    finally:
        bridge.close()


async def test_cancelling_from_trio_cancels_the_asyncio_task():
    bridge = AsyncioBridge()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        with trio.fail_after(5):
            with trio.move_on_after(0.1):
                await bridge.run(forever())
            while not cancelled.is_set():
                await trio.sleep(0.01)

        async def fine() -> int:
            return 7

        assert await bridge.run(fine()) == 7  # the bridge keeps working
    finally:
        bridge.close()
    with pytest.raises(RuntimeError):
        bridge.submit(asyncio.sleep(0))

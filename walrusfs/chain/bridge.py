"""A bridge from trio to asyncio: pysui runs on its own asyncio loop in a dedicated thread.

pysui is asyncio code and breaks when awaited from trio under concurrency, so every pysui call
is a coroutine submitted to the bridge's loop with `asyncio.run_coroutine_threadsafe` and awaited
from trio in a worker thread (`trio.to_thread.run_sync(future.result, abandon_on_cancel=True)`).
When the trio side is cancelled, the asyncio task is cancelled too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import trio

log = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncioBridge:
    """An asyncio event loop on a thread of its own, reachable from trio."""

    def __init__(self, name: str = "pysui-asyncio") -> None:
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._started.wait()
        self._closed = False

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        try:
            self._loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._closed:
            coro.close()
            raise RuntimeError("the asyncio bridge is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the bridge's loop and wait for it from trio."""
        future = self.submit(coro)
        try:
            return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except trio.Cancelled:
            future.cancel()
            raise

    def run_blocking(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the bridge's loop from a thread that is not the bridge's own."""
        return self.submit(coro).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the asyncio bridge thread did not stop within %.0f s", timeout)

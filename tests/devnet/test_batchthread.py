"""The batch thread: jobs queued together run as one batch, first phases before second ones,
each job gets its own result or exception, and the thread comes and goes with the work."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import trio

from walrusfs.devnet import batchthread
from walrusfs.devnet.batchthread import batch_thread


def _wait_for(predicate: Callable[[], bool], deadline: float = 10.0) -> None:
    event = threading.Event()
    for _ in range(int(deadline / 0.01)):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError("condition not reached before the deadline")


async def test_jobs_queued_together_share_one_batch_and_their_second_phase() -> None:
    log: list[str] = []
    gate = threading.Event()
    results: dict[str, object] = {}

    def job(name: str, fail_in: str = "") -> Callable[[], Callable[[], str]]:
        def first() -> Callable[[], str]:
            log.append(f"first {name}")
            if fail_in == "first":
                raise ValueError(name)

            def second() -> str:
                log.append(f"second {name}")
                if fail_in == "second":
                    raise KeyError(name)
                return name.upper()

            return second

        return first

    async def submit(name: str, fail_in: str = "") -> None:
        try:
            results[name] = await batch_thread().run(job(name, fail_in))
        except (ValueError, KeyError) as exc:
            results[name] = exc

    worker = batch_thread()
    async with trio.open_nursery() as nursery:
        # The first job holds the thread, so the next three queue up behind it.
        nursery.start_soon(worker.run_sync, gate.wait)
        await trio.to_thread.run_sync(_wait_for, lambda: worker._thread_alive and not worker._jobs)
        batches = worker.batches
        nursery.start_soon(submit, "a")
        nursery.start_soon(submit, "b", "first")
        nursery.start_soon(submit, "c", "second")
        await trio.to_thread.run_sync(_wait_for, lambda: len(worker._jobs) == 3)
        gate.set()
    assert worker.batches == batches + 2
    assert results["a"] == "A"
    assert isinstance(results["b"], ValueError) and isinstance(results["c"], KeyError)
    # (trio starts the three tasks in any order)
    assert sorted(log[:3]) == ["first a", "first b", "first c"]
    assert sorted(log[3:]) == ["second a", "second c"]


async def test_the_thread_ends_when_idle_and_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batchthread, "IDLE_EXIT", 0.05)
    worker = batch_thread()
    assert await worker.run_sync(threading.get_ident) != threading.get_ident()
    await trio.to_thread.run_sync(_wait_for, lambda: not worker._thread_alive)
    assert await worker.run_sync(lambda: 42) == 42


async def test_a_job_taken_by_the_thread_is_not_cancelled() -> None:
    worker = batch_thread()
    gate = threading.Event()
    results: list[int] = []

    def slow() -> int:
        gate.wait()
        return 1

    async def job() -> None:
        results.append(await worker.run_sync(slow))

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(job)
            await trio.to_thread.run_sync(
                _wait_for, lambda: worker._thread_alive and not worker._jobs
            )
            scope.cancel()
            gate.set()
    # The job was running when its scope was cancelled: it still returned its result.
    assert scope.cancel_called and results == [1]

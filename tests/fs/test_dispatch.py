"""Waiting for FUSE requests with a busy poll (walrusfs/fs/dispatch.py).

The unit tests drive RequestPoller the way pyfuse3's worker loop does, with a pipe standing
in for /dev/fuse: a worker that is told "readable" reads at once, without blocking. The
mount tests show the poller serving a real mount, and pyfuse3's own loop with busy_poll=0.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from tests.fsmount import FsUnderTest
from walrusfs.fs import control
from walrusfs.fs.dispatch import RequestPoller


@dataclass
class Device:
    """A pipe standing in for /dev/fuse: writing a byte queues a request."""

    read_fd: int
    write_fd: int


@pytest.fixture
def device() -> Iterator[Device]:
    read_fd, write_fd = os.pipe()
    # Non-blocking: a worker told "readable" with nothing to read raises BlockingIOError
    # instead of hanging, which is the bug these tests exist to catch.
    os.set_blocking(read_fd, False)
    yield Device(read_fd, write_fd)
    os.close(read_fd)
    os.close(write_fd)


async def _serve(poller: RequestPoller, read_fd: int, got: list[int], blocking_every: int) -> None:
    """One pyfuse3 worker: wait, read one request, handle it (sometimes by blocking)."""
    while await poller.wait_readable():
        (byte,) = os.read(read_fd, 1)
        got.append(byte)
        if byte % blocking_every == 0:
            await trio.sleep(0.002)  # a handler waiting on something (the network, a thread)


async def _waits_of_idle_workers(poller: RequestPoller, end: Callable[[], None]) -> list[bool]:
    """What four workers waiting on a quiet device get once `end` is called."""
    results: list[bool] = []

    async def worker() -> None:
        results.append(await poller.wait_readable())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(worker)
            await trio.testing.wait_all_tasks_blocked()
            end()
    return results


@pytest.mark.parametrize("spin_us", [0, 50, 5000])
async def test_every_request_is_read_once_by_one_worker(device: Device, spin_us: int) -> None:
    poller = RequestPoller(device.read_fd, spin_us)
    got: list[int] = []
    sent = list(range(200))
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(_serve, poller, device.read_fd, got, 7)
        rng = random.Random(1)
        for n in sent:
            os.write(device.write_fd, bytes([n]))
            # Requests back to back, after a pause longer than the spin, and in bursts.
            pause = rng.choice([0, 0, 0.0001, 0.01])
            if pause:
                await trio.sleep(pause)
        with trio.fail_after(10):
            while len(got) < len(sent):
                await trio.sleep(0.001)
        poller.stop()
    assert sorted(got) == sent


async def test_stop_ends_sleeping_and_parked_workers(device: Device) -> None:
    poller = RequestPoller(device.read_fd, 50)
    assert await _waits_of_idle_workers(poller, poller.stop) == [False] * 4
    # Once stopped, a wait ends at once even with a request there.
    os.write(device.write_fd, b"x")
    assert await poller.wait_readable() is False


async def test_pyfuse3_terminate_alone_ends_every_wait(device: Device) -> None:
    """pyfuse3.terminate() wakes only the worker sleeping in epoll; it ends the rest."""
    poller = RequestPoller(device.read_fd, 50)

    def terminate() -> None:
        trio.lowlevel.notify_closing(device.read_fd)  # what pyfuse3.terminate() does

    assert await _waits_of_idle_workers(poller, terminate) == [False] * 4


async def test_a_worker_that_always_finds_requests_lets_other_tasks_run(device: Device) -> None:
    """Requests back to back never make a worker sleep; it yields every few ms anyway."""
    backlog = 60_000  # fits in the pipe: the worker never waits for the writer
    os.write(device.write_fd, bytes(backlog))
    poller = RequestPoller(device.read_fd, 50)
    consumed = 0
    seen_at: list[int] = []

    async def worker() -> None:
        nonlocal consumed
        while await poller.wait_readable():
            os.read(device.read_fd, 1)
            consumed += 1

    async def bystander() -> None:
        # A timer: it becomes ready only when trio's scheduler runs, so only a worker
        # that yields lets it run (the poller yields early for work that is ready
        # before it polls, not for a timer that expires while it polls).
        await trio.sleep(0.005)
        seen_at.append(consumed)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker)
            nursery.start_soon(bystander)
            while consumed < backlog:
                await trio.sleep(0.001)
            poller.stop()
    assert seen_at and seen_at[0] < backlog // 2, seen_at


async def test_work_that_is_ready_runs_before_the_spin(device: Device) -> None:
    """A handler (or a thread's result) that is ready when a worker starts to poll runs
    first, not after the spin. The spin here is 2 s; the bystander must not wait for it."""
    poller = RequestPoller(device.read_fd, 2_000_000)
    ran_after: list[float] = []
    start = time.perf_counter()

    async def bystander() -> None:
        ran_after.append(time.perf_counter() - start)
        os.write(device.write_fd, b"x")  # the request the worker waits for

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bystander)
            assert await poller.wait_readable()
            poller.stop()
    assert ran_after and ran_after[0] < 1.0, ran_after


def _status(fs: FsUnderTest) -> dict:
    return control.request(str(fs.dir), {"op": "status"}, timeout=30)


@pytest.mark.parametrize("option", [None, "busy_poll=0", "busy_poll=200"])
def test_mount_serves_requests_with_and_without_busy_poll(
    fs_unmounted: FsUnderTest, option: str | None
) -> None:
    fs_unmounted.mount(*([option] if option else []))
    expected = {None: 50, "busy_poll=0": 0, "busy_poll=200": 200}[option]
    assert _status(fs_unmounted)["busy_poll_us"] == expected
    for i in range(300):
        (fs_unmounted.mnt / f"f{i}").write_bytes(b"x" * i)
    assert sorted(os.listdir(fs_unmounted.mnt)) == sorted(f"f{i}" for i in range(300))
    status = _status(fs_unmounted)
    if expected:
        # pyfuse3 really waits through the poller: each of those requests went through it.
        found = status["requests_found_polling"] + status["requests_found_sleeping"]
        assert found >= 1200, status
        # A program sending requests one after another finds the daemon polling for most.
        assert status["requests_found_polling"] > status["requests_found_sleeping"], status
    else:
        assert "requests_found_polling" not in status
    fs_unmounted.remount(*([option] if option else []))
    assert all((fs_unmounted.mnt / f"f{i}").read_bytes() == b"x" * i for i in range(300))

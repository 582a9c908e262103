"""How FUSE requests reach the handlers: pyfuse3's loop, waiting for them with a short busy poll.

Most of what a FUSE request costs on our machines is not the handler but the two wake-ups
around it: the kernel queues the request and wakes the daemon, the daemon replies and the
kernel wakes the caller. On a virtual machine whose idle CPUs halt, waking a sleeping CPU costs
tens of microseconds: a trivial request round trip measured about 70 µs through libfuse's own C
loop and about 80 µs through pyfuse3 on trio, where the same loop on one shared CPU (no idle
CPU to wake) takes 10 and 33 µs. tar, rsync and cp issue their requests one after another,
so they pay that wake-up on almost every one.

So after each request the task that reads the next one keeps looking at /dev/fuse for a short
while (`spin`, 50 µs by default) before it goes to sleep in trio's epoll. A caller that sends
its next request within that window finds the daemon awake. Measured on a trivial request:
22 µs a round trip instead of 80. The price is at most `spin` of CPU after a burst of
requests; an idle mount costs nothing. The poll does not go through trio's scheduler (that
would cost as much as it saves). When trio has other work ready the worker does not spin
but waits in epoll, so that work goes first; a worker that keeps finding requests waiting
yields every 2 ms.

pyfuse3 has no interface for this. Its worker loop (`_session_loop`) calls the module-level
coroutine `_wait_fuse_readable` before every read of the device, and looks it up by name each
time, so `RequestPoller.installed` puts ours in its place for as long as the mount runs, and
puts pyfuse3's back afterwards. With a pyfuse3 that has no such function the mount runs on
pyfuse3's own loop, and says so in the log.

Our replacement keeps the contract of the original: it returns True once the device has a
request to read (or an error to report: an unmounted device polls readable, and pyfuse3's read
then ends the loop), False when the loop is to end. At most one worker sleeps in trio's epoll
on the device; the others park until it wakes (pyfuse3 serialises them with a lock).
pyfuse3 counts its idle workers inside the original, which we cannot reach from Python, so
with ours it keeps every worker it started (at most `pyfuse3.main`'s max_tasks); each idle
one is a parked task.
"""

from __future__ import annotations

import logging
import os
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pyfuse3
import trio

log = logging.getLogger(__name__)

DEFAULT_SPIN_US = 50
# A worker that keeps finding requests waiting lets trio run other tasks this often.
YIELD_NS = 2_000_000
# pyfuse3's hook: the coroutine its worker loop awaits before reading a request.
_HOOK = "_wait_fuse_readable"


def fuse_device_fds() -> list[int]:
    """This process's open descriptors of /dev/fuse."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "/dev/fuse":
                found.append(int(name))
        except OSError:
            pass  # the listing's own descriptor, or one closed since
    return found


class RequestPoller:
    """Waits for the next FUSE request on `fd`, polling for `spin_us` before sleeping."""

    def __init__(self, fd: int, spin_us: int) -> None:
        self.fd = fd
        self.spin_ns = spin_us * 1000
        self.closing = False
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        # Whether a worker sleeps in trio's epoll waiting for the device (at most one may).
        self._sleeper = False
        # Workers with nothing to do, while another one sleeps in epoll.
        self._idle = trio.lowlevel.ParkingLot()
        # Workers unparked that have not run yet (runnable, but not work of anyone else's).
        self._waking = 0
        self._last_yield = time.perf_counter_ns()
        # Requests found by polling, and by a worker woken from epoll (for `status`).
        self.found_polling = 0
        self.found_sleeping = 0

    def _others_ready(self) -> bool:
        """Whether trio has other work ready to run (a task, a thread's result), besides
        our own workers on their way back to the lot. It goes before a spin, which would
        hold it up; what becomes ready during a spin waits at most the spin."""
        stats = trio.lowlevel.current_statistics()
        return stats.tasks_runnable > self._waking or stats.run_sync_soon_queue_size > 0

    def _readable(self) -> bool:
        return bool(self._poll.poll(0))

    async def wait_readable(self) -> bool:
        if self.spin_ns and not self.closing and not self._others_ready():
            now = time.perf_counter_ns()
            if now - self._last_yield > YIELD_NS:
                # Requests back to back would otherwise never let trio run anything else.
                await trio.lowlevel.checkpoint()
                now = self._last_yield = time.perf_counter_ns()
                if self.closing:
                    return False
            deadline = now + self.spin_ns
            while True:
                if self._readable():
                    self.found_polling += 1
                    return True
                if time.perf_counter_ns() > deadline:
                    break
        # Sleep in epoll, or park while another worker does: either yields, so work that is
        # ready runs before this worker looks at the device again.
        while not self.closing:
            if self._sleeper:
                await self._idle.park()
                self._waking -= 1
                continue
            self._sleeper = True
            try:
                await trio.lowlevel.wait_readable(self.fd)
            except trio.ClosedResourceError:
                # pyfuse3.terminate(): end every other wait too, as stop() would.
                self.closing = True
                self._waking += len(self._idle.unpark_all())
                return False
            finally:
                self._sleeper = False
                # Someone must be in epoll while this worker handles the request.
                self._waking += len(self._idle.unpark())
            self._last_yield = time.perf_counter_ns()
            # Another worker may have read it while this one was being woken.
            if self._readable():
                self.found_sleeping += 1
                return True
        return False

    def stop(self) -> None:
        """Make every worker's wait end with False. pyfuse3.terminate() must follow: it ends
        the session, and wakes a worker sleeping in epoll just as this does."""
        self.closing = True
        self._waking += len(self._idle.unpark_all())
        trio.lowlevel.notify_closing(self.fd)

    @classmethod
    @contextmanager
    def installed(cls, spin_us: int) -> Iterator[RequestPoller | None]:
        """Serve the session pyfuse3.init opened with a poller of our own, if we can.

        Yields the poller, or None when pyfuse3 runs its own loop (spin_us 0, or a pyfuse3
        we cannot hook into). Call after pyfuse3.init, leave before pyfuse3.close.
        """
        if spin_us <= 0:
            yield None
            return
        original = getattr(pyfuse3, _HOOK, None)
        fds = fuse_device_fds()
        if original is None or len(fds) != 1:
            log.info(
                "busy polling is off: %s",
                f"pyfuse3 {pyfuse3.__version__} has no {_HOOK}"
                if original is None
                else f"found {len(fds)} open /dev/fuse descriptors, not one",
            )
            yield None
            return
        poller = cls(fds[0], spin_us)
        setattr(pyfuse3, _HOOK, poller.wait_readable)
        try:
            yield poller
        finally:
            setattr(pyfuse3, _HOOK, original)

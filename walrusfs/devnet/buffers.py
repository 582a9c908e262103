"""Reusable page-aligned buffers for shares in flight.

Moving a share through a node costs, per byte, a page fault to back a fresh buffer, a copy
from the socket, a copy into the page cache and the write-back. On a small VM the faults and
the page-cache copy cost more than hashing. So shares are received into buffers taken from
this pool (anonymous mappings, page-aligned, already faulted in after their first use) and
written to disk with O_DIRECT straight from them; a buffer goes back to the pool once its
share is on disk or sent. Buffers come in power-of-two size classes from 256 KiB; the pool
keeps at most `max_idle` bytes of idle buffers. A lease must be released exactly once, and
nothing may keep a view of it afterwards.
"""

from __future__ import annotations

import mmap
import threading
from collections import defaultdict

ALIGN = 4096
IOV_MAX = 1024
"""Buffers one pwritev or sendmsg takes (Linux's UIO_MAXIOV)."""
MIN_CLASS = 256 * 1024


def round_up(size: int, multiple: int = ALIGN) -> int:
    return -(-size // multiple) * multiple


class Lease:
    """One buffer of the pool: `view` is exactly the size asked for, `aligned` rounds it up
    to the alignment O_DIRECT needs (its tail bytes are junk)."""

    __slots__ = ("_mm", "_pool", "aligned", "capacity", "view")

    def __init__(self, pool: BufferPool | None, mm: mmap.mmap, size: int) -> None:
        self._pool = pool
        self._mm = mm
        self.capacity = len(mm)
        whole = memoryview(mm)
        self.view = whole[:size]
        self.aligned = whole[: round_up(size)]

    def release(self) -> None:
        """Return the buffer to its pool; idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool._give_back(self._mm)


class BufferPool:
    def __init__(self, max_idle: int = 256 << 20) -> None:
        self._max_idle = max_idle
        self._idle: dict[int, list[mmap.mmap]] = defaultdict(list)
        self._idle_bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _class(size: int) -> int:
        capacity = MIN_CLASS
        while capacity < size:
            capacity *= 2
        return capacity

    def get(self, size: int) -> Lease:
        capacity = self._class(max(size, 1))
        with self._lock:
            idle = self._idle.get(capacity)
            mm = idle.pop() if idle else None
            if mm is not None:
                self._idle_bytes -= capacity
        if mm is None:
            mm = mmap.mmap(-1, capacity)
        return Lease(self, mm, size)

    def _give_back(self, mm: mmap.mmap) -> None:
        capacity = len(mm)
        with self._lock:
            if self._idle_bytes + capacity <= self._max_idle:
                self._idle[capacity].append(mm)
                self._idle_bytes += capacity
        # Otherwise drop it: the mapping goes when the last view of it does.


POOL = BufferPool()
"""The process-wide pool every devnet service draws from."""

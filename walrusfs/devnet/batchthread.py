"""One worker thread that runs short blocking jobs in batches, for a whole trio run.

`trio.to_thread.run_sync` hands every call to a thread and back: two thread wake-ups, a GIL
hand-over and a trip through the run's wake-up socket, per call. Ten storage nodes in one
process store ten shares per blob, and on this project's 2-core VMs (whose idle vCPUs halt)
those hand-offs cost more CPU than the nodes' own work: about 0.45 ms per share, measured.

Here jobs queue for one thread per trio run. The thread takes every job queued so far, runs
them, and wakes trio once for the whole batch; jobs that arrive together (the shares of one
blob, a node's share of several blobs) cost one round of hand-offs between them.

A job has two phases so that a batch can share its slow part: `first()` runs for every job of
the batch, in order, and returns `second`; then `second()` runs for each, and its result (or
exception) is the job's. Appending shares is `first`, and fdatasync `second`: the first
fdatasync of a share-log segment makes every append written to it durable, and the others
find nothing left to do.

A run may have several batch threads, by name, so that jobs that wait for the disk (a ledger
transaction's fsync, a share's write) do not hold up jobs queued behind them that need only a
CPU. Like `trio.to_thread.run_sync`, a job cannot be cancelled once queued. A thread ends
after `IDLE_EXIT` seconds without work and is started again by the next job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import outcome
import trio

T = TypeVar("T")

IDLE_EXIT = 10.0

_INSTANCES: trio.lowlevel.RunVar[dict[str, BatchThread]] = trio.lowlevel.RunVar(
    "walrusfs_batch_threads"
)


class _Job(Generic[T]):
    __slots__ = ("first", "result", "second", "task")

    def __init__(self, first: Callable[[], Callable[[], T]], task: trio.lowlevel.Task) -> None:
        self.first = first
        self.second: Callable[[], T] | None = None
        self.result: outcome.Outcome[T] | None = None
        self.task = task


class BatchThread:
    """See the module docstring; get the run's instance with `batch_thread()`."""

    def __init__(self, token: trio.lowlevel.TrioToken, name: str = "batch") -> None:
        self._token = token
        self.name = name
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)
        self._jobs: list[_Job[Any]] = []
        self._thread_alive = False
        self.batches = 0
        """Batches run so far (for tests and statistics)."""

    async def run(self, first: Callable[[], Callable[[], T]]) -> T:
        """Run `first()` and then the callable it returns in the thread; return its result."""
        await trio.lowlevel.checkpoint_if_cancelled()
        job: _Job[T] = _Job(first, trio.lowlevel.current_task())
        with self._lock:
            self._jobs.append(job)
            if self._thread_alive:
                self._more.notify()
            else:
                self._thread_alive = True
                threading.Thread(
                    target=self._work, name=f"walrusfs {self.name}", daemon=True
                ).start()

        def abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.FAILED  # the job runs to completion regardless

        result: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return result

    async def run_sync(self, fn: Callable[[], T]) -> T:
        """A one-phase job: `fn()` in the thread."""
        return await self.run(lambda: fn)

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._more.wait(IDLE_EXIT)
                    if not self._jobs:
                        self._thread_alive = False
                        return
                jobs, self._jobs = self._jobs, []
            for job in jobs:
                try:
                    job.second = job.first()
                except BaseException as exc:
                    job.result = outcome.Error(exc)
            for job in jobs:
                if job.result is None:
                    assert job.second is not None
                    job.result = outcome.capture(job.second)
                job.first = job.second = None  # type: ignore[assignment]
            self.batches += 1
            try:
                self._token.run_sync_soon(_deliver, jobs)
            except trio.RunFinishedError:
                return  # nobody is left to wait for the results


def _deliver(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        assert job.result is not None
        trio.lowlevel.reschedule(job.task, job.result)


def batch_thread(name: str = "batch") -> BatchThread:
    """The current trio run's batch thread called `name`."""
    try:
        instances = _INSTANCES.get()
    except LookupError:
        instances = {}
        _INSTANCES.set(instances)
    instance = instances.get(name)
    if instance is None:
        instance = instances[name] = BatchThread(trio.lowlevel.current_trio_token(), name)
    return instance
